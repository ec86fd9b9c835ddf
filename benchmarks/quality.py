"""Recall quality per world: dense vs keyword vs hybrid vs the fused default.

    python -m benchmarks.quality                  # every world, full profile (~13k memories)
    python -m benchmarks.quality --profile quick  # small run (CASEGRAPH_BENCH_PROFILE=quick too)
    python -m benchmarks.quality --worlds retail,novel

A world (worlds.py) is a seeded support history that varies what recall may assume: id
formats, where names appear, when the customer becomes known, ended sessions, message
prefixes; ``multiwoz`` is made of real MultiWOZ utterances, ``novel`` has id formats no
rule names and is never tuned on. Everything runs through the real service layer: MiniLM
embeddings, spaCy extraction, Kùzu, USearch, the hygiene write path and session
consolidation. Each world prints a table per query kind (recall@5, MRR, nDCG@10; and for
the chat worlds customer-history precision@10 and session recall@10, and the outcome of
"what happened with <id>" in the top 5 - see metrics.py, queries.py), then one summary
table of every world against the targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

from casegraph.domain.models import RecallFilter
from casegraph.domain.ranking import PRESETS, RecallConfig
from casegraph.embedding.embedder import open_embedder
from casegraph.ops.settings import Settings
from casegraph.services import Services

from benchmarks import lowo
from benchmarks.histories import NOW, PROFILES, History
from benchmarks.metrics import (
    METRICS,
    WORLD_METRICS,
    customer_precision,
    hit_at,
    score,
    session_recall,
)
from benchmarks.queries import CHAT_KINDS, KINDS, Query, build_chat_queries, build_queries
from benchmarks.replay import Ingested, ReplayClock, replay
from benchmarks.worlds import CHAT_PROFILES, WORLDS, World, generate_world

MODES = ("dense", "keyword", "hybrid", "weighted", "hybrid_graph")
# "weighted": the weighted sum that was the default before fusion (app/domain/ranking.py).
MODE_LABELS = {"dense": "dense", "keyword": "keyword", "hybrid": "hybrid", "weighted": "old weighted",
               "hybrid_graph": "default"}
TOP_K = 10
# The targets (every world): customer-history precision@10 and session recall@10,
# the outcome of "what happened with <id>" in the top 5.
TARGETS = {"precision@10": 0.90, "session_recall@10": 0.95, "outcome@5": 0.70}


@dataclass
class Truth:
    """Who and which chat each stored memory belongs to (summaries included)."""

    owner: dict[str, str] = field(default_factory=dict)  # stored id -> customer
    session_of: dict[str, str] = field(default_factory=dict)  # stored id -> generator session key
    count_of: dict[str, int] = field(default_factory=dict)  # customer -> stored memories
    sessions_of: dict[str, set[str]] = field(default_factory=dict)  # customer -> sessions with memories


@dataclass
class Labelled:
    query: Query
    labels: dict[str, int]  # stored id -> grade
    outcome_ids: set[str] = field(default_factory=set)  # stored ids that answer "what happened"


@dataclass
class Result:
    world: str
    profile: str
    seed: int
    memories_generated: int
    memories_stored: int
    queries: int
    ingest_seconds: float
    kinds: tuple[str, ...]
    # scores[mode][kind][metric] = mean over the kind's queries that have the metric ("overall" = all)
    scores: dict[str, dict[str, dict[str, float]]]
    counts: dict[str, int]
    query_seconds: dict[str, float]
    hygiene: dict[str, Any]
    per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # The temporal queries again, without the caller's since/until: recency alone must
    # tell last week's promise from last year's. Not part of "overall".
    no_window: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> str:
        return format_table(self)

    def headline(self, mode: str) -> dict[str, float]:
        """The world's target metrics (those its queries have) and overall nDCG@10."""
        overall = self.scores[mode]["overall"]
        return {m: overall[m] for m in (*WORLD_METRICS, "nDCG@10") if m in overall}


