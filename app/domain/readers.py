"""The read side behind nested fields: customers, orders and sessions, and what links to them,
for many at once.

Owns ``NodeReader``. Each operation takes one agent and many keys and answers them in a
fixed number of storage calls, whatever their number: the API's per-request DataLoaders
collect the keys one level of a query asks for (the memories of every customer in a list,
say) and make one call. The rules of what a read returns live here, not in the API:
expired memories are never returned, a customer's sessions are newest first and capped.

May import: the storage interfaces (``casegraph.storage.customers``, ``.sessions``,
``.memories``), the domain's records and validators, ``casegraph.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

from casegraph.domain.memory import Clock, check_agent_id, check_customer_id
from casegraph.domain.models import Customer, Memory, Session
from casegraph.errors import CustomerNotFound
from casegraph.storage.customers import CustomerStore, KnownAlias
from casegraph.storage.memories import MemoryStore
from casegraph.storage.sessions import SessionStore

# A customer's sessions a read returns, newest first.
MAX_CUSTOMER_SESSIONS = 1000


class NodeReader:
    """Batch reads of customers, orders and sessions, for one agent at a time."""

    def __init__(
        self, customers: CustomerStore, sessions: SessionStore, memories: MemoryStore, clock: Clock
    ) -> None:
        self._customers = customers
        self._sessions = sessions
        self._memories = memories
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
        ids = self._customers.customers_neighbours(check_agent_id(agent_id), customer_ids, "session")
        found = self._sessions.get_sessions(sorted({s for owned in ids.values() for s in owned}))
        out: dict[str, list[Session]] = {}
        for customer_id, owned in ids.items():
            sessions = sorted((found[s] for s in owned if s in found), key=lambda s: s.id)
            sessions.sort(key=lambda s: s.started_at, reverse=True)  # stable: ties stay in id order
            out[customer_id] = sessions[:MAX_CUSTOMER_SESSIONS]
        return out

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
