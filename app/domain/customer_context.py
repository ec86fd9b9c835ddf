"""Wake-up context: what a bot should know about a customer before the first message.

``customer_context`` needs no query: it ranks the customer's current memories (not
expired, not superseded) by importance and recency, and lists the tickets still open.
A ticket is open unless its stored status says resolved/closed or its newest memory that
states something about it says so ("ticket T-1042 resolved", see states.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from casegraph.domain.clock import Clock
from casegraph.domain.models import Customer, Memory, RecallHit
from casegraph.domain.ranking import Candidate, RecallConfig, rank
from casegraph.domain.states import topics
from casegraph.domain.validation import check_agent_id, check_customer_id, check_limit
from casegraph.errors import CustomerNotFound
from casegraph.ops.settings import Settings
from casegraph.storage.customers import CustomerStore
from casegraph.storage.hygiene import CustomerContextStore, TicketActivity
from casegraph.storage.memories import MemoryStore

# Tickets in these states are no longer open (case-insensitive).
CLOSED_TICKET_STATES = ("resolved", "closed")
# Weights of the context ranking: no query, so only the priors count.
CONTEXT_CONFIG = RecallConfig(
    name="context", semantic_weight=0.0, keyword_weight=0.0, graph_weight=0.0,
    importance_weight=0.5, recency_weight=0.5, use_vectors=False, use_keywords=False, use_graph=False,
)


@dataclass(frozen=True, slots=True)
class OpenTicket:
    id: str
    status: str
    last_activity_at: datetime | None
    latest: Memory | None


@dataclass(frozen=True, slots=True)
class CustomerContext:
    customer: Customer
    memories: tuple[RecallHit, ...]
    open_tickets: tuple[OpenTicket, ...]


class CustomerContextService:
    """customerContext: reads customers, memories and the customer's ticket activity."""

    def __init__(
        self,
        settings: Settings,
        customers: CustomerStore,
        memories: MemoryStore,
        context: CustomerContextStore,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.customers = customers
        self.memories = memories
        self.store = context
        self.clock = clock

    def customer_context(
        self, agent_id: str, customer_id: str, limit: int = 10, *, now: datetime | None = None
    ) -> CustomerContext:
        """The customer's most important and most recent memories, and their open tickets
        (at ``now``, the service clock by default)."""
        settings = self.settings
        now = now or self.clock()
        check_agent_id(agent_id)
        cid = check_customer_id(customer_id)
        check_limit(limit, settings.max_top_k)
        customer = self.customers.get_customer(agent_id, cid or "")
        if customer is None:
            raise CustomerNotFound(f"customer {customer_id!r} does not exist")

        tickets = [t for t in self.store.customer_ticket_activity(agent_id, customer.id, now) if _is_open(t)]
        tickets.sort(key=lambda t: (t.last_activity_at is None, -(t.last_activity_at or now).timestamp(), t.id))
        open_ids = {t.id for t in tickets}

        # Current memories only: a superseded statement is history, not context.
        memories = {
            m.id: m for m in self.customers.customer_memories(agent_id, customer.id, now) if m.superseded_by is None
        }
        config = CONTEXT_CONFIG.with_half_life(settings.recency_half_life_days)
        candidates = [
            Candidate(
                memory_id=m.id, semantic=0.0, keyword_bm25=0.0, graph=0.0, importance=m.importance,
                created_at=m.last_seen_at or m.created_at, is_summary=m.kind == "summary",
            )
            for m in memories.values()
        ]
        ranked = rank(candidates, now=now, config=config, top_k=limit)
        hits = []
        for r in ranked:
            m = memories[r.memory_id]
            why = [*r.why, *(f"about open ticket {t}" for t in m.tickets if t in open_ids)]
            hits.append(RecallHit(m, r.score, r.signals, tuple(why)))

        latest_ids = [t.latest_memory_id for t in tickets if t.latest_memory_id]
        latest = self.memories.get_memories(agent_id, latest_ids) if latest_ids else {}
        open_tickets = tuple(
            OpenTicket(
                id=t.id,
                status=_status(t),
                last_activity_at=t.last_activity_at,
                latest=latest.get(t.latest_memory_id or ""),
            )
            for t in tickets
        )
        return CustomerContext(customer=customer, memories=tuple(hits), open_tickets=open_tickets)


def _status(t: TicketActivity) -> str:
    stated = topics(t.latest_states).get("ticket")
    return stated or (t.status or "open").lower()


def _is_open(t: TicketActivity) -> bool:
    return _status(t) not in CLOSED_TICKET_STATES and (t.status or "").lower() not in CLOSED_TICKET_STATES
