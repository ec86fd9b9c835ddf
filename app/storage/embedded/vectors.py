"""USearch vector indexes, one per agent.

Tenant isolation by construction: every agent has its own index file, so a search for
one agent cannot return another agent's vectors (USearch's ``search`` has no filter).
Kùzu is the source of truth and keeps each memory's embedding; the index files are a
cache that is saved in the background and reconciled against the graph at start-up,
so a crash between a graph commit and an index save loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from casegraph.storage.search import ReconcileReport, VectorHit, vector_key
from usearch.index import Index

log = logging.getLogger("casegraph.vectors")

# Half precision in memory: 768 bytes a 384-d vector instead of 1,536 (77 MB less at 100k
# memories); cosine similarities move by about 1e-3. The graph keeps the float32 originals.
# An index file saved as f32 by an earlier version loads as f32 (USearch keeps the file's kind).
_DTYPE = "f16"


class _AgentIndex:
    def __init__(self, path: Path, ndim: int) -> None:
        self.path = path
        self.index = Index(ndim=ndim, metric="cos", dtype=_DTYPE)
        if path.exists():
            try:
                self.index.load(str(path))
            except Exception:  # a torn or foreign file is only a cache: rebuild it
                log.warning("vector index %s unreadable; rebuilding from the graph", path)
                self.index = Index(ndim=ndim, metric="cos", dtype=_DTYPE)
        self.ids: dict[int, str] = {}
        self.lock = threading.RLock()
        self.dirty = False


class VectorStore:
    """Per-agent USearch indexes under ``<data_dir>/vectors``."""

    def __init__(self, directory: Path, ndim: int) -> None:
        self.directory = directory
        self.ndim = ndim
        directory.mkdir(parents=True, exist_ok=True)
        self._agents: dict[str, _AgentIndex] = {}
        self._lock = threading.Lock()

    def _file_for(self, agent_id: str) -> Path:
        digest = hashlib.sha256(agent_id.encode()).hexdigest()[:32]
        return self.directory / f"{digest}.usearch"

    def _agent(self, agent_id: str) -> _AgentIndex:
        with self._lock:
            idx = self._agents.get(agent_id)
            if idx is None:
                idx = _AgentIndex(self._file_for(agent_id), self.ndim)
                self._agents[agent_id] = idx
            return idx

    # -- writes -------------------------------------------------------------------
    def add(self, agent_id: str, memory_ids: Sequence[str], vectors: np.ndarray) -> None:
        if not memory_ids:
            return
        idx = self._agent(agent_id)
        keys = np.array([vector_key(m) for m in memory_ids], dtype=np.uint64)
        with idx.lock:
            present = [int(k) for k in keys if idx.index.contains(int(k))]
            if present:
                idx.index.remove(present)
            idx.index.add(keys, np.asarray(vectors, dtype=np.float32))
            for k, m in zip(keys.tolist(), memory_ids, strict=True):
                idx.ids[k] = m
            idx.dirty = True

    def remove(self, agent_id: str, memory_ids: Iterable[str]) -> int:
        idx = self._agent(agent_id)
        removed = 0
        with idx.lock:
            for m in memory_ids:
                k = vector_key(m)
                if idx.index.contains(k):
                    idx.index.remove(k)
                    removed += 1
                idx.ids.pop(k, None)
            idx.dirty = idx.dirty or removed > 0
        return removed

    # -- reads --------------------------------------------------------------------
    def search(self, agent_id: str, query: np.ndarray, count: int) -> list[VectorHit]:
        idx = self._agent(agent_id)
        with idx.lock:
            size = len(idx.index)
            if size == 0:
                return []
            matches = idx.index.search(np.asarray(query, dtype=np.float32), min(count, size))
            hits = []
            for key, distance in zip(matches.keys.tolist(), matches.distances.tolist(), strict=True):
                memory_id = idx.ids.get(int(key))
                if memory_id is not None:
                    hits.append(VectorHit(memory_id, 1.0 - float(distance)))
            return hits

    def ids_of(self, agent_id: str, keys: Sequence[int]) -> dict[int, str]:
        """The memory ids of these keys, of those the index holds."""
        idx = self._agent(agent_id)
        with idx.lock:
            ids = idx.ids
            return {k: ids[k] for k in keys if k in ids}

    def _stored(
        self, agent_id: str, memory_ids: Sequence[str], keys: np.ndarray | None = None
    ) -> list[np.ndarray | None]:
        """Each memory's stored vector (None where the index holds none), in order
        (``keys``: their vector keys, when the caller has them)."""
        idx = self._agent(agent_id)
        if keys is None:
            keys = np.array([vector_key(m) for m in memory_ids], dtype=np.uint64)
        with idx.lock:
            return list(idx.index.get(keys))

    def vectors_by_key(self, agent_id: str, keys: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of these vector keys (those the index holds)."""
        if not keys:
            return {}
        found = self._stored(agent_id, [], np.array(keys, dtype=np.uint64))
        return {k: v.astype(np.float32) for k, v in zip(keys, found, strict=True) if v is not None}

    def vectors_of(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these memories (those the index holds)."""
        if not memory_ids:
            return {}
        found = self._stored(agent_id, memory_ids)
        return {m: v.astype(np.float32) for m, v in zip(memory_ids, found, strict=True) if v is not None}

    def similarities(
        self, agent_id: str, memory_ids: Sequence[str], query: np.ndarray, *, keys: np.ndarray | None = None
    ) -> dict[str, float]:
        """Cosine similarity of ``query`` (normalised) to each memory's stored vector, for
        those the index holds: one ``get`` and one product for all of them."""
        if not memory_ids:
            return {}
        found = self._stored(agent_id, memory_ids, keys)
        held = [i for i, v in enumerate(found) if v is not None]
        if not held:
            return {}
        sims = np.stack([found[i] for i in held]).astype(np.float32) @ np.asarray(query, dtype=np.float32)
        return {memory_ids[i]: float(x) for i, x in zip(held, sims.tolist(), strict=True)}

    def count(self, agent_id: str) -> int:
        idx = self._agent(agent_id)
        with idx.lock:
            return len(idx.index)

    def sizes(self) -> dict[str, tuple[int, int]]:
        """Per loaded agent: (vectors, bytes of memory the index holds). Cheap: no I/O."""
        with self._lock:
            items = list(self._agents.items())
        out = {}
        for agent_id, idx in items:
            with idx.lock:
                out[agent_id] = (len(idx.index), int(idx.index.memory_usage))
        return out

    def keys(self, agent_id: str) -> set[str]:
        idx = self._agent(agent_id)
        with idx.lock:
            return set(idx.ids.values())

    def index_keys(self, agent_id: str) -> set[int]:
        """The USearch keys actually in the agent's index (for integrity reports)."""
        idx = self._agent(agent_id)
        with idx.lock:
            return {int(k) for k in np.asarray(idx.index.keys).tolist()}

    def agent_ids(self) -> list[str]:
        """Agents whose index is loaded (every agent with memories, after reconcile)."""
        with self._lock:
            return list(self._agents)

    # -- start-up and persistence -------------------------------------------------
    def reconcile(
        self,
        graph_ids: dict[str, set[str]],
        load_vectors: Callable[[str, list[str]], np.ndarray],
    ) -> ReconcileReport:
        """Make every agent's index hold exactly the memories the graph holds.

        ``load_vectors(agent_id, ids)`` gives the embeddings of those ids, in their order.
        """
        added = removed = 0
        agents = set(graph_ids)
        # Index files of agents that no longer have memories are orphans too.
        known_files = {self._file_for(a): a for a in agents}
        for path in self.directory.glob("*.usearch"):
            if path not in known_files:
                path.unlink(missing_ok=True)
        for agent_id in agents:
            wanted = graph_ids[agent_id]
            idx = self._agent(agent_id)
            with idx.lock:
                by_key = {vector_key(m): m for m in wanted}
                present = {int(k) for k in np.asarray(idx.index.keys).tolist()}
                stale = [k for k in present if k not in by_key]
                if stale:
                    idx.index.remove(stale)
                    removed += len(stale)
                idx.ids = {k: m for k, m in by_key.items() if k in present}
                missing = [m for k, m in by_key.items() if k not in present]
            if missing:
                for start in range(0, len(missing), 5000):
                    chunk = missing[start : start + 5000]
                    self.add(agent_id, chunk, load_vectors(agent_id, chunk))
                added += len(missing)
            if stale or missing:
                idx.dirty = True
        self.save()
        return ReconcileReport(agents=len(agents), added=added, removed=removed)

    def save(self) -> None:
        """Write dirty indexes atomically (temp file + rename)."""
        with self._lock:
            items = list(self._agents.values())
        for idx in items:
            with idx.lock:
                if not idx.dirty:
                    continue
                tmp = idx.path.with_suffix(".tmp")
                idx.index.save(str(tmp))
                os.replace(tmp, idx.path)
                idx.dirty = False
