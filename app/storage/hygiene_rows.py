"""Row mapping for hygiene and customer context, shared by both engines: what their reads
return, folded into the records of app/storage/hygiene.py.

The rows are the engines' own (the same columns in both: see the statements that call
these); how they become ``Neighbour`` and ``TicketActivity`` records is written once here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from casegraph.domain.models import Entity
from casegraph.storage.hygiene import Neighbour, TicketActivity
from casegraph.times import utc

# The columns of a dedup candidate row, in this order (after them, the engine may add the
# embedding): c.uid, m.id, m.content, m.memory_type, m.entities, m.states, m.importance,
# m.reinforce_count, m.created_at, m.last_seen_at.
_CREATED_AT = 8


def newest_per_customer(
    rows: Iterable[Sequence[Any]], by_uid: Mapping[str, str], customer_ids: Sequence[str], limit: int
) -> dict[str, list[Sequence[Any]]]:
    """Customer id -> its candidate rows, newest first, at most ``limit`` (stable order)."""
    grouped: dict[str, list[Sequence[Any]]] = {c: [] for c in customer_ids}
    for r in rows:
        grouped[by_uid[r[0]]].append(r)
    for found in grouped.values():
        found.sort(key=lambda r: r[_CREATED_AT], reverse=True)
        del found[int(limit):]
    return grouped


def neighbour(r: Sequence[Any], embedding: Any) -> Neighbour:
    """A dedup candidate row (columns above) and its embedding, as a ``Neighbour``."""
    return Neighbour(
        id=r[1],
        content=r[2],
        embedding=np.asarray(embedding, dtype=np.float32),
        memory_type=r[3],
        entities=tuple(Entity(kind=k, value=v, key=key) for k, v, key in json.loads(r[4] or "[]")),
        states=tuple(r[5] or ()),
        importance=float(r[6]),
        reinforce_count=int(r[7] or 0),
        created_at=utc(r[8]),
        last_seen_at=utc(r[9]),
    )


def ticket_activity(
    tickets: Sequence[Sequence[Any]], rows: Iterable[Sequence[Any]]
) -> list[TicketActivity]:
    """A customer's tickets as wake-up context sees them.

    ``tickets``: (uid, id, status) of each; ``rows``: (ticket uid, memory id, created_at,
    states, current?) of their live ordinary memories, oldest first."""
    last: dict[str, datetime | None] = {}
    newest: dict[str, str] = {}
    newest_current: dict[str, str] = {}
    ticket_states: dict[str, tuple[str, ...]] = {}
    for uid, memory_id, created_at, states, current in rows:
        last[uid] = utc(created_at)
        newest[uid] = memory_id
        if current:
            newest_current[uid] = memory_id
            # The newest current memory that states the ticket's own state decides it.
            if states and any(s.startswith("ticket:") for s in states):
                ticket_states[uid] = tuple(states)
    return [
        TicketActivity(
            id=key,
            status=status,
            last_activity_at=last.get(uid),
            latest_states=ticket_states.get(uid, ()),
            latest_memory_id=newest_current.get(uid) or newest.get(uid),
        )
        for uid, key, status in tickets
    ]
