"""Embedding runtimes side by side, in one process, interleaved: speed and closeness to fp32.

    python -m benchmarks.runtimes                      # 5 rounds, every runtime
    python -m benchmarks.runtimes --rounds 9 --runtimes torch,onnx-int8
    python -m benchmarks.runtimes --runtimes onnx --queries onnx-int8,onnx-int8-qkv-fp32

Each round measures every runtime once, in a rotating order, on texts it has not seen
(the perf benchmark's support texts and queries): ``embed`` of 256 texts in batches of 64
on every core (texts/s), and ``embed_query`` of 40 queries on one thread (ms each), the
way the server calls them (app/embedding/embedder.py). Speeds are reported as the median over
rounds of each runtime's ratio to PyTorch in the same round, so a machine whose load
changes between rounds moves every runtime alike. Closeness: cosine to the PyTorch fp32
vectors (batches and single queries), and how many of PyTorch's dense top 10 each runtime
finds for 100 queries over 2,000 texts. ``--queries`` adds ONNX fp32 embedders whose queries
run on another file of the export (``query_runtime``): only their queries are timed (their
batches are onnx's), and their top 10 is searched among fp32 documents, as in the server.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
from casegraph.embedding.embedder import RUNTIMES, open_embedder
from casegraph.ops.settings import QUERY_RUNTIMES

from benchmarks.perf import make_corpus

BATCH_TEXTS = 256
QUERIES = 40
DOCS = 2000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--queries", default="",
                        help="query runtimes to add, on fp32 documents (" + ",".join(QUERY_RUNTIMES[1:]) + ")")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "casegraph-model-cache",
                        help="where the ONNX exports are made once and reused")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if "torch" not in runtimes:
        runtimes.insert(0, "torch")  # the reference for ratios and closeness
    load_avg = os.getloadavg()[0]
    embedders, load_s = {}, {}
    for name in runtimes:
        started = time.perf_counter()
        embedders[name] = open_embedder("all-MiniLM-L6-v2", name, args.cache_dir)
        load_s[name] = time.perf_counter() - started
    query_only = set()
    for q in (q.strip() for q in args.queries.split(",") if q.strip()):
        name = f"onnx, queries {q}"
        started = time.perf_counter()
        embedders[name] = open_embedder("all-MiniLM-L6-v2", "onnx", args.cache_dir, query_runtime=q)
        load_s[name] = time.perf_counter() - started
        runtimes.append(name)
        query_only.add(name)
    corpus = make_corpus(DOCS + args.rounds * BATCH_TEXTS, seed=11)
    texts = [item["content"] for item in corpus.items]
    queries = [q for q, _ in corpus.queries]

    batch_rate: dict[str, list[float]] = {n: [] for n in runtimes}
    query_ms: dict[str, list[float]] = {n: [] for n in runtimes}
    for rnd in range(args.rounds):
        chunk = texts[DOCS + rnd * BATCH_TEXTS : DOCS + (rnd + 1) * BATCH_TEXTS]
        asked = queries[rnd * QUERIES : (rnd + 1) * QUERIES]
        order = runtimes[rnd % len(runtimes) :] + runtimes[: rnd % len(runtimes)]
        for name in order:
            e = embedders[name]
            if name not in query_only:
                started = time.perf_counter()
                for i in range(0, len(chunk), 64):
                    e.embed(chunk[i : i + 64])
                batch_rate[name].append(len(chunk) / (time.perf_counter() - started))
            started = time.perf_counter()
            for q in asked:
                e.embed_query(q)
            query_ms[name].append((time.perf_counter() - started) / len(asked) * 1000)
        print(f"# round {rnd + 1}/{args.rounds}: " + ", ".join(
            f"{n} {batch_rate[n][-1] if batch_rate[n] else 0:.0f}/s {query_ms[n][-1]:.1f} ms" for n in runtimes),
            file=sys.stderr, flush=True)

    reference = embedders["torch"]
    base_docs = reference.embed(texts[:DOCS])
    probe_q = queries[-100:]
    base_q = np.stack([reference.embed_query(q) for q in probe_q])
    base_top = np.argsort(-(base_q @ base_docs.T), axis=1)[:, :10]

    print(f"CaseGraph embedding runtimes — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, "
          f"load average at start {load_avg:.1f}, {args.rounds} interleaved rounds\n")
    print("| runtime | batch of 64 (texts/s) | × PyTorch | one query (ms) | × PyTorch | cosine to fp32, "
          "batch min / mean | one query min / mean | PyTorch's dense top 10 found | load (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    fp32_docs = None
    for name in runtimes:
        e = embedders[name]
        if name in query_only:  # fp32 documents, bit for bit: embedded once for all of them
            if fp32_docs is None:
                fp32_docs = e.embed(texts[:DOCS])
            docs = fp32_docs
        else:
            docs = e.embed(texts[:DOCS])
        ms_ratio = median(a / b for a, b in zip(query_ms[name], query_ms["torch"], strict=True))
        q = np.stack([e.embed_query(x) for x in probe_q])
        cos_d = (docs * base_docs).sum(1)
        cos_q = (q * base_q).sum(1)
        top = np.argsort(-(q @ docs.T), axis=1)[:, :10]
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, base_top, strict=True)])
        if name in query_only:  # the batches are onnx's (fp32 documents)
            rate = ratio = "(onnx)"
        else:
            rate = f"{median(batch_rate[name]):.0f}"
            ratio = f"{median(a / b for a, b in zip(batch_rate[name], batch_rate['torch'], strict=True)):.2f}×"
        print(f"| {name} | {rate} | {ratio} | {median(query_ms[name]):.1f} | "
              f"{ms_ratio:.2f}× | {cos_d.min():.4f} / {cos_d.mean():.4f} | {cos_q.min():.4f} / {cos_q.mean():.4f} | "
              f"{overlap:.1%} | {load_s[name]:.1f} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}; medians over rounds; ratios are per round, then the median")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
