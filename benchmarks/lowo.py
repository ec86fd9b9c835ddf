"""Leave-one-world-out: what ranking still tunes is chosen on the other worlds.

The default fuses the sources by reciprocal rank with equal weights (app/domain/ranking.py), so
no weight depends on a dataset. What is left to choose - the fusion (``rrf`` or
normalised ``score``), ``rrf_k``, the keyword and graph weights against the semantic
source, the two small priors - is chosen here:
for every world, the configuration that does best on the *other* tuned worlds is
reported on it. The ``novel`` world (id formats no rule names) is never tuned on: it is
always held out. The configuration best on every tuned world is the one to ship.

Candidates are gathered once per query (``RecallService.gather``, keyword search on,
with the conversations whose outcomes recall places) and re-ranked under every
configuration: ranking is a pure function of the pool, so this is exact. The objective of a world is the mean of its target metrics (customer-history
precision@10 and session recall@10, outcome@5, where it has them) and overall nDCG@10.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from statistics import mean

from casegraph.domain import threads
from casegraph.domain.ranking import Candidate, RecallConfig, rank
from casegraph.domain.recall import HISTORY_DEPTH, by_session

from benchmarks.metrics import METRICS, WORLD_METRICS

GRID = {
    "fusion": ("rrf", "score"),
    "rrf_k": (5.0, 20.0, 60.0),
    "keyword_weight": (0.5, 1.0),
    "graph_weight": (1.0, 2.0),
    "importance_weight": (0.0, 0.005, 0.02),
    "recency_weight": (0.0, 0.005, 0.02),
}
HEADLINE = (*WORLD_METRICS, "nDCG@10")


@dataclass
class Pool:
    """One query's gathered candidates and what scoring it needs."""

    kind: str
    candidates: list[Candidate]
    now: datetime
    walked: list[threads.Thread]  # the conversations whose outcomes recall places
    score: object  # ranked ids -> metrics (closes over the labels and the world's truth)
    sessions: dict[str, str] | None = None  # a customer history's memory -> session (recall.by_session)


@dataclass
class WorldPools:
    world: str
    tuned: bool
    pools: list[Pool]


def gather(p, config: RecallConfig, top_k: int) -> WorldPools:
    """Every query's candidate pool of a prepared world (benchmarks.quality.Prepared)."""
    from benchmarks.quality import evaluate, query_filter

    pools = []
    for item in p.labelled:
        q = item.query
        flt = query_filter(q, p.ingested)
        candidates, _memories, now = p.services.recall.gather(q.agent, q.text, top_k, flt, config)
        walked = p.services.recall.threads_of(q.agent, q.text, top_k, flt, config)
        sessions = p.services.recall.history_sessions(q.agent, q.text, top_k, flt, config)

        def scorer(ranked: list[str], item=item) -> dict[str, float]:
            return evaluate(ranked, item, p.truth)

        pools.append(Pool(q.kind, candidates, now, walked, scorer, sessions))
    return WorldPools(p.world.name, p.world.tuned, pools)


def configs(base: RecallConfig) -> list[RecallConfig]:
    out, seen = [], set()
    for values in itertools.product(*GRID.values()):
        w = dict(zip(GRID, values, strict=True))
        if w["fusion"] != "rrf":
            w["rrf_k"] = base.rrf_k  # unused by the other fusions
        cfg = replace(base, **w)
        if cfg not in seen:
            seen.add(cfg)
            out.append(cfg)
    return out


def ranked(pool: Pool, config: RecallConfig, top_k: int) -> list[str]:
    """What recall answers from this pool under ``config``: ranked, outcomes placed."""
    outcomes = {memory_id for t in pool.walked for memory_id, _ in t.outcomes}
    depth = HISTORY_DEPTH * top_k if pool.sessions else top_k
    order = rank(pool.candidates, now=pool.now, config=config, top_k=depth + len(outcomes))
    if pool.sessions:
        order = by_session(order, pool.sessions)
    return [r.memory_id for r in threads.place(order, pool.walked, top_k)]


