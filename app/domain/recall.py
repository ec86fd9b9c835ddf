"""Recall: gather candidates from three sources, then rank them (ranking.py).

1. vectors  - the agent's own USearch index (or exact cosine over the memories a
              session/customer filter allows, which is both faster and exact);
2. keywords - BM25 over memory text and tags (the agent's own tantivy index, app/storage/embedded/keywords.py);
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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from casegraph.domain import query_text, threads
from casegraph.domain.embedder import Embedder
from casegraph.domain.links import linked_memories
from casegraph.domain.models import Associated, Memory, RecallFilter, RecallHit, WakeUp, is_live
from casegraph.domain.pii import Redactor
from casegraph.domain.ranking import (
    Candidate,
    Ranked,
    RecallConfig,
    approx_scores,
    approx_totals,
    combine,
    fuse,
    partial_bounds,
    rank,
    signals_for,
    wake_up_order,
)
from casegraph.domain.recall_checks import (
    MAX_ASSOCIATED,
    check_association,
    check_wake_up,
    checked_filter,
)
from casegraph.extractors import aliases as alias_rules
from casegraph.ops.settings import Settings
from casegraph.storage.customers import CustomerStore
from casegraph.storage.memories import NO_TIME, Attrs, MemoryStore, micros
from casegraph.storage.search import (
    GraphLink,
    GraphSearch,
    KeywordSearch,
    NodeRefs,
    VectorIndex,
    vector_key,
)
from casegraph.storage.sessions import SessionStore

log = logging.getLogger("casegraph.recall")

# A filter that allows at most this many memories is scored exactly; past it, ANN.
EXACT_SCAN_LIMIT = 20_000
# At most this many graph-linked memories enter ranking (a busy customer has many).
GRAPH_CANDIDATE_LIMIT = 500
# Attributes of unknown candidates are looked up this many at a time (best bound first).
_ATTR_BATCH = 8
# A customer's history is chosen from this many times top_k of their best memories.
HISTORY_DEPTH = 4
_BOUND_MARGIN = 1e-9
# approx_scores against exact scores: rounding is ~1e-15; this is far wider and still
# drops nearly every candidate that cannot win.
_REACH_MARGIN = 1e-9
# "other tickets about ...", "what else ...", "besides T-1042": asks past the named node.
_ASKS_FOR_OTHERS = re.compile(
    r"\bother\s+(?:\w+\s+)?(?:tickets?|orders?|cases?|issues?|problems?|complaints?|contacts?)\b"
    r"|\b(?:what|anything|who|where|something)\s+else\b|\bbesides\b|\bapart from\b",
    re.IGNORECASE,
)


def asks_for_others(query: str) -> bool:
    """True when ``query`` asks past the nodes it names ("other tickets about order 4521")."""
    return _ASKS_FOR_OTHERS.search(query) is not None


@dataclass(frozen=True, slots=True)
class KeywordHit:
    memory_id: str
    score: float
    attrs: Attrs


@dataclass(slots=True)
class _Found:
    """Candidates of one recall before ranking: ids (in source order) and their signals."""

    agent_id: str
    flt: RecallFilter
    now: datetime
    qvec: np.ndarray | None
    ids: list[str]
    semantic: dict[str, float]
    bm25: dict[str, float]
    links: dict[str, GraphLink]
    attrs: dict[str, Attrs]  # known ranking attributes (the rest are looked up on demand)
    # Conversations that name a node of the query, with their outcomes (app/domain/threads.py).
    walked: list[threads.Thread] = field(default_factory=list)
    # A query that names customers and nothing else asks for their history: the session of
    # each of their memories, so the answer covers their conversations (_by_session).
    session_of: dict[str, str] | None = None

    def outcome_ids(self) -> set[str]:
        return {memory_id for t in self.walked for memory_id, _ in t.outcomes}


@dataclass(frozen=True, slots=True)
class _Named:
    """The customer aliases a query names: where (masked from the text signals), and the
    reason each names its customers by (in place of "about customer <id>")."""

    spans: tuple[tuple[int, int], ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)
    # Sessions whose customer was never given that gave the alias: session id -> reason.
    sessions: dict[str, str] = field(default_factory=dict)


def _with_aliases(resolved: NodeRefs, named: list[alias_rules.AliasMatch]) -> tuple[NodeRefs, _Named]:
    """``resolved`` with the customers the query's aliases name, and what to say of them."""
    if not named:
        return resolved, _Named()
    # "about customer cust-1177 (name 'Jane Doe')": the alias that found a customer its id
    # did not, or that names more than one.
    reasons = {
        f"about customer {cid}": f"about customer {cid} ({n.reason()})"
        for n in reversed(named)
        for cid in n.customers
        if len(n.customers) > 1 or cid not in resolved.customers
    }
    # The alias stands for its customers: the person, e-mail or phone node of the same
    # name would put other customers' memories that merely mention it level with theirs.
    same = {("person" if n.kind == "name" else n.kind, n.key) for n in named}
    sessions = {sid: f"in a conversation that gave {n.reason().split(' matches ')[0]}"
                for n in reversed(named) for sid in n.sessions}
    resolved = query_text.joined(
        replace(resolved, entities=tuple(e for e in resolved.entities if e not in same)),
        NodeRefs(customers=tuple(c for n in named for c in n.customers)),
    )
    return resolved, _Named(tuple((n.start, n.end) for n in named), reasons, sessions)


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


