"""Plain, frozen data types for tickets, their relations and graph exploration."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casegraph.domain.models import Memory, Session

TICKET_STATUSES = ("open", "pending", "resolved", "closed")
MAX_CHANNEL = 40
MAX_SUBJECT = 200

# Node kinds a graph reference ("ticket:T-1042", "customer:jane-doe", ...) can name.
NODE_KINDS = ("ticket", "customer", "order", "memory", "session", "entity")


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    agent_id: str
    status: str
    subject: str | None
    channel: str | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason two tickets are related, with the weight it contributes."""

    kind: str  # "order", "customer", "mention", "entity:<kind>", "similar"
    text: str  # "shared order #4521"
    weight: float


@dataclass(frozen=True, slots=True)
class Relation:
    """A RELATED edge as stored: its combined weight and the reasons behind it."""

    a: str  # ticket id
    b: str  # ticket id
    weight: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class RelatedTicket:
    """A ticket reached from another through RELATED edges.

    ``weight`` is the product of the edge weights along the strongest path (a direct
    relation keeps its own weight); ``via`` lists the tickets in between.
    """

    ticket_id: str
    weight: float
    hops: int
    via: tuple[str, ...]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class TicketEvent:
    id: str
    ticket_id: str
    kind: str  # "status"
    status: str
    previous: str | None
    note: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A typed reference to one graph node: ``kind:key`` as the API spells it."""

    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True, slots=True)
class GraphNode:
    ref: NodeRef
    label: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: NodeRef
    target: NodeRef
    type: str
    weight: float | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subgraph:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One dated thing in a customer's history."""

    at: datetime
    kind: str  # memory | session_started | session_ended | ticket_opened | ticket_status
    summary: str
    memory: Memory | None = None
    session: Session | None = None
    ticket_id: str | None = None


@dataclass(frozen=True, slots=True)
class Count:
    """An aggregate row: what is counted (``key``, shown as ``label``) and how many tickets."""

    key: str
    label: str
    count: int
    kind: str | None = None


def snippet(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_subject(content: str) -> str:
    """A ticket's default subject: the first sentence of its first memory."""
    first = content.strip().split("\n", 1)[0]
    for end in (". ", "? ", "! "):
        if end in first:
            first = first.split(end, 1)[0] + end.strip()
            break
    return snippet(first, 120)


def default_channel(metadata: str | None) -> str | None:
    """A ticket's default channel: ``metadata.channel`` of its first memory, if a string."""
    try:
        value = json.loads(metadata or "{}").get("channel")
    except (ValueError, AttributeError):
        return None
    return value[:MAX_CHANNEL] if isinstance(value, str) and value.strip() else None
