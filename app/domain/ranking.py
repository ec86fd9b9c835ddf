"""Pure, synchronous scoring: how recall turns signals into one ordered list.

Every candidate memory gets five signals in [0, 1]:

- ``semantic``   cosine similarity of query and memory embeddings (negatives clip to 0);
- ``keyword``    BM25 score from the keyword index, divided by the best BM25 score among
                 the candidates (so the best keyword match is 1.0);
- ``graph``      how the memory is linked to a node the query names (a customer, an
                 order, a ticket, an e-mail...), its strongest link: 1.0 it names the
                 node; 0.9 it ends a conversation that named it (threads.py); 0.75 one
                 ticket<->order hop away; 0.5 through the node's customer; 0.25 the named
                 node's own memories when the query asks for *other* tickets or orders;
                 0 not linked (the hops: app/domain/links.py);
- ``importance`` the importance given at store time (a prior, never a filter);
- ``recency``    ``0.5 ** (age_days / half_life_days)``.

The score is the fusion of the three sources (semantic, keyword, graph) plus the two
priors: ``source + importance_weight * importance + recency_weight * recency``. How the
sources fuse is the config's ``fusion``:

- ``rrf`` (the default): reciprocal-rank fusion. Semantic and keyword search each rank the
  candidate pool by their own signal (equal values share a rank), and a candidate gets
  ``(k + 1) / (k + rank)`` from each (1.0 for the first). Ranks, not raw scores: cosine
  and BM25 scales differ per query and per dataset, and ranks need no weights for them.
  The graph strength is already on a fixed scale (the steps above) and counts as it is.
  The source score is the mean over the sources that found anything for the query,
  weighted by the source weights;
- ``score``: the same with each text signal divided by its best in the pool;
- ``weighted``: the weighted sum of the signals, with hand-tuned weights (the ``weighted``
  preset).

For ``rrf`` and ``score`` a candidate's source score depends on the whole pool
(``fuse``); recall computes it over every live candidate, then ranks. A superseded
memory (only present when the filter asks for superseded memories) has its score
multiplied by ``superseded_penalty`` and always ranks below the memory that superseded
it. Presets name the modes the quality benchmark compares.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from casegraph.domain.models import Signals

FUSIONS = ("rrf", "score", "weighted")


@dataclass(frozen=True, slots=True)
class RecallConfig:
    # The default fuses text ranks (no weights for cosine or BM25 scales). What is left -
    # the fusion, rrf_k, the graph's weight against the two text sources, the priors - is
    # what leave-one-world-out chose on the quality benchmark's worlds (benchmarks/lowo.py,
    # BENCHMARKS.md); on the quick worlds six of seven held-out worlds got this same choice
    # from the others. Recency 0: no world asked for it (a caller's since/until does).
    name: str = "hybrid_graph"
    fusion: str = "rrf"
    rrf_k: float = 20.0
    semantic_weight: float = 1.0
    # Keywords (app/storage/embedded/keywords.py) count half: a keyword rank credits any match in full, and
    # at 1.0 the question words left once the graph has resolved an id ("what happened
    # with ...") outranked the memories linked to it (tests/domain/test_threads.py). Not yet
    # chosen by leave-one-world-out.
    keyword_weight: float = 0.5
    graph_weight: float = 2.0
    importance_weight: float = 0.02
    recency_weight: float = 0.0
    half_life_days: float = 30.0
    # How many candidates each source (vectors, keywords) contributes before ranking.
    candidate_pool: int = 60
    use_vectors: bool = True
    # Keyword search (app/storage/embedded/keywords.py, ~1 ms at 100k memories): the only exact signal for
    # an identifier, handle or e-mail that the graph does not resolve.
    use_keywords: bool = True
    use_graph: bool = True
    # Blank what the graph resolved (names, ids) out of the text the semantic and keyword
    # signals see (app/domain/query_text.py).
    mask_resolved: bool = True
    # Out-of-date memories (kept for history) rank below current ones.
    superseded_penalty: float = 0.5

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {FUSIONS}")

    def with_half_life(self, days: float) -> RecallConfig:
        return replace(self, half_life_days=days)


PRESETS: dict[str, RecallConfig] = {
    "dense": RecallConfig(
        name="dense", fusion="weighted", semantic_weight=1.0, keyword_weight=0.0, graph_weight=0.0,
        importance_weight=0.0, recency_weight=0.0, use_keywords=False, use_graph=False,
    ),
    "keyword": RecallConfig(
        name="keyword", fusion="weighted", semantic_weight=0.0, keyword_weight=1.0, graph_weight=0.0,
        importance_weight=0.0, recency_weight=0.0, use_vectors=False, use_keywords=True, use_graph=False,
    ),
    # Keyword + vector fusion without the graph: the default's fusion, one source less.
    "hybrid": RecallConfig(name="hybrid", keyword_weight=1.0, graph_weight=0.0, use_keywords=True, use_graph=False),
    "hybrid_graph": RecallConfig(),
    # The weighted sum the default was before fusion (tuned on the first generator alone).
    "weighted": RecallConfig(
        name="weighted", fusion="weighted", semantic_weight=0.30, keyword_weight=0.0, graph_weight=0.60,
        importance_weight=0.09, recency_weight=0.01, use_keywords=False,
    ),
}
DEFAULT_PRESET = "hybrid_graph"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What recall knows about one memory before it is scored."""

    memory_id: str
    semantic: float
    keyword_bm25: float
    graph: float
    importance: float
    created_at: datetime
    graph_reasons: tuple[str, ...] = ()
    superseded_by: str | None = None
    is_summary: bool = False


