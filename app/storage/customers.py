"""The customers interface: customers, what they are known by, and what is theirs.

Owns the ``KnownAlias`` record and the ``CustomerStore`` protocol an engine implements
(``storage/embedded/`` is one). A customer is keyed by (agent, customer id); its memories,
sessions, orders and tickets are reached through the links a write made or learned.

Data-subject requests (``CustomerErasure``, with the records it answers) erase one customer
everywhere and read all of theirs. "Everything of a customer" is what the stores link to
them: memories about them (linked, naming them, or stored in their sessions), their
sessions, the Customer record, the aliases no other customer is known by, and the orders,
tickets (with their status history) and entities only their memories mention.

May import: ``casegraph.domain.models`` (the records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from casegraph.domain.models import Customer, Memory, Session

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

    def customers_memories(self, agent_id: str, customer_ids: Sequence[str], now: datetime) -> dict[str, list[Memory]]:
        """Customer id -> its live memories, newest first (those with none are left out)."""
        ...

    def customers_aliases(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[KnownAlias]]:
        """Customer id -> what it is known by, in the order it was learned."""
        ...

    def customers_neighbours(self, agent_id: str, customer_ids: Sequence[str], kind: str) -> dict[str, list[str]]:
        """Customer id -> the sorted ids of its orders (``kind`` "order") or tickets ("ticket")."""
        ...

    def customers_sessions(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[Session]]:
        """Customer id -> its sessions (given at the start or learned later), newest first."""
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


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure removed, per kind of record and per index."""

    memories: int
    sessions: int
    customers: int
    orders: int
    tickets: int
    ticket_events: int
    entities: int
    edges: int
    aliases: int
    vectors: int
    keyword_entries: int


@dataclass(frozen=True, slots=True)
class CustomerRecords:
    """Everything stored about one customer, as records.

    ``orders`` and ``tickets`` are the ids the customer is linked to directly (placed,
    raised); the ones their memories mention are on the memories."""

    customer: Customer | None
    memories: list[Memory]
    sessions: list[Session]
    orders: list[str]
    tickets: list[str]
    aliases: list[KnownAlias]


@dataclass(frozen=True, slots=True)
class TicketStatusEvent:
    kind: str
    status: str | None
    previous: str | None
    note: str | None
    at: datetime | None


@dataclass(frozen=True, slots=True)
class TicketHistory:
    """A ticket as an export shows it: its stored fields and its status events, oldest first."""

    id: str
    status: str | None
    subject: str | None
    channel: str | None
    created_at: datetime | None
    updated_at: datetime | None
    events: list[TicketStatusEvent]


class CustomerErasure(Protocol):
    def erase_customer(self, agent_id: str, customer_id: str) -> Erased:
        """Remove everything of the customer: the graph in one transaction, then the
        memories' vectors and keyword entries. Idempotent (a second call removes 0).
        Tickets that lose memories but stay are marked for their relations to be recomputed."""
        ...

    def customer_records(self, agent_id: str, customer_id: str) -> CustomerRecords:
        """Everything stored about the customer (records in no particular order)."""
        ...

    def ticket_histories(self, agent_id: str, ticket_ids: list[str]) -> list[TicketHistory]:
        """These tickets (those that exist, in the order given) with their status events."""
        ...
