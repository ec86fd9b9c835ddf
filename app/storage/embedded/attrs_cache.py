"""Ranking attributes of memories, kept in memory between writes (GraphStore fills it).

Recall needs five columns of every candidate besides its text signals: importance,
created_at, expires_at, superseded_by and kind (``Attrs``). Read from Kùzu they cost a
primary-key lookup each (~0.1 ms at 100k memories, ~6 ms a recall); here they are a few
numpy columns per agent, ~30 bytes a memory, sorted by the memory's 63-bit key.

It stays exact because every change reaches it:
- a write transaction reports what it wrote (``Transaction.attrs_written``) and which
  memories it changed (``Transaction.attrs_changed``): after COMMIT the first are
  recorded and the second forgotten; a transaction that reports nothing clears it all;
- a lookup that raced a write does not store what it read: ``reading()`` registers it,
  and a write that forgets ids (or clears) while it is registered marks them unusable.
A memory it does not know is simply looked up (and then kept).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from casegraph.storage.memories import NO_TIME, Attrs, Columns, micros
from casegraph.storage.search import vector_key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KNOWN = 1
# At most this many memories are held (~30 bytes each); past it, lookups serve the rest.
DEFAULT_LIMIT = 5_000_000


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class _Columns:
    """One agent's memories, sorted by key; ``known`` is 0 for a forgotten row."""

    __slots__ = ("created", "expires", "importance", "keys", "kind", "known", "successor")

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)
        self.importance = np.empty(0, dtype=np.float64)
        self.created = np.empty(0, dtype=np.int64)
        self.expires = np.empty(0, dtype=np.int64)
        self.kind = np.empty(0, dtype=np.uint8)
        self.known = np.empty(0, dtype=np.uint8)
        self.successor: dict[int, str] = {}  # key -> superseded_by, for the few superseded

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Row of each key, -1 where it has none."""
        pos = np.searchsorted(self.keys, keys)
        inside = pos < len(self.keys)
        hit = np.zeros(len(keys), dtype=bool)
        hit[inside] = self.keys[pos[inside]] == keys[inside]
        return np.where(hit, pos, -1)


class AttrsCache:
    """See the module docstring. Thread-safe."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._lock = threading.Lock()
        self._agents: dict[str, _Columns] = {}
        self._kinds: list[str | None] = [None]
        self._readings: set[_Reading] = set()
        self._limit = limit
        self._size = 0

    # -- reads ----------------------------------------------------------------------
    def get(self, agent_id: str, ids: Sequence[str]) -> tuple[dict[str, Attrs], list[str]]:
        """(the attributes held for ``ids``, the ids to look up)."""
        if not ids:
            return {}, []
        keys = np.fromiter((vector_key(i) for i in ids), dtype=np.uint64, count=len(ids))
        with self._lock:
            cols = self._agents.get(agent_id)
            if cols is None:
                return {}, list(ids)
            rows = cols.rows(keys)
            found: dict[str, Attrs] = {}
            missing: list[str] = []
            for memory_id, key, row in zip(ids, keys.tolist(), rows.tolist(), strict=True):
                if row < 0 or not cols.known[row]:
                    missing.append(memory_id)
                    continue
                expires = int(cols.expires[row])
                found[memory_id] = Attrs(
                    float(cols.importance[row]),
                    _time(int(cols.created[row])),
                    None if expires == NO_TIME else _time(expires),
                    cols.successor.get(key),
                    self._kinds[int(cols.kind[row])],
                )
            return found, missing

    def columns(self, agent_id: str, keys: np.ndarray) -> Columns:
        """What ``get`` gives, as arrays in the order of ``keys`` (vector keys, uint64)
        and without a Python object a memory: recall scores hundreds of candidates."""
        n = len(keys)
        with self._lock:
            cols = self._agents.get(agent_id)
            if cols is None or not len(cols.keys):
                zeros = np.zeros(n, dtype=np.int64)
                return Columns(np.zeros(n, dtype=bool), np.zeros(n), zeros, zeros, np.zeros(n, dtype=bool))
            rows = cols.rows(keys)
            at = np.where(rows >= 0, rows, 0)
            known = (rows >= 0) & (cols.known[at] == _KNOWN)
            successor = cols.successor
            if successor:
                superseded = np.fromiter((k in successor for k in keys.tolist()), dtype=bool, count=n)
            else:
                superseded = np.zeros(n, dtype=bool)
            return Columns(known, cols.importance[at], cols.created[at], cols.expires[at], superseded)

    def __len__(self) -> int:
        with self._lock:
            return int(sum(int(c.known.sum()) for c in self._agents.values()))

    @contextlib.contextmanager
    def reading(self) -> Iterator[_Reading]:
        """Register a lookup: what a write forgets meanwhile is not ``put`` from it."""
        reading = _Reading()
        with self._lock:
            self._readings.add(reading)
        try:
            yield reading
        finally:
            with self._lock:
                self._readings.discard(reading)

    # -- writes ---------------------------------------------------------------------
    def put(self, reading: _Reading, agent_id: str, attrs: Mapping[str, Attrs]) -> None:
        """Keep what a lookup read, unless a write forgot it since the lookup began."""
        with self._lock:
            if reading.cleared:
                return
            self._store(agent_id, {i: a for i, a in attrs.items() if i not in reading.forgotten})

    def record(self, agent_id: str, attrs: Mapping[str, Attrs]) -> None:
        """Keep attributes a committed write set (they are exact)."""
        with self._lock:
            self._store(agent_id, attrs)

    def forget(self, ids: Iterable[str]) -> None:
        """Drop these memories (of any agent): a write changed or deleted them."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        keys = np.fromiter((vector_key(i) for i in ids), dtype=np.uint64, count=len(ids))
        with self._lock:
            for reading in self._readings:
                reading.forgotten.update(ids)
            for cols in self._agents.values():
                rows = cols.rows(keys)
                rows = rows[rows >= 0]
                self._size -= int(cols.known[rows].sum())
                cols.known[rows] = 0
                for key in cols.keys[rows].tolist():
                    cols.successor.pop(key, None)

    def clear(self) -> None:
        """Drop everything (a write that did not say what it changed)."""
        with self._lock:
            for reading in self._readings:
                reading.cleared = True
            self._agents.clear()
            self._size = 0

    def _store(self, agent_id: str, attrs: Mapping[str, Attrs]) -> None:
        if not attrs:
            return
        cols = self._agents.setdefault(agent_id, _Columns())
        by_key = {vector_key(i): a for i, a in attrs.items()}
        keys = np.fromiter(by_key, dtype=np.uint64, count=len(by_key))
        order = np.argsort(keys)
        keys = keys[order]
        values = [by_key[k] for k in keys.tolist()]
        codes = [self._kind_code(a.kind) for a in values]
        rows = cols.rows(keys)
        held = rows >= 0
        if None in codes or self._size + len(values) - int(cols.known[rows[held]].sum()) > self._limit:
            # Past the limit (or more distinct kinds than a byte holds): these are not
            # kept, and whatever was held for them is no longer true.
            self._size -= int(cols.known[rows[held]].sum())
            cols.known[rows[held]] = 0
            for key in keys[held].tolist():
                cols.successor.pop(key, None)
            return
        importance = np.fromiter((a.importance for a in values), dtype=np.float64, count=len(values))
        created = np.fromiter((micros(a.created_at) for a in values), dtype=np.int64, count=len(values))
        expires = np.fromiter(
            (NO_TIME if a.expires_at is None else micros(a.expires_at) for a in values),
            dtype=np.int64, count=len(values),
        )
        kind = np.asarray(codes, dtype=np.uint8)
        old = held
        at = rows[old]
        self._size += len(values) - int(cols.known[at].sum())
        cols.importance[at], cols.created[at], cols.expires[at] = importance[old], created[old], expires[old]
        cols.kind[at], cols.known[at] = kind[old], _KNOWN
        new = ~old
        if new.any():
            pos = np.searchsorted(cols.keys, keys[new])
            cols.keys = np.insert(cols.keys, pos, keys[new])
            cols.importance = np.insert(cols.importance, pos, importance[new])
            cols.created = np.insert(cols.created, pos, created[new])
            cols.expires = np.insert(cols.expires, pos, expires[new])
            cols.kind = np.insert(cols.kind, pos, kind[new])
            cols.known = np.insert(cols.known, pos, np.full(int(new.sum()), _KNOWN, dtype=np.uint8))
        for key, a in zip(keys.tolist(), values, strict=True):
            if a.superseded_by is None:
                cols.successor.pop(key, None)
            else:
                cols.successor[key] = a.superseded_by

    def _kind_code(self, kind: str | None) -> int | None:
        if kind in self._kinds:
            return self._kinds.index(kind)
        if len(self._kinds) > 255:
            return None
        self._kinds.append(kind)
        return len(self._kinds) - 1


class _Reading:
    """A lookup in flight: ids forgotten since it began (or everything, ``cleared``)."""

    __slots__ = ("cleared", "forgotten")

    def __init__(self) -> None:
        self.cleared = False
        self.forgotten: set[str] = set()
