"""Replication and failover of the FalkorDB backend, on real servers.

A primary (``appendfsync always``) and a replica that follows it. With ``?wait=1`` in the
store address a write is acknowledged only once the replica has it (``WAIT``), so every
acknowledged write survives losing the primary: SIGKILL it, promote the replica
(``REPLICAOF NO ONE``, what Sentinel or the operator's own failover does) and point
CaseGraph at it.
"""

from __future__ import annotations

import time

import pytest
import redis
from casegraph.errors import ConfigurationError, StorageError
from casegraph.storage.falkor.connection import Address, Connection

from tests.falkor_server import FalkorServer

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
