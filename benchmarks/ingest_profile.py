"""Where ingest time goes: the write path in-process, split by stage.

    python -m benchmarks.ingest_profile                  # 3,000 memories in batches of 500, then 400 singles
    python -m benchmarks.ingest_profile --n 10000 --singles 800 --clients 8
    python -m benchmarks.ingest_profile --data-dir /tmp/copy --seed 8  # on top of a large store

Opens ``Services`` on a temporary data directory (no HTTP, so the figures are the write
path's own) and stores ``benchmarks.perf``'s seeded corpus, first through ``store_batch``
and then as single stores from concurrent threads. For each phase it prints memories/s,
the ratio to the floor (raw ``model.encode`` of the same texts) and the wall time spent in
each stage: extract (spaCy, on its own thread, overlapping embed), embed, hygiene plan,
graph write (one transaction), vectors, listeners (ticket relation refresh). Stages are
timed by wrapping the service's own methods; nothing in app/ is changed.

``--data-dir`` stores into an existing data directory instead (a copy of one that
``benchmarks.perf --keep`` left, say), to see where the time goes at that size; use
another ``--seed`` than the one that filled it, or near-duplicates merge.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.perf import make_corpus


class Stages:
    """Wall time per stage, summed over calls (thread-safe)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - t
                    self.calls[name] += 1

        return timed

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()

    def table(self, total: float) -> str:
        rows = [f"  {'stage':<12} {'seconds':>8} {'share':>6} {'calls':>6}"]
        for name in ("extract", "embed", "hygiene", "graph_write", "vectors", "listeners", "prepare"):
            s = self.seconds.get(name, 0.0)
            rows.append(f"  {name:<12} {s:8.2f} {s / total:6.0%} {self.calls.get(name, 0):6d}")
        return "\n".join(rows)


def requests_of(items: list[dict]) -> list[Any]:
    from casegraph.domain.models import StoreRequest

    return [
        StoreRequest(agent_id=it["agentId"], content=it["content"], importance=it["importance"],
                     tags=tuple(it["tags"]))
        for it in items
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="memories stored through store_batch")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--singles", type=int, default=400, help="single stores from the concurrent clients")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="store into this existing data directory (it is changed)")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from casegraph.ops.settings import Settings
    from casegraph.services import Services

    corpus = make_corpus(args.n, args.seed)
    work = Path(tempfile.mkdtemp(prefix="casegraph-ingest-"))
    t = time.perf_counter()
    services = Services.open(Settings.from_env(data_dir=args.data_dir or work / "data"))
    print(f"opened in {time.perf_counter() - t:.1f}s")
    try:
        mem = services.memories
        texts = [it["content"] for it in corpus.items]
        services.embedder.embed(texts[:64])  # warm-up

        def floor() -> float:
            """The floor, measured right before each phase (the machine's load drifts)."""
            sample = texts[:1000]
            t = time.perf_counter()
            services.embedder.embed(sample)
            per_s = len(sample) / (time.perf_counter() - t)
            print(f"\nload average {os.getloadavg()[0]:.2f}; floor (model.encode) {per_s:.0f} texts/s")
            return per_s

        stages = Stages()
        mem.extractor.extract_many = stages.wrap("extract", mem.extractor.extract_many)
        mem.embedder.embed = stages.wrap("embed", mem.embedder.embed)
        mem.hygiene.plan = stages.wrap("hygiene", mem.hygiene.plan)
        mem.graph.write_memories = stages.wrap("graph_write", mem.graph.write_memories)
        mem._index = stages.wrap("vectors", mem._index)
        mem._changed = stages.wrap("listeners", mem._changed)
        mem._prepare_all = stages.wrap("prepare", mem._prepare_all)

        reqs = requests_of(corpus.items)
        base = floor()
        stages.reset()
        t = time.perf_counter()
        for i in range(0, len(reqs), args.batch):
            mem.store_batch(reqs[i : i + args.batch])
        total = time.perf_counter() - t
        print(f"store_batch x{args.batch}: {len(reqs)} in {total:.1f}s = {len(reqs) / total:.0f}/s "
              f"({len(reqs) / total / base:.2f}x floor)")
        print(stages.table(total))

        singles = requests_of([dict(it, content=it["content"] + " (follow-up)")
                               for it in corpus.items[: args.singles]])
        base = floor()
        stages.reset()
        rounds = mem._writer.rounds

        def store_many(chunk: list[Any]) -> None:
            for r in chunk:
                mem.store(r)

        t = time.perf_counter()
        with cf.ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(store_many, [singles[i :: args.clients] for i in range(args.clients)]))
        total = time.perf_counter() - t
        print(f"{args.clients} threads of single stores: {len(singles)} in {total:.1f}s = "
              f"{len(singles) / total:.0f}/s ({len(singles) / total / base:.2f}x floor), "
              f"{mem._writer.rounds - rounds} write rounds")
        print(stages.table(total))
    finally:
        services.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
