"""The shortest walk between two nodes of an agent's graph, searched from both ends.

Owns the search behind both engines' ``TicketStore.shortest_path``: neither engine's own
shortest path keeps the explorer's rule that money and date entities are not walked
through (Kùzu 0.11's ``SHORTEST`` does not apply a filter on the nodes it passes, it
only drops the unfiltered shortest paths that fail it; FalkorDB has no undirected
``shortestPath`` and no such filter at all). An engine gives one level of the walk (the
nodes one walkable edge away from some nodes, by whatever key it finds nodes by fastest)
and the edges along the walk found; this module finds the fewest hops and lays the
path out. No statements run here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from casegraph.domain.ticket_models import GraphEdge, NodeRef
from casegraph.storage.tickets import StoredNode

K = TypeVar("K", bound=Hashable)


def shortest_walk(step: Callable[[list[K]], Iterable[tuple[K, K]]], start: K, goal: K, max_hops: int) -> list[K] | None:
    """The nodes of a walk with the fewest hops (at most ``max_hops``) from ``start`` to
    ``goal``, or None. ``step(nodes)`` gives (node, neighbour) for every walkable edge at
    ``nodes``; a neighbour may be ``start`` or ``goal`` whatever it is.

    A breadth-first search from both ends, a level at a time from the end with the
    smaller frontier. The first level that reaches a node the other end has reached
    closes a shortest walk: before it no node was within reach of both ends, so every
    walk is at least as long as the two searched depths together."""
    # node -> the node it was reached from, from each end
    reached: tuple[dict[K, K | None], dict[K, K | None]] = ({start: None}, {goal: None})
    frontiers = [[start], [goal]]
    meet = start if start == goal else None
    hops = 0
    while meet is None and hops < max_hops and frontiers[0] and frontiers[1]:
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        mine, theirs = reached[side], reached[1 - side]
        fresh = []
        for here, there in step(frontiers[side]):
            if there not in mine:
                mine[there] = here
                fresh.append(there)
                if meet is None and there in theirs:
                    meet = there
        frontiers[side] = fresh
        hops += 1
    if meet is None:
        return None
    return _back(reached[0], meet)[::-1] + _back(reached[1], meet)[1:]


def path_along(
    walk: Sequence[NodeRef], found: Iterable[tuple[GraphEdge, StoredNode]], ends: Sequence[StoredNode]
) -> tuple[list[StoredNode], list[GraphEdge]]:
    """The nodes and edges of ``walk``, from ``found`` (the edges at its nodes, as
    ``neighbours`` gives them, ends included) and ``ends`` (its first and last nodes)."""
    nodes = {n.ref: n for n in ends}
    between: dict[frozenset[NodeRef], GraphEdge] = {}
    for edge, other in found:
        nodes.setdefault(other.ref, other)
        between.setdefault(frozenset((edge.source, edge.target)), edge)
    return [nodes[r] for r in walk], [between[frozenset(pair)] for pair in zip(walk, walk[1:], strict=False)]


def _back(reached: dict[K, K | None], node: K) -> list[K]:
    """``node`` and the nodes it was reached through, back to where that search began."""
    out = [node]
    while (previous := reached[node]) is not None:
        node = previous
        out.append(node)
    return out
