"""Recall quality on generated support histories: dense vs keyword vs hybrid vs hybrid+graph.

    python -m benchmarks.quality                 # full run: 340 customers, ~5,500 memories, ~460 queries
    python -m benchmarks.quality --profile quick # small smoke run (CASEGRAPH_BENCH_PROFILE=quick too)

Seeded and deterministic (same seed, same histories, same queries, same labels). Everything
runs through the real service layer: MiniLM embeddings, spaCy extraction, Kùzu (graph and
BM25 keyword index), USearch vectors, the hygiene write path and session consolidation.
All four modes rank against the same stored data in one run; the table shows recall@5,
MRR and nDCG@10 per query kind and overall (see metrics.py, queries.py for definitions).
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

from app.embeddings import SentenceTransformerEmbedder
from app.models import RecallFilter
from app.ranking import PRESETS, RecallConfig
from app.services import Services
from app.settings import Settings
from benchmarks.histories import NOW, PROFILES, History, generate
from benchmarks.metrics import METRICS, score
from benchmarks.queries import KINDS, Query, build_queries
from benchmarks.replay import Ingested, ReplayClock, replay

MODES = ("dense", "keyword", "hybrid", "hybrid_graph")
MODE_LABELS = {"dense": "dense", "keyword": "keyword", "hybrid": "hybrid", "hybrid_graph": "hybrid+graph"}
TOP_K = 10


@dataclass
class Result:
    profile: str
    seed: int
    memories_generated: int
    memories_stored: int
    queries: int
    ingest_seconds: float
    # scores[mode][kind][metric] = mean over the kind's queries ("overall" = all queries)
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


@dataclass
class Prepared:
    """A generated history ingested into a fresh data directory, with resolved labels."""

    history: History
    queries: list[Query]
    services: Services
    ingested: Ingested
    labelled: list[tuple[Query, dict[str, int]]]


@contextlib.contextmanager
def prepared(
    profile: str, seed: int, *, embedder: Any = None, extractor: Any = None, threads: int | None = None,
    log: Any = None,
) -> Iterator[Prepared]:
    """Generate, ingest through the service layer, resolve labels; close everything after."""
    log = log or (lambda *_: None)
    history = generate(seed, profile)
    queries = build_queries(history, PROFILES[profile].queries_per_kind, seed)
    log(f"generated {len(history.memories)} memories, {len(history.sessions)} sessions, {len(queries)} queries")
    with tempfile.TemporaryDirectory(prefix="casegraph-bench-") as tmp:
        clock = ReplayClock(history.memories[next(iter(history.memories))].created_at)
        # The service's own buffer pool (384 MB): 256 MB ran out in a 500-memory write.
        settings = Settings.from_env({}, data_dir=Path(tmp) / "data")
        if embedder is None and threads:
            embedder = SentenceTransformerEmbedder(settings.embedding_model, threads=threads)
        services = Services.open(settings, embedder=embedder, extractor=extractor, clock=clock)
        try:
            ingested = replay(history, services, clock)
            log(f"ingested in {ingested.seconds:.0f}s: {ingested.stored} memories stored "
                f"({len(ingested.summaries)} session summaries)")
            clock.set(NOW)
            labelled = [(q, resolve_labels(q, history, ingested)) for q in queries]
            yield Prepared(history, queries, services, ingested, labelled)
        finally:
            services.close()


def run(
    profile: str = "full",
    seed: int = 42,
    modes: Sequence[str] = MODES,
    *,
    embedder: Any = None,
    extractor: Any = None,
    configs: dict[str, RecallConfig] | None = None,
    log: Any = None,
    threads: int | None = None,
) -> Result:
    """Generate, ingest, query every mode, score. ``configs`` overrides the presets by mode name."""
    log = log or (lambda *_: None)
    configs = {m: (configs or {}).get(m, PRESETS[m]) for m in modes}
    with prepared(profile, seed, embedder=embedder, extractor=extractor, threads=threads, log=log) as p:
        per_query: dict[str, dict[str, dict[str, float]]] = {}
        seconds: dict[str, float] = {}
        for mode in modes:
            started = time.perf_counter()
            per_query[mode] = {
                q.id: score(ranked_ids(p.services, q, p.ingested, configs[mode]), labels) for q, labels in p.labelled
            }
            seconds[mode] = time.perf_counter() - started
            log(f"{mode}: {len(p.labelled)} queries in {seconds[mode]:.1f}s")
        no_window = {}
        for mode in modes:
            rows = [
                score(ranked_ids(p.services, replace(q, since=None, until=None), p.ingested, configs[mode]), labels)
                for q, labels in p.labelled if q.kind == "temporal"
            ]
            no_window[mode] = {m: mean(r[m] for r in rows) if rows else 0.0 for m in METRICS}
        hygiene = _hygiene_report(p.history, p.services, p.ingested)
        stored = p.ingested.stored
        ingest_seconds = p.ingested.seconds
    kinds = {q.id: q.kind for q in p.queries}
    scores = {mode: aggregate(per_query[mode], kinds) for mode in modes}
    counts = {k: sum(1 for q in p.queries if q.kind == k) for k in KINDS} | {"overall": len(p.queries)}
    return Result(
        profile=profile, seed=seed, memories_generated=len(p.history.memories), memories_stored=stored,
        queries=len(p.queries), ingest_seconds=ingest_seconds, scores=scores, counts=counts,
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


def aggregate(per_query: dict[str, dict[str, float]], kinds: dict[str, str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in (*KINDS, "overall"):
        rows = [s for qid, s in per_query.items() if kind == "overall" or kinds[qid] == kind]
        out[kind] = {m: mean(r[m] for r in rows) if rows else 0.0 for m in METRICS}
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
        "| kind | n | metric | " + " | ".join(head) + " | Δ h+g − dense |",
        "|---|---:|---|" + "---:|" * len(head) + "---:|",
    ]
    for kind in (*KINDS, "overall"):
        for i, metric in enumerate(METRICS):
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
    return "\n".join([
        f"CaseGraph recall quality - {datetime.now(UTC):%Y-%m-%d}, {platform.machine()} "
        f"{os.cpu_count()} cores, no GPU, Python {platform.python_version()}",
        f"profile {r.profile}, seed {r.seed}: {r.memories_generated} generated memories -> "
        f"{r.memories_stored} stored (incl. {h['session_summaries']} session summaries), "
        f"{r.queries} queries; ingest {r.ingest_seconds:.0f}s; query time per mode: "
        + ", ".join(f"{MODE_LABELS[m]} {s / max(r.queries, 1) * 1000:.0f} ms/query" for m, s in r.query_seconds.items()),
        f"hygiene: near-duplicates {h['merged_correctly']}/{h['near_duplicates']} merged "
        f"({h['merged_wrongly']} wrong merges); out-of-date states {h['superseded_correctly']}/"
        f"{h['outdated_states']} superseded ({h['superseded_wrongly']} wrongly)",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default=os.environ.get("CASEGRAPH_BENCH_PROFILE", "full"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    parser.add_argument("--json", type=Path, help="also write the results (with per-query scores) here")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads for the embedding model (default 1: on a busy shared machine one thread "
        "is faster; quality does not depend on it)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    result = run(
        args.profile, args.seed, modes, threads=args.threads,
        log=lambda msg: print(f"# {msg}", file=sys.stderr, flush=True),
    )
    print(format_header(result))
    print()
    print(result.table())
    if args.json:
        args.json.write_text(json.dumps(result.__dict__, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
