"""``session_mentions``: the memories in sessions that mention an order, a ticket or an
entity, with their session, position, the session's start and whether it ended; memories
outside sessions and other agents' memories are not among them. On both engines
(tests/storage/backends.py); the embedded engine walks tickets in two steps (sessions.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from casegraph.domain.models import Entity, Memory, Session
from casegraph.domain.records import with_node_links
from casegraph.storage.memories import MemoryRecord

from tests.storage.backends import open_store

NOW = datetime.now(UTC).replace(microsecond=0)
A, B = "agent-a", "agent-b"


def rec(agent: str, content: str, session: str | None, **links) -> MemoryRecord:
    m = Memory(id=str(uuid.uuid4()), agent_id=agent, content=content, importance=0.5, tags=(),
               memory_type="episodic", metadata={}, created_at=NOW, updated_at=NOW, session_id=session)
    return with_node_links(MemoryRecord(memory=m, embedding=np.asarray([1, 0, 0, 0], dtype=np.float32), **links))


def test_session_mentions_of_orders_tickets_and_entities(tmp_path):
    store = open_store(tmp_path)
    try:
        first = Session(id=str(uuid.uuid4()), agent_id=A, started_at=NOW - timedelta(hours=2), customer_id="c1")
        second = Session(id=str(uuid.uuid4()), agent_id=A, started_at=NOW - timedelta(hours=1))
        theirs = Session(id=str(uuid.uuid4()), agent_id=B, started_at=NOW)
        for s in (first, second, theirs):
            store.create_session(s)
        wifi = Entity(kind="product", key="router", value="router")
        a1 = rec(A, "T-7 opened about order 4521", first.id, tickets=("T-7",), orders=("4521",))
        a2 = rec(A, "router reset did not help on T-7", first.id, tickets=("T-7",), others=(wifi,))
        a3 = rec(A, "order 4521 arrived", second.id, orders=("4521",))
        loose = rec(A, "T-7 noted outside any session", None, tickets=("T-7",))
        b1 = rec(B, "their T-7 and order 4521", theirs.id, tickets=("T-7",), orders=("4521",))
        for r in (a1, a2, a3, loose, b1):
            store.write_memories([r])
        store.end_session(first.id, NOW, None)

        def mentions(kind: str, key: str) -> set[tuple[str, str, int, bool]]:
            rows = store.session_mentions(A, kind, key, 200)
            assert all(start is not None for _, _, _, start, _ in rows)
            return {(m, s, seq, ended) for m, s, seq, _, ended in rows}

        assert mentions("ticket", "T-7") == {(a1.memory.id, first.id, 1, True), (a2.memory.id, first.id, 2, True)}
        assert mentions("order", "4521") == {(a1.memory.id, first.id, 1, True), (a3.memory.id, second.id, 1, False)}
        assert mentions("entity", "product:router") == {(a2.memory.id, first.id, 2, True)}
        assert mentions("ticket", "T-8") == set()
        assert {r[0] for r in store.session_mentions(B, "ticket", "T-7", 200)} == {b1.memory.id}
        assert len(store.session_mentions(A, "ticket", "T-7", 1)) == 1
    finally:
        store.close()
