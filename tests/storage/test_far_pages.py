"""A page far past the last row is empty, and the process survives it.

Kùzu 0.11.3 segfaults on ``ORDER BY ... SKIP n`` when ``n`` is far past the rows
(docs/kuzu-quirks.md #3), so every paged read asks for ``LIMIT offset+limit`` and skips in
Python. Each read here would take the test process down if one of them used SKIP. The
reads go to the stores directly: the domain refuses offsets past ``MAX_OFFSET`` before
any store sees them, and the stores must survive a far page whoever asks.
"""

from __future__ import annotations

from datetime import UTC, datetime

from casegraph.domain.models import StoreRequest
from casegraph.domain.validation import MAX_OFFSET

A = "support-bot"
FAR = 15_000
assert FAR > MAX_OFFSET


def test_sessions_session_memories_and_tickets_past_the_end_are_empty(services):
    sessions = [services.memories.session_start(A, customer_id="jane-doe") for _ in range(3)]
    for n, session in enumerate(sessions):
        services.memories.store(
            StoreRequest(agent_id=A, content=f"parcel {n} arrived damaged", session_id=session.id, ticket_id=f"T-10{n}")
        )
    graph, tickets, now = services.graph, services.tickets.tickets, datetime.now(UTC)
    # The first page holds everything, then nothing: the rows exist, the offset is past them.
    assert {s.id for s in graph.list_sessions(A, active_only=False, limit=5, offset=0)} == {s.id for s in sessions}
    assert graph.list_sessions(A, active_only=False, limit=5, offset=FAR) == []
    assert len(graph.session_memories(sessions[0].id, now, limit=5, offset=0)) == 1
    assert graph.session_memories(sessions[0].id, now, limit=5, offset=FAR) == []
    page = {"status": None, "limit": 5}
    assert {t.id for t in tickets.list_tickets(A, customer_id=None, offset=0, **page)} == {"T-100", "T-101", "T-102"}
    assert tickets.list_tickets(A, customer_id=None, offset=FAR, **page) == []
    assert tickets.list_tickets(A, customer_id="jane-doe", offset=FAR, **page) == []
