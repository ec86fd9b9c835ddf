"""Per-request GraphQL context: the services, the caller, the request id and the DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from casegraph.api.auth import NOBODY, Caller, Role, authorize
from casegraph.api.loaders import NodeLoaders, TicketLoaders
from casegraph.services import Services


@dataclass
class Context:
    services: Services
    request_id: str
    request: Any = None
    # Who is asking (from the request's API key); fail closed when absent.
    caller: Caller = NOBODY
    nodes: NodeLoaders = field(init=False)
    tickets: TicketLoaders = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = NodeLoaders(self.services, self.caller)
        self.tickets = TicketLoaders(self.services, self.caller)

    def require(self, agent_id: str, role: Role = Role.READ) -> str:
        """Raise FORBIDDEN unless the caller holds ``role`` over ``agent_id``; return it."""
        authorize(self.caller, agent_id, role)
        return agent_id
