"""GraphQL types of the wake-up context (``customerContext``)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from casegraph.api.types import Customer, Memory, RecallHit, Ticket
from casegraph.domain.customer_context import CustomerContext as CustomerContextModel


@strawberry.type(description="A ticket of the customer that is not resolved or closed.")
class OpenTicket:
    ticket: Ticket
    status: str = strawberry.field(description="Stored status, or the state its newest memory states.")
    last_activity_at: datetime | None
    latest: Memory | None = strawberry.field(description="Its newest current memory.")


@strawberry.type(description="What a bot should know about a customer before the first message.")
class CustomerContext:
    customer: Customer
    memories: list[RecallHit] = strawberry.field(
        description="Current memories ranked by importance and recency (signals and why included)."
    )
    open_tickets: list[OpenTicket]

    @classmethod
    def from_model(cls, c: CustomerContextModel) -> CustomerContext:
        agent_id = c.customer.agent_id
        return cls(
            customer=Customer.from_model(c.customer),
            memories=[RecallHit.from_model(h) for h in c.memories],
            open_tickets=[
                OpenTicket(
                    ticket=Ticket(id=strawberry.ID(t.id), agent_id=agent_id),
                    status=t.status,
                    last_activity_at=t.last_activity_at,
                    latest=Memory.from_model(t.latest) if t.latest else None,
                )
                for t in c.open_tickets
            ],
        )
