"""The GraphQL object types and their mapping from the domain's records.

Memories, customers, orders, sessions and tickets link to one another, so their types live
together here; each nested field resolves through a per-request DataLoader
(``info.context.nodes`` and ``info.context.tickets``, app/api/loaders.py), so a list nested
in a list costs one round trip per field, not one per object. Inputs are in
``api/inputs.py``; graph exploration and count types in ``api/explore_types.py``.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from casegraph.api.context import Context
from casegraph.api.inputs import PageLimit
from casegraph.domain import models
from casegraph.domain import ticket_models as tm
from casegraph.domain.tickets import check_depth, check_weight
from casegraph.domain.validation import check_limit
from casegraph.errors import TicketNotFound
from strawberry.scalars import JSON
from strawberry.types import Info


async def customer_of(info: Info[Context, None], agent_id: str, customer_id: str | None) -> Customer | None:
    """The customer a memory or a session belongs to, through the request's loader."""
    if not customer_id:
        return None
    info.context.require(agent_id)
    found = await info.context.nodes.customer.load((agent_id, customer_id))
    return Customer.from_model(found) if found else None

@strawberry.type(description="Something a memory mentions: an order, a ticket, an e-mail, a person...")
class Entity:
    kind: str
    value: str
    key: str


@strawberry.type(description="A customer order, keyed by its normalised number (#4521 and 'order 4521' are one).")
class Order:
    id: strawberry.ID
    agent_id: strawberry.Private[str]

    @strawberry.field(description="The memories that mention this order.")
    async def memories(self, info: Info[Context, None]) -> list[Memory]:
        info.context.require(self.agent_id)
        found = await info.context.nodes.order_memories.load((self.agent_id, str(self.id)))
        return [Memory.from_model(m) for m in found]


@strawberry.type(description="Something a customer is known by, and where it was learned.")
class CustomerAlias:
    kind: str = strawberry.field(description="name, email, phone or handle.")
    key: str = strawberry.field(description="The normalised form a query is matched on.")
    value: str = strawberry.field(description="As it was first said.")
    source: str = strawberry.field(description='The id of the memory it was learned from, or "id" (the customer id).')
    learned_at: datetime


@strawberry.type
class Customer:
    id: strawberry.ID
    agent_id: str
    name: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, c: models.Customer) -> Customer:
        return cls(id=strawberry.ID(c.id), agent_id=c.agent_id, name=c.name, created_at=c.created_at)

    @strawberry.field(description="This customer's memories, newest first.")
    async def memories(self, info: Info[Context, None], limit: PageLimit = 100) -> list[Memory]:
        info.context.require(self.agent_id)
        check_limit(limit)
        found = await info.context.nodes.customer_memories.load((self.agent_id, str(self.id)))
        return [Memory.from_model(m) for m in found[:limit]]

    @strawberry.field(description="What this customer is known by (names, e-mails, phones, account handles), "
                      "learned from its memories and its id; a query naming one finds the customer.")
    async def aliases(self, info: Info[Context, None]) -> list[CustomerAlias]:
        info.context.require(self.agent_id)
        found = await info.context.nodes.customer_aliases.load((self.agent_id, str(self.id)))
        return [CustomerAlias(kind=a.kind, key=a.key, value=a.value, source=a.source, learned_at=a.at) for a in found]

    @strawberry.field
    async def orders(self, info: Info[Context, None]) -> list[Order]:
        info.context.require(self.agent_id)
        keys = await info.context.nodes.customer_orders.load((self.agent_id, str(self.id)))
        return [Order(id=strawberry.ID(k), agent_id=self.agent_id) for k in keys]

    @strawberry.field
    async def tickets(self, info: Info[Context, None]) -> list[Ticket]:
        info.context.require(self.agent_id)
        keys = await info.context.nodes.customer_tickets.load((self.agent_id, str(self.id)))
        return [Ticket(id=strawberry.ID(k), agent_id=self.agent_id) for k in keys]

    @strawberry.field
    async def sessions(self, info: Info[Context, None]) -> list[Session]:
        info.context.require(self.agent_id)
        found = await info.context.nodes.customer_sessions.load((self.agent_id, str(self.id)))
        return [Session.from_model(s) for s in found]

    @strawberry.field(description="Memories, sessions and ticket events in time order (oldest first).")
    async def timeline(
        self, info: Info[Context, None], limit: PageLimit = 200, since: datetime | None = None
    ) -> list[TimelineEvent]:
        info.context.require(self.agent_id)
        found = await info.context.nodes.timeline.load((self.agent_id, str(self.id), limit, since))
        return [TimelineEvent.from_model(self.agent_id, e) for e in found]


