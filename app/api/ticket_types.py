"""GraphQL types for tickets, relations, timelines, graph exploration and aggregates.

Every field that needs the graph resolves through a DataLoader (``info.context.tickets``),
so lists of tickets nested in lists of tickets stay one round trip per field.
Memory, Customer, Order and Session live in ``casegraph.api.types`` (imported lazily: that
module imports this one).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from casegraph.api.context import Context
from casegraph.domain import ticket_models as tm
from casegraph.domain.tickets import check_depth, check_limit, check_weight
from casegraph.errors import TicketNotFound
from strawberry.scalars import JSON
from strawberry.types import Info

if TYPE_CHECKING:
    from casegraph.api.types import Customer, Memory, Order, Session

_TYPES = "casegraph.api.types"
LazyMemory = Annotated["Memory", strawberry.lazy(_TYPES)]
LazyCustomer = Annotated["Customer", strawberry.lazy(_TYPES)]
LazyOrder = Annotated["Order", strawberry.lazy(_TYPES)]
LazySession = Annotated["Session", strawberry.lazy(_TYPES)]


@strawberry.enum(description="Where a ticket stands.")
class TicketStatus(Enum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


@strawberry.type(description="A support ticket, keyed like T-1042.")
class Ticket:
    id: strawberry.ID
    agent_id: strawberry.Private[str]

    async def _model(self, info: Info[Context, None]) -> tm.Ticket:
        found = await info.context.tickets.ticket.load((self.agent_id, str(self.id)))
        if found is None:
            raise TicketNotFound(f"ticket {self.id!r} does not exist")
        return found

    @strawberry.field
    async def status(self, info: Info[Context, None]) -> TicketStatus:
        return TicketStatus((await self._model(info)).status)

    @strawberry.field(description="Set with updateTicket; defaults to the first sentence of its first memory.")
    async def subject(self, info: Info[Context, None]) -> str | None:
        return (await self._model(info)).subject

    @strawberry.field(description="Set with updateTicket; defaults to its first memory's metadata.channel.")
    async def channel(self, info: Info[Context, None]) -> str | None:
        return (await self._model(info)).channel

    @strawberry.field(description="When its earliest memory happened.")
    async def created_at(self, info: Info[Context, None]) -> datetime | None:
        return (await self._model(info)).created_at

    @strawberry.field
    async def updated_at(self, info: Info[Context, None]) -> datetime | None:
        return (await self._model(info)).updated_at

    async def _customers(self, info: Info[Context, None]) -> list[Customer]:
        from casegraph.api.types import Customer

        ids = await info.context.tickets.customers.load((self.agent_id, str(self.id)))
        found = await info.context.nodes.customer.load_many([(self.agent_id, c) for c in ids])
        return [Customer.from_model(c) for c in found if c is not None]

    @strawberry.field(description="The customer who raised it (the first, if several did).")
    async def customer(self, info: Info[Context, None]) -> LazyCustomer | None:
        customers = await self._customers(info)
        return customers[0] if customers else None

    @strawberry.field(description="Everyone who raised it (usually one customer).")
    async def customers(self, info: Info[Context, None]) -> list[LazyCustomer]:
        return await self._customers(info)

    @strawberry.field(description="Orders it concerns.")
    async def orders(self, info: Info[Context, None]) -> list[LazyOrder]:
        from casegraph.api.types import Order

        ids = await info.context.tickets.orders.load((self.agent_id, str(self.id)))
        return [Order(id=strawberry.ID(o), agent_id=self.agent_id) for o in ids]

    @strawberry.field(description="Memories linked to it, oldest first.")
    async def memories(self, info: Info[Context, None], limit: int = 100) -> list[LazyMemory]:
        from casegraph.api.types import Memory

        ids = await info.context.tickets.memory_ids.load((self.agent_id, str(self.id)))
        found = await info.context.nodes.memory.load_many([(self.agent_id, m) for m in ids[: max(limit, 0)]])
        return [Memory.from_model(m) for m in found if m is not None]

    @strawberry.field(description="Status changes, oldest first.")
    async def events(self, info: Info[Context, None]) -> list[TicketEvent]:
        found = await info.context.tickets.events.load((self.agent_id, str(self.id)))
        return [TicketEvent.from_model(e) for e in found]

    @strawberry.field(
        description="Tickets within `depth` RELATED hops (1-3), strongest first. A path's weight is "
        "the product of its edge weights; paths weaker than `minWeight` are not followed."
    )
    async def related(
        self, info: Info[Context, None], depth: int = 1, min_weight: float = 0.0, limit: int = 50
    ) -> list[RelatedTicket]:
        key = (self.agent_id, str(self.id), check_depth(depth), check_weight(min_weight), check_limit(limit))
        found = await info.context.tickets.related.load(key)
        return [RelatedTicket.from_model(self.agent_id, r) for r in found]


@strawberry.type(description="One reason two tickets are related, and the weight it adds.")
class RelationReason:
    kind: str = strawberry.field(
        description="mention, order, customer, similar, via, or an entity kind (product, email...)"
    )
    text: str
    weight: float


@strawberry.type
class RelatedTicket:
    ticket: Ticket
    weight: float = strawberry.field(description="0-1; noisy-or of the reasons, times earlier hops' weights.")
    hops: int
    via: list[Ticket] = strawberry.field(description="Tickets in between (empty for a direct relation).")
    reasons: list[str] = strawberry.field(description='e.g. "shared order #4521", "same customer jane-doe".')
    reason_details: list[RelationReason]

    @classmethod
    def from_model(cls, agent_id: str, r: tm.RelatedTicket) -> RelatedTicket:
        return cls(
            ticket=Ticket(id=strawberry.ID(r.ticket_id), agent_id=agent_id),
            weight=r.weight,
            hops=r.hops,
            via=[Ticket(id=strawberry.ID(t), agent_id=agent_id) for t in r.via],
            reasons=[x.text for x in r.reasons],
            reason_details=[RelationReason(kind=x.kind, text=x.text, weight=x.weight) for x in r.reasons],
        )


@strawberry.type
class TicketEvent:
    id: strawberry.ID
    kind: str
    status: TicketStatus
    previous: TicketStatus | None
    note: str | None
    at: datetime

    @classmethod
    def from_model(cls, e: tm.TicketEvent) -> TicketEvent:
        return cls(
            id=strawberry.ID(e.id), kind=e.kind, status=TicketStatus(e.status),
            previous=TicketStatus(e.previous) if e.previous else None, note=e.note, at=e.at,
        )


@strawberry.type(description="One dated entry of a customer's history.")
class TimelineEvent:
    at: datetime
    kind: str = strawberry.field(
        description="memory, session_started, session_ended, ticket_opened or ticket_status"
    )
    summary: str
    memory: LazyMemory | None
    session: LazySession | None
    ticket: Ticket | None

    @classmethod
    def from_model(cls, agent_id: str, e: tm.TimelineEvent) -> TimelineEvent:
        from casegraph.api.types import Memory, Session

        return cls(
            at=e.at, kind=e.kind, summary=e.summary,
            memory=Memory.from_model(e.memory) if e.memory else None,
            session=Session.from_model(e.session) if e.session else None,
            ticket=Ticket(id=strawberry.ID(e.ticket_id), agent_id=agent_id) if e.ticket_id else None,
        )


@strawberry.type(description="A graph node, named by a typed reference such as ticket:T-1042.")
class GraphNode:
    id: strawberry.ID = strawberry.field(description="kind:key, e.g. ticket:T-1042, customer:jane-doe, order:4521")
    kind: str = strawberry.field(description="ticket, customer, order, memory, session or entity")
    key: str
    label: str = strawberry.field(description="A short human-readable name for drawing.")
    properties: JSON

    @classmethod
    def from_model(cls, n: tm.GraphNode) -> GraphNode:
        return cls(
            id=strawberry.ID(str(n.ref)), kind=n.ref.kind, key=n.ref.key, label=n.label,
            properties=n.properties,
        )


@strawberry.type
class GraphEdge:
    source: strawberry.ID
    target: strawberry.ID
    type: str = strawberry.field(description="RELATED, MENTIONS, ABOUT, RAISED, CONCERNS, PLACED, IN_SESSION...")
    weight: float | None = strawberry.field(description="RELATED edges only.")
    reasons: list[str]

    @classmethod
    def from_model(cls, e: tm.GraphEdge) -> GraphEdge:
        return cls(
            source=strawberry.ID(str(e.source)), target=strawberry.ID(str(e.target)), type=e.type,
            weight=e.weight, reasons=list(e.reasons),
        )


@strawberry.type(description="Nodes and edges, ready to draw.")
class Subgraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool = strawberry.field(description="True when the node limit cut the walk short.")

    @classmethod
    def from_model(cls, g: tm.Subgraph) -> Subgraph:
        return cls(
            nodes=[GraphNode.from_model(n) for n in g.nodes],
            edges=[GraphEdge.from_model(e) for e in g.edges],
            truncated=g.truncated,
        )


@strawberry.type(description="The shortest connection between two nodes, in order from `from` to `to`.")
class GraphPath:
    nodes: list[GraphNode]
    edges: list[GraphEdge]

    @strawberry.field(description="Number of edges.")
    def length(self) -> int:
        return len(self.edges)


@strawberry.type
class StatusCount:
    status: TicketStatus
    count: int


@strawberry.type(description="An entity and how many tickets mention it.")
class EntityCount:
    kind: str
    key: str
    value: str
    ticket_count: int


@strawberry.type
class CustomerCount:
    customer_id: str
    ticket_count: int
    agent_id: strawberry.Private[str]

    @strawberry.field
    async def customer(self, info: Info[Context, None]) -> LazyCustomer | None:
        from casegraph.api.types import Customer

        found = await info.context.nodes.customer.load((self.agent_id, self.customer_id))
        return Customer.from_model(found) if found else None


def entity_counts(rows: list[tm.Count]) -> list[EntityCount]:
    return [
        EntityCount(kind=r.kind or "", key=r.key.split(":", 1)[1], value=r.label, ticket_count=r.count)
        for r in rows
    ]
