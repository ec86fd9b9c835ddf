"""Plain, frozen data types passed between the layers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MEMORY_TYPES = ("episodic", "semantic", "procedural", "working")
# An agent id (the tenant): 1-128 letters, digits or _ . : @ -, starting with a letter or digit.
AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Entity:
    """Something a memory mentions: an order, a ticket, an e-mail, a person..."""

    kind: str
    value: str
    key: str


def is_live(expires_at: datetime | None, now: datetime) -> bool:
    """Whether a memory that expires at ``expires_at`` (None: never) is live at ``now``: the
    one rule every read applies (an expired memory is never returned, even before the
    sweep deletes it). Storage states it once in Cypher too (storage/embedded/rows.py LIVE)."""
    return expires_at is None or expires_at > now


@dataclass(frozen=True, slots=True)
class Memory:
    id: str
    agent_id: str
    content: str
    importance: float
    tags: tuple[str, ...]
    memory_type: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    session_id: str | None = None
    customer_id: str | None = None
    expires_at: datetime | None = None
    access_count: int = 0
    entities: tuple[Entity, ...] = ()
    # Hygiene (issue 3): see app/domain/hygiene.py and app/domain/consolidation.py.
    reinforce_count: int = 0
    last_seen_at: datetime | None = None
    states: tuple[str, ...] = ()
    superseded_by: str | None = None
    kind: str | None = None  # "summary" for a session's consolidation memory
    # Only on the result of a store: True when that store reinforced this existing
    # near-duplicate instead of creating a new memory.
    deduplicated: bool = False

    @property
    def orders(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.entities if e.kind == "order")

    @property
    def tickets(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.entities if e.kind == "ticket")


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    agent_id: str
    started_at: datetime
    customer_id: str | None = None
    ended_at: datetime | None = None
    summary: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    memory_count: int = 0

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    agent_id: str
    name: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One memory to store, as a caller describes it (validated by memory.py)."""

    agent_id: str
    content: str
    importance: float = 0.5
    tags: tuple[str, ...] = ()
    session_id: str | None = None
    customer_id: str | None = None
    memory_type: str = "episodic"
    metadata: dict[str, Any] | None = None
    created_at: datetime | None = None
    ttl_seconds: int | None = None
    expires_at: datetime | None = None
    # False: storing into an ended session is SESSION_ENDED (GraphQL). True: it is stored
    # and linked anyway (Dakera's REST semantics: the answer reports the session state).
    allow_ended_session: bool = False
    # For importing history (``casegraph import``): keep the original id and update
    # time, and link orders/tickets the helpdesk knows about without adding tags.
    id: str | None = None
    updated_at: datetime | None = None
    orders: tuple[str, ...] = ()
    tickets: tuple[str, ...] = ()
    ticket_id: str | None = None  # links the memory to this ticket (like a ticket:<id> tag)


@dataclass(frozen=True, slots=True)
class RecallFilter:
    session_id: str | None = None
    customer_id: str | None = None
    tags: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None
    memory_types: tuple[str, ...] = ()
    include_superseded: bool = False

    @property
    def narrows_by_node(self) -> bool:
        """True when a graph node (session/customer) bounds the candidate set."""
        return self.session_id is not None or self.customer_id is not None


@dataclass(frozen=True, slots=True)
class Signals:
    """Each signal is in [0, 1]; the score is their weighted sum (see ranking.py)."""

    semantic: float = 0.0
    keyword: float = 0.0
    importance: float = 0.0
    recency: float = 0.0
    graph: float = 0.0


@dataclass(frozen=True, slots=True)
class RecallHit:
    memory: Memory
    score: float
    signals: Signals
    why: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WakeUp:
    """An agent's start-up context: its top memories by importance and recency, no query."""

    memories: tuple[Memory, ...]
    total_available: int


@dataclass(frozen=True, slots=True)
class Associated:
    """A memory linked through the graph to a recall's results, ``depth`` hops away."""

    memory: Memory
    depth: int
