"""The tickets interface: tickets, their history, their RELATED edges, and the graph an
analyst explores around them.

Owns the records a relation refresh reads and writes (``TicketSource``,
``TicketRefresh``) and the ``TicketStore`` protocol an engine implements
(``storage/embedded/`` is one). Tickets are keyed by (agent, ticket id); a write that
names a ticket marks it stale, and the domain's refresh recomputes its relations.

May import: ``casegraph.domain.models`` and ``casegraph.domain.ticket_models`` (the records).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from casegraph.domain.ticket_models import (
    Count,
    GraphEdge,
    NodeRef,
    Relation,
    Ticket,
    TicketEvent,
)


@dataclass(frozen=True, slots=True)
class TicketSource:
    """One memory linked to a ticket, as the relation refresh needs it."""

    ticket_id: str
    memory_id: str
    content: str
    metadata: str | None
    created_at: datetime
    embedding: list[float]


@dataclass(frozen=True, slots=True)
class TicketRefresh:
    """What a refresh writes back to one ticket."""

    ticket_id: str
    token: str
    embedding: list[float] | None
    similar_floor: float | None
    first_at: datetime | None
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A node of the agent's graph as stored: its reference, its table (``Ticket``,
    ``Customer``, ``Order``, ``Memory``, ``Session`` or ``Entity``) and its properties
    (snake_case; times as the store returns them). How it is shown is the domain's
    (app/domain/display.py)."""

    ref: NodeRef
    table: str
    properties: dict[str, Any]


# (ticket, other ticket, kind, key, shown value) of a key two tickets share.
SharedKey = tuple[str, str, str, str, str]


class TicketStore(Protocol):
    """Tickets: reads, updates, the relation refresh, exploration and aggregates."""

    # -- tickets
    def get_tickets(self, agent_id: str, ids: Sequence[str]) -> dict[str, Ticket]:
        """The tickets among ``ids`` that exist, by id."""
        ...

    def list_tickets(
        self, agent_id: str, *, status: str | None, customer_id: str | None, limit: int, offset: int
    ) -> list[Ticket]:
        """The agent's tickets (of one status, of one customer), newest first, one page."""
        ...

    def update_ticket(
        self, agent_id: str, ticket_id: str, *, fields: dict[str, Any], event: TicketEvent | None
    ) -> None:
        """Set ``fields`` (status, subject, channel, updated_at) and record ``event``."""
        ...

    def ticket_orders(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """The orders each ticket concerns, sorted."""
        ...

    def ticket_customers(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """The customers who raised each ticket, sorted."""
        ...

    def ticket_memory_ids(self, agent_id: str, ids: Sequence[str], now: datetime) -> dict[str, list[str]]:
        """The live memories that mention each ticket, oldest first."""
        ...

    def ticket_events(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
        """Each ticket's recorded events, oldest first."""
        ...

    def tickets_of_memories(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, list[str]]:
        """The tickets each memory mentions."""
        ...

    # -- the relation refresh
    def relations(self, agent_id: str, ids: Iterable[str], min_weight: float) -> dict[str, list[Relation]]:
        """The RELATED edges of each ticket (either direction) at least ``min_weight`` strong."""
        ...

    def stale_tickets(self, limit: int, agent_id: str | None = None) -> list[tuple[str, str, str]]:
        """(agent id, ticket id, refresh token) of tickets whose relations need recomputing,
        by agent then ticket: every agent's, or ``agent_id``'s only."""
        ...

    def ticket_sources(self, agent_id: str, ids: Sequence[str]) -> list[TicketSource]:
        """The memories that mention these tickets, oldest first per ticket."""
        ...

    def mentioned_together(self, agent_id: str, ids: Sequence[str]) -> list[tuple[str, str]]:
        """(ticket, other ticket) pairs that one memory mentions together."""
        ...

    def shared_keys(
        self, agent_id: str, ids: Sequence[str], kind: str, hub_limit: int, entity_kinds: Sequence[str] = ()
    ) -> list[SharedKey]:
        """Every order / customer / entity (of ``entity_kinds``) two tickets share, skipping
        keys shared by more than ``hub_limit`` tickets."""
        ...

    def similar_neighbours(self, agent_id: str, ids: Sequence[str]) -> list[tuple[str, str]]:
        """(ticket, other) pairs already RELATED by similar wording."""
        ...

    def ticket_vectors(self, agent_id: str, ids: Sequence[str]) -> dict[str, tuple[list[float] | None, float | None]]:
        """Stored (embedding, similar_floor) of tickets."""
        ...

    def save_refresh(
        self, agent_id: str, refreshed: Sequence[TicketRefresh], relations: Sequence[Relation], now: datetime
    ) -> int:
        """Replace the refreshed tickets' RELATED edges; return how many were still as read
        (their stale mark cleared)."""
        ...

    # -- exploration
    def find_node(self, agent_id: str, ref: NodeRef) -> StoredNode | None:
        """One node of the agent's graph, or None."""
        ...

    def shortest_path(
        self, agent_id: str, source: NodeRef, target: NodeRef, max_hops: int
    ) -> tuple[list[StoredNode], list[GraphEdge]] | None:
        """The shortest connection (fewest hops) between two nodes, or None."""
        ...

    def neighbours(self, agent_id: str, refs: Iterable[NodeRef]) -> list[tuple[GraphEdge, StoredNode]]:
        """Every walkable edge at ``refs`` with the node at its other end."""
        ...

    # -- aggregates
    def status_counts(self, agent_id: str) -> list[Count]:
        """Tickets per status."""
        ...

    def top_entities(self, agent_id: str, kind: str | None, limit: int) -> list[Count]:
        """The entities (of one kind) that the most tickets mention."""
        ...

    def repeat_customers(self, agent_id: str, min_tickets: int, limit: int) -> list[Count]:
        """Customers with at least ``min_tickets`` tickets, most first."""
        ...
