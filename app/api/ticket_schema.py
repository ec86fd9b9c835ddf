"""Ticket queries and mutations, mixed into the root Query and Mutation types.

Kept apart from ``schema.py`` so the memory API and the analyst API grow independently;
``schema.Query`` and ``schema.Mutation`` inherit these fields.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from casegraph.api.auth import Role
from casegraph.api.blocking import run_blocking
from casegraph.api.context import Context
from casegraph.api.explore_types import (
    EntityCount,
    GraphEdge,
    GraphNode,
    GraphPath,
    StatusCount,
    Subgraph,
    entity_counts,
)
from casegraph.api.inputs import PageLimit, PageOffset
from casegraph.api.scope import Scope
from casegraph.api.types import CustomerCount, Ticket, TicketStatus
from casegraph.domain.validation import check_agent_id
from strawberry.types import Info


@strawberry.type(description="Ticket counts for one agent.")
class TicketInsights:
    agent_id: strawberry.Private[str]

    @strawberry.field(description="Tickets per status (every status, zero included).")
    async def by_status(self, info: Info[Context, None]) -> list[StatusCount]:
        info.context.require(self.agent_id)
        rows = await run_blocking(info.context.services.tickets.status_counts, self.agent_id)
        return [StatusCount(status=TicketStatus(r.key), count=r.count) for r in rows]

    @strawberry.field(
        description="Entities by the number of tickets whose memories mention them; `kind` narrows "
        "to one kind (product, email, person, org, place, tracking...). Money and dates are left "
        "out unless asked for."
    )
    async def top_entities(
        self, info: Info[Context, None], kind: str | None = None, limit: int = 10
    ) -> list[EntityCount]:
        info.context.require(self.agent_id)
        rows = await run_blocking(info.context.services.tickets.top_entities, self.agent_id, kind, limit)
        return entity_counts(rows)

    @strawberry.field(description="Products by ticket count (topEntities with kind product).")
    async def top_products(self, info: Info[Context, None], limit: int = 10) -> list[EntityCount]:
        info.context.require(self.agent_id)
        rows = await run_blocking(info.context.services.tickets.top_entities, self.agent_id, "product", limit)
        return entity_counts(rows)

    @strawberry.field(description="Customers who raised at least `minTickets` tickets, most first.")
    async def repeat_customers(
        self, info: Info[Context, None], min_tickets: int = 2, limit: int = 20
    ) -> list[CustomerCount]:
        info.context.require(self.agent_id)
        rows = await run_blocking(
            info.context.services.tickets.repeat_customers, self.agent_id, min_tickets, limit
        )
        return [CustomerCount(customer_id=r.key, ticket_count=r.count, agent_id=self.agent_id) for r in rows]


@strawberry.type
class TicketQuery:
    @strawberry.field(
        description="One ticket by id (T-1042, 1042 and 'ticket #1042' are one).", extensions=[Scope(Role.READ)]
    )
    async def ticket(self, info: Info[Context, None], agent_id: str, id: str) -> Ticket:
        found = await run_blocking(info.context.services.tickets.get, agent_id, id)
        info.context.tickets.ticket.prime((agent_id, found.id), found)
        return Ticket(id=strawberry.ID(found.id), agent_id=agent_id)

    @strawberry.field(
        description="Tickets, newest first, optionally by status or customer.", extensions=[Scope(Role.READ)]
    )
    async def tickets(
        self,
        info: Info[Context, None],
        agent_id: str,
        status: TicketStatus | None = None,
        customer_id: str | None = None,
        limit: PageLimit = 50,
        offset: PageOffset = 0,
    ) -> list[Ticket]:
        found = await run_blocking(
            info.context.services.tickets.list_tickets,
            agent_id,
            status=status.value if status is not None else None,
            customer_id=customer_id,
            limit=limit,
            offset=offset,
        )
        for t in found:
            info.context.tickets.ticket.prime((agent_id, t.id), t)
        return [Ticket(id=strawberry.ID(t.id), agent_id=agent_id) for t in found]

    @strawberry.field(
        description="The shortest connection (fewest hops, at most `maxHops`) between two nodes, "
        "e.g. from: \"ticket:T-1042\", to: \"customer:jane-doe\"; null when there is none.",
        extensions=[Scope(Role.READ)],
    )
    async def path(
        self,
        info: Info[Context, None],
        agent_id: str,
        from_: Annotated[strawberry.ID, strawberry.argument(name="from")],
        to: strawberry.ID,
        max_hops: int = 6,
    ) -> GraphPath | None:
        found = await run_blocking(info.context.services.explorer.path, agent_id, str(from_), str(to), max_hops)
        if found is None:
            return None
        return GraphPath(
            nodes=[GraphNode.from_model(n) for n in found.nodes],
            edges=[GraphEdge.from_model(e) for e in found.edges],
        )

    @strawberry.field(
        description="The nodes within `depth` hops (1-3) of `around` and the edges walked to reach them, for "
        "drawing; at most `limit` nodes, closest first.",
        extensions=[Scope(Role.READ)],
    )
    async def graph(
        self, info: Info[Context, None], agent_id: str, around: strawberry.ID, depth: int = 2, limit: int = 200
    ) -> Subgraph:
        found = await run_blocking(info.context.services.explorer.neighbourhood, agent_id, str(around), depth, limit)
        return Subgraph.from_model(found)

    @strawberry.field(description="Aggregates over an agent's tickets.", extensions=[Scope(Role.READ)])
    def ticket_insights(self, info: Info[Context, None], agent_id: str) -> TicketInsights:
        return TicketInsights(agent_id=check_agent_id(agent_id))


@strawberry.type
class TicketMutation:
    @strawberry.mutation(
        description="Change a ticket's status (recorded as a ticket event, with an optional note), "
        "subject or channel.",
        extensions=[Scope(Role.WRITE)],
    )
    async def update_ticket(
        self,
        info: Info[Context, None],
        agent_id: str,
        id: str,
        status: TicketStatus | None = None,
        subject: str | None = None,
        channel: str | None = None,
        note: str | None = None,
    ) -> Ticket:
        updated = await run_blocking(
            info.context.services.tickets.update,
            agent_id,
            id,
            status=status.value if status is not None else None,
            subject=subject,
            channel=channel,
            note=note,
        )
        return Ticket(id=strawberry.ID(updated.id), agent_id=agent_id)
