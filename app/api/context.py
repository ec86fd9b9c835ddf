"""Per-request GraphQL context: the services, the caller, the request id and the DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from casegraph.api.auth import NOBODY, Caller, Role, authorize
from casegraph.api.blocking import run_blocking
from casegraph.api.ticket_loaders import TicketLoaders
from casegraph.domain.models import Customer
from casegraph.services import Services
from strawberry.dataloader import DataLoader


@dataclass
class Context:
    services: Services
    request_id: str
    request: Any = None
    # Who is asking (from the request's API key); fail closed when absent.
    caller: Caller = NOBODY
    customers: DataLoader[tuple[str, str], Customer | None] = field(init=False)
    tickets: TicketLoaders = field(init=False)

    def __post_init__(self) -> None:
        self.customers = DataLoader(load_fn=self._load_customers)
        self.tickets = TicketLoaders(self.services, self.caller)

    def require(self, agent_id: str, role: Role = Role.READ) -> str:
        """Raise FORBIDDEN unless the caller holds ``role`` over ``agent_id``; return it."""
        authorize(self.caller, agent_id, role)
        return agent_id

    async def _load_customers(self, keys: list[tuple[str, str]]) -> list[Customer | None]:
        for agent_id in {k[0] for k in keys}:  # loaders check scope too, whoever asks
            authorize(self.caller, agent_id, Role.READ)
        graph = self.services.graph

        def load() -> list[Customer | None]:
            # One query per agent, not per customer.
            agents: dict[str, list[str]] = {}
            for agent_id, customer_id in keys:
                agents.setdefault(agent_id, []).append(customer_id)
            found = {a: graph.get_customers(a, sorted(set(ids))) for a, ids in agents.items()}
            return [found[agent_id].get(customer_id) for agent_id, customer_id in keys]

        return await run_blocking(load)
