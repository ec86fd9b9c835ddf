"""Recall: gather candidates from three sources, then rank them (ranking.py).

1. vectors  - the agent's own USearch index (or exact cosine over the memories a
              session/customer filter allows, which is both faster and exact);
2. keywords - BM25 over memory text (Kùzu's fts index);
3. graph    - entities named in the query (a customer by name or id, an order number,
              a ticket id, an e-mail...) resolve to graph nodes; memories linked to them
              become candidates even when their text shares no words with the query.
Every candidate then gets all five signals and one score.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from app import query_text
from app.embeddings import Embedder
from app.errors import ContentEmpty, ContentTooLarge, InvalidDate, InvalidInput, InvalidTopK
from app.graph import GraphLink, GraphStore, KeywordHit, NodeRefs
from app.memory import (
    as_utc,
    check_agent_id,
    check_customer_id,
    check_importance,
    check_memory_type,
    check_object_id,
    check_tags,
    check_text,
)
from app.models import Associated, Memory, RecallFilter, RecallHit, WakeUp
from app.pii import Redactor
from app.ranking import Candidate, RecallConfig, rank, wake_up_order
from app.settings import Settings
from app.vectors import VectorStore

log = logging.getLogger("casegraph.recall")

MAX_QUERY_CHARS = 2_000
# A filter that allows at most this many memories is scored exactly; past it, ANN.
EXACT_SCAN_LIMIT = 20_000
# At most this many graph-linked memories enter ranking (a busy customer has many).
GRAPH_CANDIDATE_LIMIT = 500
_WORD = re.compile(r"\w+", re.UNICODE)
# Graph-associated memories: at most this many, at most this many hops away.
MAX_ASSOCIATED = 10
MAX_ASSOCIATION_DEPTH = 3
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
        # A query is embedded (and cached) too: a card number in it is redacted first.
        self.redactor = Redactor.from_settings(settings)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="recall")

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
        query = self.redactor.text(query.strip())
        now = self.clock()
        pool = max(config.candidate_pool, top_k * 4)

        refs, mentions = query_text.read(query, self.extractor) if config.use_graph else (NodeRefs(), [])
        refs = self.graph.resolve(agent_id, refs) if refs else refs
        # What the graph resolved is masked out of the text signals (query_text.py).
        text = query_text.masked(query, refs, mentions) if config.mask_resolved and refs else query
        # Keyword and graph look-ups run while the query is embedded.
        kw_job = (
            self._pool.submit(self._keyword_candidates, agent_id, text, pool)
            if config.use_keywords and text
            else None
        )
        graph_job = self._pool.submit(self._graph_candidates, agent_id, query, refs) if refs else None
        qvec = None
        if config.semantic_weight or config.use_vectors:
            qvec = self.embedder.embed_query(text or query)

        allowed: set[str] | None = None  # None = every memory of the agent
        semantic: dict[str, float] = {}
        filtered = replace(flt, include_superseded=False) != RecallFilter()
        allowed_ids = self.graph.filtered_ids(agent_id, flt, now, EXACT_SCAN_LIMIT) if filtered else None
        if allowed_ids is not None:
            # The filter bounds the set: score all of it exactly (no ANN recall loss).
            allowed = set(allowed_ids)
            if qvec is not None and config.use_vectors:
                vectors = self.vectors.vectors_of(agent_id, allowed_ids)
                if vectors:
                    ids = list(vectors)
                    sims = np.stack([vectors[i] for i in ids]) @ qvec
                    semantic = {ids[i]: float(sims[i]) for i in np.argsort(-sims)[:pool]}
        elif config.use_vectors:
            # Unfiltered, or a filter too broad to scan: ANN, deeper when hits are filtered.
            depth = pool * 5 if filtered else pool * 2
            semantic = {h.memory_id: h.similarity for h in self.vectors.search(agent_id, qvec, depth)}
        bm25 = {h.memory_id: h.score for h in (kw_job.result() if kw_job else [])}
        links = graph_job.result() if graph_job else {}

        ids = list(dict.fromkeys([*semantic, *bm25, *links]))
        if allowed is not None:
            ids = [i for i in ids if i in allowed]
        elif filtered:
            passing = self.graph.filter_ids(agent_id, ids, flt, now)
            ids = [i for i in ids if i in passing]
        if not ids:
            return [], {}, now
        memories = self.graph.get_memories(agent_id, ids)

        def wanted(m: Memory | None) -> bool:
            if m is None or (m.expires_at is not None and m.expires_at <= now):
                return False
            return flt.include_superseded or not m.superseded_by

        ids = [i for i in ids if wanted(memories.get(i))]
        if qvec is not None and config.semantic_weight:
            missing = [i for i in ids if i not in semantic]
            for i, vec in self.vectors.vectors_of(agent_id, missing).items():
                semantic[i] = float(np.dot(vec, qvec))
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

    def wake_up(self, agent_id: str, top_n: int = 20, min_importance: float = 0.0) -> WakeUp:
        """An agent's ``top_n`` memories by importance times recency (no query, no embedding)."""
        check_agent_id(agent_id)
        if not isinstance(top_n, int) or not 1 <= top_n <= self.settings.max_top_k:
            raise InvalidTopK(f"top_n must be between 1 and {self.settings.max_top_k}, got {top_n!r}")
        check_importance(min_importance, "min_importance")
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
        check_agent_id(agent_id)
        if not isinstance(depth, int) or not 1 <= depth <= MAX_ASSOCIATION_DEPTH:
            raise InvalidInput(
                f"association depth must be between 1 and {MAX_ASSOCIATION_DEPTH}, got {depth!r}",
                code="INVALID_DEPTH",
            )
        if not isinstance(limit, int) or not 1 <= limit <= MAX_ASSOCIATED:
            raise InvalidInput(
                f"at most {MAX_ASSOCIATED} associated memories can be asked for, got {limit!r}",
                code="INVALID_LIMIT",
            )
        if not memory_ids:
            return []
        found = self.graph.associated_memories(
            agent_id, memory_ids, max_depth=depth, limit=limit, now=self.clock()
        )
        memories = self.graph.get_memories(agent_id, [i for i, _ in found])
        return [Associated(memories[i], d) for i, d in found if i in memories]

    # -- validation -------------------------------------------------------------------
    def _check(self, agent_id: str, query: str, top_k: int, flt: RecallFilter) -> RecallFilter:
        check_agent_id(agent_id)
        if not isinstance(query, str) or not query.strip():
            raise ContentEmpty("query must not be empty", code="QUERY_EMPTY")
        check_text(query, "query")
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
    def _keyword_candidates(self, agent_id: str, query: str, pool: int) -> list[KeywordHit]:
        words = _WORD.findall(query)
        if not words:
            return []
        return self.graph.keyword_hits(agent_id, " ".join(words), pool)

    def _graph_candidates(self, agent_id: str, query: str, refs: NodeRefs) -> dict[str, GraphLink]:
        # "other tickets about the same order as T-1042": T-1042's own memories are not wanted.
        others = bool((refs.orders or refs.tickets) and _ASKS_FOR_OTHERS.search(query))
        links = self.graph.linked_memories(agent_id, refs, others=others)
        if len(links) > GRAPH_CANDIDATE_LIMIT:
            strongest = sorted(links.items(), key=lambda kv: -kv[1].strength)[:GRAPH_CANDIDATE_LIMIT]
            links = dict(strongest)
        return links

    def query_refs(self, query: str) -> NodeRefs:
        """Graph nodes a query may name, before checking which exist."""
        return query_text.read(query, self.extractor)[0]
