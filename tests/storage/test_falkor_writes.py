"""What the FalkorDB write path relies on, on a real server: one query per agent lands
whole or not at all, and session positions stay gapless with several writers.

The interface tests (test_graph_store.py) check the same behaviour as the embedded
engine; these check what only this engine has to get right: no multi-query
transactions, several store objects (processes) on one namespace, graphs set up before
the vector size is known.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from casegraph.domain.models import Entity, Session
from casegraph.errors import MemoryExists, MemoryNotFound, StorageError

from tests.storage.backends import falkor, open_store
from tests.storage.records import NOW, A, B, make_memory, new_id, rec, vec

pytestmark = pytest.mark.skipif(not falkor(), reason="the FalkorDB engine (CASEGRAPH_TEST_STORE=falkordb)")


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path)
    yield s
    s.close()


def count(store, agent_id: str, pattern: str) -> int:
    return store.read(agent_id, f"MATCH {pattern} RETURN count(*)")[0][0] if store.has_agent(agent_id) else 0


def positions(store, session_id: str) -> list[int]:
    agent_id = store.session_agents([session_id])[session_id]
    rows = store.read(agent_id, "MATCH (:Memory)-[e:IN_SESSION]->(:Session {id: $s}) RETURN e.seq ORDER BY e.seq",
                      {"s": session_id})
    return [r[0] for r in rows]


def test_a_write_that_fails_in_its_last_statement_leaves_nothing(store):
    session = Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="jane")
    m = make_memory("Jane's order #4521 (ticket T-9) is late; reach her at jane@example.com", session_id=session.id)

    def fail(tx):
        tx.write("UNWIND [0] AS z CREATE (:Broken {v: 1 / z})")  # fails when the query runs

    with pytest.raises(StorageError):
        store.write_memories([rec(m, customer_ids=("jane",), orders=("4521",), tickets=("T-9",))],
                             sessions=[session], after=fail)
    for pattern in ("(:Memory)", "(:Session)", "(:Customer)", "(:`Order`)", "(:Ticket)", "(:Alias)", "()-[]->()"):
        assert count(store, A, pattern) == 0, pattern
    # The same write without the failure lands whole.
    store.write_memories([rec(m, customer_ids=("jane",), orders=("4521",), tickets=("T-9",))], sessions=[session])
    assert store.get_session(session.id).memory_count == 1
    assert positions(store, session.id) == [1]
    assert count(store, A, "(:Customer)-[:HAD_SESSION]->(:Session)") == 1
    # Merged twice in one query (by the session, then by the memory), created once: the
    # label is known to the graph before the query (its index), so the second MERGE sees
    # the first one's node.
    assert count(store, A, "(:Customer)") == 1
    assert count(store, A, "(:Customer)-[:KNOWN_AS]->(:Alias)") >= 1


def test_an_id_taken_or_repeated_fails_before_anything_is_sent(store):
    m = make_memory("first")
    store.write_memories([rec(m)])
    with pytest.raises(MemoryExists):  # as the domain's check answers it (a write that raced it)
        store.write_memories([rec(make_memory("new")), rec(m)])
    twice = make_memory("twice")
    with pytest.raises(StorageError):
        store.write_memories([rec(twice), rec(twice)])
    with pytest.raises(MemoryNotFound):
        store.write_memories([rec(make_memory("never stored"))], replace=True)
    assert count(store, A, "(:Memory)") == 1


def test_two_stores_on_one_namespace_number_a_session_without_gaps(store):
    """Two store objects (as two processes would) write into one session at once: the
    positions are 1..n, each once, because each reads the last one under the agent's lock."""
    other = type(store)(f"falkordb://{store.address.host}:{store.address.port}/{store.address.namespace}")
    session = Session(id=new_id(), agent_id=A, started_at=NOW)
    store.create_session(session)
    per_writer, batch = 12, 3
    errors: list[BaseException] = []

    def writer(s, name: str) -> None:
        try:
            for i in range(per_writer):
                mems = [make_memory(f"{name} {i}.{j}", session_id=session.id) for j in range(batch)]
                s.write_memories([rec(x) for x in mems])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s, n)) for s, n in ((store, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert positions(store, session.id) == list(range(1, 2 * per_writer * batch + 1))


def test_a_replaced_memory_keeps_its_position(store):
    session = Session(id=new_id(), agent_id=A, started_at=NOW)
    store.create_session(session)
    first, second = (make_memory(t, session_id=session.id, created_at=NOW + timedelta(seconds=i))
                     for i, t in enumerate(("first", "second")))
    store.write_memories([rec(first), rec(second)])
    store.write_memories([rec(make_memory("first, edited", id=first.id, session_id=session.id))], replace=True)
    rows = store.read(A, "MATCH (m:Memory)-[e:IN_SESSION]->(:Session) RETURN m.id, m.content, e.seq ORDER BY e.seq")
    assert rows == [[first.id, "first, edited", 1], [second.id, "second", 2]]
    assert count(store, A, "(:Memory)") == 2


def test_a_session_before_the_first_memory_gets_the_vector_index_with_it(store):
    assert store.dimension is None
    session = Session(id=new_id(), agent_id=A, started_at=NOW)
    store.create_session(session)  # the graph exists, its vector size is not known yet
    store.write_memories([rec(make_memory("now it is", session_id=session.id), vec(0, 0, 1, 0))])
    assert store.dimension == 4
    hits = store.read(A, "CALL db.idx.vector.queryNodes('Memory', 'embedding', 1, vecf32($q)) YIELD node "
                         "RETURN node.content", {"q": [0.0, 0.0, 1.0, 0.0]})
    assert hits == [["now it is"]]


def test_a_write_for_two_agents_lands_in_each_graph_and_runs_after_in_each(store):
    a, b = make_memory("for a"), make_memory("for b", agent=B)
    seen: list[str] = []
    store.write_memories([rec(a), rec(b)], after=lambda tx: seen.append(tx.agent_id))
    assert seen == [A, B]
    assert store.read(A, "MATCH (m:Memory) RETURN m.id") == [[a.id]]
    assert store.read(B, "MATCH (m:Memory) RETURN m.id") == [[b.id]]
    # No record left (every store merged into an existing memory): ``after`` runs for the
    # agents the stores came from.
    seen.clear()
    store.write_memories([], after=lambda tx: seen.append(tx.agent_id), agents=[B])
    assert seen == [B]


def test_deleting_a_memory_unlearns_its_aliases_and_marks_its_tickets(store):
    email = Entity(kind="email", value="jane@example.com", key="jane@example.com")
    m = make_memory("Reach jane at jane@example.com about ticket T-1", entities=(email,))
    store.write_memories([rec(m, customer_ids=("jane",), tickets=("T-1",))])
    token = store.read(A, "MATCH (t:Ticket) RETURN t.refresh_token")[0][0]
    assert count(store, A, "(:Alias {kind: 'email'})") == 1 and count(store, A, "(:Alias)") >= 2  # and the id's
    assert store.delete_memories(A, [m.id, m.id, new_id()]) == [m.id]
    assert store.read(A, "MATCH (t:Ticket) RETURN t.refresh_token")[0][0] != token
    aliases = store.read(A, "MATCH (c:Customer)-[k:KNOWN_AS]->(n:Alias) RETURN k.source, n.kind")
    assert aliases and all(r[0] == "id" for r in aliases)  # what the id says stays
    # The e-mail's Alias node went with its last edge (judged in the same query, after
    # the edge's delete).
    assert count(store, A, "(:Alias)") == len(aliases)
    assert store.read(A, "MATCH (n:Alias {kind: 'email'}) RETURN n.uid") == []
    assert count(store, A, "(:Memory)") == 0


def test_embeddings_come_back_bit_for_bit(store):
    """Embeddings travel as the text of their numbers: every float32 survives exactly."""
    rng = np.random.default_rng(7)
    vectors = (rng.standard_normal((8, 16)) * 10.0 ** rng.integers(-30, 30, (8, 16))).astype(np.float32)
    mems = [make_memory(f"vector {i}") for i in range(8)]
    store.write_memories([rec(m, v) for m, v in zip(mems, vectors, strict=True)])
    got = store.embeddings(A, [m.id for m in mems])
    assert got.dtype == np.float32 and np.array_equal(got, vectors)


def test_a_lock_left_by_another_server_run_is_taken_at_once_and_a_live_one_is_waited_for(store, monkeypatch):
    """A lock whose value names another server run (a restart from the append-only file, a
    failover to a replica) is stale and taken over at once; one this run granted is held."""
    from casegraph.errors import StorageUnavailable
    from casegraph.storage.falkor import connection

    store.write_memories([rec(make_memory("first"))])
    key = store.key(f"{{{A}}}", "lock")
    store.redis.set(key, "0123456789abcdef:left-by-a-dead-primary", px=60_000)
    m = make_memory("written at once")
    store.write_memories([rec(m)])  # no wait for the stale lock's expiry
    assert store.existing_memory_ids([m.id]) == {m.id}
    assert store.redis.get(key) is None  # released after the write

    monkeypatch.setattr(connection, "LOCK_WAIT_S", 0.3)
    second = type(store)(str(store.address), dimension=4)  # another process on the namespace
    try:
        with store.lock(A):
            with pytest.raises(StorageUnavailable) as refused:
                second.write_memories([rec(make_memory("must wait"))])
        assert refused.value.code == "STORE_BUSY"
        late = make_memory("after the lock was released")
        second.write_memories([rec(late)])
        assert store.existing_memory_ids([late.id]) == {late.id}
    finally:
        second.close()
