"""Keyword search on FalkorDB: ``KeywordSearch`` over the full-text index of each agent's graph.

A memory's searchable text is a property of its node, ``Memory.doc``, which the graph's
full-text index (RediSearch, English stemming; schema.py) reads. The write path stores it
with the memory (``memory_document``); ``add`` writes it again only where it differs, and
a memory's text goes with its node, so ``delete`` has nothing to do. One graph per agent
keeps each agent's document frequencies its own, as the embedded engine's index per agent
does.

Tokens: RediSearch splits text at punctuation (``jane.doe@x.com`` becomes four words,
``T-1042`` two, and ``t1042`` matches neither) and keeps ``_`` inside words, unlike the
embedded engine's analyzer (storage/terms.py). So ``doc`` holds that analyzer's terms, not
the raw text: each identifier whole, joined up and by its parts, stop words left out,
every ASCII punctuation character escaped with a backslash so RediSearch keeps the term
one token. A query goes through the same steps and ORs its terms (``a | b``); RediSearch
would AND them. The score is RediSearch's TF-IDF (term frequency over the document's most
frequent term, times the term's rarity; FalkorDB offers no other scorer): like BM25, a
memory that matches more and rarer terms ranks higher; unlike it, a long memory is not
marked down for its length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from casegraph.storage.search import ReconcileReport, document_text
from casegraph.storage.terms import STOP_WORDS, terms

if TYPE_CHECKING:
    from casegraph.storage.falkor.store import FalkorStore

_STOP = frozenset(STOP_WORDS)
# Characters RediSearch ends a token at, or reads as query syntax, among ASCII: escaped.
_PUNCTUATION = frozenset(chr(c) for c in range(128) if not chr(c).isalnum())


def _escaped(term: str) -> str:
    return "".join(f"\\{ch}" if ch in _PUNCTUATION else ch for ch in term)


def _indexed_terms(text: str) -> list[str]:
    """The terms of ``text`` as RediSearch must see them: analysed, no stop words, escaped."""
    return [_escaped(t) for t in terms(text) if t not in _STOP]


def keyword_document(text: str) -> str:
    """What ``Memory.doc`` holds for a memory whose document text is ``text``."""
    return " ".join(_indexed_terms(text))


def memory_document(content: str, tags: Iterable[str]) -> str:
    """``Memory.doc`` of a memory with this content and these tags (the write path's)."""
    return keyword_document(document_text(content, tags))


def keyword_query(text: str) -> str | None:
    """The full-text query for a user's ``text``: its terms ORed (None: no term left)."""
    wanted = list(dict.fromkeys(_indexed_terms(text)))
    return " | ".join(wanted) if wanted else None


class FalkorKeywords:
    """``KeywordSearch`` on the full-text index of a FalkorStore's graphs."""

    def __init__(self, store: FalkorStore) -> None:
        self.store = store

    def add(self, agent_id: str, docs: Sequence[tuple[str, str]], *, flush: bool = True) -> None:
        """Set the searchable text of these memories, where it is not that already (the
        write path stored it with them). A memory the graph does not hold is skipped:
        its text has no node to live on. ``flush`` changes nothing: a write is searchable
        as soon as it commits."""
        wanted = {memory_id: keyword_document(text) for memory_id, text in docs}
        if not wanted:
            return
        rows = self.store.read(
            agent_id, "MATCH (m:Memory) WHERE m.id IN $ids RETURN m.id, m.doc", {"ids": list(wanted)}
        )
        stale = [{"id": memory_id, "doc": wanted[memory_id]} for memory_id, doc in rows if doc != wanted[memory_id]]
        if not stale:
            return
        with self.store.transaction(agent_id) as tx:
            tx.unwind("MATCH (m:Memory {id: r.id}) SET m.doc = r.doc", stale)

    def delete(self, agent_id: str, memory_ids: Iterable[str]) -> int:
        """Nothing to do, and nothing held apart from the graph to count: a memory's text
        goes with its node when ``MemoryStore.delete_memories`` deletes it."""
        return 0

    def search(self, agent_id: str, text: str, limit: int) -> list[tuple[str, float]]:
        """(memory id, score) of the agent's memories matching any term of ``text``, best
        first (ties by id), at most ``limit``."""
        query = keyword_query(text)
        if query is None or limit < 1:
            return []
        rows = self.store.read(
            agent_id,
            "CALL db.idx.fulltext.queryNodes('Memory', $q) YIELD node, score "
            "RETURN node.id AS id, score ORDER BY score DESC, id LIMIT $limit",
            {"q": query, "limit": int(limit)},
        )
        return [(memory_id, float(score)) for memory_id, score in rows]

    def reconcile(
        self, graph_ids: dict[str, set[str]], load_texts: Callable[[str, list[str]], Iterable[tuple[str, str]]]
    ) -> ReconcileReport:
        """Give a searchable text to the memories that have none (written by something
        other than the write path, e.g. an import); nothing is ever stray."""
        added = 0
        for agent_id, wanted in graph_ids.items():
            rows = self.store.read(agent_id, "MATCH (m:Memory) WHERE m.doc IS NULL RETURN m.id")
            missing = sorted({r[0] for r in rows} & wanted)
            if missing:
                docs = list(load_texts(agent_id, missing))
                self.add(agent_id, docs)
                added += len(docs)
        return ReconcileReport(agents=len(graph_ids), added=added, removed=0)

    def close(self) -> None:
        """Nothing to close: the store owns the connection."""
