"""The customers interface: customers, what they are known by, and what is theirs.

Owns the ``KnownAlias`` record and the ``CustomerStore`` protocol an engine implements
(``storage/embedded/`` is one). A customer is keyed by (agent, customer id); its memories,
sessions, orders and tickets are reached through the links a write made or learned.

May import: ``casegraph.domain.models`` (the records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from casegraph.domain.models import Customer, Memory

# Alias node key -> (its value, the ids it leads to: customers or sessions).
AliasMatches = dict[str, tuple[str, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class KnownAlias:
    """An alias as the store keeps it for one customer: learned from ``source`` (a memory
    id, or the customer's id itself) at ``at``."""

    kind: str
    key: str
    value: str
    source: str
    at: datetime


class CustomerStore(Protocol):
    """Customers and what links to them."""

    def get_customer(self, agent_id: str, customer_id: str) -> Customer | None:
        """One customer, or None."""
        ...

    def get_customers(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, Customer]:
        """Several customers in one call (those that exist)."""
        ...

    def customer_memories(self, agent_id: str, customer_id: str, now: datetime) -> list[Memory]:
        """The customer's live memories, newest first."""
        ...

    def customer_orders(self, agent_id: str, customer_id: str) -> list[str]:
        """The ids of the orders the customer placed, sorted."""
        ...

    def customer_tickets(self, agent_id: str, customer_id: str) -> list[str]:
        """The ids of the tickets the customer raised, sorted."""
        ...

    def customer_session_memories(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories (and summaries) of these customers'
        sessions."""
        ...

    def memory_customers(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, list[str]]:
        """The customers each memory is about, sorted."""
        ...

    def customer_aliases(self, agent_id: str, customer_id: str) -> list[KnownAlias]:
        """What the customer is known by, in the order it was learned."""
        ...

    def alias_customers(self, agent_id: str, node_keys: Sequence[str]) -> AliasMatches:
        """For each alias node key (``kind:key``) that exists: its value and the ids of the
        customers known by it."""
        ...

    def alias_sessions(self, agent_id: str, node_keys: Sequence[str]) -> AliasMatches:
        """For each alias node key said in sessions whose customer was never given: its
        value and those sessions (with the sessions that share a contact with them)."""
        ...

    def aliases_forgotten(self) -> None:
        """Customers or aliases were deleted behind the store's back: forget what it
        remembers of their links."""
        ...
