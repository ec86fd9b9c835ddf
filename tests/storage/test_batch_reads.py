"""The store's batch reads by node (what the API's DataLoaders call) answer each key
exactly as the one-key reads do, with a few keys and with many (the embedded engine runs
point statements for a few, one UNWIND join for many), and leave other agents and expired
memories out. On both engines (tests/storage/backends.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from casegraph.domain.models import Memory, Session
from casegraph.domain.records import with_node_links
from casegraph.storage.memories import MemoryRecord

from tests.storage.backends import hygiene_of, open_store

NOW = datetime.now(UTC).replace(microsecond=0)
A, B = "agent-a", "agent-b"
CUSTOMERS = [f"c{i}" for i in range(20)]  # more than the store's few-keys limit (16)


def memory(content: str, *, agent: str = A, at: datetime = NOW, **kw) -> Memory:
    return Memory(id=str(uuid.uuid4()), agent_id=agent, content=content, importance=0.5, tags=(),
                  memory_type="episodic", metadata={}, created_at=at, updated_at=at, **kw)


def rec(m: Memory, **links) -> MemoryRecord:
    return with_node_links(MemoryRecord(memory=m, embedding=np.asarray([1, 0, 0, 0], dtype=np.float32), **links))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("batch"))
    sessions = {}
    for i, c in enumerate(CUSTOMERS):
        s = Session(id=str(uuid.uuid4()), agent_id=A, started_at=NOW - timedelta(hours=i), customer_id=c)
        store.create_session(s)
        sessions[c] = s.id
        records = [
            rec(memory(f"{c} first", at=NOW - timedelta(minutes=2), session_id=s.id),
                customer_ids=(c,), orders=(str(4000 + i),), tickets=(f"T-{i}",)),
            rec(memory(f"{c} second", at=NOW - timedelta(minutes=1), session_id=s.id),
                customer_ids=(c,), orders=(str(4000 + i), "9999")),
            rec(memory(f"{c} expired", at=NOW - timedelta(minutes=3), expires_at=NOW - timedelta(seconds=1),
                       session_id=s.id), customer_ids=(c,), orders=(str(4000 + i),)),
        ]
        store.write_memories(records)
    # The same customer and order keys under another agent: never in agent A's answers.
    store.write_memories([rec(memory("b's c0", agent=B), customer_ids=("c0",), orders=("4000",))])
    yield store, sessions
    store.close()


@pytest.mark.parametrize("n", [3, len(CUSTOMERS)])
def test_batch_reads_answer_like_the_one_key_reads(world, n):
    store, sessions = world
    keys = [*CUSTOMERS[:n], "nobody"]
    memories = store.customers_memories(A, keys, NOW)
    assert set(memories) == set(CUSTOMERS[:n])
    for c in CUSTOMERS[:n]:
        assert memories[c] == store.customer_memories(A, c, NOW)
        assert [m.content for m in memories[c]] == [f"{c} second", f"{c} first"]
    aliases = store.customers_aliases(A, keys)
    orders = store.customers_neighbours(A, keys, "order")
    tickets = store.customers_neighbours(A, keys, "ticket")
    had = store.customers_sessions(A, keys)
    for c in CUSTOMERS[:n]:
        assert aliases.get(c, []) == store.customer_aliases(A, c)
        assert orders[c] == store.customer_orders(A, c)
        assert tickets.get(c, []) == store.customer_tickets(A, c)
        assert had[c] == store.list_sessions(A, customer_id=c)
        assert [s.id for s in had[c]] == [sessions[c]] and had[c][0].memory_count == 3

    by_order = store.orders_memories(A, [*(str(4000 + i) for i in range(n)), "9999", "1"], NOW)
    assert set(by_order) == {*(str(4000 + i) for i in range(n)), "9999"}
    assert [m.content for m in by_order["4000"]] == ["c0 first", "c0 second"]
    assert len(by_order["9999"]) == len(CUSTOMERS) and all(m.agent_id == A for ms in by_order.values() for m in ms)

    session_ids = [sessions[c] for c in CUSTOMERS[:n]]
    in_sessions = store.sessions_live_memories(A, [*session_ids, "no-such-session"], NOW)
    for c in CUSTOMERS[:n]:
        assert in_sessions[sessions[c]] == store.session_memories(sessions[c], NOW)
    assert store.sessions_live_memories(B, session_ids, NOW) == {}  # another agent's sessions
    assert store.sessions_summaries(A, session_ids) == {}  # none was ended with a summary


def test_a_session_summary_is_found_by_the_batch_read(world):
    store, sessions = world
    s = Session(id=str(uuid.uuid4()), agent_id=A, started_at=NOW, customer_id="c0")
    store.create_session(s)
    summary = memory("summary of the chat")
    hygiene = hygiene_of(store)
    store.write_memories([rec(summary)], after=lambda tx: hygiene.write_summary(tx, summary.id, s.id, NOW, "done"))
    assert store.sessions_summaries(A, [s.id, sessions["c1"]]) == {s.id: summary.id}
    assert store.session_summary_memory(s.id) == summary.id


@pytest.mark.parametrize("n", [2, 40])  # point lookups for a few ids, one join for many
def test_reads_by_memory_id_answer_only_the_asking_agents_memories(world, n):
    store, _ = world
    b_id = store.customer_memories(B, "c0", NOW)[0].id
    a_ids = [m.id for c in CUSTOMERS for m in store.customer_memories(A, c, NOW)][: n - 1]
    ids = [*a_ids, b_id]
    got = store.get_memories(A, ids)
    assert set(got) == set(a_ids) and all(m.agent_id == A for m in got.values())
    assert set(store.get_memories(B, ids)) == {b_id}
    assert set(store.memory_attrs(A, ids)) == set(a_ids)
    assert set(store.memory_attrs(B, ids)) == {b_id}
    assert store.get_memories(B, a_ids) == {} and store.memory_attrs(B, a_ids) == {}
