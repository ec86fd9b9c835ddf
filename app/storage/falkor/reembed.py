"""The FalkorDB side of ``casegraph reembed`` (app/ops/reembed.py): progress, new embeddings, the vector index.

The embedded twin's steps (storage/embedded/reembed.py) on a namespace: a run records its
target under ``REEMBED_KEY`` in ``NS:meta`` (every process then refuses to open the store:
``check_vector_space``); each batch of one agent's memories gets its embeddings in one
transaction under the agent's lock, and then the agent's progress (``PROGRESS_PREFIX`` +
agent: the last memory id done) is recorded: a run killed in between embeds that batch
again, which changes nothing. The end marks every ticket for a refresh, records the new
space and drops the run's fields. A new vector size needs a new vector index: the old one
is dropped at the start and created at the end.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence

import numpy as np
from casegraph.errors import StorageError
from casegraph.storage.falkor.connection import Connection
from casegraph.storage.falkor.schema import create_indexes
from casegraph.storage.space import EMBEDDING_KEY, REEMBED_KEY, VectorSpace

PROGRESS_PREFIX = "reembed_done:"


def last_done(conn: Connection, agent_id: str) -> str | None:
    """The last memory id of the agent the recorded run re-embedded (None: none yet)."""
    return conn.get_meta(PROGRESS_PREFIX + agent_id)


def _progress_fields(conn: Connection) -> list[str]:
    return [f for f in conn.redis.hkeys(conn.key("meta")) if f.startswith(PROGRESS_PREFIX)]


def record_target(conn: Connection, target: VectorSpace, *, new_size: bool) -> None:
    """Start a run towards ``target``: forget any earlier run's progress; with ``new_size``
    drop every agent's vector index (its size is the old vectors')."""
    if fields := _progress_fields(conn):
        conn.redis.hdel(conn.key("meta"), *fields)
    conn.set_meta(REEMBED_KEY, target.to_json())
    if new_size:
        for agent_id in conn.agents():
            with contextlib.suppress(StorageError):  # none (a graph without memories)
                conn.execute(agent_id, "DROP VECTOR INDEX FOR (m:Memory) ON (m.embedding)")


def memory_ids(conn: Connection, agent_id: str) -> list[str]:
    """The agent's memory ids, in the order a run walks them (and resumes after the last done)."""
    return [r[0] for r in conn.read(agent_id, "MATCH (m:Memory) RETURN m.id ORDER BY m.id")]


def memory_contents(conn: Connection, agent_id: str, ids: Sequence[str]) -> dict[str, str]:
    """The stored text of each existing memory among ``ids``."""
    return dict(conn.read(agent_id, "UNWIND $ids AS i MATCH (m:Memory {id: i}) RETURN m.id, m.content",
                          {"ids": list(ids)}))


def write_batch(conn: Connection, agent_id: str, ids: Sequence[str], vectors: np.ndarray, last_id: str) -> None:
    """The batch's new embeddings in one transaction, then the agent's progress."""
    rows = [
        {"id": i, "e": ",".join(map(repr, np.asarray(v, dtype=np.float32).tolist()))}
        for i, v in zip(ids, vectors, strict=True)
    ]
    with conn.transaction(agent_id) as tx:
        # Cleared first: FalkorDB 4.16 ignores SET of a vecf32 over another one in some
        # cases ([1,0,0] -> [0.5,0.5,0] kept [1,0,0]; -> [0,0.5,0.5] did not), silently;
        # set from NULL it always takes (measured).
        tx.unwind(
            "MATCH (m:Memory {id: r.id}) SET m.embedding = NULL "
            "WITH m, r SET m.embedding = vecf32([x IN split(r.e, ',') | toFloat(x)])",
            rows,
        )
    conn.set_meta(PROGRESS_PREFIX + agent_id, last_id)


def finish(conn: Connection, target: VectorSpace) -> None:
    """Every agent's vector index of the target's size (kept when it has it) and tickets
    marked for a refresh; then the new space recorded and the run's fields dropped."""
    token = uuid.uuid4().hex
    for agent_id in conn.agents():
        create_indexes(lambda statement, a=agent_id: conn.execute(a, statement), target.dim)
        conn.write(agent_id, "MATCH (t:Ticket) SET t.refresh_token = $token", {"token": token})
    conn.set_meta(EMBEDDING_KEY, target.to_json())
    conn.redis.hdel(conn.key("meta"), REEMBED_KEY, *_progress_fields(conn))
