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
one token. A query goes through the same steps; RediSearch matches each of its terms
(stemmed: English Snowball, as tantivy does).

Scores are BM25 (tantivy's k1 and b), not RediSearch's: its TF-IDF rounds idf down to a
power of two, takes term frequency relative to the document's most frequent term ("refund
refund" ties with a long memory that says "refund" once) and divides the score of several
terms by how far apart they stand, so a memory that matches more of a query can score
lower (measured: top 10 worth 0.70 of tantivy's BM25, 20k memories). The reads: each
term's document frequency, the memory count, and the candidates, the ``_depth`` memories
with the most idf among the terms they match (RediSearch finds the matches, the query sums
and ranks them and says which terms each matched); a candidate's length and term counts
come from its ``doc`` (a stemmed variant counts once). Terms in more than half the
memories (a tag every memory has) weigh almost nothing and would make the candidate read
walk every memory: they are left out of it unless too few memories match the others, and a
candidate matches one if its ``doc`` holds it as is. The mean length is the candidates',
which stands in for the agent's (as the embedded engine's scan of uncommitted writes
does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from casegraph.storage.search import ReconcileReport, document_text
from casegraph.storage.terms import STOP_WORDS, terms

if TYPE_CHECKING:
    from casegraph.storage.falkor.store import FalkorStore

_STOP = frozenset(STOP_WORDS)
# A term in more than this share of the agent's memories is left out of the candidate
# query (see the module docstring). At 100k memories a tenth was faster (p50 84 ms instead
# of 126) but its top 60 held 0.92 of tantivy's BM25 instead of 0.97 (top 10: 1.00 both).
_COMMON = 0.5
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


def keyword_document(text: str) -> str:
    """What ``Memory.doc`` holds for a memory whose document text is ``text``."""
    return " ".join(_indexed_terms(text))


def memory_document(content: str, tags: Iterable[str]) -> str:
    """``Memory.doc`` of a memory with this content and these tags (the write path's)."""
    return keyword_document(document_text(content, tags))


def query_terms(text: str) -> list[str]:
    """The terms a user's ``text`` is searched by, each once, escaped."""
    return list(dict.fromkeys(_indexed_terms(text)))


def keyword_query(text: str) -> str | None:
    """A full-text query for a user's ``text``: its terms ORed (None: no term left)."""
    wanted = query_terms(text)
    return " | ".join(wanted) if wanted else None


def _depth(limit: int) -> int:
    """How many candidates are scored for ``limit`` hits."""
    return 2 * limit + 20


def idf(df: int, total: int) -> float:
    """BM25's inverse document frequency (tantivy's)."""
    return math.log(1.0 + (total - df + 0.5) / (df + 0.5))


def bm25(docs: dict[str, list[str]], matched: dict[str, set[str]], weights: dict[str, float]) -> dict[str, float]:
    """BM25 of each candidate: ``docs`` its terms, ``matched`` the query terms it matches,
    ``weights`` each query term's idf."""
    lengths = {memory_id: max(len(words), 1) for memory_id, words in docs.items()}
    mean = max(sum(lengths.values()) / max(len(lengths), 1), 1.0)
    scores = {}
    for memory_id, words in docs.items():
        norm = _BM25_K1 * (1.0 - _BM25_B + _BM25_B * lengths[memory_id] / mean)
        score = 0.0
        for term in matched[memory_id]:
            tf = max(words.count(term), 1)
            score += weights[term] * tf * (_BM25_K1 + 1.0) / (tf + norm)
        scores[memory_id] = score
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
        """(memory id, BM25 score) of the agent's memories matching any term of ``text``,
        best first (ties by id), at most ``limit``."""
        wanted = query_terms(text)
        if not wanted or limit < 1:
            return []
        counts = self.store.read(
            agent_id,
            "UNWIND $terms AS t CALL db.idx.fulltext.queryNodes('Memory', t) YIELD node RETURN t, count(node)",
            {"terms": wanted},
        )
        found = {t: int(df) for t, df in counts if df}
        if not found:
            return []
        total = int(self.store.read(agent_id, "MATCH (m:Memory) RETURN count(m)")[0][0])
        weights = {t: idf(df, total) for t, df in found.items()}
        rare = [t for t, df in found.items() if df <= _COMMON * total]
        rows = self._candidates(agent_id, rare or list(found), weights, limit)
        if rare and len(rare) < len(found) and len(rows) < _depth(limit):
            rare = list(found)  # too few memories match the rarer terms: the others count too
            rows = self._candidates(agent_id, rare, weights, limit)
        docs = {memory_id: (doc or "").split() for memory_id, doc, _ in rows}
        common = [t for t in found if t not in rare]
        matched = {
            memory_id: set(hits) | {t for t in common if t in docs[memory_id]} for memory_id, _, hits in rows
        }
        scores = bm25(docs, matched, weights)
        ranked = sorted(scores.items(), key=lambda hit: (-hit[1], hit[0]))
        return ranked[:limit]

    def _candidates(
        self, agent_id: str, wanted: list[str], weights: dict[str, float], limit: int
    ) -> list[list]:
        """(id, doc, terms matched) of the memories with the most idf among ``wanted``."""
        return self.store.read(
            agent_id,
            "UNWIND $terms AS p CALL db.idx.fulltext.queryNodes('Memory', p[0]) YIELD node "
            "WITH node, sum(p[1]) AS weight, collect(p[0]) AS matched "
            "ORDER BY weight DESC LIMIT $depth RETURN node.id, node.doc, matched",
            {"terms": [[t, weights[t]] for t in wanted], "depth": _depth(limit)},
        )

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
