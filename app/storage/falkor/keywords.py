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
lower (measured: top 10 worth 0.70 of tantivy's BM25, 20k memories). RediSearch only finds
the matches, in insertion order, and a procedure call stops as soon as the query stops
reading it (a ``LIMIT``); counting the matches of a term means walking them all.

A search reads:

- the memory count, and the graph's keyword counter (``KeywordStats``): ``changes``, which
  every write that creates, replaces or deletes memories, or sets their text, increments
  by how many in its own query (``uncount`` before, ``count_changes`` after its
  statements); ``length``, the total length of the texts, which the same statements keep
  exact (BM25's mean length is length / count); ``epoch``, new with each counter and with
  each restore of the graph. A graph written before the counter gets it at its first
  search (one scan of its texts, once);
- each term's document frequency. A count is kept by the process with the counter's
  value and the memory count it was taken at, and used while the changes since (by any
  process: the counter is in the graph) plus the change in the memory count are at most
  1% of it: the idf it gives is then within ~0.01 of the exact one. Counts under 100 are
  used only while nothing changed; they are cheap to take again. Counts and the counter
  they go with are read in one query;
- the candidates, the ``_depth`` memories with the most idf among the terms they match,
  without walking every match: one query, a part per combination of the 5 rarest terms in
  at most half the memories (RediSearch intersects ``a b``) and per term alone, each the
  first ``_depth`` memories it matches. A memory left out is worth no more than the
  ``_depth`` its own combination gave, or owes its worth to terms past the rarest five.
  Parts worth less than a term that alone matches ``_depth`` memories are left out.

A candidate's length and term counts come from its ``doc`` (a stemmed variant counts
once); it matches a term its combinations did not name if its ``doc`` holds it as is.
Measured with ``python -m benchmarks.keywords --store falkordb`` (README, docs/scaling.md).
"""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from casegraph.storage.falkor.schema import KEYWORD_STATS_LABEL as STATS_LABEL
from casegraph.storage.search import ReconcileReport, document_text
from casegraph.storage.terms import STOP_WORDS, terms

if TYPE_CHECKING:
    from casegraph.storage.falkor.connection import Connection, Transaction
    from casegraph.storage.falkor.store import FalkorStore

_STOP = frozenset(STOP_WORDS)
# A term in more than this share of the agent's memories is in no combination of the
# candidate query (it would not narrow one).
_COMMON = 0.5
# The rarest terms whose every combination the candidate query asks for (2^n - 1 - n).
_COMBINED = 5
# A statistic counted before is used while the memories changed since (written, replaced
# or deleted, by any process) are at most this share of it: a term's idf is then within
# about 0.01 of its exact value.
_DRIFT = 0.01
# Document frequencies a process keeps (agent, term), least recently used dropped.
_KEPT_FREQUENCIES = 20_000
_COUNTER_READ = f"MATCH (s:{STATS_LABEL}) RETURN s.epoch, s.changes, s.length LIMIT 1"
# Alone, FalkorDB counts a label without reading its nodes (0.5 ms at 100k memories);
# joined with anything else in one query it reads them all (15-60 ms).
_TOTAL_READ = "MATCH (m:Memory) RETURN count(m)"
_COUNT_READ = (
    f"MATCH (s:{STATS_LABEL}) RETURN 0 AS kind, s.epoch AS t, s.changes AS n "
    "UNION ALL UNWIND $terms AS t CALL db.idx.fulltext.queryNodes('Memory', t) YIELD node "
    "RETURN 1 AS kind, t, count(node) AS n"
)
# The statements that keep the counter (see ``count_changes``): the length of the texts
# of memories about to be deleted or rewritten, taken off; the counter moved; the length
# of the texts just written, added; the length of every text, where no length is kept yet
# (a graph written before, once).
_LENGTH_GONE = (
    f"MATCH (s:{STATS_LABEL}) WHERE s.length IS NOT NULL UNWIND $ids AS i MATCH (m:Memory {{id: i}}) "
    "WITH s, sum(size(split(m.doc, ' '))) AS gone SET s.length = s.length - gone"
)
_CHANGES = f"MERGE (s:{STATS_LABEL}) ON CREATE SET s.epoch = $epoch SET s.changes = coalesce(s.changes, 0) + $n"
_LENGTH_ADDED = (
    f"MATCH (s:{STATS_LABEL}) WHERE s.length IS NOT NULL UNWIND $ids AS i MATCH (m:Memory {{id: i}}) "
    "WITH s, sum(size(split(m.doc, ' '))) AS added SET s.length = s.length + added"
)
_LENGTH_FIRST = (
    f"MATCH (s:{STATS_LABEL}) WHERE s.length IS NULL OPTIONAL MATCH (m:Memory) "
    "WITH s, sum(size(split(m.doc, ' '))) AS total SET s.length = total"
)
# One part of the candidate query: the first ``$depth`` memories matching a combination.
# (Not ``UNWIND $combinations ... CALL { ... LIMIT }``: a procedure in a subquery with a
# LIMIT keeps reading the first row's matches for the next rows; docs/falkordb-quirks.md.)
_CANDIDATES_PART = (
    "CALL db.idx.fulltext.queryNodes('Memory', $q{i}) YIELD node WITH node LIMIT $depth "
    "RETURN id(node) AS node, $w{i} AS weight, {i} AS hit"
)
# The texts are read for the chosen candidates only.
_CANDIDATES_RANK = (
    "WITH node, max(weight) AS weight, collect(hit) AS hits ORDER BY weight DESC LIMIT $depth "
    "MATCH (m:Memory) WHERE id(m) = node RETURN m.id, m.doc, hits"
)
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


def bm25(
    docs: dict[str, list[str]], matched: dict[str, set[str]], weights: dict[str, float], mean: float | None = None
) -> dict[str, float]:
    """BM25 of each candidate: ``docs`` its terms, ``matched`` the query terms it matches,
    ``weights`` each query term's idf, ``mean`` the mean length (the candidates' if None)."""
    lengths = {memory_id: max(len(words), 1) for memory_id, words in docs.items()}
    if mean is None:
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


def _fresh(counted: _Counted, stats: _Stats, size: float) -> bool:
    """Whether a statistic of ``size`` counted at ``counted`` still holds (within
    ``_DRIFT``) at ``stats``: same counter, and few changes since by its count and by the
    memory count (which also sees writes of code that does not count its changes)."""
    if stats.epoch is None or counted.epoch != stats.epoch or stats.changes < counted.changes:
        return False
    drift = stats.changes - counted.changes + abs(stats.total - counted.total)
    return drift <= int(size * _DRIFT)


class _Counted(NamedTuple):
    """A statistic counted at a state of an agent's graph (``epoch``, ``changes``, ``total``)."""

    epoch: str
    changes: int
    total: int
    value: float


