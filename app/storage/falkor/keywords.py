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
would AND them. RediSearch matches and stems (English Snowball, as tantivy does). ``doc``
starts with one more token, ``_k<memory key>``, which no user text can produce (the
analyzer strips edge punctuation): it lets a query ask which of given memories a term
matches.

Scores: FalkorDB ranks by RediSearch's TF-IDF, whose idf is rounded down to a power of two
and whose term frequency is relative to the document's most frequent term ("refund refund"
and a long memory that says "refund" once tie). So its ranking only picks the candidates
(``_depth``), and the score is BM25 (tantivy's k1 and b) from the agent's memory count and,
per query term, its document frequency and which candidates it matches (a query of
``term (_k1 | _k2 | ...)``), and each candidate's length and count of the term (``doc``;
a stemmed variant counts once). The mean length is the candidates', which stands in for
the agent's (as the embedded engine's scan of uncommitted writes does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from casegraph.storage.search import ReconcileReport, document_text, vector_key
from casegraph.storage.terms import STOP_WORDS, terms

if TYPE_CHECKING:
    from casegraph.storage.falkor.store import FalkorStore

_STOP = frozenset(STOP_WORDS)
# The token that starts a memory's ``doc``, before its key (escaped: RediSearch keeps it whole).
_MEMBER = "\\_k"
# Tantivy's BM25 parameters (the embedded engine's).
_BM25_K1 = 1.2
_BM25_B = 0.75
# Characters RediSearch ends a token at, or reads as query syntax, among ASCII: escaped.
_PUNCTUATION = frozenset(chr(c) for c in range(128) if not chr(c).isalnum())


def _escaped(term: str) -> str:
    return "".join(f"\\{ch}" if ch in _PUNCTUATION else ch for ch in term)


def _indexed_terms(text: str) -> list[str]:
    """The terms of ``text`` as RediSearch must see them: analysed, no stop words, escaped."""
    return [_escaped(t) for t in terms(text) if t not in _STOP]


def _member(memory_id: str) -> str:
    return f"{_MEMBER}{vector_key(memory_id)}"


def keyword_document(memory_id: str, text: str) -> str:
    """What ``Memory.doc`` holds for memory ``memory_id`` whose document text is ``text``."""
    return " ".join((_member(memory_id), *_indexed_terms(text)))


def memory_document(memory_id: str, content: str, tags: Iterable[str]) -> str:
    """``Memory.doc`` of a memory with this id, content and tags (the write path's)."""
    return keyword_document(memory_id, document_text(content, tags))


def _doc_terms(doc: str | None) -> list[str]:
    """The terms of a stored ``doc``, its member token left out."""
    words = (doc or "").split(" ")
    return words[1:] if words and words[0].startswith(_MEMBER) else [w for w in words if w]


def _depth(limit: int) -> int:
    """How many of RediSearch's best matches are scored again for ``limit`` hits."""
    return 2 * limit + 20


def query_terms(text: str) -> list[str]:
    """The terms a user's ``text`` is searched by, each once, escaped."""
    return list(dict.fromkeys(_indexed_terms(text)))


def keyword_query(text: str) -> str | None:
    """The full-text query for a user's ``text``: its terms ORed (None: no term left)."""
    wanted = query_terms(text)
    return " | ".join(wanted) if wanted else None


def bm25(
    docs: dict[str, list[str]], matched: dict[str, tuple[int, set[str]]], total: int
) -> dict[str, float]:
    """BM25 of each candidate: ``docs`` its terms, ``matched`` per query term (document
    frequency among all ``total`` memories, the candidates it matched)."""
    lengths = {memory_id: max(len(words), 1) for memory_id, words in docs.items()}
    mean = max(sum(lengths.values()) / max(len(lengths), 1), 1.0)
    scores = dict.fromkeys(docs, 0.0)
    for term, (df, hits) in matched.items():
        idf = math.log(1.0 + (total - df + 0.5) / (df + 0.5))
        for memory_id in hits & scores.keys():
            tf = max(docs[memory_id].count(term), 1)
            norm = _BM25_K1 * (1.0 - _BM25_B + _BM25_B * lengths[memory_id] / mean)
            scores[memory_id] += idf * tf * (_BM25_K1 + 1.0) / (tf + norm)
    return scores


class FalkorKeywords:
    """``KeywordSearch`` on the full-text index of a FalkorStore's graphs."""

    def __init__(self, store: FalkorStore) -> None:
        self.store = store

    def add(self, agent_id: str, docs: Sequence[tuple[str, str]], *, flush: bool = True) -> None:
        """Set the searchable text of these memories, where it is not that already (the
        write path stored it with them). A memory the graph does not hold is skipped:
        its text has no node to live on. ``flush`` changes nothing: a write is searchable
        as soon as it commits."""
        wanted = {memory_id: keyword_document(memory_id, text) for memory_id, text in docs}
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
        """(memory id, BM25 score) of the agent's memories matching any term of ``text``,
        best first (ties by id), at most ``limit``."""
        wanted = query_terms(text)
        if not wanted or limit < 1:
            return []
        rows = self.store.read(
            agent_id,
            "CALL db.idx.fulltext.queryNodes('Memory', $q) YIELD node, score "
            "RETURN node.id AS id, node.doc ORDER BY score DESC, id LIMIT $depth",
            {"q": " | ".join(wanted), "depth": _depth(limit)},
        )
        if not rows:
            return []
        docs = {memory_id: _doc_terms(doc) for memory_id, doc in rows}
        # Per term: how many of all the agent's memories it matches, and which candidates
        # (RediSearch intersects the term with the candidates' member tokens). Apart: as one
        # query, FalkorDB took ~5x as long (measured at 20k memories).
        counts = self.store.read(
            agent_id,
            "UNWIND $terms AS t CALL db.idx.fulltext.queryNodes('Memory', t) YIELD node RETURN t, count(node)",
            {"terms": wanted},
        )
        total = self.store.read(agent_id, "MATCH (m:Memory) RETURN count(m)")[0][0]
        hits = self.store.read(
            agent_id,
            "UNWIND $terms AS t CALL db.idx.fulltext.queryNodes('Memory', t + ' ' + $within) YIELD node "
            "RETURN t, collect(node.id)",
            {"terms": wanted, "within": "(" + " | ".join(_member(i) for i in docs) + ")"},
        )
        matched = dict(hits)
        scores = bm25(docs, {t: (int(df), set(matched.get(t, ()))) for t, df in counts}, int(total))
        ranked = sorted(((memory_id, score) for memory_id, score in scores.items() if score > 0),
                        key=lambda hit: (-hit[1], hit[0]))
        return ranked[:limit]

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
