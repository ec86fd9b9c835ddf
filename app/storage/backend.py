"""A storage backend: the objects that implement the storage interfaces, opened together.

``open_backend`` reads the store address: ``embedded`` (the default: Kùzu, USearch and
tantivy in the data directory, storage/embedded/) or ``falkordb://HOST:PORT[/NAMESPACE]``
(a FalkorDB server shared by any number of processes, storage/falkor/). The services wire
the domain to what it returns and never ask which one it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"


@dataclass
class Backend:
    """What the domain is wired to. ``graph`` implements MemoryStore, SessionStore,
    CustomerStore, GraphSearch and StoreMaintenance; the others their one interface."""

    name: str
    graph: Any
    vectors: Any  # VectorIndex
    keywords: Any  # KeywordSearch
    hygiene: Any  # HygieneStore and CustomerContextStore
    tickets: Any  # TicketStore
    erasure: Any  # CustomerErasure
    # Does every agent's vector index hold exactly its memories? (admin endpoint, tests)
    vector_report: Callable[[], dict[str, Any]]
    # Write what is kept only in memory; close everything (in that order).
    save: Callable[[], None] = lambda: None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        errors = []
        for close in self.closers:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - close the rest, then raise the first
                errors.append(exc)
        if errors:
            raise errors[0]


def is_embedded(store: str) -> bool:
    return store in ("", EMBEDDED)


def open_backend(
    store: str, data_dir: Path, embedder: Any, *, buffer_pool_mb: int = 384, checkpoint_wal_mb: int = 32
) -> Backend:
    """Open the backend ``store`` names (see the module docstring)."""
    if is_embedded(store):
        from casegraph.storage.embedded.backend import open_embedded

        return open_embedded(data_dir, embedder, buffer_pool_mb=buffer_pool_mb, checkpoint_wal_mb=checkpoint_wal_mb)
    from casegraph.storage.falkor.backend import open_falkor

    return open_falkor(store, embedder)
