"""Recall quality with the queries on another runtime than the stored vectors (issue 22).

    python -m benchmarks.query_runtimes --profile quick
    python -m benchmarks.query_runtimes --queries onnx-int8,onnx-int8-ffn-fp32 --worlds airline

Each world of the quality benchmark is generated and ingested once through the service
layer with ONNX fp32 documents (``benchmarks.quality.prepared``); then the fused default
mode's queries run once per query runtime on that same store: only the query vector
changes (recall writes nothing, so the order does not matter). Printed: nDCG@10 per world
and query runtime, and the worst change of any of the world's metrics (recall@5, MRR,
nDCG@10, precision@10, session recall@10, outcome@5), in points against fp32 queries.
``CASEGRAPH_QUERY_RUNTIME=R python -m benchmarks.quality`` gives R's figures alone, the
slow way (a store per mode and runtime).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from casegraph.domain.ranking import PRESETS
from casegraph.embedding.embedder import open_embedder
from casegraph.ops.settings import QUERY_RUNTIMES

from benchmarks import quality
from benchmarks.histories import PROFILES
from benchmarks.queries import CHAT_KINDS, KINDS
from benchmarks.worlds import WORLDS

MODE = "hybrid_graph"  # the fused default
TOLERANCE_POINTS = 0.5  # the rule: within 0.5 points of fp32 on every world


class SwitchedQueries:
    """An Embedder: documents always from ``documents``, queries from ``current``."""

    def __init__(self, documents: Any) -> None:
        self.documents = self.current = documents
        self.model_id, self.dimension = documents.model_id, documents.dimension
        self.runtime, self.quantization = documents.runtime, documents.quantization

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.documents.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.current.embed_query(text)


def world_scores(world: str, profile: str, seed: int, switch: SwitchedQueries, embedders: dict[str, Any],
                 extractor: Any, log: Any) -> dict[str, dict[str, float]]:
    """{query runtime: the world's overall metrics} for the fused default mode."""
    out: dict[str, dict[str, float]] = {}
    with quality.prepared(profile, seed, world=world, embedder=switch, extractor=extractor, log=log) as p:
        kinds = {q.id: q.kind for q in p.queries}
        for name, embedder in embedders.items():
            switch.current = embedder
            per_query = {
                item.query.id: quality.evaluate(
                    quality.ranked_ids(p.services, item.query, p.ingested, PRESETS[MODE]), item, p.truth)
                for item in p.labelled
            }
            out[name] = quality.aggregate(per_query, kinds, KINDS if world == "shop" else CHAT_KINDS)["overall"]
        switch.current = switch.documents
        out["_queries"] = {"n": float(len(p.queries))}
    return out


def format_tables(results: dict[str, dict[str, dict[str, float]]], names: list[str]) -> str:
    variants = [n for n in names if n != "same"]
    lines = ["| world (queries) | fp32 queries: nDCG@10 | " + " | ".join(f"{n}: nDCG@10" for n in variants) + " |",
             "|---|---:|" + "---:|" * len(variants)]
    worst_lines = ["| world | " + " | ".join(f"{n}: worst metric" for n in variants) + " |",
                   "|---|" + "---|" * len(variants)]
    fails: dict[str, list[str]] = {n: [] for n in variants}
    for world, scores in results.items():
        base = scores["same"]
        cells, worst_cells = [], []
        for n in variants:
            d = (scores[n]["nDCG@10"] - base["nDCG@10"]) * 100
            cells.append(f"{scores[n]['nDCG@10']:.3f} ({d:+.1f})")
            metric, delta = min(((m, (scores[n][m] - base[m]) * 100) for m in base), key=lambda kv: kv[1])
            worst_cells.append(f"{metric} {delta:+.1f}")
            if d < -TOLERANCE_POINTS:
                fails[n].append(f"{world} {d:+.2f}")
        lines.append(f"| {world} ({int(scores['_queries']['n'])}) | {base['nDCG@10']:.3f} | " + " | ".join(cells) + " |")
        worst_lines.append(f"| {world} | " + " | ".join(worst_cells) + " |")
    verdict = [f"- {n}: " + ("within 0.5 points of nDCG@10 on every world" if not fails[n]
                             else "more than 0.5 points lost in " + ", ".join(fails[n])) for n in variants]
    return "\n".join(lines) + "\n\n" + "\n".join(worst_lines) + "\n\n" + "\n".join(verdict)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--worlds", default=",".join(WORLDS))
    parser.add_argument("--queries", default=",".join(q for q in QUERY_RUNTIMES if q not in ("same", "onnx")),
                        help="query runtimes measured against fp32 queries (" + ",".join(QUERY_RUNTIMES) + ")")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "casegraph-model-cache")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    log = lambda msg: print(f"# {msg}", file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    documents = open_embedder("all-MiniLM-L6-v2", "onnx", args.cache_dir, threads=1)
    names = ["same"] + [q.strip() for q in args.queries.split(",") if q.strip() and q.strip() != "same"]
    embedders = {n: documents if n == "same" else open_embedder(
        "all-MiniLM-L6-v2", "onnx", args.cache_dir, threads=1, query_runtime=n) for n in names}
    extractor = quality.make_extractor(quality.bench_settings(Path(tempfile.gettempdir()) / "casegraph-bench-unused"))
    switch = SwitchedQueries(documents)
    results = {}
    for world in [w.strip() for w in args.worlds.split(",") if w.strip()]:
        results[world] = world_scores(world, args.profile, args.seed, switch, embedders, extractor, log)
        log(f"{world}: " + ", ".join(f"{n} {results[world][n]['nDCG@10']:.3f}" for n in names))
    print(quality.machine_line() + f"; profile {args.profile}, seed {args.seed}, documents ONNX fp32, "
          f"the fused default mode\n")
    print(format_tables(results, names))
    print(f"\nwall time {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
