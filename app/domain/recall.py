"""Recall: the memories most relevant to a query, ranked and explained; and the two
reads without a query, ``wake_up`` and ``associated``.

``RecallService`` is the entry the API and ``casegraph.services`` call. It validates
(app/domain/recall_checks.py), gathers candidates from the vectors, the keywords and
the graph (app/domain/recall_sources.py), keeps those that can reach the top k
(app/domain/recall_pruning.py), ranks them (app/domain/ranking.py), then assembles the
answer: a customer's history spread over their conversations (``by_session``),
settled tickets' memories below open ones' and each conversation's outcome beside it
(app/domain/threads.py), and the full rows of the answers alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
from casegraph.domain import threads
from casegraph.domain.embedder import Embedder
from casegraph.domain.models import Associated, Memory, RecallFilter, RecallHit, WakeUp
from casegraph.domain.pii import Redactor
from casegraph.domain.ranking import Candidate, Ranked, RecallConfig, rank, wake_up_order
from casegraph.domain.recall_checks import (
    MAX_ASSOCIATED,
    check_association,
    check_wake_up,
    checked_filter,
)
from casegraph.domain.recall_pruning import fused_candidates, pruned_candidates
from casegraph.domain.recall_sources import CandidateSources, Found, RecallGraph
from casegraph.ops.settings import Settings
from casegraph.storage.search import KeywordSearch, VectorIndex, vector_key

# A customer's history is chosen from this many times top_k of their best memories.
HISTORY_DEPTH = 4


def by_session(ranked: Sequence[Ranked], session_of: dict[str, str]) -> list[Ranked]:
    """A customer's history covers their conversations (``recall`` ranks ``HISTORY_DEPTH``
    times ``top_k`` memories, then this): among the ranked memories that
    belong to one of their sessions, the best of each session first (in score order),
    then the second best of each, and so on; they take the places such memories held, so
    every other memory keeps its place. Scores are kept non-increasing."""
    slots = [i for i, r in enumerate(ranked) if r.memory_id in session_of]
    if len(slots) < 2:
        return list(ranked)
    groups: dict[str, list[Ranked]] = {}
    for i in slots:
        groups.setdefault(session_of[ranked[i].memory_id], []).append(ranked[i])
    rounds = max(len(g) for g in groups.values())
    order = [g[n] for n in range(rounds) for g in groups.values() if n < len(g)]
    out = list(ranked)
    for i, r in zip(slots, order, strict=True):
        out[i] = r
    for i in range(1, len(out)):
        if out[i].score > out[i - 1].score:
            out[i] = replace(out[i], score=out[i - 1].score)
    return out


class RecallService:
    """recall / gather / wake_up / associated over one agent's memories."""

    def __init__(
        self,
        settings: Settings,
        graph: RecallGraph,
        vectors: VectorIndex,
        embedder: Embedder,
        extractor: Any,
        clock: Callable[[], datetime],
        *,
        keywords: KeywordSearch,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.clock = clock
        # A query is embedded (and cached) too: a card number in it is redacted first.
        self.redactor = Redactor.from_settings(settings)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="recall")
        self.sources = CandidateSources(graph, vectors, keywords, embedder, extractor, self._pool)

    def recall(
        self,
        agent_id: str,
        query: str,
        top_k: int = 5,
        flt: RecallFilter | None = None,
        config: RecallConfig | None = None,
    ) -> list[RecallHit]:
        """The ``top_k`` memories of ``agent_id`` most relevant to ``query``.

        Ranks like ``rank(gather(...))``, then steps settled tickets' memories down and
        places each thread's outcome (app/domain/threads.py), while reading far less: the ranking
        attributes come with the keyword and filter rows or from the attribute
        cache, the others are looked up only while they can still reach the top k (score
        bounds), and full memory rows are read for the ``top_k`` answers alone.
        """
        config = config or self.default_config()
        found = self._found(agent_id, query, top_k, flt, config)
        if not found.ids:
            return []
        outcomes = found.outcome_ids()
        # Twice the answers: a memory of a settled ticket may step down past the k-th; for
        # a customer's history, deeper, to pick from each of their conversations.
        window = (HISTORY_DEPTH if found.session_of else 2) * top_k
        keys = np.fromiter((vector_key(i) for i in found.ids), dtype=np.uint64, count=len(found.ids))
        self.sources.fill_semantic(found, found.ids, config, keys)
        sources = None
        if config.fusion == "weighted":
            candidates, best_bm25 = pruned_candidates(self.graph, found, keys, config, window, keep=outcomes)
        else:
            candidates, best_bm25, sources = fused_candidates(self.graph, found, config, window, keep=outcomes)
        ranked = rank(candidates, now=found.now, config=config, top_k=window + len(outcomes), best_bm25=best_bm25,
                      sources=sources)
        if found.session_of:
            ranked = by_session(ranked, found.session_of)
        # Open tickets' memories above settled ones', then each conversation's outcome just
        # below its best-ranked message (app/domain/threads.py).
        ranked = threads.open_first(ranked, self.graph.settled_memories(agent_id, [r.memory_id for r in ranked]))
        ranked = threads.place(ranked, found.walked, top_k)
        memories = self._answers(agent_id, [r.memory_id for r in ranked])
        # A memory deleted since its attributes were read is left out, as gather would.
        return [RecallHit(memories[r.memory_id], r.score, r.signals, r.why) for r in ranked if r.memory_id in memories]

    def _answers(self, agent_id: str, ids: list[str]) -> dict[str, Memory]:
        """The answers' full rows: a point lookup each (~0.6 ms at 100k memories), split
        over two threads past three answers."""
        if len(ids) <= 3:
            return self.graph.get_memories(agent_id, ids)
        other = self._pool.submit(self.graph.get_memories, agent_id, ids[1::2])
        return {**self.graph.get_memories(agent_id, ids[0::2]), **other.result()}

    def default_config(self) -> RecallConfig:
        """The default preset with the configured recency half-life."""
        return RecallConfig(half_life_days=self.settings.recency_half_life_days)

    def gather(
        self,
        agent_id: str,
        query: str,
        top_k: int = 5,
        flt: RecallFilter | None = None,
        config: RecallConfig | None = None,
    ) -> tuple[list[Candidate], dict[str, Memory], datetime]:
        """Validate, then collect every candidate with its raw signals (before ranking).

        Ranking is pure (ranking.rank), so a benchmark can gather once and rank the same
        candidates under many weightings.
        """
        config = config or self.default_config()
        found = self._found(agent_id, query, top_k, flt, config)
        if not found.ids:
            return [], {}, found.now
        memories = self.graph.get_memories(agent_id, found.ids)
        ids = [i for i in found.ids if found.wants(memories.get(i))]
        self.sources.fill_semantic(found, ids, config)
        return [found.candidate(i, memories[i]) for i in ids], memories, found.now

    def threads_of(
        self,
        agent_id: str,
        query: str,
        top_k: int = 5,
        flt: RecallFilter | None = None,
        config: RecallConfig | None = None,
    ) -> list[threads.Thread]:
        """The conversations ``recall`` walks for ``query`` (``threads.place`` puts their
        outcomes into a ranking): with ``gather``, what a benchmark needs to rank exactly
        as recall does."""
        return self._found(agent_id, query, top_k, flt, config or self.default_config()).walked

    def history_sessions(
        self,
        agent_id: str,
        query: str,
        top_k: int = 5,
        flt: RecallFilter | None = None,
        config: RecallConfig | None = None,
    ) -> dict[str, str] | None:
        """For a query that asks for customers' history, the session of each of their
        memories (``by_session`` orders a ranking by it), else None: with ``gather`` and
        ``threads_of``, what a benchmark needs to rank exactly as recall does."""
        return self._found(agent_id, query, top_k, flt, config or self.default_config()).session_of

    def _found(
        self, agent_id: str, query: str, top_k: int, flt: RecallFilter | None, config: RecallConfig
    ) -> Found:
        """Validate the arguments, redact the query, then gather its candidates (now)."""
        flt = checked_filter(agent_id, query, top_k, flt or RecallFilter(), self.settings.max_top_k)
        query = self.redactor.text(query.strip())
        return self.sources.collect(agent_id, query, top_k, flt, config, now=self.clock())

    def wake_up(self, agent_id: str, top_n: int = 20, min_importance: float = 0.0) -> WakeUp:
        """An agent's ``top_n`` memories by importance times recency (no query, no embedding)."""
        check_wake_up(agent_id, top_n, min_importance, self.settings.max_top_k)
        now = self.clock()
        priors = self.graph.memory_priors(agent_id, now, min_importance)
        ids = wake_up_order(
            priors, now=now, half_life_days=self.settings.recency_half_life_days, top_n=top_n
        )
        memories = self.graph.get_memories(agent_id, ids)
        return WakeUp(tuple(memories[i] for i in ids if i in memories), total_available=len(priors))

    def associated(
        self, agent_id: str, memory_ids: Sequence[str], *, depth: int = 1, limit: int = MAX_ASSOCIATED
    ) -> list[Associated]:
        """Memories linked to ``memory_ids`` through a shared customer, order or ticket.

        ``depth`` is how many such hops to follow (1..3); nearest first, then newest.
        """
        check_association(agent_id, depth, limit)
        if not memory_ids:
            return []
        found = self.graph.associated_memories(
            agent_id, memory_ids, max_depth=depth, limit=limit, now=self.clock()
        )
        memories = self.graph.get_memories(agent_id, [i for i, _ in found])
        return [Associated(memories[i], d) for i, d in found if i in memories]
