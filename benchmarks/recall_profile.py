"""Where recall time goes: the recall path in-process, split by stage and by query kind.

    python -m benchmarks.recall_profile --copy-of /tmp/casegraph-perf-100000-x/data
    python -m benchmarks.recall_profile --copy-of DIR --n 300 --clients 1,8 --kuzu

Opens ``Services`` on a fresh copy of a data directory that ``benchmarks.perf --keep``
left (the original is not touched; no HTTP, so the figures are the recall path's own) and
runs ``benchmarks.perf``'s seeded recall queries through ``RecallService.recall``, top 5,
first from one thread, then from several at once. For each it prints recalls/s, latency
p50/p95, the process's CPU milliseconds per recall (every thread: Kùzu's, ONNX Runtime's,
spaCy's), and the wall time per recall spent in each stage (stages overlap: the graph,
keyword and filter look-ups run on recall's pool while the query is embedded). With one
thread it also gives the p50 of each of the perf corpus's query templates (a name matches
many customers in that corpus; an order or ticket id one node). ``--kuzu`` also sums
Kùzu's time per statement. Stages are timed by wrapping the services' own methods;
nothing in app/ is changed.

``--size`` and ``--seed`` must be those the directory was loaded with (perf's defaults:
the size, seed 7), so the queries name its customers, orders and tickets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ingest_profile import KuzuTimes, Stages, copy_store
from benchmarks.perf import AGENT, QUERIES, make_corpus

STAGES = (
    "collect", "read query", "resolve", "alias look-ups", "embed query", "vector search", "exact similarities",
    "keyword search", "graph hops", "history sessions", "threads", "attributes", "fuse + prune", "rank",
    "settled", "answers",
)


def instrument(services: Any, stages: Stages) -> None:
    """Time recall's stages by wrapping the methods it calls."""
    import casegraph.domain.recall as recall_module
    import casegraph.domain.recall_sources as sources_module

    recall = services.recall
    sources, graph = recall.sources, recall.graph
    sources.collect = stages.wrap("collect", sources.collect)
    sources_module.query_text.read = stages.wrap("read query", sources_module.query_text.read)
    sources.embedder.embed_query = stages.wrap("embed query", sources.embedder.embed_query)
    sources.vectors.search = stages.wrap("vector search", sources.vectors.search)
    sources.vectors.similarities = stages.wrap("exact similarities", sources.vectors.similarities)
    sources.keywords.search = stages.wrap("keyword search", sources.keywords.search)
    sources_module.threads.find_threads = stages.wrap("threads", sources_module.threads.find_threads)
    recall_module.fused_candidates = stages.wrap("fuse + prune", recall_module.fused_candidates)
    recall_module.rank = stages.wrap("rank", recall_module.rank)
    recall._answers = stages.wrap("answers", recall._answers)
    for name, attr in (
        ("resolve", "resolve"), ("alias look-ups", "alias_customers"), ("alias look-ups", "alias_sessions"),
        ("graph hops", "hop_memories"), ("history sessions", "customer_session_memories"),
        ("attributes", "memory_attrs"), ("settled", "settled_memories"),
    ):
        setattr(graph, attr, stages.wrap(name, getattr(graph, attr)))


def template_of(query: str) -> str:
    """The perf corpus's template a query was made from."""
    for t in QUERIES:
        head, tail = t.split("{")[0], t.split("}")[-1]
        if (head and query.startswith(head)) or (not head and tail and tail.split()[0] in query):
            return t
    return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copy-of", type=Path, required=True, help="a loaded data directory (copied first)")
    parser.add_argument("--size", type=int, default=100_000, help="the size it was loaded with")
    parser.add_argument("--seed", type=int, default=7, help="the seed it was loaded with")
    parser.add_argument("--n", type=int, default=200, help="recalls per measurement")
    parser.add_argument("--clients", default="1,8", help="threads recalling at once, one measurement each")
    parser.add_argument("--kuzu", action="store_true", help="also sum Kùzu's time per statement")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from casegraph.ops.settings import Settings
    from casegraph.services import Services

    work = Path(tempfile.mkdtemp(prefix="casegraph-recall-profile-"))
    data_dir = work / "data"
    copy_store(args.copy_of, data_dir)
    kuzu = KuzuTimes()
    if args.kuzu:
        kuzu.install()
    services = Services.open(Settings.from_env(dict(os.environ), data_dir=data_dir))
    try:
        stages = Stages()
        instrument(services, stages)
        queries = [q for q, _ in make_corpus(args.size, args.seed).queries]
        for q in queries[:30]:  # warm: statements prepared, caches filled
            services.recall.recall(AGENT, q, top_k=5)
        stages.reset()
        kuzu.stats.clear()
        at = 100
        print(f"load average at start {os.getloadavg()[0]:.1f}, {args.n} recalls per measurement")
        for clients in (int(c) for c in args.clients.split(",")):
            part = queries[at : at + args.n]
            at += args.n
            times: list[tuple[str, float]] = []
            lock = threading.Lock()

            def run(chunk: list[str], times: list[tuple[str, float]] = times, lock: threading.Lock = lock) -> None:
                for q in chunk:
                    t0 = time.perf_counter()
                    services.recall.recall(AGENT, q, top_k=5)
                    with lock:
                        times.append((q, time.perf_counter() - t0))

            threads = [threading.Thread(target=run, args=(part[i::clients],)) for i in range(clients)]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            ms = np.asarray([dt for _, dt in times]) * 1000
            print(f"\n# {clients} thread(s): {len(part) / wall:.1f} recalls/s, p50 / p95 {np.percentile(ms, 50):.1f} / "
                  f"{np.percentile(ms, 95):.1f} ms, CPU {cpu / len(part) * 1000:.1f} ms a recall, "
                  f"load average {os.getloadavg()[0]:.1f}")
            print(f"  {'stage':<20} {'ms/recall':>10} {'calls/recall':>13}")
            for name in STAGES:
                s = stages.seconds.get(name, 0.0)
                print(f"  {name:<20} {s / len(part) * 1000:10.2f} {stages.calls.get(name, 0) / len(part):13.2f}")
            stages.reset()
            if clients == 1:
                by: dict[str, list[float]] = defaultdict(list)
                for q, dt in times:
                    by[template_of(q)].append(dt * 1000)
                print(f"  {'query template':<48} {'p50 ms':>7} {'n':>4}")
                for tpl, ts in sorted(by.items(), key=lambda kv: np.percentile(kv[1], 50)):
                    print(f"  {tpl:<48} {np.percentile(ts, 50):7.1f} {len(ts):4d}")
            if args.kuzu:
                print(kuzu.report())
    finally:
        services.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
