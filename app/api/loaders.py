"""Per-request DataLoaders: a nested query costs one round trip per field, not per object.

Each loader collects the keys one level of a query asks for and answers them with one
batch call into the domain (grouped by agent, and for ``related`` by its arguments), e.g.
``sessions { customer { memories { id } orders { memories { id } } tickets { status } } }``
or ``ticket { related(depth: 2) { ticket { status orders { id } customer { id } } } }`` run
a fixed number of storage calls however many sessions, customers or tickets come back.

Every key's agent is checked against the caller before anything is loaded: whatever field
asked for it, nothing of an agent outside the caller's scope is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from typing import Any, TypeVar

from casegraph.api.auth import NOBODY, Caller, Role, authorize
from casegraph.api.blocking import run_blocking
from casegraph.domain.models import Customer, Memory, Session
from casegraph.domain.readers import KnownAlias
from casegraph.domain.ticket_models import RelatedTicket, Ticket, TicketEvent, TimelineEvent
from casegraph.services import Services
from strawberry.dataloader import DataLoader

V = TypeVar("V")
K = TypeVar("K", bound=tuple)


def grouped(
    fetch: Callable[..., dict[Any, V]], default: Callable[[], V], caller: Caller
) -> Callable[[list[K]], Awaitable[list[V]]]:
    """A batch function for keys ``(agent id, key, *arguments)`` from
    ``fetch(agent_id, keys, *arguments) -> {key: value}``: one call per agent and arguments."""

    async def load(keys: list[K]) -> list[V]:
        for agent_id in {k[0] for k in keys}:
            authorize(caller, agent_id, Role.READ)

        def run() -> list[V]:
            groups: dict[tuple[Hashable, ...], list[Any]] = {}
            for agent_id, key, *arguments in keys:
                groups.setdefault((agent_id, *arguments), []).append(key)
            found: dict[tuple[Hashable, ...], V] = {}
            for (agent_id, *arguments), ids in groups.items():
                for key, value in fetch(agent_id, sorted(set(ids)), *arguments).items():
                    found[(agent_id, key, *arguments)] = value
            return [found.get(k, default()) for k in keys]

        return await run_blocking(run)

    return load


def _list() -> list[Any]:
    return []


def _none() -> None:
    return None


class NodeLoaders:
    """Customers, orders and sessions and what links to them, keyed by (agent id, id)."""

    def __init__(self, services: Services, caller: Caller = NOBODY) -> None:
        nodes = services.nodes
        self.customer: DataLoader[tuple[str, str], Customer | None] = DataLoader(
            grouped(nodes.customers, _none, caller))
        self.memory: DataLoader[tuple[str, str], Memory | None] = DataLoader(grouped(nodes.memories, _none, caller))
        self.customer_memories: DataLoader[tuple[str, str], list[Memory]] = DataLoader(
            grouped(nodes.customers_memories, _list, caller))
        self.customer_aliases: DataLoader[tuple[str, str], list[KnownAlias]] = DataLoader(
            grouped(nodes.customers_aliases, _list, caller))
        self.customer_orders: DataLoader[tuple[str, str], list[str]] = DataLoader(
            grouped(nodes.customers_orders, _list, caller))
        self.customer_tickets: DataLoader[tuple[str, str], list[str]] = DataLoader(
            grouped(nodes.customers_tickets, _list, caller))
        self.customer_sessions: DataLoader[tuple[str, str], list[Session]] = DataLoader(
            grouped(nodes.customers_sessions, _list, caller))
        self.order_memories: DataLoader[tuple[str, str], list[Memory]] = DataLoader(
            grouped(nodes.orders_memories, _list, caller))
        self.session_memories: DataLoader[tuple[str, str], list[Memory]] = DataLoader(
            grouped(nodes.sessions_memories, _list, caller))
        self.session_summary: DataLoader[tuple[str, str], Memory | None] = DataLoader(
            grouped(nodes.sessions_summaries, _none, caller))
        # (agent id, customer id, limit, since) -> its timeline
        self.timeline: DataLoader[tuple[str, str, int, datetime | None], list[TimelineEvent]] = DataLoader(
            grouped(nodes.timelines, _list, caller))


class TicketLoaders:
    """Tickets and what links to them, keyed by (agent id, ticket id) unless said otherwise."""

    def __init__(self, services: Services, caller: Caller = NOBODY) -> None:
        tickets = services.tickets
        self.ticket: DataLoader[tuple[str, str], Ticket | None] = DataLoader(grouped(tickets.get_many, _none, caller))
        self.orders: DataLoader[tuple[str, str], list[str]] = DataLoader(grouped(tickets.orders, _list, caller))
        self.customers: DataLoader[tuple[str, str], list[str]] = DataLoader(grouped(tickets.customers, _list, caller))
        self.memory_ids: DataLoader[tuple[str, str], list[str]] = DataLoader(
            grouped(tickets.memory_ids, _list, caller))
        self.events: DataLoader[tuple[str, str], list[TicketEvent]] = DataLoader(
            grouped(tickets.events, _list, caller))
        # (agent id, ticket id, depth, min weight, limit) -> related tickets
        self.related: DataLoader[tuple[str, str, int, float, int], list[RelatedTicket]] = DataLoader(
            grouped(self._related(services), _list, caller))

    @staticmethod
    def _related(services: Services) -> Callable[..., dict[str, list[RelatedTicket]]]:
        def fetch(
            agent_id: str, ticket_ids: list[str], depth: int, min_weight: float, limit: int
        ) -> dict[str, list[RelatedTicket]]:
            return services.tickets.related(agent_id, ticket_ids, depth=depth, min_weight=min_weight, limit=limit)

        return fetch