def resolve_labels(q: Query, history: History, ingested: Ingested) -> dict[str, int]:
    """Generator keys -> stored ids; session summaries graded by the query's rules."""
    labels: dict[str, int] = {}
    for key, grade in q.labels.items():
        memory_id = ingested.memory_ids.get(key)
        if memory_id is not None:
            labels[memory_id] = max(grade, labels.get(memory_id, 0))
    for rule in q.summaries:
        needles = [s for k in rule.requires for s in _sentences(history.memories[k].content)]
        for session_key in rule.sessions:
            found = ingested.summaries.get(session_key)
            if found is None:
                continue
            summary_id, text = found
            if not needles or any(n in text for n in needles):
                labels[summary_id] = max(rule.grade, labels.get(summary_id, 0))
    return labels


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if len(s.split()) >= 4]


def truth_of(history: History, ingested: Ingested) -> Truth:
    t = Truth()
    for key, stored in ingested.memory_ids.items():
        m = history.memories[key]
        t.owner[stored], t.session_of[stored] = m.customer, m.session
    for session_key, (summary_id, _text) in ingested.summaries.items():
        t.owner[summary_id] = history.sessions[session_key].customer
        t.session_of[summary_id] = session_key
    for stored, customer in t.owner.items():
        t.count_of[customer] = t.count_of.get(customer, 0) + 1
        t.sessions_of.setdefault(customer, set()).add(t.session_of[stored])
    return t


def evaluate(ranked: Sequence[str], item: Labelled, truth: Truth) -> dict[str, float]:
    """The ranking metrics, and the world metrics the query has."""
    out = score(ranked, item.labels)
    q = item.query
    if q.customer is not None:
        out["precision@10"] = customer_precision(ranked, truth.owner, q.customer, truth.count_of.get(q.customer, 0))
        out["session_recall@10"] = session_recall(ranked, truth.session_of, truth.sessions_of.get(q.customer, set()))
    if q.outcomes:
        out["outcome@5"] = hit_at(ranked, item.outcome_ids, 5)
    return out


@dataclass
class Prepared:
    """A world's history ingested into a fresh data directory, with resolved labels."""

    world: World
    history: History
    queries: list[Query]
    services: Services
    ingested: Ingested
    labelled: list[Labelled]
    truth: Truth


def make_embedder(settings: Settings, threads: int | None) -> Any:
    """The embedding model every world shares (one load per run), on the runtime
    CASEGRAPH_EMBEDDING_RUNTIME names, its queries on CASEGRAPH_QUERY_RUNTIME's (ONNX
    exports cached in CASEGRAPH_MODEL_CACHE_DIR)."""
    return open_embedder(
        settings.embedding_model, settings.embedding_runtime, settings.model_cache_path, threads=threads,
        query_runtime=settings.query_runtime,
    )


def make_extractor(settings: Settings) -> Any:
    from casegraph.extractors import EntityExtractor

    return EntityExtractor(settings.spacy_model)


def bench_settings(data_dir: Path) -> Settings:
    """The service's own settings (CASEGRAPH_* variables apply, e.g. to pick a runtime)."""
    return Settings.from_env(None, data_dir=data_dir)


def queries_for(world: World, history: History, profile: str, seed: int) -> list[Query]:
    if world.name == "shop":
        return build_queries(history, PROFILES[profile].queries_per_kind, seed)
    return build_chat_queries(history, CHAT_PROFILES[profile][1], seed)


