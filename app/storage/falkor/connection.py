"""The connection to a FalkorDB server: the one module that imports ``falkordb`` and ``redis``.

Owns the address (``falkordb://HOST:PORT[/NAMESPACE][?wait=N&wait_ms=T]``), the key
layout, the per-agent write lock, the ``Transaction`` every write runs in, and the indexes
of an agent's graph.

``?wait=N``: every write is acknowledged only once N replicas have it (``WAIT N T`` after
the query, on the same connection); fewer within ``wait_ms`` (default 5000) fail the write
with ``REPLICATION_TIMEOUT`` (the primary may still have applied it).

Key layout (``NS`` is the namespace, ``casegraph`` by default):

    NS:{AGENT}           the agent's graph: its memories, customers, orders, tickets,
                         sessions, entities, aliases (the labels and properties of the
                         embedded schema, graph_schema/; times as microseconds since the
                         epoch). One key per agent, so a Redis Cluster spreads agents.
    NS:{AGENT}:lock      the agent's write lock ("<server run id>:<token>", with an expiry)
    NS:agents            the set of agents with a graph
    NS:sessions          hash: session id -> its agent (session ids are global)
    NS:memories          hash: memory id -> its agent (memory ids are global; claimed
                         atomically before a write: memory_ids.py)
    NS:meta              hash: what every process must agree on (the vector space)

A write is one ``GRAPH.QUERY``: the transaction queues its statements and sends them at
commit as ``CALL { ... }`` subqueries of one query, which FalkorDB applies whole or not at
all (an error rolls the query back). Reads inside a transaction run at once and see what
was committed before it; the agent's lock keeps other CaseGraph processes from writing
that agent meanwhile, so what they read stays true until the commit.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import redis
from casegraph.errors import ConfigurationError, StorageError, StorageUnavailable
from casegraph.storage.memories import Attrs, micros
from casegraph.times import utc
from falkordb import FalkorDB

log = logging.getLogger("casegraph.falkor")

SCHEME = "falkordb"
DEFAULT_NAMESPACE = "casegraph"
# How FalkorDB answers a query on a graph key that does not exist.
_EMPTY_KEY = "empty key"
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# How long a write lock lives if its holder dies without releasing it (SIGKILL); a writer
# renews it before it sends its write.
LOCK_TTL_MS = 10_000
# How long a writer waits for another process's lock before giving up.
LOCK_WAIT_S = 60.0
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
# Take the lock (value "<server run id>:<token>") unless a writer holds it on this very
# server run; returns the value taken, or nil.
_ACQUIRE = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, string.len(run) + 1) == run .. ':' then return false end
local value = run .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
"""

Tracer = Callable[[str, dict[str, Any] | None], None]


DEFAULT_WAIT_MS = 5000


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int
    namespace: str
    # Replicas every write must reach before it is acknowledged (0: the primary alone).
    replicas: int = 0
    wait_ms: int = DEFAULT_WAIT_MS

    @classmethod
    def parse(cls, url: str) -> Address:
        """``falkordb://HOST:PORT[/NAMESPACE][?wait=N&wait_ms=T]``; a readable error for
        anything else."""
        parsed = urlparse(url)
        if parsed.scheme != SCHEME or not parsed.hostname:
            raise ConfigurationError(
                f"store {url!r} is not a FalkorDB address: write falkordb://HOST:PORT[/NAMESPACE], "
                "or 'embedded' for the default",
                code="INVALID_STORE",
            )
        try:
            port = parsed.port or 6379
        except ValueError:
            raise ConfigurationError(f"store {url!r} has no valid port", code="INVALID_STORE") from None
        namespace = parsed.path.strip("/") or DEFAULT_NAMESPACE
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", namespace):
            raise ConfigurationError(
                f"store namespace {namespace!r}: letters, digits, '_', '.' or '-', at most 64",
                code="INVALID_STORE",
            )
        replicas, wait_ms = _wait_options(url, parsed.query)
        return cls(parsed.hostname, port, namespace, replicas, wait_ms)

    def __str__(self) -> str:
        wait = f"?wait={self.replicas}&wait_ms={self.wait_ms}" if self.replicas else ""
        return f"{SCHEME}://{self.host}:{self.port}/{self.namespace}{wait}"


def _wait_options(url: str, query: str) -> tuple[int, int]:
    options = parse_qs(query, keep_blank_values=True)
    unknown = set(options) - {"wait", "wait_ms"}
    if unknown:
        raise ConfigurationError(f"store {url!r}: unknown option {sorted(unknown)[0]!r} (wait, wait_ms)",
                                 code="INVALID_STORE")
    values = {}
    for name, default, low in (("wait", 0, 0), ("wait_ms", DEFAULT_WAIT_MS, 1)):
        raw = options.get(name, [str(default)])[-1]
        if not raw.isdigit() or int(raw) < low:
            raise ConfigurationError(f"store {url!r}: {name} must be a whole number of at least {low}",
                                     code="INVALID_STORE")
        values[name] = int(raw)
    return values["wait"], values["wait_ms"]


