"""Which of a recall's candidates are built and scored: those that can still reach the top k.

A crowd of candidates (a customer named in the query links hundreds of memories) costs
little when most of them are dropped by score bounds before a ``Candidate`` is made:
``pruned_candidates`` for the weighted sum, ``fused_candidates`` for a fusion over the
pool (``ranking.fuse``). Owns those bounds, their float margins and the order in which
unknown attributes are read; what is returned ranks exactly as every candidate would
(the oracle tests in tests/domain/test_recall_service.py hold it to that).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from casegraph.domain.ranking import (
    Candidate,
    RecallConfig,
    approx_scores,
    approx_totals,
    combine,
    fuse,
    partial_bounds,
    signals_for,
)
from casegraph.domain.recall_sources import Found
from casegraph.storage.memories import NO_TIME, MemoryStore, micros

# Attributes of unknown candidates are looked up this many at a time (best bound first).
_ATTR_BATCH = 8
_BOUND_MARGIN = 1e-9
# approx_scores against exact scores: rounding is ~1e-15; this is far wider and still
# drops nearly every candidate that cannot win.
_REACH_MARGIN = 1e-9


def pruned_candidates(
    graph: MemoryStore, found: Found, keys: np.ndarray, config: RecallConfig, top_k: int,
    keep: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[Candidate], float]:
    """The candidates that can reach the top ``top_k`` (and those of ``keep`` in any
    case), and the pool's best BM25 score (``keys``: the vector keys of ``found.ids``).

    Attributes come from the candidate rows and the attribute cache. A candidate
    whose attributes are still unknown is bounded by ``partial_bounds``
    (importance and recency unknown); its attributes are read (point lookups, best
    bound first) only while that bound can still reach the k-th best exact score, so
    the top ``top_k`` of what is returned is the top ``top_k`` of every candidate.
    """
    now, flt, attrs = found.now, found.flt, found.attrs
    ids = found.ids
    # Bounds need every weight >= 0, and with superseded memories in the pool a
    # successor outside the top k can still move one (ranking._successors_first).
    weights = (config.semantic_weight, config.keyword_weight, config.graph_weight,
               config.importance_weight, config.recency_weight)
    exact_only = flt.include_superseded or min(weights) < 0
    # Every keyword hit carries its attributes, so the best live BM25 score is known.
    best_bm25 = max((found.bm25[i] for i in ids if i in found.bm25 and found.wants(attrs.get(i))), default=0.0)
    if not exact_only:
        reach = set(_within_reach(graph, found, ids, keys, config, top_k, best_bm25))
        ids = [i for i in ids if i in reach or i in keep]
    # the attribute cache usually holds them all (app/storage/embedded/attrs_cache.py)
    unknown = _from_cache(graph, found, ids)
    if exact_only or keep:
        attrs.update(graph.memory_attrs(found.agent_id, unknown if exact_only else [i for i in unknown if i in keep]))
        unknown = [i for i in unknown if i not in attrs]
    chosen = _candidates(found, ids)
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
            attrs.update(graph.memory_attrs(found.agent_id, batch))
            fresh = _candidates(found, batch)
            chosen.extend(fresh)
            scores = sorted([*scores, *(score(c) for c in fresh)], reverse=True)
    return chosen, best_bm25


def fused_candidates(
    graph: MemoryStore, found: Found, config: RecallConfig, top_k: int, keep: set[str] | frozenset[str] = frozenset()
) -> tuple[list[Candidate], float, dict[str, float]]:
    """``pruned_candidates`` for a fusion over the pool (``ranking.fuse``): a candidate's
    source score depends on every live candidate, so liveness is settled for all of
    them first (attribute cache, then point lookups for the few it lacks), the source
    scores are fused over the live pool - the pool ``gather`` returns - and only the
    candidates whose score can reach the top ``top_k`` (and those of ``keep``) are built."""
    attrs = found.attrs
    missing = _from_cache(graph, found, found.ids)
    if missing:
        attrs.update(graph.memory_attrs(found.agent_id, missing))

    live = [i for i in found.ids if found.wants(attrs.get(i))]
    semantic, bm25, graph_strength = _signal_columns(found, live)
    source = fuse(semantic, bm25, graph_strength, config)
    sources = dict(zip(live, source.tolist(), strict=True))
    best_bm25 = float(bm25.max()) if len(live) else 0.0
    chosen = live
    if len(live) > top_k and not found.flt.include_superseded:
        now_us = micros(found.now)
        scores = approx_totals(
            source,
            _floats((attrs[i].importance for i in live), len(live)),
            _floats(((now_us - micros(attrs[i].created_at)) / 1e6 for i in live), len(live)),
            config,
        )
        kth = np.partition(scores, -top_k)[-top_k]
        chosen = [i for i, reach in zip(live, (scores >= kth - _REACH_MARGIN).tolist(), strict=True)
                  if reach or i in keep]
    return [found.candidate(i, attrs[i]) for i in chosen], best_bm25, sources


def _within_reach(
    graph: MemoryStore, found: Found, ids: list[str], keys: np.ndarray, config: RecallConfig, top_k: int,
    best_bm25: float,
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
    cols = graph.cached_columns(found.agent_id, keys)
    now_us = micros(found.now)
    live = cols.known & ((cols.expires_us == NO_TIME) | (cols.expires_us > now_us))
    if not found.flt.include_superseded:
        live &= ~cols.superseded
    if int(live.sum()) <= top_k:
        keep = ~cols.known | live
    else:
        semantic, keyword, graph_strength = _signal_columns(found, ids, best_bm25)
        scores = approx_scores(
            semantic,
            keyword,
            graph_strength,
            cols.importance,
            (now_us - cols.created_us) / 1e6,
            config,
        )
        kth = np.partition(scores[live], -top_k)[-top_k]
        keep = ~cols.known | (live & (scores >= kth - _REACH_MARGIN))
    return [ids[j] for j in np.flatnonzero(keep).tolist()]


def _from_cache(graph: MemoryStore, found: Found, ids: Sequence[str]) -> list[str]:
    """Fills ``found.attrs`` for ``ids`` from the attribute cache; the ids it lacks."""
    unknown = [i for i in ids if i not in found.attrs]
    if unknown:
        found.attrs.update(graph.cached_attrs(found.agent_id, unknown))
        unknown = [i for i in unknown if i not in found.attrs]
    return unknown


def _candidates(found: Found, ids: Iterable[str]) -> list[Candidate]:
    """The ``Candidate`` of each of ``ids`` whose attributes are known and wanted."""
    return [found.candidate(i, found.attrs[i]) for i in ids if found.wants(found.attrs.get(i))]


def _signal_columns(
    found: Found, ids: Sequence[str], best_bm25: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The semantic, BM25 and graph signals of ``ids`` as float64 arrays: BM25 raw, or
    as a share of ``best_bm25`` when it is given (0 where it is 0)."""
    links, bm25 = found.links, found.bm25
    keyword = (
        (bm25.get(i, 0.0) for i in ids) if best_bm25 is None
        else (bm25.get(i, 0.0) / best_bm25 if best_bm25 > 0 else 0.0 for i in ids)
    )
    return (
        _floats((found.semantic.get(i, 0.0) for i in ids), len(ids)),
        _floats(keyword, len(ids)),
        _floats((links[i].strength if i in links else 0.0 for i in ids), len(ids)),
    )


def _floats(values: Iterable[float], count: int) -> np.ndarray:
    return np.fromiter(values, dtype=np.float64, count=count)