@contextlib.contextmanager
def prepared(
    profile: str, seed: int, *, world: str = "shop", embedder: Any = None, extractor: Any = None,
    threads: int | None = None, log: Any = None,
) -> Iterator[Prepared]:
    """Generate the world, ingest it through the service layer, resolve labels; close after."""
    log = log or (lambda *_: None)
    spec = WORLDS[world]
    history = generate_world(spec, seed, profile)
    queries = queries_for(spec, history, profile, seed)
    log(f"{world}: generated {len(history.memories)} memories, {len(history.sessions)} sessions, {len(queries)} queries")
    with tempfile.TemporaryDirectory(prefix="casegraph-bench-") as tmp:
        clock = ReplayClock(history.memories[next(iter(history.memories))].created_at)
        settings = bench_settings(Path(tmp) / "data")
        if embedder is None and threads:
            embedder = make_embedder(settings, threads)
        services = Services.open(settings, embedder=embedder, extractor=extractor, clock=clock)
        try:
            ingested = replay(history, services, clock)
            log(f"{world}: ingested in {ingested.seconds:.0f}s: {ingested.stored} memories stored "
                f"({len(ingested.summaries)} session summaries)")
            clock.set(NOW)
            labelled = []
            for q in queries:
                outcome_ids = {ingested.memory_ids[k] for k in q.outcomes if k in ingested.memory_ids}
                if q.outcome_session and q.outcome_session in ingested.summaries:
                    outcome_ids.add(ingested.summaries[q.outcome_session][0])
                labelled.append(Labelled(q, resolve_labels(q, history, ingested), outcome_ids))
            yield Prepared(spec, history, queries, services, ingested, labelled, truth_of(history, ingested))
        finally:
            services.close()


def run(
    profile: str = "full",
    seed: int = 42,
    modes: Sequence[str] = MODES,
    *,
    world: str = "shop",
    embedder: Any = None,
    extractor: Any = None,
    configs: dict[str, RecallConfig] | None = None,
    log: Any = None,
    threads: int | None = None,
    keep: Any = None,
) -> Result:
    """One world: generate, ingest, query every mode, score. ``configs`` overrides presets by
    mode name; ``keep(prepared)`` is called before the store closes (LOWO gathers there)."""
    log = log or (lambda *_: None)
    configs = {m: (configs or {}).get(m, PRESETS[m]) for m in modes}
    with prepared(profile, seed, world=world, embedder=embedder, extractor=extractor, threads=threads, log=log) as p:
        per_query: dict[str, dict[str, dict[str, float]]] = {}
        seconds: dict[str, float] = {}
        for mode in modes:
            started = time.perf_counter()
            per_query[mode] = {
                item.query.id: evaluate(ranked_ids(p.services, item.query, p.ingested, configs[mode]), item, p.truth)
                for item in p.labelled
            }
            seconds[mode] = time.perf_counter() - started
            log(f"{world} {mode}: {len(p.labelled)} queries in {seconds[mode]:.1f}s")
        no_window = {}
        if world == "shop":
            for mode in modes:
                rows = [
                    evaluate(ranked_ids(p.services, replace(it.query, since=None, until=None), p.ingested,
                                        configs[mode]), it, p.truth)
                    for it in p.labelled if it.query.kind == "temporal"
                ]
                no_window[mode] = {m: mean(r[m] for r in rows) if rows else 0.0 for m in METRICS}
        hygiene = _hygiene_report(p.history, p.services, p.ingested) if world == "shop" else {
            "session_summaries": len(p.ingested.summaries)}
        if keep is not None:
            keep(p)
        stored = p.ingested.stored
        ingest_seconds = p.ingested.seconds
    kinds_of = KINDS if world == "shop" else CHAT_KINDS
    kinds = {q.id: q.kind for q in p.queries}
    scores = {mode: aggregate(per_query[mode], kinds, kinds_of) for mode in modes}
    counts = {k: sum(1 for q in p.queries if q.kind == k) for k in kinds_of} | {"overall": len(p.queries)}
    return Result(
        world=world, profile=profile, seed=seed, memories_generated=len(p.history.memories), memories_stored=stored,
        queries=len(p.queries), ingest_seconds=ingest_seconds, kinds=kinds_of, scores=scores, counts=counts,
        query_seconds=seconds, hygiene=hygiene, per_query=per_query, no_window=no_window,
    )


def query_filter(q: Query, ingested: Ingested) -> RecallFilter:
    return RecallFilter(
        customer_id=q.customer_filter,
        session_id=ingested.session_ids[q.session_filter] if q.session_filter else None,
        since=q.since,
        until=q.until,
    )


def ranked_ids(services: Services, q: Query, ingested: Ingested, config: RecallConfig) -> list[str]:
    return [h.memory.id for h in services.recall.recall(q.agent, q.text, TOP_K, query_filter(q, ingested), config)]