@dataclass(frozen=True, slots=True)
class Ranked:
    memory_id: str
    score: float
    signals: Signals
    why: tuple[str, ...]


def recency(created_at: datetime, now: datetime, half_life_days: float) -> float:
    """Exponential decay: 1.0 now, 0.5 after one half-life. Future dates count as now."""
    age_days = max((now - created_at).total_seconds(), 0.0) / 86_400
    return math.pow(0.5, age_days / half_life_days)


def signals_for(
    c: Candidate, *, best_bm25: float, now: datetime, config: RecallConfig
) -> Signals:
    return Signals(
        semantic=min(max(c.semantic, 0.0), 1.0),
        keyword=(c.keyword_bm25 / best_bm25) if best_bm25 > 0 else 0.0,
        importance=min(max(c.importance, 0.0), 1.0),
        recency=recency(c.created_at, now, config.half_life_days),
        graph=min(max(c.graph, 0.0), 1.0),
    )


def weighted_source(s: Signals, config: RecallConfig) -> float:
    """The ``weighted`` fusion's source score: the weighted sum of the three signals."""
    return config.semantic_weight * s.semantic + config.keyword_weight * s.keyword + config.graph_weight * s.graph


def total(source: float, s: Signals, config: RecallConfig, *, superseded: bool = False) -> float:
    """A candidate's score: its source score plus the importance and recency priors."""
    score = source + config.importance_weight * s.importance + config.recency_weight * s.recency
    return score * config.superseded_penalty if superseded else score


def combine(s: Signals, config: RecallConfig, *, superseded: bool = False) -> float:
    """The score under the ``weighted`` fusion (its source score needs no pool)."""
    return total(weighted_source(s, config), s, config, superseded=superseded)


def fuse(semantic: np.ndarray, keyword: np.ndarray, graph: np.ndarray, config: RecallConfig) -> np.ndarray:
    """Source scores of a candidate pool (aligned arrays of raw signals: cosine, BM25,
    graph strength). ``rrf`` and ``score`` give each candidate at most 1.0; ``weighted``
    is ``weighted_source`` of each candidate's signals."""
    semantic = np.clip(np.asarray(semantic, dtype=np.float64), 0.0, 1.0)
    keyword = np.maximum(np.asarray(keyword, dtype=np.float64), 0.0)
    graph = np.clip(np.asarray(graph, dtype=np.float64), 0.0, 1.0)
    best_kw = float(keyword.max()) if keyword.size else 0.0
    if config.fusion == "weighted":
        return (config.semantic_weight * semantic
                + config.keyword_weight * (keyword / best_kw if best_kw > 0 else keyword)
                + config.graph_weight * graph)
    out = np.zeros(semantic.shape, dtype=np.float64)
    weights = 0.0
    for weight, values in ((config.semantic_weight, semantic), (config.keyword_weight, keyword),
                           (config.graph_weight, graph)):
        # A source that found nothing for this query (no keyword hit, no node named) does
        # not count: what the others found keeps its full scale against the priors.
        if weight <= 0 or not (values > 0).any():
            continue
        weights += weight
        if values is graph:
            # Graph strengths are calibrated by construction (1.0 linked to what the query
            # names, less through it): they count as they are. Ranks would make "through
            # the customer" the near-equal of "names the order" whenever few are linked.
            out += weight * values
        elif config.fusion == "rrf":
            out += weight * reciprocal_ranks(values, config.rrf_k)
        else:
            out += weight * (values / float(values.max()))
    return out / weights if weights else out


