"""The store a storage test runs against: the embedded engine, or (CASEGRAPH_TEST_STORE=
falkordb) a new namespace on the run's FalkorDB server. Tests reach it only through the
storage interfaces, so one test checks both engines."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import STORE_UNDER_TEST, falkor_server


def falkor() -> bool:
    return STORE_UNDER_TEST == "falkordb"


def open_store(directory: Path, *, dimension: int | None = None):
    """A new, empty store (MemoryStore, SessionStore, CustomerStore, GraphSearch,
    StoreMaintenance). ``dimension``: the vector size (the first write's, if not given)."""
    if falkor():
        from casegraph.storage.falkor.store import FalkorStore

        return FalkorStore(falkor_server().namespace_url(), dimension=dimension)
    from casegraph.storage.embedded.graph import GraphStore

    return GraphStore(Path(directory), buffer_pool_mb=64)


def tickets_of(store):
    """The same store's TicketStore."""
    if falkor():
        from casegraph.storage.falkor.tickets import FalkorTickets

        return FalkorTickets(store)
    from casegraph.storage.embedded.tickets import TicketGraph

    return TicketGraph(store)


def hygiene_of(store):
    """The same store's HygieneStore (what writes session summaries, states, reinforcements)."""
    if falkor():
        from casegraph.storage.falkor.hygiene import FalkorHygiene

        return FalkorHygiene(store)
    from casegraph.storage.embedded.hygiene import EmbeddedHygiene

    return EmbeddedHygiene(store)


def graph_rows(store, agent_id: str, query: str, params: dict | None = None) -> list[list]:
    """The rows of a raw Cypher read of one agent's records. FalkorDB keeps a graph per
    agent; the embedded engine one graph for all (there the query names the agent where
    that matters)."""
    if falkor():
        return store.read(agent_id, query, params)
    return store.read(query, params)


def graph_count(store, query: str) -> int:
    """A raw Cypher count (``... RETURN count(x)``) over every agent's records."""
    if falkor():
        return sum(int(rows[0][0]) for agent_id in store.agents() if (rows := store.read(agent_id, query)))
    return int(store.read(query)[0][0])
