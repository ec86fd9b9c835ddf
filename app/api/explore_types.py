"""GraphQL types for graph exploration (subgraphs, paths) and ticket counts.

They hold plain values from the domain (``casegraph.domain.ticket_models``); the types that
link to memories, customers and tickets are in ``api/types.py``.
"""

from __future__ import annotations

import strawberry
from casegraph.api.types import TicketStatus
from casegraph.domain import ticket_models as tm
from strawberry.scalars import JSON


@strawberry.type(description="A graph node, named by a typed reference such as ticket:T-1042.")
class GraphNode:
    id: strawberry.ID = strawberry.field(description="kind:key, e.g. ticket:T-1042, customer:jane-doe, order:4521")
    kind: str = strawberry.field(description="ticket, customer, order, memory, session or entity")
    key: str
    label: str = strawberry.field(description="A short human-readable name for drawing.")
    properties: JSON

    @classmethod
    def from_model(cls, n: tm.GraphNode) -> GraphNode:
        return cls(
            id=strawberry.ID(str(n.ref)), kind=n.ref.kind, key=n.ref.key, label=n.label,
            properties=n.properties,
        )


@strawberry.type
class GraphEdge:
    source: strawberry.ID
    target: strawberry.ID
    type: str = strawberry.field(description="RELATED, MENTIONS, ABOUT, RAISED, CONCERNS, PLACED, IN_SESSION...")
    weight: float | None = strawberry.field(description="RELATED edges only.")
    reasons: list[str]

    @classmethod
    def from_model(cls, e: tm.GraphEdge) -> GraphEdge:
        return cls(
            source=strawberry.ID(str(e.source)), target=strawberry.ID(str(e.target)), type=e.type,
            weight=e.weight, reasons=list(e.reasons),
        )


@strawberry.type(description="Nodes and edges, ready to draw.")
class Subgraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool = strawberry.field(description="True when the node limit cut the walk short.")

    @classmethod
    def from_model(cls, g: tm.Subgraph) -> Subgraph:
        return cls(
            nodes=[GraphNode.from_model(n) for n in g.nodes],
            edges=[GraphEdge.from_model(e) for e in g.edges],
            truncated=g.truncated,
        )


@strawberry.type(description="The shortest connection between two nodes, in order from `from` to `to`.")
class GraphPath:
    nodes: list[GraphNode]
    edges: list[GraphEdge]

    @strawberry.field(description="Number of edges.")
    def length(self) -> int:
        return len(self.edges)


@strawberry.type
class StatusCount:
    status: TicketStatus
    count: int


@strawberry.type(description="An entity and how many tickets mention it.")
class EntityCount:
    kind: str
    key: str
    value: str
    ticket_count: int


def entity_counts(rows: list[tm.Count]) -> list[EntityCount]:
    return [
        EntityCount(kind=r.kind or "", key=r.key.split(":", 1)[1], value=r.label, ticket_count=r.count)
        for r in rows
    ]
