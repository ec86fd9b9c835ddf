"""Counting the Cypher statements a request costs (the graph store's tracer hook)."""

from __future__ import annotations

import threading


class StatementCounter:
    """Counts the Cypher statements the graph store runs (its tracer hook).

    Primary-key point lookups of memories (``MATCH (m:Memory {id: $id})``, or the older
    ``WHERE m.id = $id``: one per memory fetched by id) are not counted: each is an index
    probe, cheaper than one scan of the table, and the store uses them on purpose for small
    id lists. Everything that traverses or scans is.
    """

    POINT_LOOKUPS = ("WHERE m.id = $id", "MATCH (m:Memory {id: $id}) RETURN")

    def __init__(self, graph):
        self.graph, self.count, self.lock = graph, 0, threading.Lock()

    def __call__(self, query, params):
        if any(p in query for p in self.POINT_LOOKUPS):
            return
        with self.lock:
            self.count += 1

    def __enter__(self):
        self.graph.tracer = self
        return self

    def __exit__(self, *exc):
        self.graph.tracer = None
