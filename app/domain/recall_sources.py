"""A recall's candidates, gathered from three sources before anything is ranked.

1. vectors  - the agent's own USearch index (or exact cosine over the memories a
              session/customer filter allows, which is both faster and exact);
2. keywords - BM25 over memory text and tags (the agent's own tantivy index, app/storage/embedded/keywords.py);
3. graph    - entities named in the query (a customer by name or id, an order number,
              a ticket id, an e-mail...) resolve to graph nodes; memories linked to them
              become candidates even when their text shares no words with the query.

Owns reading the query (its nodes, its customer aliases, the text left for the text
signals), the look-ups of the three sources and of the filter, run side by side, and
``Found``: every candidate id with its signals, and the rule of which memory a recall
may answer with and how its ``Candidate`` is made. Which candidates are then scored is
app/domain/recall_pruning.py's; the ranking itself is app/domain/ranking.py's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from casegraph.domain import query_text, threads
from casegraph.domain.embedder import Embedder
from casegraph.domain.links import linked_memories
from casegraph.domain.models import Memory, RecallFilter, is_live
from casegraph.domain.ranking import Candidate, RecallConfig
from casegraph.extractors import aliases as alias_rules
from casegraph.storage.customers import CustomerStore
from casegraph.storage.memories import Attrs, MemoryStore
from casegraph.storage.search import GraphLink, GraphSearch, KeywordSearch, NodeRefs, VectorIndex
from casegraph.storage.sessions import SessionStore

# A filter that allows at most this many memories is scored exactly; past it, ANN.
EXACT_SCAN_LIMIT = 20_000
# At most this many graph-linked memories enter ranking (a busy customer has many).
GRAPH_CANDIDATE_LIMIT = 500
# "other tickets about ...", "what else ...", "besides T-1042": asks past the named node.
_ASKS_FOR_OTHERS = re.compile(
    r"\bother\s+(?:\w+\s+)?(?:tickets?|orders?|cases?|issues?|problems?|complaints?|contacts?)\b"
    r"|\b(?:what|anything|who|where|something)\s+else\b|\bbesides\b|\bapart from\b",
    re.IGNORECASE,
)


def asks_for_others(query: str) -> bool:
    """True when ``query`` asks past the nodes it names ("other tickets about order 4521")."""
    return _ASKS_FOR_OTHERS.search(query) is not None


class RecallGraph(MemoryStore, SessionStore, CustomerStore, GraphSearch, Protocol):
    """The graph as recall reads it: memories and their ranking attributes, sessions,
    customers and their aliases, and the links between nodes (one engine implements all)."""


@dataclass(frozen=True, slots=True)
class KeywordHit:
    memory_id: str
    score: float
    attrs: Attrs


@dataclass(slots=True)
class Found:
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
    # each of their memories, so the answer covers their conversations (recall.by_session).
    session_of: dict[str, str] | None = None

    def outcome_ids(self) -> set[str]:
        return {memory_id for t in self.walked for memory_id, _ in t.outcomes}

    def wants(self, memory: Memory | Attrs | None) -> bool:
        """Whether a candidate with these attributes (None: not held) may be an answer:
        live now, and not superseded unless the filter includes superseded memories."""
        if memory is None or not is_live(memory.expires_at, self.now):
            return False
        return self.flt.include_superseded or not memory.superseded_by

    def candidate(self, memory_id: str, memory: Memory | Attrs) -> Candidate:
        """``memory_id`` with its gathered signals and ``memory``'s attributes, for ranking."""
        link = self.links.get(memory_id)
        return Candidate(
            memory_id=memory_id,
            semantic=self.semantic.get(memory_id, 0.0),
            keyword_bm25=self.bm25.get(memory_id, 0.0),
            graph=link.strength if link else 0.0,
            importance=memory.importance,
            created_at=memory.created_at,
            graph_reasons=tuple(link.reasons) if link else (),
            superseded_by=memory.superseded_by,
            is_summary=memory.kind == "summary",
        )


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


class CandidateSources:
    """Reads one query and looks its candidates up in the vectors, the keywords and the
    graph (on ``pool``'s threads, side by side with embedding the query)."""

    def __init__(
        self,
        graph: RecallGraph,
        vectors: VectorIndex,
        keywords: KeywordSearch,
        embedder: Embedder,
        extractor: Any,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.graph = graph
        self.vectors = vectors
        self.keywords = keywords
        self.embedder = embedder
        self.extractor = extractor
        self._pool = pool

    def collect(
        self, agent_id: str, query: str, top_k: int, flt: RecallFilter, config: RecallConfig, now: datetime
    ) -> Found:
        """Every candidate id with its text and graph signals (and what is known of its
        attributes), for a validated ``flt`` and a query already stripped and redacted."""
        pool = max(config.candidate_pool, top_k * 4)

        refs, mentions, named = NodeRefs(), [], _Named()
        if config.use_graph:
            # Customer aliases are looked up on another thread while the query is read.
            said = alias_rules.query_mentions(query)
            keys = list(dict.fromkeys(m.node_key for m in said))
            aliases = self._pool.submit(self.graph.alias_customers, agent_id, keys) if said else None
            spoken = self._pool.submit(self.graph.alias_sessions, agent_id, keys) if said else None
            refs, mentions = self.resolved(agent_id, query)
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
            self._pool.submit(self.graph.filtered_attrs, agent_id, flt, now, EXACT_SCAN_LIMIT)
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
        return Found(agent_id, flt, now, qvec, ids, semantic, bm25, links, attrs, walked, session_of or None)

    def resolved(self, agent_id: str, query: str) -> tuple[NodeRefs, list[query_text.Mention]]:
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

    def fill_semantic(
        self, found: Found, ids: Sequence[str], config: RecallConfig, keys: np.ndarray | None = None
    ) -> None:
        """Cosine similarity (from the vector index) of the candidates the ANN did not return
        (``keys``: the vector keys of ``ids``, when the caller has them)."""
        if found.qvec is not None and config.semantic_weight:
            at = [j for j, i in enumerate(ids) if i not in found.semantic]
            missing = [ids[j] for j in at]
            found.semantic.update(self.vectors.similarities(
                found.agent_id, missing, found.qvec, keys=None if keys is None else keys[at]
            ))

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
        links = linked_memories(self.graph, agent_id, refs, others=others, limit=GRAPH_CANDIDATE_LIMIT)
        if named is not None and named.reasons:
            for link in links.values():
                link.reasons = [named.reasons.get(r, r) for r in link.reasons]
        if len(links) > GRAPH_CANDIDATE_LIMIT:
            strongest = sorted(links.items(), key=lambda kv: -kv[1].strength)[:GRAPH_CANDIDATE_LIMIT]
            links = dict(strongest)
        return links
