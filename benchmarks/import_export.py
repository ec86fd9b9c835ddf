"""Import / export round trip of a generated helpdesk history, with single-node figures.

    python -m benchmarks.import_export                 # 10k memories (a few minutes on 2 cores)
    python -m benchmarks.import_export --memories 500  # quick look

Generates a seeded support history (customers, orders, tickets, chats as sessions,
original dates over a year, helpdesk ids that are not UUIDs), then, with the real model,
spaCy and Kùzu, the same code the ``casegraph import`` / ``export`` commands run:

1. imports the file into a fresh data directory (timed; memories/s; peak RSS),
2. exports the agent (timed), imports that into a second fresh directory, exports again,
   and checks that both exports are byte-identical,
3. starts ``casegraph serve`` on the first directory: time to healthy, RSS, and the time
   of a ``GET /metrics`` scrape (it counts memories per agent in the graph).

Prints a table, with the machine's load average (the machine may be shared: read the
rates with it). Figures depend on the machine: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

AGENT = "support-bot"
FIRST = ["Jane", "Omar", "Li", "Priya", "Carlos", "Anna", "Tom", "Fatima", "Ken", "Sara", "Ivan", "Mia"]
LAST = ["Doe", "Khan", "Wei", "Patel", "Ruiz", "Berg", "Stone", "Ali", "Sato", "Lind", "Petrov", "Rossi"]
PRODUCTS = ["blender", "router", "laptop stand", "espresso machine", "headphones", "desk lamp",
            "phone case", "air fryer", "smart watch", "backpack", "monitor", "keyboard"]
EVENTS = [
    "{name} reported that order #{order} arrived damaged; the {product} box was crushed and we offered a refund.",
    "{name} asked where order #{order} is; tracking shows the {product} is held at the local depot.",
    "{name} wants to return the {product} from order #{order} because it stopped working after a week.",
    "{name} prefers to be contacted by email and asked us not to call during work hours.",
    "{name} complained that the {product} charger is missing; we shipped a replacement.",
    "{name} opened a case about a double charge on the {product}; billing is investigating.",
    "Refund for order #{order} landed on {name}'s card; the ticket can be closed.",
    "{name} asked how to reset the {product} to factory settings; sent the guide and it worked.",
    "{name} said the replacement {product} works well and thanked the team for the quick help.",
    "{name} changed the delivery address for order #{order} to the office; the courier was updated.",
]
START = datetime(2024, 1, 1, tzinfo=UTC)


def generate_history(count: int, *, seed: int = 7, agent: str = AGENT) -> list[dict]:
    """``count`` JSONL-ready memories: chats (sessions) of 1-6 lines over ~300 customers."""
    rng = random.Random(seed)
    customers = [
        (f"{f} {ln}", f"{f}-{ln}".lower() + (f"-{i}" if i else ""))
        for i in range(max(1, count // 400) + 1) for f in FIRST for ln in LAST
    ]
    lines: list[dict] = []
    chat = 0
    while len(lines) < count:
        chat += 1
        name, customer = rng.choice(customers)
        order = str(rng.randint(1000, 99999))
        ticket = f"T-{rng.randint(100, 9999)}"
        started = START + timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        length = min(rng.randint(1, 6), count - len(lines))
        in_session = rng.random() < 0.8
        session: dict | str | None = None
        if in_session:
            session = {
                "id": f"chat-{chat}",
                "customerId": customer,
                "startedAt": started.isoformat(),
                "endedAt": (started + timedelta(minutes=5 * length + 3)).isoformat(),
                "summary": f"{name}: {rng.choice(PRODUCTS)} issue" if rng.random() < 0.5 else None,
                "metadata": {"channel": rng.choice(["chat", "email", "phone"])},
            }
        for turn in range(length):
            text = rng.choice(EVENTS).format(name=name, order=order, product=rng.choice(PRODUCTS))
            line: dict = {
                "id": f"hd-{len(lines):07d}",
                "agentId": agent,
                "content": text,
                "createdAt": (started + timedelta(minutes=5 * turn, seconds=rng.randint(0, 59))).isoformat(),
                "importance": round(rng.uniform(0.2, 0.9), 2),
                "tags": ["support"] + ([f"customer:{customer}"] if rng.random() < 0.5 else []),
            }
            if not in_session or rng.random() < 0.5:
                line["customerId"] = customer
            if rng.random() < 0.3:
                line["tickets"] = [ticket]
            if rng.random() < 0.1:
                line["metadata"] = {"source": "zendesk", "priority": rng.choice(["low", "high"])}
            if session is not None:
                # The first line describes the chat; later lines may name it by id only.
                line["session"] = session if turn == 0 or rng.random() < 0.5 else session["id"]
            lines.append(line)
    return lines


def write_jsonl(path: Path, items: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")


def _dir_bytes(path: Path) -> int:
    """Bytes allocated on disk (like du: sparse or pre-allocated regions count as used)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def _serve_and_scrape(data_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """Start ``casegraph serve`` on the imported data; time start-up and a /metrics scrape."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from tests.conftest import free_port

    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "casegraph.ops.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env={**env, "CASEGRAPH_LOG_LEVEL": "WARNING"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("casegraph serve exited")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        startup = time.perf_counter() - started
        timings = []
        for _ in range(5):
            t = time.perf_counter()
            text = httpx.get(f"{url}/metrics", timeout=30).text
            timings.append(time.perf_counter() - t)
        values = {
            s.name: s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
            if not s.labels
        }
        return {
            "startup": startup,
            "scrape": sorted(timings)[len(timings) // 2],
            "rss": values["process_resident_memory_bytes"],
            "index": values["casegraph_vector_index_memory_bytes"],
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from casegraph.ops.settings import Settings
    from casegraph.ops.transfer import export_jsonl, import_jsonl
    from casegraph.services import Services
    from casegraph.storage.embedded.graph import GraphStore

    root = Path(tempfile.mkdtemp(prefix="casegraph-io-"))
    source = root / "history.jsonl"
    history = generate_history(args.memories, seed=args.seed)
    write_jsonl(source, history)
    first, second = root / "export1.jsonl", root / "export2.jsonl"
    load_before = os.getloadavg()[0]

    empty = GraphStore(root / "empty", buffer_pool_mb=64)  # the schema alone, for the baseline
    empty.close()
    baseline = _dir_bytes(root / "empty")

    settings = Settings.from_env(data_dir=root / "a")
    services = Services.open(settings)
    sample = [h["content"] for h in history[:1000]]
    services.embedder.embed(sample[:64])  # warm up
    t = time.perf_counter()
    services.embedder.embed(sample)
    embed_rate = len(sample) / (time.perf_counter() - t)
    imported = import_jsonl(services, source, progress=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    t = time.perf_counter()
    with first.open("w", encoding="utf-8") as out:
        exported = export_jsonl(services.graph, AGENT, out, progress=True)
    t_export = time.perf_counter() - t
    embedder, extractor = services.embedder, services.extractor
    services.close()
    disk = _dir_bytes(root / "a")

    services = Services.open(Settings.from_env(data_dir=root / "b"), embedder=embedder, extractor=extractor)
    reimported = import_jsonl(services, first, progress=True)
    with second.open("w", encoding="utf-8") as out:
        export_jsonl(services.graph, AGENT, out, progress=False)
    services.close()
    identical = first.read_bytes() == second.read_bytes()
    served = _serve_and_scrape(root / "a", dict(os.environ))

    rows = [
        ("memories in the file / exported", f"{args.memories} / {exported}"),
        ("embedding alone (1000 texts)", f"{embed_rate:.0f} texts/s"),
        ("import (file -> fresh dir)", f"{imported.seconds:.1f} s = {imported.imported / imported.seconds:.0f} memories/s"),
        ("re-import of the export", f"{reimported.seconds:.1f} s = {reimported.imported / reimported.seconds:.0f} memories/s"),
        ("export", f"{t_export:.2f} s = {exported / t_export:.0f} memories/s"),
        ("on disk, empty data dir", f"{baseline / 1e6:.1f} MB"),
        ("on disk after import", f"{disk / 1e6:.1f} MB = {(disk - baseline) / exported:.0f} bytes/memory above empty"),
        ("peak RSS of the import process", f"{rss / 1e6:.0f} MB"),
        ("serve: start to healthy", f"{served['startup']:.1f} s"),
        ("serve: RSS after start", f"{served['rss'] / 1e6:.0f} MB (vector index {served['index'] / 1e6:.1f} MB)"),
        ("serve: GET /metrics (median of 5)", f"{served['scrape'] * 1000:.0f} ms"),
        ("export -> import -> export", "identical" if identical else "DIFFERENT"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nimport/export: {os.cpu_count()} cores, load average {load_before:.1f} at start, seed {args.seed}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if args.keep:
        print(f"  files kept in {root}")
    else:
        import shutil

        shutil.rmtree(root)
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