def encode(value: Any) -> Any:
    """A parameter as FalkorDB takes it: datetimes as microseconds since the epoch, numpy
    scalars and arrays as Python numbers and lists, tuples and sets as lists."""
    if isinstance(value, datetime):
        return micros(utc(value))  # a naive datetime is UTC already (as on the embedded engine)
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _translated(exc: Exception, query: str) -> StorageError:
    return StorageError(f"FalkorDB: {exc} (in: {query[:200]})")


def store_error(address: Address, exc: redis.RedisError) -> StorageError:
    """A client error as CaseGraph's: the server unreachable (or not answering) is
    ``STORE_UNAVAILABLE``, which the API tells the client (a retry may pass); anything else
    is a ``StorageError`` (logged, masked)."""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return StorageUnavailable("the store's server cannot be reached; nothing was acknowledged: retry")
    return StorageError(f"FalkorDB server at {address}: {exc}")


class _Guarded:
    """A redis client whose calls raise ``STORE_UNAVAILABLE`` when the server cannot be
    reached (its other errors, e.g. a refused command, stay the client's for the caller to
    read); ``pipeline()`` gives the client's own pipeline (its callers translate)."""

    def __init__(self, client: redis.Redis, address: Address) -> None:
        self._client = client
        self._address = address

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.pipeline(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise store_error(self._address, exc) from exc

        return call


class Transaction:
    """One write to one agent's graph: statements queued, sent as one query at commit.

    ``tx(query, params)`` reads at once (what was committed before the transaction);
    ``tx.write(query, params)`` queues a statement with no RETURN; ``tx.after_commit(fn)``
    runs ``fn`` once the write is acknowledged. ``attrs_written`` / ``attrs_changed`` are
    the ``storage.memories.Transaction`` protocol: this engine keeps no attribute cache,
    so they only record what was reported."""

    def __init__(self, db: Connection, agent_id: str) -> None:
        self._db = db
        self.agent_id = agent_id
        self._parts: list[str] = []
        self._params: dict[str, Any] = {}
        self._after: list[Callable[[], None]] = []
        self.written: dict[str, dict[str, Attrs]] = {}
        self.changed: set[str] = set()

    def attrs_written(self, agent_id: str, attrs: dict[str, Attrs]) -> None:
        self.written.setdefault(agent_id, {}).update(attrs)

    def attrs_changed(self, ids: Iterable[str]) -> None:
        self.changed.update(ids)

    def __call__(self, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        return self._db.read(self.agent_id, query, params)

    def write(self, query: str, params: dict[str, Any] | None = None) -> None:
        """Queue a statement (no RETURN); its parameters are its own."""
        n = len(self._parts)
        self._parts.append(_PARAMETER.sub(lambda m: f"$p{n}_{m.group(1)}", query))
        for name, value in (params or {}).items():
            self._params[f"p{n}_{name}"] = value

    def unwind(self, body: str, rows: Sequence[dict[str, Any]], params: dict[str, Any] | None = None) -> None:
        """Queue ``body`` over ``UNWIND $rows AS r`` (nothing when there are no rows)."""
        if rows:
            self.write(f"UNWIND $rows AS r {body}", {**(params or {}), "rows": list(rows)})

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after.append(fn)

    @property
    def empty(self) -> bool:
        return not self._parts

    def statement(self) -> tuple[str, dict[str, Any]]:
        """The one query this transaction sends, and its parameters."""
        body = "\n".join(f"CALL {{ {part} }}" for part in self._parts)
        return f"{body}\nRETURN 1", self._params

    def _commit(self) -> None:
        if self._parts:
            query, params = self.statement()
            self._db.execute(self.agent_id, query, params)
        for fn in self._after:
            fn()


class Connection:
    """The client of one FalkorDB server (or a Redis Cluster of them) for one namespace."""

    def __init__(self, url: str, *, tracer: Tracer | None = None, socket_timeout: float = 120.0) -> None:
        self.address = Address.parse(url)
        self._tracer = tracer
        try:
            # The client connects at once (to ask whether the address is a sentinel).
            self._db = FalkorDB(host=self.address.host, port=self.address.port, socket_timeout=socket_timeout)
            self.redis: Any = _Guarded(self._db.connection, self.address)
            self.redis.ping()
        except (redis.RedisError, StorageUnavailable) as exc:
            raise ConfigurationError(
                f"cannot reach the FalkorDB server at {self.address}: {exc.__cause__ or exc}", code="STORE_UNREACHABLE"
            ) from None
        self._graphs: dict[str, Any] = {}
        self._waited_graphs: dict[str, Any] = {}
        self._ready: set[str] = set()
        self._ready_lock = threading.Lock()
        self._setup_graph: Callable[[str], None] | None = None
        self._closed = False
        # This thread's held write locks (``writing``): agent -> renew().
        self._local = threading.local()

    # -- keys -----------------------------------------------------------------------
    def key(self, *parts: str) -> str:
        return ":".join((self.address.namespace, *parts))

    def graph_key(self, agent_id: str) -> str:
        return self.key(f"{{{agent_id}}}")

    def _graph(self, agent_id: str) -> Any:
        g = self._graphs.get(agent_id)
        if g is None:
            g = self._graphs[agent_id] = self._db.select_graph(self.graph_key(agent_id))
        return g

    def _write_graph(self, agent_id: str) -> Any:
        """The graph that writes go through: with ``?wait=N`` one whose every query is
        followed by WAIT on the same connection."""
        if not self.address.replicas:
            return self._graph(agent_id)
        g = self._waited_graphs.get(agent_id)
        if g is None:
            g = self._db.select_graph(self.graph_key(agent_id))
            g.execute_command = self._replicated
            self._waited_graphs[agent_id] = g
        return g

    def _replicated(self, *command: Any) -> Any:
        """Run ``command``, then ``WAIT`` for the replicas, as one pipeline: WAIT waits for
        the replication offset of its own connection's last write, so it must follow the
        query on that connection (the offset is global: earlier writes of any connection,
        e.g. the session registry's, are covered too)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command(*command)
        pipe.execute_command("WAIT", self.address.replicas, self.address.wait_ms)
        try:
            response, reached = pipe.execute()
        except redis.ResponseError:
            raise  # the query's own error: _query translates it
        except redis.RedisError as exc:
            raise store_error(self.address, exc) from exc
        if int(reached) < self.address.replicas:
            raise StorageUnavailable(
                f"the write reached {reached} of {self.address.replicas} replicas within {self.address.wait_ms} ms "
                "and is not acknowledged (the primary may have applied it)",
                code="REPLICATION_TIMEOUT",
            )
        return response

    def agents(self) -> list[str]:
        """Every agent that has a graph, sorted."""
        return sorted(self.redis.smembers(self.key("agents")))

    def has_agent(self, agent_id: str) -> bool:
        return bool(self.redis.sismember(self.key("agents"), agent_id))

    def on_new_graph(self, setup: Callable[[str], None]) -> None:
        """``setup(agent_id)`` creates an agent graph's indexes; it runs before the first
        write to each agent's graph (and is harmless when they exist)."""
        self._setup_graph = setup

    def ensure_agent(self, agent_id: str) -> None:
        if agent_id in self._ready:
            return
        with self._ready_lock:
            if agent_id in self._ready:
                return
            if self._setup_graph is not None:
                self._setup_graph(agent_id)
            self.redis.sadd(self.key("agents"), agent_id)
            self._ready.add(agent_id)

    # -- statements -------------------------------------------------------------------
    def read(self, agent_id: str, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        """A read-only query on the agent's graph (no graph yet: no rows)."""
        return self._query(agent_id, query, params, read_only=True)

    def execute(self, agent_id: str, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        """A query that may write, outside any lock (index creation, one-statement writes)."""
        self.ensure_agent(agent_id)
        return self._query(agent_id, query, params, read_only=False)

    def _query(self, agent_id: str, query: str, params: dict[str, Any] | None, *, read_only: bool) -> list[list[Any]]:
        if self._tracer is not None:
            self._tracer(query, params)
        g = self._graph(agent_id) if read_only else self._write_graph(agent_id)
        try:
            if read_only:
                result = g.ro_query(query, encode(params or {}))
            else:
                result = g.query(query, encode(params or {}))
        except redis.ResponseError as exc:
            if read_only and _EMPTY_KEY in str(exc):
                return []  # the agent has no graph yet
            raise _translated(exc, query) from exc
        except redis.RedisError as exc:
            raise store_error(self.address, exc) from exc
        return result.result_set

    # -- writes -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, agent_id: str, *, wait_s: float | None = None) -> Iterator[Callable[[], None]]:
        """The agent's write lock, shared by every process on this server. Yields
        ``renew()``, which gives the lock a full expiry again (or raises if it was lost).
        ``wait_s``: how long to wait for another writer's lock (``LOCK_WAIT_S``).

        The lock's value names the server run that granted it (``run_id``): a lock left by
        a writer on a server that has since restarted from its append-only file, or by a
        writer on a primary that failed over to a replica, names another run and is taken
        over at once instead of blocking the agent until it expires."""
        key = self.key(f"{{{agent_id}}}", "lock")
        token = uuid.uuid4().hex
        wait_s = LOCK_WAIT_S if wait_s is None else wait_s
        deadline = time.monotonic() + wait_s
        delay = 0.001
        while (value := self.redis.eval(_ACQUIRE, 1, key, token, LOCK_TTL_MS)) is None:
            if time.monotonic() > deadline:
                raise StorageUnavailable(
                    f"agent {agent_id!r} stayed locked by another writer for {wait_s:.0f} s; nothing was "
                    "written: retry",
                    code="STORE_BUSY",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

        def renew() -> None:
            if not self.redis.eval(_RENEW, 1, key, value, LOCK_TTL_MS):
                raise StorageUnavailable(
                    f"the write lock of agent {agent_id!r} expired before the write was sent; nothing was "
                    "written: retry",
                    code="STORE_BUSY",
                )

        try:
            yield renew
        finally:
            with contextlib.suppress(redis.RedisError, StorageError):
                self.redis.eval(_RELEASE, 1, key, value)

    def _held(self) -> dict[str, Callable[[], None]]:
        held = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {}
        return held

    @contextlib.contextmanager
    def writing(self, agent_ids: Sequence[str]) -> Iterator[None]:
        """Hold these agents' write locks from a write's plan to its commit
        (``MemoryStore.writing``): no other process writes them meanwhile, so what the plan
        read is still true when it lands. Taken in sorted order, so two writers that want
        the same agents never wait on each other; transactions this thread opens on them
        inside take no lock of their own."""
        held = self._held()
        with contextlib.ExitStack() as stack:
            for agent_id in sorted(set(agent_ids) - held.keys()):
                held[agent_id] = stack.enter_context(self.lock(agent_id))
                stack.callback(held.pop, agent_id, None)
            yield

    @contextlib.contextmanager
    def transaction(self, agent_id: str) -> Iterator[Transaction]:
        """A write to one agent's graph under its lock (this thread's, if ``writing``
        holds it already); committed as one query on exit, nothing of it written if the
        block raises."""
        self.ensure_agent(agent_id)
        renewer = self._held().get(agent_id)
        with (contextlib.nullcontext(renewer) if renewer else self.lock(agent_id)) as renew:
            tx = Transaction(self, agent_id)
            yield tx
            # The lock must still be this writer's when the write is sent (a long
            # transaction may outlive its expiry): renewed, it holds a full expiry more.
            renew()
            tx._commit()

    def write(self, agent_id: str, query: str, params: dict[str, Any] | None = None) -> None:
        """One statement as its own transaction."""
        with self.transaction(agent_id) as tx:
            tx.write(query, params)

    # -- the whole server ------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        return self.redis.hget(self.key("meta"), key)

    def set_meta(self, key: str, value: str) -> None:
        self.redis.hset(self.key("meta"), key, value)

    def session_agents(self, session_ids: Sequence[str]) -> dict[str, str]:
        """Session id -> its agent, for the sessions ever created (a superset: a session
        whose write failed may be listed; its graph has no node)."""
        ids = list(dict.fromkeys(session_ids))
        if not ids:
            return {}
        values = self.redis.hmget(self.key("sessions"), ids)
        return {sid: agent for sid, agent in zip(ids, values, strict=True) if agent is not None}

    def register_sessions(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (session id, agent) before the write that creates the sessions."""
        mapping = dict(pairs)
        if mapping:
            self.redis.hset(self.key("sessions"), mapping=mapping)

    def memory_agents(self, memory_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> the agent that holds or claims it (a superset of the stored
        memories: a write claims its ids before it commits; memory_ids.py), so a reader
        checks the agent's graph."""
        ids = list(dict.fromkeys(memory_ids))
        if not ids:
            return {}
        values = self.redis.hmget(self.key("memories"), ids)
        return {mid: agent for mid, agent in zip(ids, values, strict=True) if agent is not None}

    def drop_agent(self, agent_id: str) -> None:
        """Delete an agent's graph (tests, tenant removal)."""
        with contextlib.suppress(redis.ResponseError):
            self._graph(agent_id).delete()
        self.redis.srem(self.key("agents"), agent_id)
        self._ready.discard(agent_id)
        self._graphs.pop(agent_id, None)
        self._waited_graphs.pop(agent_id, None)

    def drop_namespace(self) -> None:
        """Delete every key of this namespace (tests)."""
        for agent_id in self.agents():
            self.drop_agent(agent_id)
        for key in self.redis.scan_iter(match=f"{self.address.namespace}:*"):
            self.redis.delete(key)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                self.redis.close()
