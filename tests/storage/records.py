"""Records the storage tests write: memories, their links, and a world for the filters.

Shared by the interface tests (test_graph_store.py) and the engine's own (test_kuzu_engine.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from casegraph.domain.models import Entity, Memory, Session
from casegraph.domain.records import with_node_links
from casegraph.storage.memories import MemoryRecord

NOW = datetime.now(UTC).replace(microsecond=0)
A = "agent-a"
B = "agent-b"


def new_id() -> str:
    return str(uuid.uuid4())


def vec(*xs: float) -> np.ndarray:
    return np.asarray(xs, dtype=np.float32)


def make_memory(content: str, *, agent: str = A, **kw) -> Memory:
    fields = dict(
        id=new_id(), agent_id=agent, content=content, importance=0.5, tags=(), memory_type="episodic",
        metadata={}, created_at=NOW, updated_at=NOW,
    )
    fields.update(kw)
    return Memory(**fields)


def rec(memory: Memory, embedding=None, **links) -> MemoryRecord:
    """The record the write path would hand the store (its node links derived as it derives them)."""
    return with_node_links(MemoryRecord(memory=memory, embedding=vec(1, 0, 0, 0) if embedding is None else embedding, **links))


# -- filters -----------------------------------------------------------------------------
def filter_world(store):
    """Write memories covering every filter dimension; return (ids by name, embeddings,
    jane's session, bob's session)."""
    s_jane = Session(id=new_id(), agent_id=A, started_at=NOW - timedelta(days=1), customer_id="jane")
    s_bob = Session(id=new_id(), agent_id=A, started_at=NOW - timedelta(days=5), customer_id="bob")
    store.create_session(s_jane)
    store.create_session(s_bob)
    d = lambda n: NOW - timedelta(days=n)  # noqa: E731
    ms = {
        "sess_jane": (make_memory("in jane's session", session_id=s_jane.id, customer_id="jane", tags=("billing", "vip"),
                                  importance=0.9, created_at=d(1)), ("jane",), vec(1, 0, 0, 0)),
        "jane_old": (make_memory("old jane note", customer_id="jane", tags=("shipping",), importance=0.3,
                                 memory_type="semantic", created_at=d(40)), ("jane",), vec(0, 1, 0, 0)),
        "bob": (make_memory("bob in his session", session_id=s_bob.id, customer_id="bob", tags=("billing",),
                            importance=0.6, memory_type="procedural", created_at=d(5)), ("bob",), vec(0, 0, 1, 0)),
        "plain": (make_memory("nobody in particular", importance=0.5, memory_type="working", created_at=d(10)), (),
                  vec(0, 0, 0, 1)),
        "expired": (make_memory("expired jane note", customer_id="jane", tags=("billing",), importance=0.95,
                                created_at=d(2), expires_at=NOW - timedelta(hours=1)), ("jane",), vec(1, 1, 0, 0)),
        "future_exp": (make_memory("expires later", customer_id="jane", tags=("vip",), importance=0.2,
                                   created_at=d(3), expires_at=NOW + timedelta(hours=1)), ("jane",), vec(0, 1, 1, 0)),
        # In jane's session but about bob first (an explicit customer), then jane (the session's).
        "two": (make_memory("bob mentioned in jane's session", session_id=s_jane.id, customer_id="bob",
                            created_at=NOW - timedelta(hours=6)), ("bob", "jane"), vec(0, 0, 1, 1)),
        "other_agent": (make_memory("agent b", agent=B, customer_id="jane", tags=("billing",)), ("jane",),
                        vec(1, 0, 0, 0)),
    }
    store.write_memories([rec(m, e, customer_ids=c) for m, c, e in ms.values()])
    ids = {k: v[0].id for k, v in ms.items()}
    embs = {v[0].id: v[2] for v in ms.values()}
    return ids, embs, s_jane, s_bob


def write_linked_memory(store):
    """Write one memory about customer jane, order 4521, ticket T-77 and an e-mail, in a session."""
    session = Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="jane")
    store.create_session(session)
    email = Entity(kind="email", value="jane@example.com", key="jane@example.com")
    entities = (Entity("order", "#4521", "4521"), Entity("ticket", "ticket T-77", "T-77"), email)
    m = make_memory(
        "Jane's parcel for order #4521 arrived damaged (ticket T-77).", customer_id="jane",
        session_id=session.id, tags=("customer:jane", "refund"), entities=entities,
    )
    store.write_memories([rec(m, vec(0, 1, 0, 0), customer_ids=("jane",), orders=("4521",), tickets=("T-77",), others=(email,))])
    return m, session
