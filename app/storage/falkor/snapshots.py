"""Snapshots of a FalkorDB namespace, for ``casegraph backup`` and ``restore`` (app/ops/backup.py).

A snapshot is what the namespace keeps (connection.py's key layout), taken key by key:

    each agent's graph   the server's own serialisation of the key (DUMP): nodes, edges,
                         properties and the indexes' definitions, byte for byte; taken
                         under the agent's write lock, so no CaseGraph write is half in it
    NS:sessions          session id -> agent (taken after the graphs: it lists every
                         session they hold, since a session is registered before its write)
    NS:meta              the vector space and the schema version

The memory id -> agent directory (``NS:memories``) is not taken: a restore rebuilds it
from the graphs it restored (memory_ids.py), so claims of writes in flight at the backup
do not come back.

API keys (``NS:keys``) are not in a snapshot: restoring must not bring back a revoked key.
Agents are consistent one by one, not with each other (each is a tenant of its own).

A graph restores under the key it was dumped from, and only where no other key holds it:
FalkorDB keeps the graph's name inside the serialisation, and two keys with one name share
state (measured with FalkorDB 4.16: restored under a second key of the same server, both
keys counted both graphs' nodes and the next write to it hung the server). So a snapshot
restores into the namespace it was taken from, emptied first, on this server or another
with a graph module that reads it (``module_version`` is in the manifest).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import redis
from casegraph.errors import ConfigurationError
from casegraph.storage.falkor import memory_ids
from casegraph.storage.falkor.connection import Connection
from casegraph.storage.falkor.keywords import new_epoch


def module_version(conn: Connection) -> int | None:
    """The FalkorDB module's version on the server (e.g. 41603 for 4.16.3)."""
    for module in conn.redis.execute_command("MODULE", "LIST"):
        entry = module if isinstance(module, dict) else dict(zip(module[::2], module[1::2], strict=True))
        if entry.get("name") == "graph":
            return int(entry["ver"])
    return None


def dump_graphs(conn: Connection) -> Iterator[tuple[str, bytes, int]]:
    """(agent, its graph's DUMP, its memory count) for every agent, sorted."""
    for agent_id in conn.agents():
        with conn.lock(agent_id):
            rows = conn.read(agent_id, "MATCH (m:Memory) RETURN count(m)")
            payload = conn.redis.dump(conn.graph_key(agent_id))
        if payload is not None:
            yield agent_id, payload, int(rows[0][0]) if rows else 0


def namespace_hashes(conn: Connection) -> dict[str, dict[str, str]]:
    """The namespace's session and meta hashes (take them after the graphs)."""
    return {name: conn.redis.hgetall(conn.key(name)) for name in ("sessions", "meta")}


def restore(
    conn: Connection, namespace: str, graphs: Mapping[str, bytes], hashes: Mapping[str, Mapping[str, str]],
    *, force: bool = False,
) -> None:
    """Put a snapshot of ``namespace`` back into ``conn``'s (the same name), which holds no
    agent, or (``force``) whose agents' graphs, sessions, memory directory and meta are
    deleted first; its API keys stay."""
    if conn.address.namespace != namespace:
        raise ConfigurationError(
            f"this backup is of namespace {namespace!r} and restores only into it (a FalkorDB graph keeps "
            f"its key's name inside), not into {conn.address.namespace!r}: name it in the store address",
            code="RESTORE_NAMESPACE_MISMATCH",
        )
    existing = conn.agents()
    if existing and not force:
        raise ConfigurationError(
            f"namespace {namespace!r} on {conn.address.host}:{conn.address.port} already holds {len(existing)} "
            "agents; pass --force to delete their graphs, sessions and meta and restore",
            code="RESTORE_TARGET_NOT_EMPTY",
        )
    for agent_id in existing:
        conn.drop_agent(agent_id)
    conn.redis.delete(conn.key("sessions"), conn.key("meta"), conn.key("memories"))
    for agent_id, payload in graphs.items():
        try:
            conn.redis.restore(conn.graph_key(agent_id), 0, payload)  # never over a key (BUSYKEY)
        except redis.ResponseError as exc:
            if "BUSYKEY" in str(exc):
                raise ConfigurationError(
                    f"agent {agent_id!r}'s graph key exists though the namespace lists no such agent: delete "
                    f"{conn.graph_key(agent_id)} and restore again",
                    code="RESTORE_TARGET_NOT_EMPTY",
                ) from exc
            raise ConfigurationError(
                f"the server refused agent {agent_id!r}'s graph: {exc} (was the backup taken with another "
                "FalkorDB version?)",
                code="BACKUP_INCOMPATIBLE",
            ) from exc
        conn.redis.sadd(conn.key("agents"), agent_id)
        # Counts a running process kept of the graph this one replaces do not hold for it.
        new_epoch(conn, agent_id)
    for name, values in hashes.items():
        if values:
            conn.redis.hset(conn.key(name), mapping=dict(values))
    # Memory id -> agent, from the graphs restored (the snapshot does not keep it).
    memory_ids.rebuild(conn)
