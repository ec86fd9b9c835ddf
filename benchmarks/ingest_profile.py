"""Where ingest time goes: the write path in-process, split by stage.

    python -m benchmarks.ingest_profile                  # 3,000 memories in batches of 64, then 400 singles
    python -m benchmarks.ingest_profile --n 10000 --singles 800 --clients 8
    python -m benchmarks.ingest_profile --copy-of /tmp/casegraph-perf-100000-x/data --seed 8 --kuzu

Opens ``Services`` on a data directory (no HTTP, so the figures are the write path's own)
and stores ``benchmarks.perf``'s seeded corpus, first through ``store_batch`` and then as
single stores from concurrent threads. For each phase it prints memories/s, the ratio to
the floor (``embed`` of the same texts), the process's CPU seconds per memory, and the
wall time spent in each stage: extract (spaCy, on its own thread, overlapping embed),
embed, hygiene plan, graph write (one transaction), vectors and keywords (after the
commit), and the ticket-relation refresh (on its own thread, beside the write path) with
its queries. After a phase the refresh left pending is finished and timed on its own
("drain"). ``--kuzu`` also sums Kùzu's time per statement. Stages are timed by wrapping
the services' own methods; nothing in app/ is changed.

``--copy-of`` stores into a fresh copy of an existing data directory (one that
``benchmarks.perf --keep`` left, say; the original is not touched) to see where the time
goes at that size; ``--data-dir`` stores into the directory itself. Use another ``--seed``
than the one that filled it, or near-duplicates merge.
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

WRITE_STAGES = ("extract", "embed", "known_ids", "hygiene", "graph_write", "vectors", "keywords", "listeners")
REFRESH_STAGES = (
    "refresh", "stale", "sources", "together", "shared_keys", "similar_search", "tickets_of_memories",
    "similar_neighbours", "ticket_vectors", "save_refresh",
)


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
                self.add(name, time.perf_counter() - t)

        return timed

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.seconds[name] += seconds
            self.calls[name] += 1

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()

    def table(self, total: float, names: tuple[str, ...], per: int) -> str:
        rows = [f"  {'stage':<20} {'seconds':>8} {'share':>6} {'calls':>6} {'ms/memory':>10}"]
        for name in names:
            s = self.seconds.get(name, 0.0)
            rows.append(
                f"  {name:<20} {s:8.2f} {s / total:6.0%} {self.calls.get(name, 0):6d} {s / per * 1000:10.2f}"
            )
        return "\n".join(rows)


class KuzuTimes:
    """Kùzu's time per statement text (the outermost call of a thread only)."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self._lock = threading.Lock()
        self._local = threading.local()

    def install(self) -> None:
        from casegraph.storage.embedded import connection as C

        def timed(fn: Callable[..., Any], query_at: int) -> Callable[..., Any]:
            def wrap(this: Any, *args: Any, **kwargs: Any) -> Any:
                if getattr(self._local, "inside", False):
                    return fn(this, *args, **kwargs)
                self._local.inside = True
                t = time.perf_counter()
                try:
                    return fn(this, *args, **kwargs)
                finally:
                    self._local.inside = False
                    dt = time.perf_counter() - t
                    key = " ".join(str(args[query_at]).split())[:120]
                    with self._lock:
                        s = self.stats[key]
                        s[0] += 1
                        s[1] += dt

            return wrap

        C.Connection._run = timed(C.Connection._run, 1)  # (conn, query, params)
        C.Connection._run_prepared = timed(C.Connection._run_prepared, 2)  # (conn, cache, query, params)

    def report(self, top: int = 14) -> str:
        with self._lock:
            items = sorted(self.stats.items(), key=lambda kv: -kv[1][1])
            total = sum(v[1] for v in self.stats.values())
            self.stats.clear()
        lines = [f"  Kùzu statements: {total:.2f} s"]
        lines += [f"  {t:7.2f}s {int(n):6d}x {t / n * 1000:7.2f}ms  {q}" for q, (n, t) in items[:top]]
        return "\n".join(lines)


def copy_store(source: Path, data_dir: Path) -> None:
    """A fresh copy of a data directory (without its lock file), to measure on."""
    t = time.perf_counter()
    shutil.copytree(source, data_dir, ignore=shutil.ignore_patterns(".casegraph.lock"))
    print(f"copied {source} in {time.perf_counter() - t:.1f}s")


def requests_of(items: list[dict]) -> list[Any]:
    from casegraph.domain.models import StoreRequest

    return [
        StoreRequest(agent_id=it["agentId"], content=it["content"], importance=it["importance"],
                     tags=tuple(it["tags"]))
        for it in items
    ]


