"""Walking the graph for analysts and frontends: shortest paths and neighbourhoods.

Nodes are named by typed references, the same in requests and answers:

    ticket:T-1042    customer:jane-doe    order:4521    memory:<uuid>    session:<uuid>
    entity:product:aquapure 300           (entity:<kind>:<key>)

A bare ticket id (``T-1042``) is accepted for a ticket. Keys are normalised as on
store (``order:#4521`` is ``order:4521``, ``customer:Jane Doe`` is ``customer:jane-doe``).
"""

from __future__ import annotations

from collections.abc import Callable

from casegraph.domain.display import shown
from casegraph.domain.ticket_models import NODE_KINDS, GraphEdge, GraphNode, NodeRef, Subgraph
from casegraph.domain.validation import (
    check_agent_id,
    check_customer_id,
    check_limit,
    check_object_id,
    check_ticket_id,
)
from casegraph.errors import InvalidInput, NodeNotFound
from casegraph.extractors import normalise_order_key
from casegraph.storage.tickets import TicketStore

MAX_PATH_HOPS = 8
MAX_DEPTH = 3
MAX_NODES = 1000
# Neighbourhoods list nodes closest first, and at one distance in this order.
_KIND_ORDER = {kind: i for i, kind in enumerate(("ticket", "customer", "order", "entity", "session", "memory"))}


def parse_node_ref(text: str) -> NodeRef:
    """``kind:key`` (or a bare ticket id) -> NodeRef with the key normalised."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a node reference must not be empty", code="INVALID_NODE_REF")
    text = text.strip()
    kind, sep, key = text.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in NODE_KINDS:
        try:
            return NodeRef("ticket", check_ticket_id(text))
        except InvalidInput:
            raise InvalidInput(
                f"node reference {text[:60]!r} must look like kind:key with kind one of "
                f"{', '.join(NODE_KINDS)} (e.g. ticket:T-1042, customer:jane-doe, order:4521)",
                code="INVALID_NODE_REF",
            ) from None
    key = key.strip()
    try:
        if kind == "ticket":
            key = check_ticket_id(key)
        elif kind == "customer":
            key = check_customer_id(key)
        elif kind == "order":
            key = normalise_order_key(key)
        elif kind in ("memory", "session"):
            key = check_object_id(key, f"{kind} id")
        else:
            entity_kind, sep, entity_key = key.partition(":")
            if not sep or not entity_kind.strip() or not entity_key.strip():
                raise ValueError("an entity reference is entity:<kind>:<key>, e.g. entity:product:aquapure 300")
            key = _entity_key(entity_kind.strip().lower(), " ".join(entity_key.split()))
    except (InvalidInput, ValueError) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else str(exc)
        raise InvalidInput(f"node reference {text[:60]!r}: {message}", code="INVALID_NODE_REF") from None
    return NodeRef(kind, key)


def _entity_key(kind: str, key: str) -> str:
    """Entity keys as the extractors store them (see extractors/rules.py and pipeline.py)."""
    if kind == "tracking":
        key = key.replace(" ", "").upper()
    elif kind == "phone":
        key = ("+" if key.startswith("+") else "") + "".join(c for c in key if c.isdigit())
    else:
        key = key.lower()
    return f"{kind}:{key}"


class GraphExplorer:
    """``catch_up`` runs before a walk: the pending recomputation of RELATED edges
    (``TicketService.catch_up``), so a walk sees the relations of every acknowledged store."""

    def __init__(self, tickets: TicketStore, catch_up: Callable[[str], object] = lambda agent_id: None) -> None:
        self.tickets = tickets
        self.catch_up = catch_up

    def node(self, agent_id: str, ref: NodeRef) -> GraphNode:
        found = self.tickets.find_node(agent_id, ref)
        if found is None:
            raise NodeNotFound(f"{ref} does not exist")
        return shown(found)

    def path(self, agent_id: str, source: str, target: str, max_hops: int = 6) -> Subgraph | None:
        """The shortest connection between two nodes (fewest hops), or None if there is none
        within ``max_hops``. Money and date entities are not walked through."""
        check_agent_id(agent_id)
        if not isinstance(max_hops, int) or not 1 <= max_hops <= MAX_PATH_HOPS:
            raise InvalidInput(f"maxHops must be between 1 and {MAX_PATH_HOPS}", code="INVALID_DEPTH")
        a = self.node(agent_id, parse_node_ref(source))
        b = self.node(agent_id, parse_node_ref(target))
        if a.ref == b.ref:
            return Subgraph(nodes=(a,), edges=())
        self.catch_up(agent_id)
        found = self.tickets.shortest_path(agent_id, a.ref, b.ref, max_hops)
        if found is None:
            return None
        nodes, edges = found
        return Subgraph(nodes=tuple(shown(n) for n in nodes), edges=tuple(edges))

    def neighbourhood(self, agent_id: str, around: str, depth: int = 2, limit: int = 200) -> Subgraph:
        """Nodes within ``depth`` hops of ``around`` (closest first, at most ``limit``) and
        the edges walked to reach them, for drawing. Edges between two nodes of the outermost
        ring are not walked (that would load the ring's own neighbours)."""
        check_agent_id(agent_id)
        if not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
            raise InvalidInput(f"depth must be between 1 and {MAX_DEPTH}", code="INVALID_DEPTH")
        check_limit(limit, MAX_NODES)
        start = self.node(agent_id, parse_node_ref(around))
        nodes: dict[NodeRef, GraphNode] = {start.ref: start}
        edges: dict[tuple[NodeRef, NodeRef, str], GraphEdge] = {}
        frontier = [start.ref]
        truncated = False
        self.catch_up(agent_id)
        for _ in range(depth):
            if not frontier or truncated:
                break
            found = [(edge, shown(n)) for edge, n in self.tickets.neighbours(agent_id, frontier)]
            fresh = {n.ref: n for _, n in found if n.ref not in nodes}
            ordered = sorted(fresh.values(), key=lambda n: (_KIND_ORDER[n.ref.kind], n.ref.key))
            room = limit - len(nodes)
            if len(ordered) > room:
                ordered, truncated = ordered[:room], True
            nodes.update((n.ref, n) for n in ordered)
            frontier = [n.ref for n in ordered]
            for edge, _ in found:
                if edge.source in nodes and edge.target in nodes:
                    edges[(edge.source, edge.target, edge.type)] = edge
        return Subgraph(nodes=tuple(nodes.values()), edges=tuple(edges.values()), truncated=truncated)
