"""DataLoaders for tickets: a nested query costs one round trip per field, not per ticket.

Each loader collects the keys a resolver level asks for and answers them with one batch
call (grouped by agent, and for ``related`` by its arguments), e.g.
``ticket { related(depth: 2) { ticket { status orders { id } customer { id } } } }``
runs a fixed number of graph queries however many related tickets there are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from casegraph.api.auth import NOBODY, Caller, Role, authorize
from casegraph.api.blocking import run_blocking
from casegraph.domain.models import Memory
from casegraph.domain.ticket_models import RelatedTicket, Ticket, TicketEvent
from casegraph.domain.tickets import TicketService
from casegraph.services import Services
from strawberry.dataloader import DataLoader

K = TypeVar("K", bound=tuple)
V = TypeVar("V")


def _by_agent(
    fetch: Callable[[str, list[str]], dict[str, V]], default: Callable[[], Any], caller: Caller
) -> Callable[[list[tuple[str, str]]], Any]:
    """A batch function for (agent id, key) pairs from ``fetch(agent_id, keys) -> {key: value}``.

    Every key's agent is checked against the caller first: whatever field asked for it,
    nothing of an agent outside the caller's scope is loaded.
    """

    async def load(keys: list[tuple[str, str]]) -> list[V]:
        for agent_id in {k[0] for k in keys}:
            authorize(caller, agent_id, Role.READ)

        def run() -> list[V]:
            found: dict[tuple[str, str], V] = {}
            agents: dict[str, list[str]] = {}
            for agent_id, key in keys:
                agents.setdefault(agent_id, []).append(key)
            for agent_id, ids in agents.items():
                for key, value in fetch(agent_id, sorted(set(ids))).items():
                    found[(agent_id, key)] = value
            return [found.get(k, default()) for k in keys]

        return await run_blocking(run)

    return load


class TicketLoaders:
    """Per-request loaders, keyed by (agent id, ticket id) unless said otherwise."""

    def __init__(self, services: Services, caller: Caller = NOBODY) -> None:
        tickets = services.tickets
        graph = services.graph
        self.ticket: DataLoader[tuple[str, str], Ticket | None] = DataLoader(
            _by_agent(tickets.get_many, lambda: None, caller)
        )
        self.orders: DataLoader[tuple[str, str], list[str]] = DataLoader(_by_agent(tickets.orders, list, caller))
        self.customers: DataLoader[tuple[str, str], list[str]] = DataLoader(
            _by_agent(tickets.customers, list, caller)
        )
        self.memory_ids: DataLoader[tuple[str, str], list[str]] = DataLoader(
            _by_agent(tickets.memory_ids, list, caller)
        )
        self.events: DataLoader[tuple[str, str], list[TicketEvent]] = DataLoader(
            _by_agent(tickets.events, list, caller)
        )
        # (agent id, memory id) -> Memory
        self.memory: DataLoader[tuple[str, str], Memory | None] = DataLoader(
            _by_agent(graph.get_memories, lambda: None, caller)
        )
        # (agent id, ticket id, depth, min weight, limit) -> related tickets
        self.related: DataLoader[tuple[str, str, int, float, int], list[RelatedTicket]] = DataLoader(
            self._load_related(tickets, caller)
        )

    @staticmethod
    def _load_related(tickets: TicketService, caller: Caller) -> Callable[[list[tuple[str, str, int, float, int]]], Any]:
        async def load(keys: list[tuple[str, str, int, float, int]]) -> list[list[RelatedTicket]]:
            for agent_id in {k[0] for k in keys}:
                authorize(caller, agent_id, Role.READ)

            def run() -> list[list[RelatedTicket]]:
                groups: dict[tuple[str, int, float, int], list[str]] = {}
                for agent_id, ticket_id, depth, min_weight, limit in keys:
                    groups.setdefault((agent_id, depth, min_weight, limit), []).append(ticket_id)
                found: dict[tuple[str, str, int, float, int], list[RelatedTicket]] = {}
                for (agent_id, depth, min_weight, limit), ids in groups.items():
                    answer = tickets.related(agent_id, ids, depth=depth, min_weight=min_weight, limit=limit)
                    for ticket_id, hits in answer.items():
                        found[(agent_id, ticket_id, depth, min_weight, limit)] = hits
                return [found.get(k, []) for k in keys]

            return await run_blocking(run)

        return load

