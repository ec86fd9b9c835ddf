"""The read side behind nested fields: customers, orders and sessions, and what links to them,
for many at once.

Owns ``NodeReader``. Each operation takes one agent and many keys and answers them in a
fixed number of storage calls, whatever their number: the API's per-request DataLoaders
collect the keys one level of a query asks for (the memories of every customer in a list,
say) and make one call. The rules of what a read returns live here, not in the API:
expired memories are never returned, a customer's sessions are newest first and capped,
and a customer's timeline (memories, sessions, ticket events) is assembled here.

May import: the storage interfaces (``casegraph.storage.customers``, ``.sessions``,
``.memories``, ``.tickets``), the domain's records and validators, ``casegraph.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from casegraph.domain.clock import Clock
from casegraph.domain.models import Customer, Memory, Session
from casegraph.domain.ticket_models import Ticket, TicketEvent, TimelineEvent, snippet
from casegraph.domain.validation import as_utc, check_agent_id, check_customer_id, check_limit
from casegraph.errors import CustomerNotFound
from casegraph.storage.customers import CustomerStore, KnownAlias
from casegraph.storage.memories import MemoryStore
from casegraph.storage.sessions import SessionStore
from casegraph.storage.tickets import TicketStore

# A customer's sessions a read returns, newest first.
MAX_CUSTOMER_SESSIONS = 1000
# Events at the same instant, in the order they happen.
_TIMELINE_ORDER = {"session_started": 0, "ticket_opened": 1, "memory": 2, "ticket_status": 3, "session_ended": 4}


class NodeReader:
    """Batch reads of customers, orders and sessions, for one agent at a time."""

    def __init__(
        self,
        customers: CustomerStore,
        sessions: SessionStore,
        memories: MemoryStore,
        tickets: TicketStore,
        clock: Clock,
    ) -> None:
        self._customers = customers
        self._sessions = sessions
        self._memories = memories
        self._tickets = tickets
        self._clock = clock

    def customer(self, agent_id: str, customer_id: str) -> Customer:
        """One customer; ``CustomerNotFound`` when it does not exist."""
        check_agent_id(agent_id)
        cid = check_customer_id(customer_id)
        found = self._customers.get_customer(agent_id, cid)
        if found is None:
            raise CustomerNotFound(f"customer {customer_id!r} does not exist")
        return found

    def customers(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, Customer]:
        """The customers among ``customer_ids`` that exist, by id."""
        return self._customers.get_customers(check_agent_id(agent_id), customer_ids)

    def memories(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        """The agent's memories among ``memory_ids``, by id."""
        return self._memories.get_memories(check_agent_id(agent_id), memory_ids)

    def customers_memories(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[Memory]]:
        """Customer id -> its live memories, newest first."""
        return self._customers.customers_memories(check_agent_id(agent_id), customer_ids, self._clock())

    def customers_aliases(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[KnownAlias]]:
        """Customer id -> what it is known by, in the order it was learned."""
        return self._customers.customers_aliases(check_agent_id(agent_id), customer_ids)

    def customers_orders(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[str]]:
        """Customer id -> the ids of the orders it placed, sorted."""
        return self._customers.customers_neighbours(check_agent_id(agent_id), customer_ids, "order")

    def customers_tickets(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[str]]:
        """Customer id -> the ids of the tickets it raised, sorted."""
        return self._customers.customers_neighbours(check_agent_id(agent_id), customer_ids, "ticket")

    def customers_sessions(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[Session]]:
        """Customer id -> its sessions (given at the start or learned later), newest first,
        at most ``MAX_CUSTOMER_SESSIONS``."""
        found = self._customers.customers_sessions(check_agent_id(agent_id), customer_ids)
        return {c: sessions[:MAX_CUSTOMER_SESSIONS] for c, sessions in found.items()}

    def orders_memories(self, agent_id: str, order_ids: Sequence[str]) -> dict[str, list[Memory]]:
        """Order id -> the live memories that mention it or are tagged with it, oldest first."""
        return self._memories.orders_memories(check_agent_id(agent_id), order_ids, self._clock())

    def sessions_memories(self, agent_id: str, session_ids: Sequence[str]) -> dict[str, list[Memory]]:
        """Session id -> its live memories, in the order they were stored."""
        return self._sessions.sessions_live_memories(check_agent_id(agent_id), session_ids, self._clock())

    def sessions_summaries(self, agent_id: str, session_ids: Sequence[str]) -> dict[str, Memory]:
        """Session id -> the memory that consolidates it, for the sessions ended with one."""
        summaries = self._sessions.sessions_summaries(check_agent_id(agent_id), session_ids)
        found = self._memories.get_memories(agent_id, sorted(set(summaries.values())))
        return {s: found[m] for s, m in summaries.items() if m in found}

    def timelines(
        self, agent_id: str, customer_ids: Sequence[str], limit: int = 200, since: datetime | None = None
    ) -> dict[str, list[TimelineEvent]]:
        """Customer id -> its memories, sessions and ticket events, oldest first: at most
        ``limit``, none before ``since``. ``CustomerNotFound`` when a customer does not exist."""
        check_agent_id(agent_id)
        ids = [check_customer_id(c) or "" for c in customer_ids]
        check_limit(limit)
        since = as_utc(since, "since") if since is not None else None
        known = self._customers.get_customers(agent_id, ids)
        for customer_id in ids:
            if customer_id not in known:
                raise CustomerNotFound(f"customer {customer_id!r} does not exist")
        memories = self.customers_memories(agent_id, ids)
        sessions = self.customers_sessions(agent_id, ids)
        raised = self.customers_tickets(agent_id, ids)
        ticket_ids = sorted({t for owned in raised.values() for t in owned})
        tickets = self._tickets.get_tickets(agent_id, ticket_ids)
        events = self._tickets.ticket_events(agent_id, ticket_ids)
        out = {}
        for c in ids:
            mine = raised.get(c, [])
            timeline = _timeline(
                memories.get(c, []), sessions.get(c, []), [tickets[t] for t in mine if t in tickets],
                {t: events.get(t, []) for t in mine},
            )
            out[c] = [e for e in timeline if since is None or e.at >= since][:limit]
        return out


def _timeline(
    memories: Sequence[Memory], sessions: Sequence[Session], tickets: Sequence[Ticket],
    events: dict[str, list[TicketEvent]],
) -> list[TimelineEvent]:
    """One customer's dated entries, oldest first."""
    out = [TimelineEvent(m.created_at, "memory", snippet(m.content), memory=m) for m in memories]
    for s in sessions:
        out.append(TimelineEvent(s.started_at, "session_started", "session started", session=s))
        if s.ended_at is not None:
            summary = f"session ended: {s.summary}" if s.summary else "session ended"
            out.append(TimelineEvent(s.ended_at, "session_ended", summary, session=s))
    for t in tickets:
        if t.created_at is not None:
            opened = f"{t.id} opened: {t.subject}" if t.subject else f"{t.id} opened"
            out.append(TimelineEvent(t.created_at, "ticket_opened", opened, ticket_id=t.id))
    for ticket_id, history in events.items():
        for e in history:
            text = f"{ticket_id} {e.previous or 'new'} → {e.status}" + (f": {e.note}" if e.note else "")
            out.append(TimelineEvent(e.at, "ticket_status", text, ticket_id=ticket_id))
    out.sort(key=lambda e: (e.at, _TIMELINE_ORDER[e.kind], e.summary))
    return out