class RecallGraph(MemoryStore, SessionStore, CustomerStore, GraphSearch, Protocol):
    """The graph as recall reads it: memories and their ranking attributes, sessions,
    customers and their aliases, and the links between nodes (one engine implements all)."""


class RecallService:
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
        self.vectors = vectors
        self.keywords = keywords
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
        """The ``top_k`` memories of ``agent_id`` most relevant to ``query``.

        Ranks like ``rank(gather(...))``, then steps settled tickets' memories down and
        places each thread's outcome (app/domain/threads.py), while reading far less: the ranking
        attributes come with the keyword and filter rows or from the attribute
        cache, the others are looked up only while they can still reach the top k (score
        bounds), and full memory rows are read for the ``top_k`` answers alone.
        """
        config = config or self.default_config()
        found = self._collect(agent_id, query, top_k, flt, config)
        if not found.ids:
            return []
        outcomes = found.outcome_ids()
        # Twice the answers: a memory of a settled ticket may step down past the k-th; for
        # a customer's history, deeper, to pick from each of their conversations.
        window = (HISTORY_DEPTH if found.session_of else 2) * top_k
        sources = None
        if config.fusion == "weighted":
            candidates, best_bm25 = self._pruned_candidates(found, config, window, keep=outcomes)
        else:
            candidates, best_bm25, sources = self._fused_candidates(found, config, window, keep=outcomes)
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
        found = self._collect(agent_id, query, top_k, flt, config)
        now, semantic, bm25, links = found.now, found.semantic, found.bm25, found.links
        if not found.ids:
            return [], {}, now
        memories = self.graph.get_memories(agent_id, found.ids)

        def wanted(m: Memory | None) -> bool:
            if m is None or not is_live(m.expires_at, now):
                return False
            return found.flt.include_superseded or not m.superseded_by

        ids = [i for i in found.ids if wanted(memories.get(i))]
        self._fill_semantic(found, ids, config)
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
        return self._collect(agent_id, query, top_k, flt, config or self.default_config()).walked

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
        return self._collect(agent_id, query, top_k, flt, config or self.default_config()).session_of

    def _collect(
        self, agent_id: str, query: str, top_k: int, flt: RecallFilter | None, config: RecallConfig
    ) -> _Found:
        """Every candidate id with its text and graph signals (and what is known of its attributes)."""
        flt = checked_filter(agent_id, query, top_k, flt or RecallFilter(), self.settings.max_top_k)
        query = self.redactor.text(query.strip())
        now = self.clock()
        pool = max(config.candidate_pool, top_k * 4)

        refs, mentions, named = NodeRefs(), [], _Named()
        if config.use_graph:
            # Customer aliases are looked up on another thread while the query is read.
            said = alias_rules.query_mentions(query)
            keys = list(dict.fromkeys(m.node_key for m in said))
            aliases = self._pool.submit(self.graph.alias_customers, agent_id, keys) if said else None
            spoken = self._pool.submit(self.graph.alias_sessions, agent_id, keys) if said else None
            refs, mentions = self._resolved(agent_id, query)
            if aliases is not None and spoken is not None:
                refs, named = _with_aliases(refs, alias_rules.matches(said, aliases.result(), spoken.result()))
        # Conversations that gave an alias the query names, their customer never given.
        spoken_job = self._pool.submit(self.graph.sessions_memories, list(named.sessions)) if named.sessions else None
        # What the graph resolved is masked out of the text signals (query_text.py).
        text = (query_text.masked(query, refs, mentions, named.spans)
                if config.mask_resolved and (refs or named.spans) else query)
        # Keyword, graph and filter look-ups run while the query is embedded.
        kw_job = (
            self._pool.submit(self._keyword_candidates, agent_id, text, pool)
            if config.use_keywords and text
            else None
        )
        graph_job = self._pool.submit(self._graph_candidates, agent_id, query, refs, named) if refs else None
        thread_job = (
            self._pool.submit(threads.find_threads, self.graph, agent_id, refs, now)
            if threads.node_labels(refs) and not asks_for_others(query)
            else None
        )
        # A query naming customers (or conversations by what they gave) and nothing else
        # asks for their history; not within a time window or one session, where the
        # moments asked for count.
        history = (
            bool(refs.customers or named.sessions) and not (refs.orders or refs.tickets or refs.entities)
            and flt.since is None and flt.until is None and flt.session_id is None
        )
        history_job = (
            self._pool.submit(self.graph.customer_session_memories, agent_id, refs.customers)
            if history and refs.customers else None
        )
        filtered = replace(flt, include_superseded=False) != RecallFilter()
        allowed_job = (
            self._pool.submit(self.graph.filtered_attrs, agent_id, flt, now, EXACT_SCAN_LIMIT, self.vectors.ids_of)
            if filtered
            else None
        )
        qvec = None
        if config.semantic_weight or config.use_vectors:
            qvec = self.embedder.embed_query(text or query)

        # None = every memory of the agent (or a filter too broad to list).
        allowed: dict[str, Attrs] | None = allowed_job.result() if allowed_job else None
        semantic: dict[str, float] = {}
        if allowed is not None:
            # The filter bounds the set: score all of it exactly (no ANN recall loss).
            if qvec is not None and config.use_vectors:
                sims = self.vectors.similarities(agent_id, list(allowed), qvec)
                semantic = dict(sorted(sims.items(), key=lambda kv: -kv[1])[:pool])
        elif config.use_vectors:
            # Unfiltered, or a filter too broad to scan: ANN, deeper when hits are filtered.
            depth = pool * 5 if filtered else pool * 2
            semantic = {h.memory_id: h.similarity for h in self.vectors.search(agent_id, qvec, depth)}
        kw_hits = kw_job.result() if kw_job else []
        links = graph_job.result() if graph_job else {}
        in_spoken = spoken_job.result() if spoken_job else {}
        for memory_id, session_id in in_spoken.items():
            if memory_id not in links or links[memory_id].strength < 1.0:
                links[memory_id] = GraphLink(1.0, [named.sessions[session_id]])
        walked = thread_job.result() if thread_job else []
        links = threads.outcome_links(walked, links)
        bm25 = {h.memory_id: h.score for h in kw_hits}

        ids = list(dict.fromkeys([*semantic, *bm25, *links]))
        if allowed is not None:
            ids = [i for i in ids if i in allowed]
        elif filtered:
            passing = self.graph.filter_ids(agent_id, ids, flt, now)
            ids = [i for i in ids if i in passing]
        # Ranking attributes the keyword and filter rows already carried.
        attrs = {h.memory_id: h.attrs for h in kw_hits}
        if allowed is not None:
            attrs.update(allowed)
        session_of = {**in_spoken, **(history_job.result() if history_job else {})} if history else None
        return _Found(agent_id, flt, now, qvec, ids, semantic, bm25, links, attrs, walked, session_of or None)

    def _resolved(self, agent_id: str, query: str) -> tuple[NodeRefs, list[query_text.Mention]]:
        """The nodes ``query`` names that exist for this agent, and the query's mentions:
        ``graph.resolve(read(query))``, with what the rules find looked up on another
        thread while the statistical model reads the query (~0.6 ms less at 100k)."""
        early_refs = query_text.rule_refs(query)
        early = self._pool.submit(self.graph.resolve, agent_id, early_refs) if early_refs else None
        refs, mentions = query_text.read(query, self.extractor)
        found = early.result() if early else NodeRefs()
        rest = query_text.without(refs, early_refs)
        late = self.graph.resolve(agent_id, rest) if rest else NodeRefs()
        return query_text.joined(query_text.within(found, refs), late), mentions

    def _fill_semantic(
        self, found: _Found, ids: Sequence[str], config: RecallConfig, keys: np.ndarray | None = None
    ) -> None:
        """Cosine similarity (from the vector index) of the candidates the ANN did not return
        (``keys``: the vector keys of ``ids``, when the caller has them)."""
        if found.qvec is not None and config.semantic_weight:
            at = [j for j, i in enumerate(ids) if i not in found.semantic]
            missing = [ids[j] for j in at]
            found.semantic.update(self.vectors.similarities(
                found.agent_id, missing, found.qvec, keys=None if keys is None else keys[at]
            ))

    def _pruned_candidates(
        self, found: _Found, config: RecallConfig, top_k: int, keep: set[str] | frozenset[str] = frozenset()
    ) -> tuple[list[Candidate], float]:
        """The candidates that can reach the top ``top_k`` (and those of ``keep`` in any
        case), and the pool's best BM25 score.

        Attributes come from the candidate rows and the attribute cache. A candidate
        whose attributes are still unknown is bounded by ``partial_bounds``
        (importance and recency unknown); its attributes are read (point lookups, best
        bound first) only while that bound can still reach the k-th best exact score, so
        the top ``top_k`` of what is returned is the top ``top_k`` of every candidate.
        """
        now, flt, attrs = found.now, found.flt, found.attrs
        ids = found.ids
        keys = np.fromiter((vector_key(i) for i in ids), dtype=np.uint64, count=len(ids))
        self._fill_semantic(found, ids, config, keys)

        def wanted(a: Attrs) -> bool:
            if not is_live(a.expires_at, now):
                return False
            return flt.include_superseded or not a.superseded_by

        def candidate(i: str) -> Candidate:
            a, link = attrs[i], found.links.get(i)
            return Candidate(
                memory_id=i,
                semantic=found.semantic.get(i, 0.0),
                keyword_bm25=found.bm25.get(i, 0.0),
                graph=link.strength if link else 0.0,
                importance=a.importance,
                created_at=a.created_at,
                graph_reasons=tuple(link.reasons) if link else (),
                superseded_by=a.superseded_by,
                is_summary=a.kind == "summary",
            )

        # Bounds need every weight >= 0, and with superseded memories in the pool a
        # successor outside the top k can still move one (ranking._successors_first).
        weights = (config.semantic_weight, config.keyword_weight, config.graph_weight,
                   config.importance_weight, config.recency_weight)
        exact_only = flt.include_superseded or min(weights) < 0
        # Every keyword hit carries its attributes, so the best live BM25 score is known.
        best_bm25 = max((found.bm25[i] for i in ids if i in found.bm25 and i in attrs and wanted(attrs[i])), default=0.0)
        if not exact_only:
            reach = set(self._within_reach(found, ids, keys, config, top_k, best_bm25))
            ids = [i for i in ids if i in reach or i in keep]
        unknown = [i for i in ids if i not in attrs]
        if unknown:  # the attribute cache usually holds them all (app/storage/embedded/attrs_cache.py)
            attrs.update(self.graph.cached_attrs(found.agent_id, unknown))
            unknown = [i for i in unknown if i not in attrs]
        if exact_only or keep:
            attrs.update(self.graph.memory_attrs(found.agent_id, unknown if exact_only else [i for i in unknown if i in keep]))
            unknown = [i for i in unknown if i not in attrs]
        chosen = [candidate(i) for i in ids if i in attrs and wanted(attrs[i])]
        if unknown:
            def upper(i: str) -> float:
                keyword = found.bm25.get(i, 0.0) / best_bm25 if best_bm25 > 0 else 0.0
                link = found.links.get(i)
                return partial_bounds(found.semantic.get(i, 0.0), keyword, link.strength if link else 0.0, config)[1]

            def score(c: Candidate) -> float:
                return combine(signals_for(c, best_bm25=best_bm25, now=now, config=config), config)

            scores = sorted((score(c) for c in chosen), reverse=True)
            queue = sorted(((upper(i), i) for i in unknown), key=lambda t: -t[0])
            step = max(top_k, _ATTR_BATCH)
            while queue:
                # The k-th best exact score so far; a bound below it (with a margin for float
                # rounding) cannot reach the top k, nor can any bound after it.
                kth = scores[top_k - 1] if len(scores) >= top_k else float("-inf")
                if queue[0][0] + _BOUND_MARGIN < kth:
                    break
                batch, queue = [i for _, i in queue[:step]], queue[step:]
                attrs.update(self.graph.memory_attrs(found.agent_id, batch))
                fresh = [candidate(i) for i in batch if i in attrs and wanted(attrs[i])]
                chosen.extend(fresh)
                scores = sorted([*scores, *(score(c) for c in fresh)], reverse=True)
        return chosen, best_bm25

    def _fused_candidates(
        self, found: _Found, config: RecallConfig, top_k: int, keep: set[str] | frozenset[str] = frozenset()
    ) -> tuple[list[Candidate], float, dict[str, float]]:
        """``_pruned_candidates`` for a fusion over the pool (``ranking.fuse``): a candidate's
        source score depends on every live candidate, so liveness is settled for all of
        them first (attribute cache, then point lookups for the few it lacks), the source
        scores are fused over the live pool - the pool ``gather`` returns - and only the
        candidates whose score can reach the top ``top_k`` (and those of ``keep``) are built."""
        now, flt, attrs = found.now, found.flt, found.attrs
        ids = found.ids
        keys = np.fromiter((vector_key(i) for i in ids), dtype=np.uint64, count=len(ids))
        self._fill_semantic(found, ids, config, keys)
        missing = [i for i in ids if i not in attrs]
        if missing:
            attrs.update(self.graph.cached_attrs(found.agent_id, missing))
            missing = [i for i in missing if i not in attrs]
        if missing:
            attrs.update(self.graph.memory_attrs(found.agent_id, missing))

        def wanted(a: Attrs | None) -> bool:
            if a is None or not is_live(a.expires_at, now):
                return False
            return flt.include_superseded or not a.superseded_by

        live = [i for i in ids if wanted(attrs.get(i))]
        links = found.links
        semantic = np.fromiter((found.semantic.get(i, 0.0) for i in live), dtype=np.float64, count=len(live))
        bm25 = np.fromiter((found.bm25.get(i, 0.0) for i in live), dtype=np.float64, count=len(live))
        graph = np.fromiter((links[i].strength if i in links else 0.0 for i in live), dtype=np.float64, count=len(live))
        source = fuse(semantic, bm25, graph, config)
        sources = dict(zip(live, source.tolist(), strict=True))
        best_bm25 = float(bm25.max()) if len(live) else 0.0
        chosen = live
        if len(live) > top_k and not flt.include_superseded:
            now_us = micros(now)
            scores = approx_totals(
                source,
                np.fromiter((attrs[i].importance for i in live), dtype=np.float64, count=len(live)),
                np.fromiter(((now_us - micros(attrs[i].created_at)) / 1e6 for i in live), dtype=np.float64,
                            count=len(live)),
                config,
            )
            kth = np.partition(scores, -top_k)[-top_k]
            chosen = [i for i, reach in zip(live, (scores >= kth - _REACH_MARGIN).tolist(), strict=True)
                      if reach or i in keep]

        def candidate(i: str) -> Candidate:
            a, link = attrs[i], links.get(i)
            return Candidate(
                memory_id=i, semantic=found.semantic.get(i, 0.0), keyword_bm25=found.bm25.get(i, 0.0),
                graph=link.strength if link else 0.0, importance=a.importance, created_at=a.created_at,
                graph_reasons=tuple(link.reasons) if link else (), superseded_by=a.superseded_by,
                is_summary=a.kind == "summary",
            )

        return [candidate(i) for i in chosen], best_bm25, sources

    def _within_reach(
        self, found: _Found, ids: list[str], keys: np.ndarray, config: RecallConfig, top_k: int, best_bm25: float
    ) -> list[str]:
        """``ids`` less those whose cached attributes put them out of the top ``top_k``.

        Scored as arrays from the attribute cache (``ranking.approx_scores``), hundreds of
        candidates cost about what a dozen do as ``Candidate`` objects. A cached candidate
        that is expired, superseded, or scores below the k-th best cached live one by more
        than float rounding could ever explain cannot be in the top k; the rest (and every
        candidate the cache does not hold) go on to exact scoring.
        """
        if len(ids) <= top_k:
            return ids
        cols = self.graph.cached_columns(found.agent_id, keys)
        now_us = micros(found.now)
        live = cols.known & ((cols.expires_us == NO_TIME) | (cols.expires_us > now_us))
        if not found.flt.include_superseded:
            live &= ~cols.superseded
        if int(live.sum()) <= top_k:
            keep = ~cols.known | live
        else:
            links = found.links
            scores = approx_scores(
                np.fromiter((found.semantic.get(i, 0.0) for i in ids), dtype=np.float64, count=len(ids)),
                np.fromiter((found.bm25.get(i, 0.0) / best_bm25 if best_bm25 > 0 else 0.0 for i in ids),
                            dtype=np.float64, count=len(ids)),
                np.fromiter((links[i].strength if i in links else 0.0 for i in ids), dtype=np.float64, count=len(ids)),
                cols.importance,
                (now_us - cols.created_us) / 1e6,
                config,
            )
            kth = np.partition(scores[live], -top_k)[-top_k]
            keep = ~cols.known | (live & (scores >= kth - _REACH_MARGIN))
        return [ids[j] for j in np.flatnonzero(keep).tolist()]

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

    # -- candidate sources ------------------------------------------------------------
    def _keyword_candidates(self, agent_id: str, query: str, pool: int) -> list[KeywordHit]:
        """The agent's BM25 hits with their ranking attributes (from the attribute cache;
        a hit the graph no longer holds, deleted since it was indexed, is dropped)."""
        hits = self.keywords.search(agent_id, query, pool)
        attrs = self.graph.memory_attrs(agent_id, [i for i, _ in hits]) if hits else {}
        return [KeywordHit(i, score, attrs[i]) for i, score in hits if i in attrs]

    def _graph_candidates(
        self, agent_id: str, query: str, refs: NodeRefs, named: _Named | None = None
    ) -> dict[str, GraphLink]:
        # "other tickets about the same order as T-1042": T-1042's own memories are not wanted.
        others = bool(refs.orders or refs.tickets) and asks_for_others(query)
        links = linked_memories(
            self.graph, agent_id, refs, others=others, limit=GRAPH_CANDIDATE_LIMIT, ids_of=self.vectors.ids_of
        )
        if named is not None and named.reasons:
            for link in links.values():
                link.reasons = [named.reasons.get(r, r) for r in link.reasons]
        if len(links) > GRAPH_CANDIDATE_LIMIT:
            strongest = sorted(links.items(), key=lambda kv: -kv[1].strength)[:GRAPH_CANDIDATE_LIMIT]
            links = dict(strongest)
        return links