def aggregate(
    per_query: dict[str, dict[str, float]], kinds: dict[str, str], kinds_of: Sequence[str] = KINDS
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in (*kinds_of, "overall"):
        rows = [s for qid, s in per_query.items() if kind == "overall" or kinds[qid] == kind]
        out[kind] = {
            m: mean(r[m] for r in rows if m in r) for m in (*METRICS, *WORLD_METRICS) if any(m in r for r in rows)
        }
    return out


def _hygiene_report(history: History, services: Services, ingested: Ingested) -> dict[str, Any]:
    """How well dedup and supersession matched the generator's ground truth."""
    truth_dups = {k for k, m in history.memories.items() if m.duplicate_of}
    correct_dups = {k for k in truth_dups & ingested.deduplicated
                    if ingested.memory_ids[k] == ingested.memory_ids[history.memories[k].duplicate_of]}
    # Supersession is defined on order/ticket states; preference changes are not in scope.
    stated = [k for k, m in history.memories.items() if m.state is not None and m.case is not None]
    by_agent: dict[str, list[str]] = {}
    for k in stated:
        by_agent.setdefault(history.memories[k].agent, []).append(ingested.memory_ids[k])
    superseded: set[str] = set()
    for agent, ids in by_agent.items():
        found = services.graph.get_memories(agent, ids)
        superseded.update(i for i, m in found.items() if m.superseded_by)
    truth_old = {ingested.memory_ids[k] for k in stated if history.memories[k].outdated}
    return {
        "near_duplicates": len(truth_dups),
        "merged_correctly": len(correct_dups),
        "merged_wrongly": len(ingested.deduplicated - truth_dups),
        "outdated_states": len(truth_old),
        "superseded_correctly": len(truth_old & superseded),
        "superseded_wrongly": len(superseded - truth_old),
        "session_summaries": len(ingested.summaries),
    }


def format_table(r: Result) -> str:
    head = [MODE_LABELS[m] for m in r.scores]
    lines = [
        "| kind | n | metric | " + " | ".join(head) + " | Δ default − dense |",
        "|---|---:|---|" + "---:|" * len(head) + "---:|",
    ]
    for kind in (*r.kinds, "overall"):
        metrics = [m for m in (*METRICS, *WORLD_METRICS) if all(m in r.scores[mode][kind] for mode in r.scores)]
        for i, metric in enumerate(metrics):
            values = [r.scores[m][kind][metric] for m in r.scores]
            delta = ""
            if "dense" in r.scores and "hybrid_graph" in r.scores:
                d = r.scores["hybrid_graph"][kind][metric] - r.scores["dense"][kind][metric]
                delta = f"{d * 100:+.1f} pts"
            name = (f"**{kind}**" if kind == "overall" else kind) if i == 0 else ""
            n = str(r.counts[kind]) if i == 0 else ""
            lines.append(f"| {name} | {n} | {metric} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {delta} |")
    if r.no_window:
        lines += ["", "Temporal queries without the caller's since/until (recency only; not in overall):", ""]
        lines += ["| metric | " + " | ".join(MODE_LABELS[m] for m in r.no_window) + " |",
                  "|---|" + "---:|" * len(r.no_window)]
        for metric in METRICS:
            lines.append(f"| {metric} | " + " | ".join(f"{r.no_window[m][metric]:.3f}" for m in r.no_window) + " |")
    return "\n".join(lines)


def format_header(r: Result) -> str:
    h = r.hygiene
    lines = [
        f"world {r.world} ({WORLDS[r.world].describe()}), profile {r.profile}, seed {r.seed}: "
        f"{r.memories_generated} generated memories -> {r.memories_stored} stored (incl. "
        f"{h['session_summaries']} session summaries), {r.queries} queries; ingest {r.ingest_seconds:.0f}s; "
        "query time per mode: "
        + ", ".join(f"{MODE_LABELS[m]} {s / max(r.queries, 1) * 1000:.0f} ms/query" for m, s in r.query_seconds.items()),
    ]
    if "near_duplicates" in h:
        lines.append(
            f"hygiene: near-duplicates {h['merged_correctly']}/{h['near_duplicates']} merged "
            f"({h['merged_wrongly']} wrong merges); out-of-date states {h['superseded_correctly']}/"
            f"{h['outdated_states']} superseded ({h['superseded_wrongly']} wrongly)")
    return "\n".join(lines)


def machine_line() -> str:
    return (f"CaseGraph recall quality - {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} "
            f"{os.cpu_count()} cores, no GPU, Python {platform.python_version()}")


def format_summary(results: Sequence[Result]) -> str:
    """Every world against the targets: default / dense / keyword per metric."""
    shown = [m for m in ("dense", "keyword", "hybrid_graph") if all(m in r.scores for r in results)]
    lines = [
        "| world | tuned on | precision@10 | session recall@10 | outcome@5 | nDCG@10 | default beats "
        + " and ".join(MODE_LABELS[m] for m in shown if m != "hybrid_graph") + " |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        cells = []
        for metric in (*WORLD_METRICS, "nDCG@10"):
            if metric not in r.scores[shown[0]]["overall"]:
                cells.append("–")
                continue
            values = [r.scores[m]["overall"][metric] for m in shown]
            mark = ""
            if metric in TARGETS and "hybrid_graph" in shown:
                mark = " ✓" if r.scores["hybrid_graph"]["overall"][metric] >= TARGETS[metric] else " ✗"
            cells.append(" / ".join(f"{v:.3f}" for v in values) + mark)
        beats = "–"
        if "hybrid_graph" in shown and len(shown) > 1:
            mine = mean(r.headline("hybrid_graph").values())
            beats = "yes" if all(mine > mean(r.headline(m).values()) for m in shown if m != "hybrid_graph") else "no"
        tuned = "yes" if WORLDS[r.world].tuned else "never"
        lines.append(f"| {r.world} | {tuned} | " + " | ".join(cells) + f" | {beats} |")
    return "\n".join(lines) + (
        "\n\nCells: " + " / ".join(MODE_LABELS[m] for m in shown) + "; ✓/✗ the default against the target "
        + ", ".join(f"{k} ≥ {v:.2f}" for k, v in TARGETS.items())
        + ". 'Beats': the mean of the world's target metrics and nDCG@10 is higher.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default=os.environ.get("CASEGRAPH_BENCH_PROFILE", "full"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--worlds", default=",".join(WORLDS), help="comma-separated subset of " + ",".join(WORLDS))
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    parser.add_argument("--json", type=Path, help="also write the results (with per-query scores) here")
    parser.add_argument("--no-lowo", action="store_true", help="skip the leave-one-world-out table")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads for the embedding model (default 1: on a busy shared machine one thread "
        "is faster; quality does not depend on it)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    worlds = [w.strip() for w in args.worlds.split(",") if w.strip()]
    unknown = (set(modes) - set(MODES)) | (set(worlds) - set(WORLDS))
    if unknown:
        parser.error(f"unknown modes or worlds: {', '.join(sorted(unknown))}")
    log = lambda msg: print(f"# {msg}", file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    settings = bench_settings(Path(tempfile.gettempdir()) / "casegraph-bench-unused")
    embedder, extractor = make_embedder(settings, args.threads), make_extractor(settings)
    results = []
    pools: list[lowo.WorldPools] = []
    base = replace(PRESETS["hybrid_graph"], use_keywords=True)

    def keep(p: Prepared) -> None:
        if not args.no_lowo:
            pools.append(lowo.gather(p, base, TOP_K))

    print(machine_line())
    for world in worlds:
        result = run(args.profile, args.seed, modes, world=world, embedder=embedder, extractor=extractor, log=log,
                     keep=keep)
        results.append(result)
        print(f"\n### {world}\n")
        print(format_header(result))
        print()
        print(result.table(), flush=True)
    print("\n### Every world against the targets\n")
    print(format_summary(results))
    if pools:
        choices, chosen, table = lowo.leave_one_world_out(pools, base, PRESETS["hybrid_graph"], TOP_K, log=log)
        print("\n### Leave one world out\n")
        print(lowo.format_lowo(choices, base, PRESETS["hybrid_graph"], chosen, table))
    print(f"\nwall time {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