@strawberry.type
class Memory:
    id: strawberry.ID
    agent_id: str
    content: str
    importance: float
    tags: list[str]
    memory_type: str
    metadata: JSON
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    session_id: strawberry.ID | None
    customer_id: str | None
    entities: list[Entity]
    deduplicated: bool = strawberry.field(
        description="On a store result: true when this store reinforced this existing near-duplicate "
        "memory instead of creating a new one. False everywhere else."
    )
    reinforce_count: int = strawberry.field(description="How many near-duplicate stores reinforced it.")
    last_seen_at: datetime | None = strawberry.field(description="When a near-duplicate was last stored.")
    states: list[str] = strawberry.field(description='State statements it makes, e.g. "refund:approved".')
    superseded_by: strawberry.ID | None = strawberry.field(
        description="The newer memory that changed the state this one states (kept for history)."
    )
    kind: str | None = strawberry.field(description='"summary" for a session\'s consolidation memory.')
    _model: strawberry.Private[models.Memory]

    @classmethod
    def from_model(cls, m: models.Memory) -> Memory:
        return cls(
            id=strawberry.ID(m.id),
            agent_id=m.agent_id,
            content=m.content,
            importance=m.importance,
            tags=list(m.tags),
            memory_type=m.memory_type,
            metadata=m.metadata,
            created_at=m.created_at,
            updated_at=m.updated_at,
            expires_at=m.expires_at,
            session_id=strawberry.ID(m.session_id) if m.session_id else None,
            customer_id=m.customer_id,
            entities=[Entity(kind=e.kind, value=e.value, key=e.key) for e in m.entities],
            deduplicated=m.deduplicated,
            reinforce_count=m.reinforce_count,
            last_seen_at=m.last_seen_at,
            states=list(m.states),
            superseded_by=strawberry.ID(m.superseded_by) if m.superseded_by else None,
            kind=m.kind,
            _model=m,
        )

    @strawberry.field(description="The customer this memory is about (tags, customerId or its session).")
    async def customer(self, info: Info[Context, None]) -> Customer | None:
        return await customer_of(info, self.agent_id, self.customer_id)

    @strawberry.field(description="Orders this memory mentions or is tagged with.")
    def orders(self) -> list[Order]:
        return [Order(id=strawberry.ID(k), agent_id=self.agent_id) for k in self._model.orders]

    @strawberry.field(description="Tickets this memory mentions or is tagged with.")
    def tickets(self) -> list[Ticket]:
        return [Ticket(id=strawberry.ID(k), agent_id=self.agent_id) for k in self._model.tickets]


