"""Recall: gather candidates from three sources, then rank them (ranking.py).

1. vectors  - the agent's own USearch index (or exact cosine over the memories a
              session/customer filter allows, which is both faster and exact);
2. keywords - BM25 over memory text (Kùzu's fts index);
3. graph    - entities named in the query (a customer by name or id, an order number,
              a ticket id, an e-mail...) resolve to graph nodes; memories linked to them
              become candidates even when their text shares no words with the query.
Every candidate then gets all five signals and one score.

What the graph resolved ("Jane Doe", "order 4521") is masked out of the text the embedding
and BM25 see (query_text.py). A question for *other* tickets or orders than the ones it
names ("other tickets about the same order as T-1042") puts the named ones' own memories
at graph strength 0.25, below the hop results.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from app import query_text
from app.embeddings import Embedder
from app.errors import ContentEmpty, ContentTooLarge, InvalidDate, InvalidTopK
from app.graph import GraphLink, GraphStore, NodeRefs
from app.memory import (
    as_utc,
    check_agent_id,
    check_customer_id,
    check_importance,
    check_memory_type,
    check_object_id,
    check_tags,
)
from app.models import Memory, RecallFilter, RecallHit
from app.ranking import Candidate, RecallConfig, rank
from app.settings import Settings
from app.vectors import VectorStore

log = logging.getLogger("casegraph.recall")

MAX_QUERY_CHARS = 2_000
# A session or customer rarely has more memories than this; past it, fall back to ANN.
EXACT_SCAN_LIMIT = 20_000
# At most this many graph-linked memories enter ranking (a busy customer has many).
GRAPH_CANDIDATE_LIMIT = 500
_WORD = re.compile(r"\w+", re.UNICODE)
# "other tickets about ...", "what else ...", "besides T-1042": asks past the named node.
_ASKS_FOR_OTHERS = re.compile(
    r"\bother\s+(?:\w+\s+)?(?:tickets?|orders?|cases?|issues?|problems?|complaints?|contacts?)\b"
    r"|\b(?:what|anything|who|where|something)\s+else\b|\bbesides\b|\bapart from\b",
    re.IGNORECASE,
)


class RecallService:
    def __init__(
        self,
        settings: Settings,
        graph: GraphStore,
        vectors: VectorStore,
        embedder: Embedder,
        extractor: Any,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.vectors = vectors
        self.embedder = embedder
        self.extractor = extractor
        self.clock = clock

    def recall(
        self,
        agent_id: str,
        query: str,
        top_k: int = 5,
        flt: RecallFilter | None = None,
        config: RecallConfig | None = None,
    ) -> list[RecallHit]:
        """The ``top_k`` memories of ``agent_id`` most relevant to ``query``."""
        config = config or self.default_config()
        candidates, memories, now = self.gather(agent_id, query, top_k, flt, config)
        ranked = rank(candidates, now=now, config=config, top_k=top_k)
        return [RecallHit(memories[r.memory_id], r.score, r.signals, r.why) for r in ranked]

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
        flt = self._check(agent_id, query, top_k, flt or RecallFilter())
        config = config or self.default_config()
        query = query.strip()
        now = self.clock()
        pool = max(config.candidate_pool, top_k * 4)

        refs, mentions = query_text.read(query, self.extractor) if config.use_graph else (NodeRefs(), [])
        refs = self.graph.resolve(agent_id, refs) if refs else refs
        # What the graph resolved is masked out of the text signals (query_text.py).
        text = query_text.masked(query, refs, mentions) if config.mask_resolved and refs else query
        qvec = None
        if config.semantic_weight or config.use_vectors:
            qvec = self.embedder.embed_query(text or query)
        vector_ids = self._vector_candidates(agent_id, qvec, flt, now, pool) if config.use_vectors else []
        bm25 = self._keyword_candidates(agent_id, text, flt, now, pool) if config.use_keywords and text else {}
        links = self._graph_candidates(agent_id, query, refs, flt, now) if refs else {}

        ids = list(dict.fromkeys([*vector_ids, *bm25, *links]))
        if not ids:
            return [], {}, now
        memories = self.graph.get_memories(agent_id, ids)
        ids = [i for i in ids if i in memories]
        semantic = self._similarities(agent_id, ids, qvec)
        candidates = [
            Candidate(
                memory_id=i,
                semantic=semantic.get(i, 0.0),
                keyword_bm25=bm25.get(i, 0.0),
                graph=links[i].strength if i in links else 0.0,
                importance=memories[i].importance,
                created_at=memories[i].created_at,
                graph_reasons=tuple(links[i].reasons) if i in links else (),
                superseded_by=memories[i].superseded_by,
                is_summary=memories[i].kind == "summary",
            )
            for i in ids
        ]
        return candidates, memories, now

    # -- validation -------------------------------------------------------------------
    def _check(self, agent_id: str, query: str, top_k: int, flt: RecallFilter) -> RecallFilter:
        check_agent_id(agent_id)
        if not isinstance(query, str) or not query.strip():
            raise ContentEmpty("query must not be empty", code="QUERY_EMPTY")
        if len(query) > MAX_QUERY_CHARS:
            raise ContentTooLarge(
                f"query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}", code="QUERY_TOO_LARGE"
            )
        if not isinstance(top_k, int) or not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidTopK(f"topK must be between 1 and {self.settings.max_top_k}, got {top_k!r}")
        if flt.session_id is not None:
            check_object_id(flt.session_id, "filter.sessionId")
        if flt.min_importance is not None:
            check_importance(flt.min_importance, "filter.minImportance")
        for t in flt.memory_types:
            check_memory_type(t)
        if flt.since and flt.until and as_utc(flt.since, "since") > as_utc(flt.until, "until"):
            raise InvalidDate("filter.since must not be after filter.until")
        tags = tuple(check_tags(flt.tags)) if flt.tags else ()
        return RecallFilter(
            session_id=flt.session_id,
            customer_id=check_customer_id(flt.customer_id),
            tags=tags,
            since=as_utc(flt.since, "filter.since") if flt.since else None,
            until=as_utc(flt.until, "filter.until") if flt.until else None,
            min_importance=flt.min_importance,
            memory_types=tuple(flt.memory_types),
            include_superseded=bool(flt.include_superseded),
        )

    # -- candidate sources ------------------------------------------------------------
    def _vector_candidates(
        self, agent_id: str, qvec: np.ndarray, flt: RecallFilter, now: datetime, pool: int
    ) -> list[str]:
        if flt.narrows_by_node:
            ids, matrix = self.graph.filtered_candidates(agent_id, flt, now, EXACT_SCAN_LIMIT)
            if not ids:
                return []
            sims = matrix @ qvec
            order = np.argsort(-sims)[:pool]
            return [ids[i] for i in order]
        other_filters = flt != RecallFilter()
        # Filters applied after the ANN search need a deeper search to leave enough.
        hits = self.vectors.search(agent_id, qvec, pool * 5 if other_filters else pool)
        ids = [h.memory_id for h in hits]
        allowed = self.graph.filter_ids(agent_id, ids, flt, now)
        return [i for i in ids if i in allowed][:pool]

    def _keyword_candidates(
        self, agent_id: str, query: str, flt: RecallFilter, now: datetime, pool: int
    ) -> dict[str, float]:
        words = _WORD.findall(query)
        if not words:
            return {}
        hits = self.graph.keyword_search(agent_id, " ".join(words), pool * 5)
        allowed = self.graph.filter_ids(agent_id, [i for i, _ in hits], flt, now)
        return {i: s for i, s in hits if i in allowed}

    def _graph_candidates(
        self, agent_id: str, query: str, refs: NodeRefs, flt: RecallFilter, now: datetime
    ) -> dict[str, GraphLink]:
        # "other tickets about the same order as T-1042": T-1042's own memories are not wanted.
        others = bool((refs.orders or refs.tickets) and _ASKS_FOR_OTHERS.search(query))
        links = self.graph.linked_memories(agent_id, refs, others=others)
        if len(links) > GRAPH_CANDIDATE_LIMIT:
            strongest = sorted(links.items(), key=lambda kv: -kv[1].strength)[:GRAPH_CANDIDATE_LIMIT]
            links = dict(strongest)
        allowed = self.graph.filter_ids(agent_id, list(links), flt, now)
        return {i: link for i, link in links.items() if i in allowed}

    def query_refs(self, query: str) -> NodeRefs:
        """Graph nodes a query may name, before checking which exist."""
        return query_text.read(query, self.extractor)[0]

    def _similarities(self, agent_id: str, ids: Sequence[str], qvec: np.ndarray | None) -> dict[str, float]:
        if qvec is None or not ids:
            return {}
        matrix = self.graph.embeddings(agent_id, ids)
        return dict(zip(ids, (matrix @ qvec).tolist(), strict=True))

