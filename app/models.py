"""Plain, frozen data types passed between the layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MEMORY_TYPES = ("episodic", "semantic", "procedural", "working")


@dataclass(frozen=True, slots=True)
class Entity:
    """Something a memory mentions: an order, a ticket, an e-mail, a person..."""

    kind: str
    value: str
    key: str


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
    # Hygiene (issue 3): see app/hygiene.py and app/consolidation.py.
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