def reciprocal_ranks(values: np.ndarray, k: float) -> np.ndarray:
    """``(k + 1) / (k + rank)`` of each positive value, ranked highest first, equal values
    sharing a rank (dense ranking: the next value down is one rank lower); 0 for the rest."""
    out = np.zeros(values.shape, dtype=np.float64)
    positive = values > 0
    if positive.any():
        v = values[positive]
        distinct = np.unique(v)[::-1]
        rank = np.searchsorted(-distinct, -v) + 1
        out[positive] = (k + 1.0) / (k + rank)
    return out


def source_scores(pool: Sequence[Candidate], config: RecallConfig) -> dict[str, float]:
    """``fuse`` over a pool of candidates, by memory id."""
    if not pool:
        return {}
    values = fuse(
        np.fromiter((c.semantic for c in pool), dtype=np.float64, count=len(pool)),
        np.fromiter((c.keyword_bm25 for c in pool), dtype=np.float64, count=len(pool)),
        np.fromiter((c.graph for c in pool), dtype=np.float64, count=len(pool)),
        config,
    )
    return {c.memory_id: float(v) for c, v in zip(pool, values, strict=True)}


def approx_scores(
    semantic: np.ndarray,
    keyword_norm: np.ndarray,
    graph: np.ndarray,
    importance: np.ndarray,
    age_seconds: np.ndarray,
    config: RecallConfig,
) -> np.ndarray:
    """``combine(signals_for(...))`` of many candidates at once (none superseded), equal
    to it up to float rounding (~1e-15): recall uses it to drop, with a margin, the
    candidates that cannot reach the top k before it builds any of them."""
    rec = np.power(0.5, np.maximum(age_seconds, 0.0) / 86_400 / config.half_life_days)
    return (
        config.semantic_weight * np.clip(semantic, 0.0, 1.0)
        + config.keyword_weight * keyword_norm
        + config.graph_weight * np.clip(graph, 0.0, 1.0)
        + config.importance_weight * np.clip(importance, 0.0, 1.0)
        + config.recency_weight * rec
    )


def approx_totals(source: np.ndarray, importance: np.ndarray, age_seconds: np.ndarray, config: RecallConfig) -> np.ndarray:
    """``total`` of many candidates at once (none superseded), equal to it up to float
    rounding: recall uses it to build only the candidates that can reach the top k."""
    rec = np.power(0.5, np.maximum(age_seconds, 0.0) / 86_400 / config.half_life_days)
    return source + config.importance_weight * np.clip(importance, 0.0, 1.0) + config.recency_weight * rec


def explain(c: Candidate, s: Signals, config: RecallConfig) -> tuple[str, ...]:
    """Short reasons a bot developer can read, strongest first."""
    why: list[str] = []
    if config.graph_weight and c.graph_reasons:
        why.extend(c.graph_reasons)
    if config.keyword_weight and s.keyword > 0:
        why.append("keyword match" if s.keyword < 0.999 else "best keyword match")
    if config.semantic_weight and s.semantic >= 0.5:
        why.append(f"semantically similar ({s.semantic:.2f})")
    if config.importance_weight and s.importance >= 0.8:
        why.append("marked important")
    if config.recency_weight and s.recency >= 0.9:
        why.append("recent")
    if c.is_summary:
        why.append("session summary")
    if c.superseded_by:
        why.append("superseded by a newer memory")
    return tuple(why)