class _Stats(NamedTuple):
    """What a search reads first: the memory count and the graph's keyword change counter."""

    total: int
    epoch: str | None
    changes: int
    length: int | None = None  # the total length of the agent's texts


def uncount(tx: Transaction, memory_ids: Sequence[str]) -> None:
    """Queue, on a write transaction, before the statements that delete these memories or
    replace their text: their texts' length goes from the agent's total."""
    if memory_ids:
        tx.write(_LENGTH_GONE, {"ids": list(memory_ids)})


def count_changes(tx: Transaction, changed: int, written: Sequence[str] = ()) -> None:
    """Queue, on a write transaction, after its statements, that ``changed`` memories'
    searchable texts were created, replaced or deleted, ``written`` the ids of those with a
    new text. Every write that changes ``Memory.doc`` calls it (and ``uncount`` before),
    so a statistic counted before is known to have drifted by at most the sum of
    ``changed`` since, and the total length of the texts stays exact."""
    if changed <= 0:
        return
    tx.write(_CHANGES, {"epoch": uuid.uuid4().hex, "n": int(changed)})
    if written:
        tx.write(_LENGTH_ADDED, {"ids": list(written)})
    tx.write(_LENGTH_FIRST)


def new_epoch(conn: Connection, agent_id: str) -> None:
    """Start the agent's change counter anew (a graph restored from a backup): what a
    process counted before holds for another graph."""
    conn.execute(agent_id, f"MATCH (s:{STATS_LABEL}) SET s.epoch = $epoch", {"epoch": uuid.uuid4().hex})


