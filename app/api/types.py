"""GraphQL object and input types, and their mapping from the domain models."""

from __future__ import annotations

from datetime import datetime

import strawberry
from casegraph.api.context import Context
from casegraph.api.ticket_types import Ticket, TimelineEvent
from casegraph.domain import models
from strawberry.scalars import JSON
from strawberry.types import Info


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
    async def memories(self, info: Info[Context, None], limit: int = 100) -> list[Memory]:
        info.context.require(self.agent_id)
        found = await info.context.nodes.customer_memories.load((self.agent_id, str(self.id)))
        return [Memory.from_model(m) for m in found[: max(limit, 0)]]

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
        self, info: Info[Context, None], limit: int = 200, since: datetime | None = None
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
        if not self.customer_id:
            return None
        info.context.require(self.agent_id)
        found = await info.context.nodes.customer.load((self.agent_id, self.customer_id))
        return Customer.from_model(found) if found else None

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
        if not self.customer_id:
            return None
        info.context.require(self.agent_id)
        found = await info.context.nodes.customer.load((self.agent_id, self.customer_id))
        return Customer.from_model(found) if found else None

    @strawberry.field(description="The memory that consolidates this session (set when it ended).")
    async def summary_memory(self, info: Info[Context, None]) -> Memory | None:
        info.context.require(self.agent_id)
        found = await info.context.nodes.session_summary.load((self.agent_id, str(self.id)))
        return Memory.from_model(found) if found else None


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


@strawberry.input
class StoreMemoryInput:
    agent_id: str
    content: str
    importance: float = 0.5
    tags: list[str] | None = None
    session_id: strawberry.ID | None = None
    customer_id: str | None = None
    memory_type: str = strawberry.field(
        default="episodic", description="episodic (default), semantic, procedural or working"
    )
    metadata: JSON | None = None
    created_at: datetime | None = strawberry.field(
        default=None, description="When it happened (for importing history); defaults to now."
    )
    ttl_seconds: int | None = strawberry.field(default=None, description="Forget it after this long.")
    ticket_id: str | None = strawberry.field(
        default=None, description="Link it to this ticket (like a ticket:<id> tag), e.g. T-1042."
    )

    def to_model(self) -> models.StoreRequest:
        return models.StoreRequest(
            agent_id=self.agent_id,
            content=self.content,
            importance=self.importance,
            tags=tuple(self.tags or ()),
            session_id=str(self.session_id) if self.session_id is not None else None,
            customer_id=self.customer_id,
            memory_type=self.memory_type,
            metadata=self.metadata,
            created_at=self.created_at,
            ttl_seconds=self.ttl_seconds,
            ticket_id=self.ticket_id,
        )


@strawberry.input
class RecallFilter:
    session_id: strawberry.ID | None = None
    customer_id: str | None = None
    tags: list[str] | None = strawberry.field(default=None, description="Any of these tags.")
    since: datetime | None = None
    until: datetime | None = None
    min_importance: float | None = None
    memory_types: list[str] | None = None
    include_superseded: bool = strawberry.field(
        default=False, description="Also return superseded (out-of-date) memories, ranked below current ones."
    )

    def to_model(self) -> models.RecallFilter:
        return models.RecallFilter(
            session_id=str(self.session_id) if self.session_id is not None else None,
            customer_id=self.customer_id,
            tags=tuple(self.tags or ()),
            since=self.since,
            until=self.until,
            min_importance=self.min_importance,
            memory_types=tuple(self.memory_types or ()),
            include_superseded=self.include_superseded,
        )