def rank(
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    config: RecallConfig,
    top_k: int,
    best_bm25: float | None = None,
    sources: Mapping[str, float] | None = None,
) -> list[Ranked]:
    """Score every candidate and return the best ``top_k``, ties broken by recency then id.

    ``best_bm25`` normalises keyword signals and ``sources`` holds the source scores; both
    default to what ``candidates`` alone give (pass them when the candidates were pruned
    from a larger pool). Under the ``weighted`` fusion the source score is
    ``weighted_source`` of the signals and ``sources`` is not needed.
    """
    pool = list(candidates)
    if best_bm25 is None:
        best_bm25 = max((c.keyword_bm25 for c in pool), default=0.0)
    if config.fusion != "weighted" and sources is None:
        sources = source_scores(pool, config)
    if not any(c.superseded_by for c in pool):
        return _top_k(pool, now=now, config=config, top_k=top_k, best_bm25=best_bm25, sources=sources)
    scored = []
    for c in pool:
        s = signals_for(c, best_bm25=best_bm25, now=now, config=config)
        source = weighted_source(s, config) if sources is None else sources[c.memory_id]
        score = total(source, s, config, superseded=c.superseded_by is not None)
        scored.append(Ranked(c.memory_id, score, s, explain(c, s, config)))
    scored.sort(key=lambda r: (-r.score, -r.signals.recency, r.memory_id))
    return _successors_first(scored, {c.memory_id: c.superseded_by for c in pool if c.superseded_by})[:top_k]


def _top_k(
    pool: list[Candidate], *, now: datetime, config: RecallConfig, top_k: int, best_bm25: float,
    sources: Mapping[str, float] | None,
) -> list[Ranked]:
    """``rank`` when nothing in ``pool`` is superseded: the same scores and order, but
    reasons and ``Ranked`` rows are built for the ``top_k`` alone (recall ranks ~500
    graph candidates for a named customer)."""
    scored = []
    for i, c in enumerate(pool):
        s = signals_for(c, best_bm25=best_bm25, now=now, config=config)
        source = weighted_source(s, config) if sources is None else sources[c.memory_id]
        scored.append((-total(source, s, config), -s.recency, c.memory_id, i, s))
    # i breaks the remaining ties in pool order, as rank's stable sort does.
    return [
        Ranked(pool[i].memory_id, -neg_score, s, explain(pool[i], s, config))
        for neg_score, _, _, i, s in heapq.nsmallest(top_k, scored, key=lambda t: t[:4])
    ]


def _successors_first(ranked: list[Ranked], superseded_by: Mapping[str, str]) -> list[Ranked]:
    """Move each superseded memory just below its successor when that ranks lower."""
    if not superseded_by:
        return ranked
    out = list(ranked)
    for _ in range(len(superseded_by)):  # chains settle in at most this many passes
        moved = False
        position = {r.memory_id: i for i, r in enumerate(out)}
        for old_id, new_id in superseded_by.items():
            i, j = position.get(old_id), position.get(new_id)
            if i is not None and j is not None and i < j:
                item = out.pop(i)
                # j shifted up by one: this lands right after the successor; the score is
                # capped so scores still read best-first.
                out.insert(j, replace(item, score=min(item.score, out[j - 1].score)))
                moved = True
                position = {r.memory_id: k for k, r in enumerate(out)}
        if not moved:
            break
    return out


def wake_up_order(
    priors: Iterable[tuple[str, float, datetime]], *, now: datetime, half_life_days: float, top_n: int
) -> list[str]:
    """Ids of the ``top_n`` memories by ``importance * recency`` (no query), newest first on ties."""
    scored = [
        (importance * recency(created_at, now, half_life_days), created_at, memory_id)
        for memory_id, importance, created_at in priors
    ]
    scored.sort(key=lambda t: (-t[0], -t[1].timestamp(), t[2]))
    return [memory_id for _, _, memory_id in scored[:top_n]]


def preset(name: str | None) -> RecallConfig:
    """A named preset (``None`` = the default)."""
    key = name or DEFAULT_PRESET
    try:
        return PRESETS[key]
    except KeyError:
        raise KeyError(f"unknown recall preset {key!r}; choose one of {sorted(PRESETS)}") from None


def partial_bounds(
    semantic: float, keyword_norm: float, graph: float, config: RecallConfig
) -> tuple[float, float]:
    """(lower, upper) bound of a score before importance and recency are known.

    Both of those signals lie in [0, 1], so they add between 0 and their weights. Recall
    uses the bounds to fetch importance/recency only for memories that can still reach
    the top k, which keeps ranking exact while touching far fewer rows.
    """
    lower = (
        config.semantic_weight * min(max(semantic, 0.0), 1.0)
        + config.keyword_weight * keyword_norm
        + config.graph_weight * graph
    )
    return lower, lower + config.importance_weight + config.recency_weight