class FalkorKeywords:
    """``KeywordSearch`` on the full-text index of a FalkorStore's graphs."""

    def __init__(self, store: FalkorStore) -> None:
        self.store = store
        # (agent, term) -> its document frequency, as counted.
        self._frequencies: OrderedDict[tuple[str, str], _Counted] = OrderedDict()
        self._lock = threading.Lock()

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
            uncount(tx, [r["id"] for r in stale])
            tx.unwind("MATCH (m:Memory {id: r.id}) SET m.doc = r.doc", stale)
            count_changes(tx, len(stale), [r["id"] for r in stale])

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
        stats, counts = self._counts(agent_id, wanted)
        found = {t: df for t, df in counts.items() if df}
        if not found or not stats.total:
            return []
        weights = {t: idf(df, stats.total) for t, df in found.items()}
        rows = self._candidates(agent_id, found, weights, stats.total, _depth(limit))
        docs = {memory_id: (doc or "").split() for memory_id, doc, _ in rows}
        matched = {
            memory_id: set(hits) | {t for t in found if t in docs[memory_id]} for memory_id, _, hits in rows
        }
        mean = stats.length / stats.total if stats.length else None
        scores = bm25(docs, matched, weights, mean)
        ranked = sorted(scores.items(), key=lambda hit: (-hit[1], hit[0]))
        return ranked[:limit]

    # -- statistics ------------------------------------------------------------------------
    def _stats(self, agent_id: str) -> _Stats:
        rows = self.store.read(agent_id, _TOTAL_READ)
        total = int(rows[0][0]) if rows else 0
        if not total:
            return _Stats(0, None, 0)
        rows = self.store.read(agent_id, _COUNTER_READ)
        if not rows or rows[0][2] is None:
            # A graph written before the counter kept the length: it gets both, once.
            self._start_counting(agent_id)
            rows = self.store.read(agent_id, _COUNTER_READ)
        epoch, changes, length = rows[0] if rows else (None, 0, None)
        return _Stats(total, epoch, int(changes or 0), None if length is None else int(length))

    def _counts(self, agent_id: str, wanted: list[str]) -> tuple[_Stats, dict[str, int]]:
        """Each term's document frequency: counted, or as counted before while the
        memories changed since are few enough (``_fresh``)."""
        stats = self._stats(agent_id)
        if not stats.total:
            return stats, {}
        with self._lock:
            kept = {t: self._frequencies.get((agent_id, t)) for t in wanted}
        counts = {t: int(c.value) for t, c in kept.items() if c is not None and _fresh(c, stats, c.value)}
        missing = [t for t in wanted if t not in counts]
        if not missing:
            return stats, counts
        # The counts and the counter they go with, read in one query (one view of the graph).
        rows = self.store.read(agent_id, _COUNT_READ, {"terms": missing})
        counter = [(t, n) for kind, t, n in rows if kind == 0]
        if counter:
            stats = stats._replace(epoch=counter[0][0], changes=int(counter[0][1] or 0))
        got = {t: int(n) for kind, t, n in rows if kind == 1}
        with self._lock:
            for t in missing:
                counts[t] = got.get(t, 0)
                if stats.epoch is not None:
                    self._frequencies[(agent_id, t)] = _Counted(stats.epoch, stats.changes, stats.total, counts[t])
                    self._frequencies.move_to_end((agent_id, t))
            while len(self._frequencies) > _KEPT_FREQUENCIES:
                self._frequencies.popitem(last=False)
        return stats, counts

    def _start_counting(self, agent_id: str) -> None:
        """Give a graph written before the change counter existed its counter and its
        texts' total length (from now on every write keeps them): one query, a write."""
        with self.store.transaction(agent_id) as tx:
            tx.write(_CHANGES, {"epoch": uuid.uuid4().hex, "n": 0})
            tx.write(_LENGTH_FIRST)

    def _candidates(
        self, agent_id: str, found: dict[str, int], weights: dict[str, float], total: int, depth: int
    ) -> list[list]:
        """(id, doc, subsets matched) of ``depth`` memories with the most idf among the
        terms they match: the memories that match every term of a combination of the
        rarest, at most ``depth`` a combination (see the module docstring)."""
        ranked = sorted(found, key=lambda t: (-weights[t], t))
        combined = [t for t in ranked if found[t] <= _COMMON * total][:_COMBINED]
        subsets: list[tuple[str, ...]] = [
            combo for size in range(len(combined), 1, -1) for combo in itertools.combinations(combined, size)
        ]
        subsets += [(t,) for t in ranked]
        # At least ``depth`` memories are worth a term's idf when it alone matches that many:
        # a combination worth less adds no candidate that its own terms' parts do not.
        floor = max((weights[t] for t in ranked if found[t] >= depth), default=0.0)
        subsets = [subset for subset in subsets if sum(weights[t] for t in subset) >= floor]
        parts = " UNION ALL ".join(_CANDIDATES_PART.format(i=i) for i in range(len(subsets)))
        params: dict[str, object] = {"depth": depth}
        for i, subset in enumerate(subsets):
            params[f"q{i}"] = " ".join(subset)
            params[f"w{i}"] = sum(weights[t] for t in subset)
        rows = self.store.read(agent_id, f"CALL {{ {parts} }} {_CANDIDATES_RANK}", params)
        return [[memory_id, doc, {t for i in hits for t in subsets[i]}] for memory_id, doc, hits in rows]

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
