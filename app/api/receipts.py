"""GraphQL type of an erasure receipt (``forgetCustomer``)."""

from __future__ import annotations

import strawberry
from casegraph.domain import customer_data


@strawberry.type(description="What forgetCustomer removed, per store.")
class ErasureReceipt:
    agent_id: str
    customer_id: str
    memories: int = strawberry.field(description="Memory nodes (with their text and embeddings).")
    sessions: int
    customers: int = strawberry.field(description="Customer nodes (0 when none existed).")
    orders: int = strawberry.field(description="Order nodes no other memory or customer refers to.")
    tickets: int = strawberry.field(description="Ticket nodes no other memory or customer refers to.")
    ticket_events: int = strawberry.field(description="Status events of those tickets.")
    entities: int = strawberry.field(description="Entity nodes (e-mails, phones, names...) only they mentioned.")
    edges: int = strawberry.field(description="Graph relationships removed with those nodes.")
    vectors: int = strawberry.field(description="Vectors removed from the agent's vector index.")
    keyword_entries: int = strawberry.field(description="Entries removed from the keyword (BM25) index.")
    aliases: int = strawberry.field(description="Aliases (names, e-mails, handles...) no other customer is known by.")

    @classmethod
    def from_model(cls, r: customer_data.ErasureReceipt) -> ErasureReceipt:
        return cls(
            agent_id=r.agent_id, customer_id=r.customer_id, memories=r.memories, sessions=r.sessions,
            customers=r.customers, orders=r.orders, tickets=r.tickets, ticket_events=r.ticket_events,
            entities=r.entities,
            edges=r.edges, vectors=r.vectors, keyword_entries=r.keyword_entries, aliases=r.aliases,
        )
