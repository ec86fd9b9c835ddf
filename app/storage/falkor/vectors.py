"""Vector search on FalkorDB: ``VectorIndex`` over the vector index of each agent's graph.

The graph is the index: the write path stores each memory's embedding on its node
(``Memory.embedding``, a ``vecf32``) in the same query that writes the memory, and FalkorDB
keeps the vector index (cosine) of the ``Memory`` nodes as part of that query; deleting a
memory's node removes its vector with it. So unlike the embedded engine's USearch files,
there is no second copy to keep in line: ``add`` and ``remove`` have nothing to do, nothing
needs saving, ``reconcile`` finds nothing to mend, and every process sees every other's
writes at once. One graph per agent keeps one agent's search from ever reaching another's
memories.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from casegraph.storage.search import ReconcileReport, VectorHit

if TYPE_CHECKING:
    from casegraph.storage.falkor.store import FalkorStore

# How many memory ids a report lists for each problem.
SAMPLE = 20
# FalkorDB keeps a vecf32 per memory: 4 bytes a dimension (the HNSW graph's links aside).
_BYTES_PER_DIMENSION = 4


def _vector(query: np.ndarray) -> list[float]:
    return np.asarray(query, dtype=np.float32).ravel().tolist()


class FalkorVectors:
    """``VectorIndex`` on the vector index of a FalkorStore's graphs."""

    def __init__(self, store: FalkorStore) -> None:
        self.store = store

    # -- writes: the write path has made them -------------------------------------------
    def add(self, agent_id: str, memory_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Nothing to do: the write that stored these memories stored their embeddings on
        their nodes, and the graph's vector index took them in that same query."""

    def remove(self, agent_id: str, memory_ids: Iterable[str]) -> int:
        """Nothing to do, and nothing held apart from the graph to count: a memory's vector
        goes with its node when ``MemoryStore.delete_memories`` deletes it."""
        return 0

    # -- reads --------------------------------------------------------------------------
    def search(self, agent_id: str, query: np.ndarray, count: int) -> list[VectorHit]:
        """The ``count`` nearest memories of the agent, nearest first (similarity = 1 -
        cosine distance). Like the embedded index, it holds expired memories until the
        sweep deletes them: recall leaves them out."""
        if count < 1:
            return []
        vector = _vector(query)
        # FalkorDB's index keeps the entries of deleted nodes (measured: with the 20 nearest
        # memories deleted, a query for 10 returned none) and drops them after taking the
        # k nearest, so it can return fewer than asked while live memories remain. Ask for
        # more, and more again until there are enough or every live vector came back.
        ask = max(2 * count, count + 16)
        live: int | None = None
        while True:
            rows = self.store.read(
                agent_id,
                "CALL db.idx.vector.queryNodes('Memory', 'embedding', $k, vecf32($q)) YIELD node, score "
                "RETURN node.id, score ORDER BY score, node.id",
                {"k": ask, "q": vector},
            )
            if len(rows) >= count:
                break
            if live is None:
                live = self.count(agent_id)
            if len(rows) >= live:
                break
            ask *= 4
        return [VectorHit(memory_id, 1.0 - float(distance)) for memory_id, distance in rows[:count]]

    def ids_of(self, agent_id: str, keys: Sequence[int]) -> dict[int, str]:
        """The memory ids of these keys (``vector_key``), of the memories with a vector."""
        wanted = list(dict.fromkeys(int(k) for k in keys))
        if not wanted:
            return {}
        rows = self.store.read(
            agent_id,
            "MATCH (m:Memory) WHERE m.key IN $keys AND m.embedding IS NOT NULL RETURN m.key, m.id",
            {"keys": wanted},
        )
        return {int(k): memory_id for k, memory_id in rows}

    def similarities(
        self, agent_id: str, memory_ids: Sequence[str], query: np.ndarray, *, keys: np.ndarray | None = None
    ) -> dict[str, float]:
        """Cosine similarity of ``query`` to each memory's stored embedding, computed by the
        server (no vectors cross the wire); ``keys`` is not needed here."""
        ids = list(dict.fromkeys(memory_ids))
        if not ids:
            return {}
        rows = self.store.read(
            agent_id,
            "MATCH (m:Memory) WHERE m.id IN $ids AND m.embedding IS NOT NULL "
            "RETURN m.id, vec.cosineDistance(m.embedding, vecf32($q))",
            {"ids": ids, "q": _vector(query)},
        )
        return {memory_id: 1.0 - float(distance) for memory_id, distance in rows}

    def count(self, agent_id: str) -> int:
        """How many of the agent's memories have a vector."""
        rows = self.store.read(agent_id, "MATCH (m:Memory) WHERE m.embedding IS NOT NULL RETURN count(m)")
        return int(rows[0][0]) if rows else 0

    def keys(self, agent_id: str) -> set[str]:
        """The ids of the agent's memories that have a vector (what the embedded index's
        ``keys`` lists)."""
        return {r[0] for r in self.store.read(agent_id, "MATCH (m:Memory) WHERE m.embedding IS NOT NULL RETURN m.id")}

    def sizes(self) -> dict[str, tuple[int, int]]:
        """Per agent: (vectors, bytes their values take), for the metrics. One count query
        per agent; the bytes leave out the index's own links, which FalkorDB does not report."""
        dimension = int(self.store.dimension or 0)
        out = {}
        for agent_id in self.store.agents():
            n = self.count(agent_id)
            out[agent_id] = (n, n * dimension * _BYTES_PER_DIMENSION)
        return out

    # -- start-up and persistence: nothing is kept outside the graph ---------------------
    def reconcile(
        self, graph_ids: dict[str, set[str]], load_vectors: Callable[[str, list[str]], Any]
    ) -> ReconcileReport:
        """Nothing to reconcile: the vectors are the graph's own."""
        return ReconcileReport(agents=len(graph_ids), added=0, removed=0)

    def save(self) -> None:
        """Nothing to save: the server persists every write."""

    def report(self) -> dict[str, Any]:
        """Per agent: memories in the graph, those with a vector, and those without one
        (``missing``); no vector can outlive its memory, so ``orphans`` is always 0. The
        shape of the embedded engine's report (storage/embedded/integrity.py)."""
        agents: dict[str, Any] = {}
        total = 0
        ok = True
        for agent_id in self.store.agents():
            rows = self.store.read(
                agent_id,
                "MATCH (m:Memory) RETURN count(m), count(m.embedding), "
                "collect(CASE WHEN m.embedding IS NULL THEN m.id END)",
            )
            memories, vectors, lacking = (int(rows[0][0]), int(rows[0][1]), rows[0][2]) if rows else (0, 0, [])
            if not memories:
                continue
            total += memories
            missing = memories - vectors
            ok = ok and not missing
            agents[agent_id] = {
                "memories": memories,
                "vectors": vectors,
                "missing": missing,
                "orphans": 0,
                "missingSample": sorted(lacking)[:SAMPLE],
                "orphanSample": [],
            }
        return {"ok": ok, "memories": total, "agents": agents}