@strawberry.type
class Session:
    id: strawberry.ID
    agent_id: str
    customer_id: str | None
    started_at: datetime
    ended_at: datetime | None
    summary: str | None
    metadata: JSON
    memory_count: int

    @classmethod
    def from_model(cls, s: models.Session) -> Session:
        return cls(
            id=strawberry.ID(s.id),
            agent_id=s.agent_id,
            customer_id=s.customer_id,
            started_at=s.started_at,
            ended_at=s.ended_at,
            summary=s.summary,
            metadata=s.metadata,
            memory_count=s.memory_count,
        )

    @strawberry.field
    def active(self) -> bool:
        return self.ended_at is None

    @strawberry.field(description="Memories stored in this session, oldest first.")
    async def memories(self, info: Info[Context, None]) -> list[Memory]:
        info.context.require(self.agent_id)
        found = await info.context.nodes.session_memories.load((self.agent_id, str(self.id)))
        return [Memory.from_model(m) for m in found]

    @strawberry.field
    async def customer(self, info: Info[Context, None]) -> Customer | None:
        return await customer_of(info, self.agent_id, self.customer_id)

    @strawberry.field(description="The memory that consolidates this session (set when it ended).")
    async def summary_memory(self, info: Info[Context, None]) -> Memory | None:
        info.context.require(self.agent_id)
        found = await info.context.nodes.session_summary.load((self.agent_id, str(self.id)))
        return Memory.from_model(found) if found else None


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
        ids = await info.context.tickets.customers.load((self.agent_id, str(self.id)))
        found = await info.context.nodes.customer.load_many([(self.agent_id, c) for c in ids])
        return [Customer.from_model(c) for c in found if c is not None]

    @strawberry.field(description="The customer who raised it (the first, if several did).")
    async def customer(self, info: Info[Context, None]) -> Customer | None:
        customers = await self._customers(info)
        return customers[0] if customers else None

    @strawberry.field(description="Everyone who raised it (usually one customer).")
    async def customers(self, info: Info[Context, None]) -> list[Customer]:
        return await self._customers(info)

    @strawberry.field(description="Orders it concerns.")
    async def orders(self, info: Info[Context, None]) -> list[Order]:
        ids = await info.context.tickets.orders.load((self.agent_id, str(self.id)))
        return [Order(id=strawberry.ID(o), agent_id=self.agent_id) for o in ids]

    @strawberry.field(description="Memories linked to it, oldest first.")
    async def memories(self, info: Info[Context, None], limit: PageLimit = 100) -> list[Memory]:
        check_limit(limit)
        ids = await info.context.tickets.memory_ids.load((self.agent_id, str(self.id)))
        found = await info.context.nodes.memory.load_many([(self.agent_id, m) for m in ids[:limit]])
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
        self, info: Info[Context, None], depth: int = 1, min_weight: float = 0.0, limit: PageLimit = 50
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
    memory: Memory | None
    session: Session | None
    ticket: Ticket | None

    @classmethod
    def from_model(cls, agent_id: str, e: tm.TimelineEvent) -> TimelineEvent:
        return cls(
            at=e.at, kind=e.kind, summary=e.summary,
            memory=Memory.from_model(e.memory) if e.memory else None,
            session=Session.from_model(e.session) if e.session else None,
            ticket=Ticket(id=strawberry.ID(e.ticket_id), agent_id=agent_id) if e.ticket_id else None,
        )


@strawberry.type
class CustomerCount:
    customer_id: str
    ticket_count: int
    agent_id: strawberry.Private[str]

    @strawberry.field
    async def customer(self, info: Info[Context, None]) -> Customer | None:
        found = await info.context.nodes.customer.load((self.agent_id, self.customer_id))
        return Customer.from_model(found) if found else None


@strawberry.type(description="Each signal is in [0, 1]; score is their weighted sum.")
class Signals:
    semantic: float
    keyword: float
    importance: float
    recency: float
    graph: float


@strawberry.type
class RecallHit:
    memory: Memory
    score: float
    signals: Signals
    why: list[str] = strawberry.field(description="Short reasons this memory surfaced.")

    @classmethod
    def from_model(cls, h: models.RecallHit) -> RecallHit:
        s = h.signals
        return cls(
            memory=Memory.from_model(h.memory),
            score=round(h.score, 6),
            signals=Signals(
                semantic=round(s.semantic, 6),
                keyword=round(s.keyword, 6),
                importance=round(s.importance, 6),
                recency=round(s.recency, 6),
                graph=round(s.graph, 6),
            ),
            why=list(h.why),
        )
