"""FalkorStore: the FalkorDB server backend, one object for every kind of graph record.

Like the embedded ``GraphStore`` it is composed of one part per kind of record, each in its
own module implementing an interface of app/storage/: ``memories.py`` and
``memory_writes.py`` (``MemoryStore``), ``sessions.py`` (``SessionStore``),
``customers.py`` and ``aliases.py`` (``CustomerStore``), ``links.py`` (``GraphSearch``),
over one ``Connection`` (connection.py). Unlike it, it keeps no cache of what is stored:
any number of processes share the server, and each reads what the others wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from casegraph.errors import ConfigurationError
from casegraph.storage.falkor.aliases import AliasLearning
from casegraph.storage.falkor.connection import Connection, Tracer
from casegraph.storage.falkor.customers import CustomerQueries
from casegraph.storage.falkor.links import GraphLinks
from casegraph.storage.falkor.memories import MemoryQueries
from casegraph.storage.falkor.memory_writes import MemoryWrites
from casegraph.storage.falkor.schema import create_indexes
from casegraph.storage.falkor.sessions import SessionQueries

# The layout version of the graphs this code writes (schema.py); kept in NS:meta.
SCHEMA_VERSION = "falkor-001"


class FalkorStore(MemoryQueries, MemoryWrites, SessionQueries, CustomerQueries, AliasLearning, GraphLinks):
    """The graphs of one namespace on a FalkorDB server (``falkordb://HOST:PORT/NS``)."""

    def __init__(self, url: str, *, dimension: int | None = None, tracer: Tracer | None = None) -> None:
        Connection.__init__(self, url, tracer=tracer)
        # The vector index's size: the embedder's, or the first write's when not given.
        self.dimension = dimension
        self.on_new_graph(self._create_indexes)
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        self.applied_migrations: list[str] = []

    def _create_indexes(self, agent_id: str) -> None:
        # Without a vector size (a session created before the first memory), the vector
        # index waits: the write path learns the size and sets the graphs up again.
        create_indexes(lambda statement: self._query(agent_id, statement, None, read_only=False), self.dimension)

    @property
    def schema_version(self) -> str:
        return self.get_meta("schema_version") or ""

    def migrate(self) -> list[str]:
        return []

    @contextlib.contextmanager
    def frozen(self) -> Iterator[Path]:
        # No database file to freeze: a backup dumps each agent's graph under its lock
        # (snapshots.py, called by ops/backup.py).
        raise ConfigurationError(
            f"the store {self.address} has no database file: back it up with snapshots.py (casegraph backup)",
            code="BACKUP_UNSUPPORTED",
        )
        yield Path()  # a generator, as contextmanager wants; never reached