def instrument(services: Any, stages: Stages) -> None:
    """Time the write path's stages and the refresh's parts by wrapping their methods."""
    import casegraph.domain.memory as memory_module

    mem, tickets = services.memories, services.tickets
    mem.extractor.extract_many = stages.wrap("extract", mem.extractor.extract_many)
    mem.embedder.embed = stages.wrap("embed", mem.embedder.embed)
    memory_module.with_known_ids = stages.wrap("known_ids", memory_module.with_known_ids)
    mem.hygiene.plan = stages.wrap("hygiene", mem.hygiene.plan)
    mem.graph.write_memories = stages.wrap("graph_write", mem.graph.write_memories)
    mem.vectors.add = stages.wrap("vectors", mem.vectors.add)
    mem.keywords.add = stages.wrap("keywords", mem.keywords.add)
    mem.listeners[:] = [stages.wrap("listeners", fn) for fn in mem.listeners]
    tickets.refresh = stages.wrap("refresh", tickets.refresh)
    store = tickets.tickets
    for name, attr in (
        ("stale", "stale_tickets"), ("sources", "ticket_sources"), ("together", "mentioned_together"),
        ("shared_keys", "shared_keys"), ("tickets_of_memories", "tickets_of_memories"),
        ("similar_neighbours", "similar_neighbours"), ("ticket_vectors", "ticket_vectors"),
        ("save_refresh", "save_refresh"),
    ):
        setattr(store, attr, stages.wrap(name, getattr(store, attr)))
    # The refresh's vector searches (recall searches the same index, but none run here).
    tickets.vectors.search = stages.wrap("similar_search", tickets.vectors.search)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="memories stored through store_batch")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--singles", type=int, default=400, help="single stores from the concurrent clients")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", type=Path, help="store into this existing data directory (it is changed)")
    where.add_argument("--copy-of", type=Path, help="store into a fresh copy of this data directory")
    parser.add_argument("--kuzu", action="store_true", help="time every Kùzu statement")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from casegraph.ops.settings import Settings
    from casegraph.services import Services

    corpus = make_corpus(args.n + args.singles, args.seed)
    work = Path(tempfile.mkdtemp(prefix="casegraph-ingest-"))
    data_dir = args.data_dir or work / "data"
    if args.copy_of:
        copy_store(args.copy_of, data_dir)
    kuzu = KuzuTimes()
    if args.kuzu:
        kuzu.install()
    t = time.perf_counter()
    services = Services.open(Settings.from_env(data_dir=data_dir))
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
            print(f"\nload average {os.getloadavg()[0]:.2f}; floor (embed) {per_s:.0f} texts/s")
            return per_s

        stages = Stages()
        instrument(services, stages)

        def phase(title: str, n: int, run: Callable[[], None]) -> None:
            base = floor()
            stages.reset()
            kuzu.report()  # clears what the floor and earlier phases left
            rounds = mem._writer.rounds
            cpu = sum(os.times()[:2])
            t = time.perf_counter()
            run()
            total = time.perf_counter() - t
            cpu_run = sum(os.times()[:2]) - cpu
            print(f"{title}: {n} in {total:.1f}s = {n / total:.1f}/s ({n / total / base:.2f}x floor), "
                  f"{mem._writer.rounds - rounds} write rounds, CPU {cpu_run / n * 1000:.1f} ms a memory, "
                  f"load average {os.getloadavg()[0]:.2f}")
            print(stages.table(total, WRITE_STAGES, n))
            print(stages.table(total, REFRESH_STAGES, n))
            if args.kuzu:
                print(kuzu.report())
            stages.reset()
            t = time.perf_counter()
            services.tickets.refresh()  # what the refresher has not finished
            print(f"  drain: the pending refresh took {time.perf_counter() - t:.2f}s more")
            print(stages.table(max(time.perf_counter() - t, 1e-9), REFRESH_STAGES, n))
            if args.kuzu:
                print(kuzu.report(6))

        reqs = requests_of(corpus.items[: args.n])

        def batches() -> None:
            for i in range(0, len(reqs), args.batch):
                mem.store_batch(reqs[i : i + args.batch])

        if reqs:
            phase(f"store_batch x{args.batch}", len(reqs), batches)

        singles = requests_of([dict(it, content=it["content"] + " (follow-up)") for it in corpus.items[args.n :]])

        def store_many(chunk: list[Any]) -> None:
            for r in chunk:
                mem.store(r)

        def concurrent() -> None:
            with cf.ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(store_many, [singles[i :: args.clients] for i in range(args.clients)]))

        if singles:
            phase(f"{args.clients} threads of single stores", len(singles), concurrent)
    finally:
        services.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
