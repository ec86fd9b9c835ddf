"""Load: 16 concurrent clients mix store / storeBatch / recall / forget / session calls
against one real `casegraph serve` process. Zero errors are allowed, and at the end
every count matches what the clients were told: memories per agent (graph and vector
index), each session's memory count and state, every surviving memory readable, every
forgotten one gone. CI runs 20 s; ``CASEGRAPH_LOAD_SECONDS=60`` runs the full minute.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import defaultdict

import httpx
import pytest

from tests.procs import ServerProcess

pytestmark = pytest.mark.e2e

CLIENTS = 16
SECONDS = float(os.environ.get("CASEGRAPH_LOAD_SECONDS", "20"))
TOPICS = ("refund for a damaged parcel", "router keeps dropping wifi", "invoice shows the wrong VAT",
          "wants delivery on Saturday", "password reset e-mail never arrived", "order #4521 is late")


class Client:
    """One bot: its own agent id, and a ledger of what the server told it."""

    def __init__(self, n: int, url: str, seed: int) -> None:
        self.agent = f"load-{n}"
        self.rng = random.Random(seed)
        self.http = httpx.Client(base_url=url, timeout=120)
        self.live: set[str] = set()
        self.forgotten: set[str] = set()
        self.sessions: dict[str, dict] = {}  # id -> {"count": n, "ended": bool}
        self.open_session: str | None = None
        self.errors: list[str] = []
        self.latency: dict[str, list[float]] = defaultdict(list)

    def call(self, op: str, query: str, variables: dict) -> dict | None:
        started = time.perf_counter()
        try:
            r = self.http.post("/graphql", json={"query": query, "variables": variables})
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.errors.append(f"{op}: {exc!r}")
            return None
        self.latency[op].append(time.perf_counter() - started)
        if r.status_code != 200 or body.get("errors"):
            self.errors.append(f"{op}: {r.status_code} {str(body)[:300]}")
            return None
        return body["data"]

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.30:
            self.store(1)
        elif roll < 0.40:
            self.store(self.rng.randint(2, 8))
        elif roll < 0.65:
            self.recall()
        elif roll < 0.77 and self.live:
            victim = self.rng.choice(sorted(self.live))
            data = self.call("forget", "mutation($a: String!, $id: ID!) { forget(agentId: $a, id: $id) }",
                             {"a": self.agent, "id": victim})
            if data is not None and data["forget"]:
                self.live.discard(victim)
                self.forgotten.add(victim)
                for s in self.sessions.values():
                    s["count"] -= victim in s.setdefault("ids", set())
                    s["ids"].discard(victim)
        elif self.open_session is None:
            data = self.call("sessionStart", "mutation($a: String!, $c: String) { sessionStart(agentId: $a, "
                             "customerId: $c) { id } }", {"a": self.agent, "c": f"cust-{self.rng.randint(1, 5)}"})
            if data is not None:
                self.open_session = data["sessionStart"]["id"]
                self.sessions[self.open_session] = {"count": 0, "ended": False, "ids": set()}
        else:
            data = self.call("sessionEnd", "mutation($s: ID!) { sessionEnd(sessionId: $s, summary: \"done\") "
                             "{ id memoryCount summaryMemory { id agentId } } }", {"s": self.open_session})
            if data is not None:
                assert data["sessionEnd"]["memoryCount"] == self.sessions[self.open_session]["count"]
                # The caller's summary is kept as a memory of the agent's (consolidation).
                summary = data["sessionEnd"]["summaryMemory"]
                assert summary is not None and summary["agentId"] == self.agent
                self.live.add(summary["id"])
                self.sessions[self.open_session]["ended"] = True
                self.open_session = None

    def store(self, n: int) -> None:
        session = self.open_session if self.rng.random() < 0.5 else None
        items = [{"agentId": self.agent, "content": f"{self.agent}: customer {self.rng.choice(TOPICS)} "
                  f"(note {self.rng.randint(0, 10**9)})", "importance": round(self.rng.random(), 2),
                  **({"sessionId": session} if session else {})} for _ in range(n)]
        data = self.call("storeBatch" if n > 1 else "store",
                         "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id agentId deduplicated } }",
                         {"is": items})
        if data is None:
            return
        ids = [m["id"] for m in data["storeBatch"]]
        assert len(ids) == n and all(m["agentId"] == self.agent for m in data["storeBatch"])
        # A near-duplicate reinforces a memory the client already holds instead of adding one.
        created = {m["id"] for m in data["storeBatch"] if not m["deduplicated"]}
        assert {m["id"] for m in data["storeBatch"] if m["deduplicated"]} <= self.live | created
        self.live.update(ids)
        if session:
            self.sessions[session]["count"] += len(created)
            self.sessions[session]["ids"].update(created)

    def recall(self) -> None:
        data = self.call("recall", "query($a: String!, $q: String!) { recall(agentId: $a, query: $q, topK: 10) "
                         "{ memory { id agentId } } }", {"a": self.agent, "q": self.rng.choice(TOPICS)})
        if data is not None:
            found = {h["memory"]["id"] for h in data["recall"]}
            assert found <= self.live, "recall returned a forgotten or foreign memory"

    def run(self, until: float) -> None:
        try:
            while time.monotonic() < until:
                self.step()
        except AssertionError as exc:
            self.errors.append(f"assertion: {exc}")

    def verify(self) -> None:
        """Everything the server told this client is still true."""
        ids = sorted(self.live)
        for start in range(0, len(ids), 25):
            chunk = ids[start:start + 25]
            fields = " ".join(f'm{i}: memory(agentId: "{self.agent}", id: "{m}") {{ id }}' for i, m in enumerate(chunk))
            data = self.call("verify", "{ " + fields + " }", {})
            assert data is not None and [data[f"m{i}"]["id"] for i in range(len(chunk))] == chunk
        for victim in sorted(self.forgotten)[:10]:
            r = self.http.post("/graphql", json={"query": "query($a: String!, $id: ID!) { memory(agentId: $a, id: $id) "
                               "{ id } }", "variables": {"a": self.agent, "id": victim}}).json()
            assert r["errors"][0]["extensions"]["code"] == "MEMORY_NOT_FOUND"
        sessions = sorted(self.sessions)
        for start in range(0, len(sessions), 25):
            chunk = sessions[start:start + 25]
            fields = " ".join(f's{i}: session(agentId: "{self.agent}", id: "{sid}") {{ memoryCount active }}'
                              for i, sid in enumerate(chunk))
            data = self.call("verify", "{ " + fields + " }", {})
            assert data is not None
            for i, sid in enumerate(chunk):
                expected = self.sessions[sid]
                assert data[f"s{i}"] == {"memoryCount": expected["count"], "active": not expected["ended"]}, sid


def test_sixteen_clients_mixed_load(tmp_path):
    server = ServerProcess(tmp_path / "data", log=tmp_path / "server.log")
    seed = int(os.environ.get("CASEGRAPH_LOAD_SEED", time.time_ns() % 10_000))
    clients = [Client(n, server.url, seed * 100 + n) for n in range(CLIENTS)]
    try:
        until = time.monotonic() + SECONDS
        started = time.monotonic()
        threads = [threading.Thread(target=c.run, args=(until,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        errors = [e for c in clients for e in c.errors]
        assert errors == [], errors[:5]
        report = httpx.get(f"{server.url}/admin/integrity", timeout=60).json()
        for c in clients:
            agent = report["agents"].get(c.agent, {"memories": 0, "vectors": 0})
            assert (agent["memories"], agent["vectors"]) == (len(c.live), len(c.live)), (c.agent, agent)
            c.verify()
        assert report["ok"]
    finally:
        server.stop()
    ops = {op: [x for c in clients for x in c.latency[op]] for op in
           ("store", "storeBatch", "recall", "forget", "sessionStart", "sessionEnd")}
    total = sum(len(v) for v in ops.values())
    table = ", ".join(f"{op} {len(v)} (p50 {statistics.median(v) * 1000:.0f} ms, "
                      f"p95 {sorted(v)[int(len(v) * 0.95)] * 1000:.0f} ms)" for op, v in ops.items() if v)
    print(f"\nload (seed {seed}): {CLIENTS} clients, {elapsed:.1f}s, {total} operations "
          f"({total / elapsed:.1f}/s), 0 errors, {sum(len(c.live) for c in clients)} memories live, "
          f"{sum(len(c.forgotten) for c in clients)} forgotten, {sum(len(c.sessions) for c in clients)} sessions; "
          f"{table}")
    assert total > CLIENTS * 5
