"""Keyword index speed at scale: one agent, N short support texts (the perf corpus).

    python -m benchmarks.keywords               # 100k memories, 2,000 queries
    python -m benchmarks.keywords --memories 10000 --queries 500

Prints the time to build the index (analysis + tantivy), its size on disk, a search (top
60, recall's candidate pool) p50/p95 on a committed index, the first search after a store
(which scores the uncommitted store itself), the cost of the commit of a single store
(the background flusher's), and a reconcile at start-up with nothing to change. Runs app/storage/embedded/keywords.py alone: no graph, no
model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from casegraph.storage.embedded.keywords import KeywordIndex

from benchmarks.perf import make_corpus


def _ms(samples: list[float]) -> str:
    xs = sorted(samples)
    return f"p50 {statistics.median(xs) * 1000:.2f} ms, p95 {xs[int(len(xs) * 0.95)] * 1000:.2f} ms"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--pool", type=int, default=60, help="hits asked for (recall's candidate pool)")
    args = parser.parse_args(argv)

    corpus = make_corpus(args.memories)
    docs = [(str(uuid.uuid4()), " ".join((it["content"], *it["tags"]))) for it in corpus.items]
    queries = [q for q, _ in corpus.queries[: args.queries]]
    agent = "bench-bot"
    with tempfile.TemporaryDirectory(prefix="casegraph-keywords-") as tmp:
        directory = Path(tmp) / "keywords"
        index = KeywordIndex(directory)
        started = time.perf_counter()
        for start in range(0, len(docs), 5_000):
            index.add(agent, docs[start : start + 5_000], flush=False)  # as a rebuild at start-up
        index.flush()
        build = time.perf_counter() - started
        print(f"memories {args.memories:,}: built in {build:.1f} s, {_size(directory) / 1e6:.1f} MB on disk")

        index.search(agent, "warm up", args.pool)
        searches = []
        for q in queries:
            t = time.perf_counter()
            index.search(agent, q, args.pool)
            searches.append(time.perf_counter() - t)
        print(f"search (top {args.pool}), committed index: {_ms(searches)}")

        index.flush_delay = 3600  # only the flushes below commit
        after_store, commits = [], []
        for i, q in enumerate(queries[:200]):
            memory_id, text = docs[i]
            index.add(agent, [(f"{memory_id}-again", text)])
            t = time.perf_counter()
            index.search(agent, q, args.pool)
            after_store.append(time.perf_counter() - t)
            index.flush()
        for i in range(100):
            index.add(agent, [(f"extra-{i}", docs[i][1])])
            t = time.perf_counter()
            index.flush()
            commits.append(time.perf_counter() - t)
        print(f"first search after a store (scans it, uncommitted): {_ms(after_store)}")
        print(f"commit of one store: {_ms(commits)}")
        ids = index.ids(agent)
        index.close()

        reopened = KeywordIndex(directory)
        t = time.perf_counter()
        report = reopened.reconcile({agent: ids}, lambda a, wanted: [])
        print(f"reconcile at start-up, nothing to change: {(time.perf_counter() - t) * 1000:.0f} ms "
              f"(+{report.added} -{report.removed})")
        reopened.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
