"""GraphStore: the embedded Kùzu graph, the one object that holds every kind of record.

Kùzu is CaseGraph's source of truth: memories (with their embeddings), customers,
orders, tickets, sessions and extracted entities, all scoped by ``agent_id``.
``GraphStore`` is composed of one part per kind of record, each in its own module and
each implementing an interface of app/storage/: ``memories.py`` and
``memory_writes.py`` (``MemoryStore``), ``sessions.py`` (``SessionStore``),
``customers.py`` and ``aliases.py`` (``CustomerStore``), ``links.py`` (``GraphSearch``).
The parts share one ``Connection`` (connection.py: the writer, readers, statements and
pool policy) and the caches every write keeps up to date, which is why they are one
object; this module opens it, wires the caches to finished writes and runs the
migrations (migrations.py). The row layout is rows.py's.
"""

from __future__ import annotations

from pathlib import Path

from casegraph.storage.embedded.aliases import AliasLearning
from casegraph.storage.embedded.attrs_cache import AttrsCache
from casegraph.storage.embedded.connection import Connection, Tracer
from casegraph.storage.embedded.customers import CustomerQueries
from casegraph.storage.embedded.links import GraphLinks
from casegraph.storage.embedded.memories import MemoryQueries
from casegraph.storage.embedded.memory_writes import MemoryWrites
from casegraph.storage.embedded.migrations import migrate
from casegraph.storage.embedded.sessions import SessionQueries
from casegraph.storage.search import KeyIds


class GraphStore(MemoryQueries, MemoryWrites, SessionQueries, CustomerQueries, AliasLearning, GraphLinks):
    """The embedded Kùzu database in ``<data_dir>/graph``."""

    def __init__(
        self,
        directory: Path,
        *,
        buffer_pool_mb: int = 384,
        checkpoint_wal_mb: int = 32,
        tracer: Tracer | None = None,
    ) -> None:
        Connection.__init__(
            self, directory, buffer_pool_mb=buffer_pool_mb, checkpoint_wal_mb=checkpoint_wal_mb, tracer=tracer
        )
        self._attrs_cache = AttrsCache()  # memories.py
        # The vector index's key map, given at wiring (backend.open_embedded): with it,
        # link hops and customer filters read memory keys off edges, cheaper in Kùzu than
        # memory ids (links.py hop_memories, memories.py filtered_attrs). None: they read ids.
        self.key_ids: KeyIds | None = None
        # aliases.py: (customer uid, alias uid) pairs known to be linked.
        self._alias_memo: set[tuple[str, str]] = set()
        # Every Alias uid ever written (a superset: deleted ones stay), loaded on first use:
        # a query's dozens of candidate names are checked here before any lookup.
        self._alias_uids: set[str] | None = None
        # Session id -> the last position a write gave one of its memories (memory_writes.py).
        self._last_seq: dict[str, int] = {}
        # Bumped by every committed write that touched tickets; agent -> (the generation
        # read, memory key -> settled ticket) for settled_memories (links.py).
        self._ticket_generation = 0
        self._settled: dict[str, tuple[int, dict[int, str]]] = {}
        # Told in this order after every write, still under the write lock.
        self.on_write(self._count_ticket_writes)
        self.on_write(self._remember_aliases)
        self.on_write(self._update_attrs_cache)
        self.applied_migrations = self.migrate()

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded in this database; return their names."""
        return migrate(self)

    @property
    def schema_version(self) -> str:
        """The name of the last migration applied ("" for none)."""
        rows = self.read("MATCH (x:Migration) RETURN x.name ORDER BY x.name DESC LIMIT 1")
        return rows[0][0] if rows else ""

    def get_meta(self, key: str) -> str | None:
        """A value kept for the server (e.g. the embedding space), or None."""
        rows = self.read("MATCH (x:Meta {key: $k}) RETURN x.value", {"k": key})
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key``."""
        with self.transaction(reports_attrs=True) as run:
            run("MERGE (x:Meta {key: $k}) SET x.value = $v", {"k": key, "v": value})
