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
from casegraph.errors import StorageError
from casegraph.storage.falkor.connection import Connection

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
            raise StorageError(f"FalkorDB server at {self._db.address}: {exc}") from exc

    def load(self) -> tuple[str | None, dict[str, str]]:
        """(version, every record by id), read together."""
        try:
            with self._db.redis.pipeline(transaction=True) as p:
                version, documents = p.get(self._version).hgetall(self._keys).execute()
        except redis.RedisError as exc:
            raise StorageError(f"FalkorDB server at {self._db.address}: {exc}") from exc
        return version, documents

    def update(self, change: Callable[[dict[str, str]], tuple[dict[str, str], T]]) -> T:
        """``change(documents)`` returns (the documents to write, a result); they are written
        only if no other process changed the keys since they were read (else read again and
        retry). ``change`` may run more than once."""
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
                    return result
                except redis.WatchError:
                    continue
                except redis.RedisError as exc:
                    raise StorageError(f"FalkorDB server at {self._db.address}: {exc}") from exc
        raise StorageError(f"the API keys changed under {_MAX_ATTEMPTS} attempts to change them")

    def close(self) -> None:
        self._db.close()
