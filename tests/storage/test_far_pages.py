"""A page far past the last row is empty, and the process survives it.

Kùzu 0.11.3 segfaults on ``ORDER BY ... SKIP n`` when ``n`` is far past the rows
(docs/kuzu-quirks.md #3), so every paged read asks for ``LIMIT offset+limit`` and skips in
Python. Each read here would take the test process down if one of them used SKIP.
"""

from __future__ import annotations

from casegraph.domain.models import StoreRequest

A = "support-bot"
FAR = 15_000


def test_sessions_session_memories_and_tickets_past_the_end_are_empty(services):
    sessions = [services.memories.session_start(A, customer_id="jane-doe") for _ in range(3)]
    for n, session in enumerate(sessions):
        services.memories.store(
            StoreRequest(agent_id=A, content=f"parcel {n} arrived damaged", session_id=session.id, ticket_id=f"T-10{n}")
        )
    # The first page holds everything, then nothing: the rows exist, the offset is past them.
    assert {s.id for s in services.memories.list_sessions(A, limit=5)} == {s.id for s in sessions}
    assert services.memories.list_sessions(A, limit=5, offset=FAR) == []
    assert len(services.memories.session_memories(sessions[0].id, limit=5)) == 1
    assert services.memories.session_memories(sessions[0].id, limit=5, offset=FAR) == []
    assert {t.id for t in services.tickets.list_tickets(A, limit=5)} == {"T-100", "T-101", "T-102"}
    assert services.tickets.list_tickets(A, limit=5, offset=FAR) == []
    assert services.tickets.list_tickets(A, customer_id="jane-doe", limit=5, offset=FAR) == []
