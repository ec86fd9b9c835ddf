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