def evaluate(world: WorldPools, config: RecallConfig, top_k: int) -> dict[str, float]:
    """Mean metrics of the world's queries ranked under ``config`` (overall)."""
    rows = [pool.score(ranked(pool, config, top_k)) for pool in world.pools]
    return {m: mean(r[m] for r in rows if m in r) for m in (*METRICS, *WORLD_METRICS) if any(m in r for r in rows)}


def objective(scores: dict[str, float]) -> float:
    return mean(scores[m] for m in HEADLINE if m in scores)


@dataclass
class Choice:
    held_out: str
    tuned_on: tuple[str, ...]
    config: RecallConfig
    scores: dict[str, float]  # on the held-out world


RANKING_FIELDS = ("fusion", "rrf_k", "semantic_weight", "keyword_weight", "graph_weight", "importance_weight",
                  "recency_weight", "half_life_days")


def as_ranked(base: RecallConfig, cfg: RecallConfig) -> RecallConfig:
    """``base`` (the gathering config) with ``cfg``'s ranking parameters."""
    return replace(base, **{f: getattr(cfg, f) for f in RANKING_FIELDS})


def leave_one_world_out(
    worlds: Sequence[WorldPools], base: RecallConfig, shipped: RecallConfig, top_k: int, log=None
) -> tuple[list[Choice], RecallConfig, dict[str, dict[RecallConfig, dict[str, float]]]]:
    """Per held-out world the choice made on the other tuned worlds; and the choice made
    on every tuned world (the one to ship). ``shipped`` (the current default) is ranked too."""
    log = log or (lambda *_: None)
    grid = configs(base)
    if as_ranked(base, shipped) not in grid:
        grid.append(as_ranked(base, shipped))
    table: dict[str, dict[RecallConfig, dict[str, float]]] = {}
    for w in worlds:
        table[w.world] = {cfg: evaluate(w, cfg, top_k) for cfg in grid}
        log(f"lowo: {w.world} ranked under {len(grid)} configurations")
    tuned = [w.world for w in worlds if w.tuned]

    def best_on(names: Sequence[str]) -> RecallConfig:
        # Ties go to the earlier grid entry (rrf, the smaller priors).
        return max(grid, key=lambda cfg: mean(objective(table[n][cfg]) for n in names) if names else 0.0)

    choices = []
    for w in worlds:
        on = tuple(n for n in tuned if n != w.world)
        cfg = best_on(on)
        choices.append(Choice(w.world, on, cfg, table[w.world][cfg]))
    return choices, best_on(tuned), table


def describe(cfg: RecallConfig) -> str:
    k = f" k={cfg.rrf_k:g}" if cfg.fusion == "rrf" else ""
    return (f"{cfg.fusion}{k}, keyword×{cfg.keyword_weight:g}, graph×{cfg.graph_weight:g}, "
            f"importance {cfg.importance_weight:g}, recency {cfg.recency_weight:g}")


def format_lowo(choices: Sequence[Choice], base: RecallConfig, shipped: RecallConfig, chosen: RecallConfig,
                table: dict[str, dict[RecallConfig, dict[str, float]]]) -> str:
    lines = [
        "| held-out world | tuned on | chosen there | precision@10 | session recall@10 | outcome@5 | nDCG@10 "
        "| shipped default on it |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for c in choices:
        cells = [f"{c.scores[m]:.3f}" if m in c.scores else "–" for m in HEADLINE]
        mine = table[c.held_out][as_ranked(base, shipped)]
        shipped_cells = " / ".join(f"{mine[m]:.3f}" for m in HEADLINE if m in mine)
        lines.append(f"| {c.held_out} | {len(c.tuned_on)} worlds | {describe(c.config)} | " + " | ".join(cells)
                     + f" | {shipped_cells} |")
    lines += ["", f"Chosen on every tuned world: {describe(chosen)}. Shipped default: {describe(shipped)}. "
              "Metrics on candidates gathered with keyword search on; the last column is the shipped "
              "default's precision@10 / session recall@10 / outcome@5 (where the world has them) / nDCG@10."]
    return "\n".join(lines)
