"""Ticket relations at scale: store latency with the incremental RELATED refresh, and
analyst query latency (related depth 1/2, path, graph, aggregates).

    python -m benchmarks.ticket_relations                  # 1,000 tickets (short profile)
    CASEGRAPH_BENCH_TICKETS=5000 python -m benchmarks.ticket_relations

Seeded; runs in-process on a temporary data directory with the real model, spaCy and Kùzu.
Prints one table. Timings include the embedding and extraction of each stored memory.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from casegraph.domain.models import StoreRequest  # noqa: E402
from casegraph.ops.settings import Settings  # noqa: E402
from casegraph.services import Services  # noqa: E402

AGENT = "bench-bot"
THINGS = ["water filter", "headphones", "tower fan", "kettle", "desk lamp", "backpack", "router", "blender",
          "e-reader", "smart plug", "monitor", "keyboard"]
PROBLEMS = ["The {t} from order #{o} arrived with a cracked casing.",
            "The {t} stopped working after a week of normal use.",
            "Order #{o} was delivered without the {t} power cable.",
            "Order #{o} with the {t} is ten days late and tracking has not moved.",
            "Wants a refund for the {t} on order #{o}.",
            "The {t} makes a loud rattling noise since day one."]
FOLLOW_UPS = ["Sent a prepaid return label for order #{o}.", "A replacement for order #{o} has been dispatched.",
              "Asked for photos of the {t} from order #{o}."]


def generate(n_tickets: int, rng: random.Random) -> list[StoreRequest]:
    now = datetime.now(UTC)
    customers = [f"cust-{i:05d}" for i in range(max(n_tickets // 3, 1))]
    out = []
    for i in range(n_tickets):
        thing = rng.choice(THINGS)
        order = rng.randint(10_000, 99_999)
        customer = rng.choice(customers)
        when = now - timedelta(days=rng.uniform(1, 365))
        common = dict(agent_id=AGENT, ticket_id=f"T-{10_000 + i}",
                      tags=(f"customer:{customer}", f"product:{thing}"))
        out.append(StoreRequest(content=rng.choice(PROBLEMS).format(t=thing, o=order), created_at=when, **common))
        if rng.random() < 0.5:
            out.append(StoreRequest(content=rng.choice(FOLLOW_UPS).format(t=thing, o=order),
                                    created_at=when + timedelta(hours=5), **common))
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    n = int(os.environ.get("CASEGRAPH_BENCH_TICKETS", "1000"))
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        services = Services.open(Settings.from_env({}, data_dir=Path(tmp) / "data", buffer_pool_mb=256))
        try:
            rows = run(services, n, rng)
        finally:
            services.close()
    print(f"\nticket relations, {n} tickets (seed 42)\n")
    print(f"{'operation':<48} {'p50 ms':>9} {'p95 ms':>9} {'n':>6}")
    for name, values in rows:
        print(f"{name:<48} {statistics.median(values):>9.1f} {pct(values, 0.95):>9.1f} {len(values):>6}")


def run(services: Services, n: int, rng: random.Random) -> list[tuple[str, list[float]]]:
    requests = generate(n, rng)
    batches = []
    for start in range(0, len(requests), 250):
        chunk = requests[start : start + 250]
        t = time.perf_counter()
        services.memories.store_batch(chunk)
        batches.append((time.perf_counter() - t) * 1000 / len(chunk))
    edges = services.graph.read("MATCH (:Ticket)-[r:RELATED]->(:Ticket) RETURN count(r)")[0][0]
    print(f"{len(requests)} memories about {n} tickets stored; {edges} RELATED edges")

    tickets = [f"T-{10_000 + i}" for i in range(n)]
    singles, refresh = [], []
    for i in range(30):
        t = rng.choice(tickets)
        req = StoreRequest(agent_id=AGENT, content=f"Follow-up {i}: the customer called again about it.",
                           ticket_id=t)
        start = time.perf_counter()
        services.memories.store(req)
        singles.append((time.perf_counter() - start) * 1000)
        # The refresh alone, on a ticket marked stale the way a store marks it.
        services.graph.read("MATCH (x:Ticket {uid: $u}) RETURN x.id", {"u": f"{AGENT}|{t}"})
        with services.graph.transaction() as run_:
            run_("MATCH (x:Ticket {uid: $u}) SET x.refresh_token = 'bench'", {"u": f"{AGENT}|{t}"})
        start = time.perf_counter()
        services.tickets.refresh()
        refresh.append((time.perf_counter() - start) * 1000)

    tk = services.tickets
    ex = services.explorer
    sample = iter(rng.choices(tickets, k=10_000))
    customer = lambda: services.tickets.customers(AGENT, [next(sample)])  # noqa: E731
    return [
        ("storeBatch (per memory, batches of 250)", batches),
        ("store one memory on a ticket (incl. refresh)", singles),
        ("refresh one ticket's RELATED edges", refresh),
        ("related depth 1", timed(lambda: tk.related(AGENT, [next(sample)], depth=1), 50)),
        ("related depth 2, minWeight 0.3", timed(lambda: tk.related(AGENT, [next(sample)], depth=2, min_weight=0.3), 50)),
        ("related depth 2 for 20 tickets at once", timed(lambda: tk.related(AGENT, [next(sample) for _ in range(20)], depth=2, min_weight=0.3), 20)),
        ("path ticket -> ticket (max 6 hops)", timed(lambda: ex.path(AGENT, next(sample), next(sample)), 20)),
        ("graph around a customer, depth 2", timed(lambda: ex.neighbourhood(AGENT, "customer:" + next(iter(customer().values()))[0], 2, 200), 20)),
        ("insights: by status + top products + repeat", timed(lambda: (tk.status_counts(AGENT), tk.top_entities(AGENT, "product"), tk.repeat_customers(AGENT)), 10)),
    ]


if __name__ == "__main__":
    main()
