"""The shortest walk between two nodes of an agent's graph, searched from both ends.

Owns the search behind both engines' ``TicketStore.shortest_path``: neither engine's own
shortest path keeps the explorer's rule that money and date entities are not walked
through (Kùzu 0.11's ``SHORTEST`` does not apply a filter on the nodes it passes, it
only drops the unfiltered shortest paths that fail it; FalkorDB has no undirected
``shortestPath`` and no such filter at all). An engine gives one level of the walk,
every walkable edge at some nodes (``edges_at``, its ``neighbours`` that may also end at
the two ends); this module finds the fewest hops. No statements run here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from casegraph.domain.ticket_models import GraphEdge, NodeRef
from casegraph.storage.tickets import StoredNode

# refs, the path's two ends -> (edge, the node at its other end) for every walkable edge
# at refs whose other end is walkable or is one of the two ends.
EdgesAt = Callable[[Sequence[NodeRef], Sequence[NodeRef]], Iterable[tuple[GraphEdge, StoredNode]]]


def shortest_path(
    find_node: Callable[[NodeRef], StoredNode | None],
    edges_at: EdgesAt,
    source: NodeRef,
    target: NodeRef,
    max_hops: int,
) -> tuple[list[StoredNode], list[GraphEdge]] | None:
    """The fewest hops from ``source`` to ``target`` (at most ``max_hops``), or None.

    A breadth-first search from both ends, a level at a time from the end with the
    smaller frontier. The first level that reaches a node the other end has reached
    closes a shortest path: before it no node was within reach of both ends, so every
    path is at least as long as the two searched depths together."""
    first, last = find_node(source), find_node(target)
    if first is None or last is None:
        return None
    nodes = {first.ref: first, last.ref: last}
    ends = [first.ref, last.ref]
    # node -> (the node it was reached from, the edge between them), from each end
    reached: tuple[dict[NodeRef, tuple[NodeRef, GraphEdge] | None], ...] = ({first.ref: None}, {last.ref: None})
    frontiers = [[first.ref], [last.ref]]
    meet = first.ref if first.ref == last.ref else None
    hops = 0
    while meet is None and hops < max_hops and frontiers[0] and frontiers[1]:
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        mine, theirs = reached[side], reached[1 - side]
        fresh = []
        for edge, other in edges_at(frontiers[side], ends):
            there = other.ref
            here = edge.target if edge.source == there else edge.source
            if there not in mine:
                nodes[there] = other
                mine[there] = (here, edge)
                fresh.append(there)
                if there in theirs and meet is None:
                    meet = there
        frontiers[side] = fresh
        hops += 1
    if meet is None:
        return None
    forward = _back(reached[0], meet)[::-1]  # source ... meet
    backward = _back(reached[1], meet)[1:]  # after meet ... target
    edges = [_edge(reached[0], n) for n in forward[1:]] + [_edge(reached[1], n) for n in [meet, *backward][:-1]]
    return [nodes[n] for n in forward + backward], edges


def _back(reached: dict[NodeRef, tuple[NodeRef, GraphEdge] | None], node: NodeRef) -> list[NodeRef]:
    """``node`` and the nodes it was reached through, back to where that search began."""
    out = [node]
    while (step := reached[node]) is not None:
        node = step[0]
        out.append(node)
    return out


def _edge(reached: dict[NodeRef, tuple[NodeRef, GraphEdge] | None], node: NodeRef) -> GraphEdge:
    step = reached[node]
    assert step is not None
    return step[1]
