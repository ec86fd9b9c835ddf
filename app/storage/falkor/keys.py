"""API keys kept in the FalkorDB server, so that every process sharing it agrees on them.

Two keys of the store's namespace (connection.py's layout):

    NS:keys          hash: key id -> its record as JSON (written by casegraph.ops.keys)
    NS:keys:version  a counter every change bumps: a process re-reads the hash only when
                     it moved, so checking a key costs one small GET

The records' format and rules (roles, agents, hashing, verification) are
``casegraph.ops.keys``'s; this module only keeps the documents and changes them atomically:
a change is a read-modify-write under WATCH, retried when another process changed the
keys meanwhile, so two ``casegraph keys create`` never lose each other's key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
from casegraph.errors import StorageError, StorageUnavailable
from casegraph.storage.falkor.connection import Connection, store_error

T = TypeVar("T")
# A change that keeps losing the race this often is a fault, not bad luck.
_MAX_ATTEMPTS = 100


class ServerKeyDocuments:
    """The key records of one namespace, as JSON documents by key id."""

    def __init__(self, url: str) -> None:
        self._db = Connection(url)
        self._keys = self._db.key("keys")
        self._version = self._db.key("keys", "version")

    def version(self) -> str | None:
        """Changes whenever any record changes (None: no key was ever written)."""
        try:
            return self._db.redis.get(self._version)
        except redis.RedisError as exc:
            raise store_error(self._db.address, exc) from exc

    def load(self) -> tuple[str | None, dict[str, str]]:
        """(version, every record by id), read together."""
        try:
            with self._db.redis.pipeline(transaction=True) as p:
                version, documents = p.get(self._version).hgetall(self._keys).execute()
        except redis.RedisError as exc:
            raise store_error(self._db.address, exc) from exc
        return version, documents

    def update(self, change: Callable[[dict[str, str]], tuple[dict[str, str], T]]) -> T:
        """``change(documents)`` returns (the documents to write, a result); they are written
        only if no other process changed the keys since they were read (else read again and
        retry). ``change`` may run more than once. With ``?wait=N``, acknowledged once N replicas
        have it."""
        with self._db.redis.pipeline(transaction=True) as p:
            for _ in range(_MAX_ATTEMPTS):
                try:
                    p.watch(self._keys)
                    written, result = change(p.hgetall(self._keys))
                    p.multi()
                    if written:
                        p.hset(self._keys, mapping=written)
                        p.incr(self._version)
                    p.execute()
                    break
                except redis.WatchError:
                    continue
                except redis.RedisError as exc:
                    raise store_error(self._db.address, exc) from exc
            else:
                raise StorageError(f"the API keys changed under {_MAX_ATTEMPTS} attempts to change them")
        self._replicated()
        return result

    def _replicated(self) -> None:
        """With ``?wait=N`` in the store address a key change is acknowledged only once N
        replicas have it, as a data write is: a revocation lost in a failover would let the
        key in again. WAIT covers the replication offset of its own connection's last write,
        so it follows a write on the same connection: the version bumped once more (harmless,
        it only has to change)."""
        replicas, wait_ms = self._db.address.replicas, self._db.address.wait_ms
        if not replicas:
            return
        try:
            with self._db.redis.pipeline(transaction=False) as p:
                _, reached = p.incr(self._version).execute_command("WAIT", replicas, wait_ms).execute()
        except redis.RedisError as exc:
            raise store_error(self._db.address, exc) from exc
        if int(reached) < replicas:
            raise StorageUnavailable(
                f"the key change reached {reached} of {replicas} replicas within {wait_ms} ms and is not "
                "acknowledged (the primary may have applied it)",
                code="REPLICATION_TIMEOUT",
            )

    def close(self) -> None:
        self._db.close()
