"""The connection to the embedded Kùzu database: the one module that imports kuzu.

Owns opening and closing the database in ``<data_dir>/graph``, the writer connection and
one reader connection per thread, the prepared-statement cache, buffer-pool and
checkpoint policy, and the ``Transaction`` every write runs in. Writes go through one
connection under one lock (Kùzu allows one writer); reads use a connection per thread.
All statements are parameterised. Kùzu raises plain ``RuntimeError`` with prefixes such
as "Binder exception:"; ``translated`` turns them into ``StorageError``. The statements of
each kind of record live in the modules beside this one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import kuzu
from casegraph.errors import ConfigurationError, StorageError, StorageFull
from casegraph.storage.embedded import batching
from casegraph.storage.embedded.batching import ROW_FIELD, KeyModes, RowModes
from casegraph.storage.embedded.datadir import DataDirLock
from casegraph.storage.memories import Attrs

log = logging.getLogger("casegraph.graph")

T = TypeVar("T")
# How Kùzu 0.11 words a buffer pool it cannot free a frame of.
_POOL_FULL = "The buffer pool is full"

_OPEN_PATHS: set[Path] = set()
_OPEN_LOCK = threading.Lock()
# A commit that leaves more of the buffer pool in use than this checkpoints (_relieve_pool).
_POOL_HIGH_WATER = 0.75
# ...and once more only after the pool has grown by this share of it since the last one.
_POOL_REGROWTH = 0.125
# ...and only once the write-ahead log has grown by this share of the pool since the last
# checkpoint or failed try: a pool filled by reads is evicted as needed, and a checkpoint
# frees none of it (see _relieve_pool).
_POOL_LOG_SHARE = 1 / 64
# How many times frozen() takes the locks and checkpoints before it gives up.
_FREEZE_ATTEMPTS = 4
# Prepared statements kept per connection (see Connection._run).
_MAX_PREPARED = 4096
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

Tracer = Callable[[str, dict[str, Any] | None], None]
# Told of every finished write transaction: (it, committed, whether it reported its
# memories' attributes); see ``Connection.on_write``.
WriteListener = Callable[["Transaction", bool, bool], None]


class Transaction:
    """The statements of one write transaction (see ``Connection.transaction``), and what
    it reports of the memories it writes."""

    def __init__(self, db: Connection, conn: Any) -> None:
        self._db = db
        self._conn = conn
        # What the transaction reports of memories' ranking attributes (attrs_cache.py).
        self.written: dict[str, dict[str, Attrs]] = {}
        self.changed: set[str] = set()
        # A statement of it names tickets: settled_memories reads them again after it.
        self.touches_tickets = False
        # Customer-alias links this transaction writes (remembered on commit, aliases.py).
        self.aliases_linked: set[tuple[str, str]] = set()

    def attrs_written(self, agent_id: str, attrs: dict[str, Attrs]) -> None:
        """These memories have exactly these attributes once this transaction commits."""
        self.written.setdefault(agent_id, {}).update(attrs)

    def attrs_changed(self, ids: Iterable[str]) -> None:
        """This transaction changes (or deletes) these memories' ranking attributes."""
        self.changed.update(ids)

    def __call__(self, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        self.touches_tickets = self.touches_tickets or "Ticket" in query
        return self._db._run(self._conn, query, params)

    def each(self, query: str, rows: Sequence[dict[str, Any]]) -> None:
        """Run one prepared statement once per row."""
        self.touches_tickets = self.touches_tickets or "Ticket" in query
        for row in rows:
            self._db._run_prepared(self._conn, self._db._statements(self._conn), query, row)

    def by_keys(
        self, query: str, keys: Iterable[Any], params: dict[str, Any] | None = None, *, measured: bool = False
    ) -> list[list[Any]]:
        """``Connection.by_keys`` inside this transaction."""
        return batching.by_keys(self, query, keys, params, self._db.key_modes if measured else None)

    def rows(self, body: str, rows: Sequence[dict[str, Any]], params: dict[str, Any] | None = None) -> None:
        """Run ``body``, a statement over one row ``r``, for every row (``batching.run_rows``)."""
        batching.run_rows(self, self._db.row_modes, body, rows, params)

    def edges(
        self,
        src: tuple[str, str],
        dst: tuple[str, str],
        action: str,
        rows: Sequence[dict[str, Any]],
        params: dict[str, Any] | None = None,
    ) -> None:
        """One edge per row from the ``src`` node keyed by the row's ``f`` to the ``dst``
        node keyed by its ``t`` (``batching.run_edges``)."""
        batching.run_edges(self, self._db.row_modes, src, dst, action, rows, params)

    def unwind(self, body: str, rows: Sequence[dict[str, Any]], params: dict[str, Any]) -> None:
        """``body`` once, over ``UNWIND $rows AS r``."""
        self(f"UNWIND $rows AS r {body}", {**params, "rows": list(rows)})

    def points(self, body: str, rows: Sequence[dict[str, Any]], params: dict[str, Any]) -> None:
        """``body`` as a prepared point statement per row (``r.x`` as ``$x``)."""
        point = ROW_FIELD.sub(r"$\1", body)
        self.touches_tickets = self.touches_tickets or "Ticket" in body
        used = set(ROW_FIELD.findall(body))  # a prepared statement refuses unused parameters (#13)
        for row in rows:
            self._db._run_prepared(
                self._conn, self._db._statements(self._conn), point,
                {**params, **{k: v for k, v in row.items() if k in used}},
            )


class Connection:
    """The embedded Kùzu database in ``<data_dir>/graph``: connections, statements, the
    write lock and the buffer-pool policy."""

    def __init__(
        self,
        directory: Path,
        *,
        buffer_pool_mb: int = 384,
        checkpoint_wal_mb: int = 32,
        tracer: Tracer | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = (directory / "graph").resolve()
        self.tracer = tracer
        # Two Database objects on one path in one process overwrite each other's writes
        # (docs/kuzu-quirks.md #8): refuse the second one.
        with _OPEN_LOCK:
            if self.path in _OPEN_PATHS:
                raise ConfigurationError(f"the graph database {self.path} is already open in this process")
            _OPEN_PATHS.add(self.path)
        # Our own lock beside Kùzu's: `casegraph restore` checks it without opening Kùzu.
        self._dir_lock = DataDirLock(directory)
        try:
            self._dir_lock.acquire()
            self._open(buffer_pool_mb, checkpoint_wal_mb)
        except BaseException:
            self._dir_lock.release()
            with _OPEN_LOCK:
                _OPEN_PATHS.discard(self.path)
            raise
        self._write_lock = threading.Lock()
        self._planning = threading.RLock()  # MemoryWrites.writing: one planned write at a time
        self._pool_bytes = buffer_pool_mb * 1024 * 1024
        self.pool_checkpoints = 0  # checkpoints taken early, the pool filling with changes
        self._pool_after_checkpoint = 0  # what bm_info reported used right after the last one
        self._log_after_try = 0  # the log's size after the last early checkpoint, or at a failed one
        self.full_checkpoints = 0  # checkpoints taken because the buffer pool filled up
        self.row_modes = RowModes()
        self.key_modes = KeyModes()
        self._write_listeners: list[WriteListener] = []
        self._closed = False
        self._local = threading.local()
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()

    def on_write(self, listener: WriteListener) -> None:
        """Tell ``listener`` of every finished write transaction, committed or not, still
        under the write lock. It must not raise."""
        self._write_listeners.append(listener)

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Transaction]:
        """The writer under the write lock, outside a transaction: each statement commits
        alone (migrations, whose DDL and data steps run this way). Listeners are not told."""
        with self._write_lock, self._holding():
            yield Transaction(self, self._writer)

    def _open(self, buffer_pool_mb: int, checkpoint_wal_mb: int) -> None:
        try:
            with translated("opening the graph database"):
                self._db = kuzu.Database(
                    str(self.path),
                    buffer_pool_size=buffer_pool_mb * 1024 * 1024,
                    checkpoint_threshold=checkpoint_wal_mb * 1024 * 1024,
                )
                self._writer = kuzu.Connection(self._db)
        except StorageError as exc:
            if "Could not set lock" not in exc.message:
                raise
            raise ConfigurationError(
                f"the data directory {self.path.parent} is in use by another process (a running "
                "server?): Kùzu allows one writer, so stop it first",
                code="DATA_DIR_IN_USE",
            ) from exc

    def close(self) -> None:
        """Close the database; closing twice is harmless."""
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._writer.close()
            self._db.close()
            self._dir_lock.release()
        with _OPEN_LOCK:
            _OPEN_PATHS.discard(self.path)

    def _reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = kuzu.Connection(self._db)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _run(self, conn: Any, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        if params:
            # Kùzu 0.11 leaks every statement it prepares, and `execute(query, params)`
            # prepares one per call: ~5-40 KB of native memory per statement, without end
            # (RSS grew ~40 KB per stored memory). A statement prepared once per connection
            # and kept is reused for free, so every parameterised query goes through the
            # connection's cache. A prepared statement refuses parameters it does not use
            # (plain execute ignored them), so only the ones the query names are passed.
            # Statements Kùzu cannot prepare without the values (a parameter inside a
            # recursive pattern's predicate) run the leaky way; they are the rare analyst
            # queries, never the write or recall path.
            statements = self._statements(conn)
            if statements.get(query, True) is not None:
                used = set(_PARAMETER.findall(query))
                return self._run_prepared(conn, statements, query, {k: v for k, v in params.items() if k in used})
        if self.tracer is not None:
            self.tracer(query, params)
        with translated(query.split("\n", 1)[0][:80]):
            result = conn.execute(query, to_kuzu(params)) if params else conn.execute(query)
            rows = result.get_all()
            result.close()
            return rows

    @staticmethod
    def _statements(conn: Any) -> dict[str, Any]:
        """The prepared statements of ``conn``, kept on it (they belong to that connection)."""
        cache = getattr(conn, "_casegraph_statements", None)
        if cache is None:
            cache = conn._casegraph_statements = {}
        return cache

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        return self.once_more_when_full(lambda: self._run(self._reader(), query, params))

    def read_prepared(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        """``read`` for hot point queries: the plan is prepared once per connection."""
        return self._run(self._reader(), query, params)

    def by_keys(
        self, query: str, keys: Iterable[Any], params: dict[str, Any] | None = None, *, measured: bool = False
    ) -> list[list[Any]]:
        """``query`` for every key in ``keys``; ``query`` names the key ``$key`` in a node
        pattern. A few keys as point statements, many as one join; ``measured``: many as
        whichever of the two ``key_modes`` measured cheaper. The write path and the ticket
        refresh measure; the API's reads do not, so what a request costs in statements
        stays fixed by its shape, whatever earlier timings said (tests/api/test_loaders.py)."""
        modes = self.key_modes if measured else None
        return batching.by_keys(lambda q, p: self._run(self._reader(), q, p), query, keys, params, modes)

    @contextlib.contextmanager
    def transaction(self, *, reports_attrs: bool = False) -> Iterator[Transaction]:
        """One write transaction; everything in it commits or nothing does.

        ``reports_attrs``: the caller reports through ``Transaction.attrs_written`` and
        ``attrs_changed`` every memory whose ranking attributes it creates, changes or
        deletes, so the attribute cache keeps the rest. Without it, the cache is cleared.
        """
        with self._write_lock, self._holding():
            conn = self._writer
            tx = Transaction(self, conn)
            committed = False
            try:
                self._run(conn, "BEGIN TRANSACTION")
                try:
                    yield tx
                    self._run(conn, "COMMIT")
                    committed = True
                except BaseException as exc:
                    with contextlib.suppress(StorageError):
                        self._run(conn, "ROLLBACK")
                    if isinstance(exc, StorageFull):
                        exc.checkpointed = self._checkpoint_when_full()
                    raise
                self._relieve_pool()
            finally:
                for listener in self._write_listeners:
                    listener(tx, committed, reports_attrs)

    def _relieve_pool(self) -> None:
        """After a commit: checkpoint early if the buffer pool is filling with changes.

        What ``CALL bm_info()`` reports as used grows with every write until a checkpoint
        and falls back after one (the quality replay with 64 MB of log: 41 MB after 500
        writes, 508 MB after 4,500, 64 MB after the checkpoint), so a checkpoint past
        ``_POOL_HIGH_WATER`` of the pool comes before Kùzu runs out.

        What is used includes pages cached by reads, which a checkpoint keeps: at 100k
        memories ~290 MB of a 384 MB pool stayed used right after one, and checkpointing
        after every following commit (2.3 s each) halved ingest. So after a checkpoint the
        next one waits until the pool has grown by ``_POOL_REGROWTH`` of itself again;
        cached pages are evicted as needed, changes are not.

        Reads alone also grow it, so a checkpoint also waits until the write-ahead log,
        which only changes fill, has grown by ``_POOL_LOG_SHARE`` of the pool since the
        last one. At 100k memories, a pool filled by reads checkpointed every few commits,
        each checkpoint 2-3 s under the write lock, and most failed after waiting ~5 s for
        a stream of concurrent reads to pause ("active transactions"); each failure was
        tried again at the next commit. A failed try now also waits for the log to grow:
        single stores from 8 threads at 100k spent 113 s of 137 s in CHECKPOINT before
        (BENCHMARKS.md, "Tenth round"). Never raises: the write has committed."""
        try:
            used = int(self._run(self._writer, "CALL bm_info() RETURN *")[0][1])
            regrown = self._pool_after_checkpoint + self._pool_bytes * _POOL_REGROWTH
            if used <= max(self._pool_bytes * _POOL_HIGH_WATER, regrown):
                return
            logged = self._log_bytes()
            if logged < self._log_after_try + self._pool_bytes * _POOL_LOG_SHARE:
                return
            self._log_after_try = logged
            self._run(self._writer, "CHECKPOINT")
            self._pool_after_checkpoint = int(self._run(self._writer, "CALL bm_info() RETURN *")[0][1])
            self._log_after_try = self._log_bytes()
        except Exception as exc:  # committed: a failed check must not say otherwise
            log.warning("checking the buffer pool after a write failed: %s", exc)
            return
        self.pool_checkpoints += 1
        log.info("checkpointed early: the buffer pool held %d MB of %d", used >> 20, self._pool_bytes >> 20)

    def _log_bytes(self) -> int:
        """The size of the write-ahead log (``graph.wal``; gone after a checkpoint)."""
        try:
            return os.path.getsize(f"{self.path}.wal")
        except OSError:
            return 0

    def _checkpoint_when_full(self) -> bool:
        """Fold the write-ahead log into the file (the caller holds the write lock).

        Kùzu keeps every page changed since its last checkpoint in the buffer pool until the
        next one, and checkpoints by log size only. Many small writes can change more pages
        than the pool holds before the log reaches ``checkpoint_wal_mb`` (the quality
        benchmark's replay did, at ~4k memories with a 512 MB pool and 64 MB of log); then
        every statement fails until a checkpoint, which nothing would trigger."""
        self.full_checkpoints += 1
        try:
            self._run(self._writer, "CHECKPOINT")
        except StorageError as exc:
            log.error("the buffer pool is full and a checkpoint failed (raise buffer_pool_mb): %s", exc.message)
            return False
        log.warning(
            "the buffer pool filled up with changes; checkpointed (%d so far; a smaller checkpoint_wal_mb "
            "or a larger buffer_pool_mb avoids this)", self.full_checkpoints
        )
        return True

    @contextlib.contextmanager
    def _holding(self) -> Iterator[None]:
        """Mark this thread as holding the write lock (until exit)."""
        before = getattr(self._local, "holding", False)
        self._local.holding = True
        try:
            yield
        finally:
            self._local.holding = before

    def once_more_when_full(self, call: Callable[[], T]) -> T:
        """``call()`` (one write transaction, or a read); if the buffer pool was full, once
        more after a checkpoint."""
        try:
            return call()
        except StorageFull as exc:
            if getattr(self._local, "holding", False):
                # This thread holds the write lock (a read inside its transaction or a
                # migration): it cannot take it again.
                # A transaction checkpoints on its way out.
                raise
            # A failed transaction has taken its checkpoint on the way out; a read has not.
            # Kùzu 0.11 has crashed on the next statement after a checkpoint that failed:
            # no second try then.
            checkpointed = getattr(exc, "checkpointed", None)
            if checkpointed is None:
                with self._write_lock:
                    checkpointed = self._checkpoint_when_full()
            if not checkpointed:
                raise
            return call()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[Path]:
        """Hold off writers and checkpoint: until exit, the database file alone is complete
        and does not change (backups copy it here; readers carry on)."""
        for attempt in range(_FREEZE_ATTEMPTS):
            with self._write_lock, self._holding():
                try:
                    self._run(self._writer, "CHECKPOINT")
                except StorageError as exc:
                    # Kùzu waits a few seconds for the transactions in flight to end, and
                    # under a stream of writes one sometimes did not (1 backup in 4 in
                    # test_backup's writer loop): let go of the locks and take them again.
                    if attempt + 1 == _FREEZE_ATTEMPTS or "active transactions" not in exc.message:
                        raise
                    log.warning("checkpoint before a backup waited too long (%s); trying again", exc.message)
                else:
                    yield self.path
                    return
            time.sleep(0.05 * (attempt + 1))

    def _prepared(self, conn: Any, cache: dict[str, Any], query: str) -> Any:
        if query in cache:
            return cache[query]  # None: Kùzu could not prepare it (see below)
        if len(cache) >= _MAX_PREPARED:
            # Only queries with literals in their text could get here (all values are
            # parameters); forgetting the oldest leaks it, but keeps the cache bounded.
            cache.pop(next(iter(cache)))
        with warnings.catch_warnings():
            # Kùzu 0.11 calls prepare() deprecated, yet it halves a point query's cost.
            warnings.simplefilter("ignore", DeprecationWarning)
            with translated(query[:80]):
                statement = conn.prepare(query)
        if not statement.is_success():
            cache[query] = None  # Connection._run executes it unprepared from now on
            return None
        cache[query] = statement
        return statement

    def _run_prepared(self, conn: Any, cache: dict[str, Any], query: str, params: dict[str, Any]) -> list[list[Any]]:
        statement = self._prepared(conn, cache, query)
        if statement is None:
            return self._run(conn, query, params)
        if self.tracer is not None:
            self.tracer(query, params)
        with translated(query[:80]):
            result = conn.execute(statement, to_kuzu(params))
            rows = result.get_all()
            result.close()
            return rows


def to_kuzu(value: Any) -> Any:
    """Parameters as Kùzu needs them: it drops a datetime's UTC offset instead of applying
    it, so aware datetimes are converted to UTC first (all times are stored as UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value
    if isinstance(value, dict):
        return {k: to_kuzu(v) for k, v in value.items()}
    if isinstance(value, list) and value and not isinstance(value[0], float | int | str):
        return [to_kuzu(v) for v in value]
    return value


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Map Kùzu's RuntimeErrors to StorageError at the boundary."""
    try:
        yield
    except RuntimeError as exc:
        if _POOL_FULL in str(exc):
            # Callers are told without the statement; the log has it.
            log.warning("buffer pool full while %r: %s", what, exc)
            raise StorageFull(
                "the graph store's buffer pool is full of changes not yet checkpointed; nothing was "
                "written. Try again; if it persists, raise CASEGRAPH_BUFFER_POOL_MB or lower "
                "CASEGRAPH_CHECKPOINT_WAL_MB"
            ) from exc
        raise StorageError(f"graph store failed while {what!r}: {exc}") from exc
