"""Data-subject requests for one customer of one agent: export everything, erase everything.

"Everything of a customer" is what the graph links to them: memories ``ABOUT`` them (tags
``customer:<id>``, ``customerId``, stored in their session, or stored in a session before
it learned its customer), their sessions (``HAD_SESSION``, also learned late), the
Customer node, the aliases it is known by (names, e-mails, phones, handles) that no other
customer shares, and the orders, tickets (with their status events) and entities
(e-mails, phones, names...) that only their memories mention. Erasure deletes all of it in one
graph transaction, then removes the memories' vectors and keyword-index entries (the
storage side: CustomerErasure in app/storage/customers.py). An order, ticket or entity that another
customer's memory also mentions stays, and such a ticket's relations are recomputed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from casegraph.domain.clock import Clock
from casegraph.domain.models import Memory, Session
from casegraph.domain.validation import check_agent_id, check_customer_id
from casegraph.storage.customers import CustomerErasure, TicketHistory
from casegraph.times import iso

log = logging.getLogger("casegraph.customer_data")


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """What an erasure removed, per store."""

    agent_id: str
    customer_id: str
    memories: int
    sessions: int
    customers: int
    orders: int
    tickets: int
    ticket_events: int
    entities: int
    edges: int
    vectors: int
    keyword_entries: int
    aliases: int = 0


class CustomerDataService:
    """exportCustomer / forgetCustomer.

    ``on_change`` runs after an erasure that removed memories (the write path's change
    listeners: tickets that lost memories get their relations recomputed)."""

    def __init__(
        self, store: CustomerErasure, clock: Clock, on_change: Callable[[], object] | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.on_change = on_change

    def forget_customer(self, agent_id: str, customer_id: str) -> ErasureReceipt:
        """Erase one customer of one agent everywhere; idempotent (a second call removes 0)."""
        agent_id = check_agent_id(agent_id)
        customer_id = check_customer_id(customer_id)
        erased = self.store.erase_customer(agent_id, customer_id)
        if self.on_change is not None and erased.memories:
            self.on_change()
        receipt = ErasureReceipt(agent_id=agent_id, customer_id=customer_id, **asdict(erased))
        log.info("erased customer %s of agent %s: %s", customer_id, agent_id, asdict(receipt))
        return receipt

    def export_customer(self, agent_id: str, customer_id: str) -> dict[str, Any]:
        """Everything stored about one customer, as plain JSON-ready data."""
        agent_id = check_agent_id(agent_id)
        customer_id = check_customer_id(customer_id)
        now = self.clock()
        found = self.store.customer_records(agent_id, customer_id)
        memories = sorted(found.memories, key=lambda m: (m.created_at, m.id))
        sessions = sorted(found.sessions, key=lambda s: s.id)
        customer = found.customer
        entities = {(e.kind, e.key): e for m in memories for e in m.entities}
        tickets = sorted(set(found.tickets) | {t for m in memories for t in m.tickets})
        return {
            "agentId": agent_id,
            "customerId": customer_id,
            "exportedAt": iso(now),
            "customer": None if customer is None else {
                "id": customer.id, "name": customer.name, "createdAt": iso(customer.created_at),
            },
            "memories": [_memory_json(m) for m in memories],
            "sessions": [_session_json(s) for s in sessions],
            "orders": sorted(set(found.orders) | {o for m in memories for o in m.orders}),
            "tickets": [_ticket_json(t) for t in self.store.ticket_histories(agent_id, tickets)],
            "entities": [
                {"kind": e.kind, "value": e.value, "key": e.key} for _, e in sorted(entities.items())
            ],
            "aliases": [
                {"kind": a.kind, "value": a.value, "key": a.key, "source": a.source, "learnedAt": iso(a.at)}
                for a in found.aliases
            ],
        }


def _ticket_json(t: TicketHistory) -> dict[str, Any]:
    return {
        "id": t.id, "status": t.status, "subject": t.subject, "channel": t.channel,
        "createdAt": iso(t.created_at), "updatedAt": iso(t.updated_at),
        "events": [{"kind": e.kind, "status": e.status, "previous": e.previous, "note": e.note, "at": iso(e.at)}
                   for e in t.events],
    }


def _memory_json(m: Memory) -> dict[str, Any]:
    return {
        "id": m.id, "content": m.content, "importance": m.importance, "tags": list(m.tags),
        "memoryType": m.memory_type, "metadata": m.metadata, "createdAt": iso(m.created_at),
        "updatedAt": iso(m.updated_at), "expiresAt": iso(m.expires_at), "sessionId": m.session_id,
        "customerId": m.customer_id,
        "entities": [{"kind": e.kind, "value": e.value, "key": e.key} for e in m.entities],
    }


def _session_json(s: Session) -> dict[str, Any]:
    return {
        "id": s.id, "customerId": s.customer_id, "startedAt": iso(s.started_at), "endedAt": iso(s.ended_at),
        "summary": s.summary, "metadata": s.metadata, "memoryCount": s.memory_count,
    }
