"""Does the vector index agree with the graph? A report per agent (admin endpoint, tests).

Kùzu is the source of truth; each agent's USearch index must hold exactly one vector per
memory of that agent. Writes commit to the graph first and reach the index a moment
later, so take the report when the service is idle (e.g. right after start-up).
"""

from __future__ import annotations

from typing import Any

from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.embedded.vectors import VectorStore
from casegraph.storage.search import vector_key

SAMPLE = 20


def vector_report(graph: GraphStore, vectors: VectorStore) -> dict[str, Any]:
    """Per agent: memories in the graph, vectors in the index, and what is missing or orphaned."""
    graph_ids = graph.all_memory_ids()
    agents: dict[str, Any] = {}
    ok = True
    for agent_id in sorted(set(graph_ids) | set(vectors.agent_ids())):
        wanted = {vector_key(m): m for m in graph_ids.get(agent_id, set())}
        present = vectors.index_keys(agent_id)
        missing = sorted(m for k, m in wanted.items() if k not in present)
        orphans = sorted(k for k in present if k not in wanted)
        if not wanted and not present:
            continue
        ok = ok and not missing and not orphans
        agents[agent_id] = {
            "memories": len(wanted),
            "vectors": len(present),
            "missing": len(missing),
            "orphans": len(orphans),
            "missingSample": missing[:SAMPLE],
            "orphanSample": [str(k) for k in orphans[:SAMPLE]],
        }
    return {"ok": ok, "memories": sum(len(v) for v in graph_ids.values()), "agents": agents}
