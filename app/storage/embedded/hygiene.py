"""The Cypher behind memory hygiene, customer context and session summaries.

``EmbeddedHygiene`` implements the ``HygieneStore`` and ``CustomerContextStore`` protocols
(app/storage/hygiene.py) on the graph and the vector index, so the hygiene features read
as one unit. Reads go through the graph's ``Connection`` (connection.py) and writes run
inside the write path's transaction (the ``run`` callable), so they commit together with
the memories they belong to. All Cypher is parameterised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from casegraph.storage.embedded.connection import Transaction
from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.embedded.vectors import VectorStore
from casegraph.storage.hygiene import (
    Neighbour,
    Reinforcement,
    StatefulMemory,
    Supersession,
    TicketActivity,
)
from casegraph.storage.hygiene_rows import neighbour, newest_per_customer, ticket_activity
from casegraph.storage.memories import Transaction as WriteTransaction
from casegraph.storage.rows import LIVE, node_uid
from casegraph.times import utc

# -- reads -------------------------------------------------------------------------
_DEDUP_COLUMNS = (
    "c.uid, m.id, m.content, m.memory_type, m.entities, m.states, m.importance, "
    "m.reinforce_count, m.created_at, m.last_seen_at"
)
_CURRENT = "m.superseded_by IS NULL AND m.kind IS NULL AND m.expires_at IS NULL"
# A stored vector this much under ``min_similarity`` is still read (the planner compares again).
_NEAR_MARGIN = 1e-3


def dedup_neighbours(
    graph: GraphStore,
    vectors: VectorStore | None,
    agent_id: str,
    customer_ids: Sequence[str],
    now: datetime,
    limit: int = 2000,
    near: Mapping[str, np.ndarray] | None = None,
    min_similarity: float | None = None,
) -> dict[str, list[Neighbour]]:
    """Per customer: its current, non-expiring, ordinary memories (most recent first, at
    most ``limit``); with ``near`` and ``min_similarity``, only those of them near enough
    to be duplicates, as far as the vector index tells (``_near_rows``).

    A few customers (a single store) are point queries from each customer node; a batch's
    many customers one UNWIND join (``GraphStore.by_keys``). Embeddings come from the
    agent's vector index (the graph's vectors in half precision, without shipping 384
    floats per row through Cypher); a memory the index lacks (written by another thread
    and not indexed yet) is read from the graph.
    """
    if not customer_ids:
        return {}
    by_uid = {node_uid(agent_id, c): c for c in customer_ids}
    if vectors is not None and near is not None and min_similarity is not None:
        rows = _near_rows(graph, vectors, agent_id, by_uid, near, min_similarity, limit)
    else:
        rows = _all_rows(graph, by_uid)
    grouped = newest_per_customer(rows, by_uid, customer_ids, limit)
    ids = list(dict.fromkeys(r[1] for found in grouped.values() for r in found))
    embeddings = vectors.vectors_of(agent_id, ids) if vectors is not None else {}
    for memory_id in (i for i in ids if i not in embeddings):  # rare: point lookups
        found_rows = graph.read_prepared(
            "MATCH (m:Memory) WHERE m.id = $id AND m.agent_id = $a RETURN m.embedding",
            {"id": memory_id, "a": agent_id},
        )
        if found_rows:
            embeddings[memory_id] = found_rows[0][0]
    return {
        customer_id: [neighbour(r, embeddings[r[1]]) for r in found if r[1] in embeddings]  # else forgotten meanwhile
        for customer_id, found in grouped.items()
    }


def _all_rows(graph: GraphStore, uids: Iterable[str]) -> list[list[Any]]:
    """Every current memory of these customers, as dedup candidate rows."""
    return graph.by_keys(
        f"MATCH (m:Memory)-[:ABOUT]->(c:Customer {{uid: $key}}) WHERE {_CURRENT} RETURN {_DEDUP_COLUMNS}",
        uids, measured=True,
    )


def _near_rows(
    graph: GraphStore,
    vectors: VectorStore,
    agent_id: str,
    by_uid: Mapping[str, str],
    near: Mapping[str, np.ndarray],
    min_similarity: float,
    limit: int,
) -> list[list[Any]]:
    """The candidate rows of the memories near one of their customer's ``near`` vectors.

    Each customer's memories are first known by the vector keys on their ABOUT edges
    (edge properties, read with the customer's adjacency: 0.5 ms for ~30 memories at
    100k, against 6-14 ms for reading their rows). Only the memories whose indexed
    vector is near are read whole, by id. A customer with more than ``limit`` memories
    (only its ``limit`` most recent current ones count), or one with a memory the index
    lacks, is read whole as before.
    """
    keys_of: dict[str, list[int | None]] = {}
    for uid, key in graph.by_keys("MATCH (:Memory)-[e:ABOUT]->(c:Customer {uid: $key}) RETURN c.uid, e.k", by_uid, measured=True):
        keys_of.setdefault(uid, []).append(key)
    whole: list[str] = []
    wanted: dict[str, list[str]] = {}  # memory id -> the customers (uids) it is near for
    for uid, found in keys_of.items():
        queries = near.get(by_uid[uid])
        keys = [int(k) for k in found if k is not None]
        if len(found) > limit or queries is None or len(keys) < len(found):
            whole.append(uid)
            continue
        stored = vectors.vectors_by_key(agent_id, keys)
        ids = vectors.ids_of(agent_id, keys)
        if len(stored) < len(keys) or len(ids) < len(keys):
            whole.append(uid)  # written meanwhile and not indexed yet
            continue
        qs = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        for k, v in stored.items():
            if float(np.max(qs @ v)) >= min_similarity - _NEAR_MARGIN:
                wanted.setdefault(ids[k], []).append(uid)
    rows = _all_rows(graph, whole) if whole else []
    if wanted:
        # By primary key alone: a hop to the customer in the same statement made Kùzu scan
        # the Customer table for ``c.uid`` (6-13 ms a memory at 100k under load).
        found = graph.by_keys(
            f"MATCH (m:Memory {{id: $key}}) WHERE {_CURRENT} RETURN {_DEDUP_COLUMNS.removeprefix('c.uid, ')}",
            wanted, measured=True,
        )
        rows += [[uid, *r] for r in found for uid in wanted[r[0]]]
    return rows


def stateful_neighbours(
    graph: GraphStore,
    agent_id: str,
    orders: Sequence[str],
    tickets: Sequence[str],
    now: datetime,
    vectors: VectorStore | None = None,
) -> list[StatefulMemory]:
    """Current, unexpired memories with state statements about any of these orders/tickets.

    With ``vectors``, an order's or ticket's memories are known first by the vector keys
    on their MENTIONS edges (edge properties), and their rows are read by primary key: in
    one statement Kùzu read the memories' columns through a scan of the Memory table
    (22-52 ms a ticket at 100k). A node with a memory the index lacks is read as before.
    """
    current = f"m.superseded_by IS NULL AND m.kind IS NULL AND m.states IS NOT NULL AND {LIVE}"
    found: dict[str, dict[str, Any]] = {}
    for label, keys, field in (("`Order`", orders, "orders"), ("Ticket", tickets, "tickets")):
        if not keys:
            continue
        uids = [node_uid(agent_id, k) for k in keys]
        rows: list[list[Any]] = []
        if vectors is not None:
            uids, rows = _stateful_by_edge_keys(graph, vectors, agent_id, label, uids, current, now)
        # The key in the pattern: with ``WHERE n.uid = $u`` Kùzu 0.11 starts from the
        # Memory table (9 ms a ticket at 90k memories, against 1.3 ms).
        rows += graph.by_keys(
            f"MATCH (m:Memory)-[:MENTIONS]->(n:{label} {{uid: $key}}) WHERE {current} "
            "RETURN m.id, m.states, m.created_at, n.id",
            uids,
            {"now": now}, measured=True,
        ) if uids else []
        for memory_id, states, created_at, key in rows:
            entry = found.setdefault(
                memory_id, {"states": tuple(states or ()), "t": utc(created_at), "orders": set(), "tickets": set()}
            )
            entry[field].add(key)
    # The subjects found above are only the overlapping ones; fetch each memory's full set
    # so that "shares a ticket" is judged on everything it mentions.
    if found:
        rows = graph.by_keys("MATCH (m:Memory {id: $key})-[:MENTIONS]->(t:Ticket) RETURN m.id, t.id", found, measured=True)
        for memory_id, key in rows:
            found[memory_id]["tickets"].add(key)
    return [
        StatefulMemory(
            id=i, states=e["states"], created_at=e["t"], orders=frozenset(e["orders"]),
            tickets=frozenset(e["tickets"]),
        )
        for i, e in found.items()
        if e["states"]
    ]


def _stateful_by_edge_keys(
    graph: GraphStore, vectors: VectorStore, agent_id: str, label: str, uids: list[str], current: str, now: datetime
) -> tuple[list[str], list[list[Any]]]:
    """(the uids left to read as before, the rows of the others): each node's memories
    by the vector keys on their edges, then each memory by primary key."""
    edges: dict[str, list[Any]] = {}
    names: dict[str, str] = {}
    for uid, key, k in graph.by_keys(
        f"MATCH (:Memory)-[e:MENTIONS]->(n:{label} {{uid: $key}}) RETURN n.uid, n.id, e.k", uids, measured=True,
    ):
        names[uid] = key
        edges.setdefault(uid, []).append(k)
    left: list[str] = []
    wanted: dict[str, list[str]] = {}  # memory id -> the keys (order or ticket ids) it mentions here
    for uid in uids:
        ks = edges.get(uid, [])
        distinct = {int(k) for k in ks if k is not None}
        ids = vectors.ids_of(agent_id, sorted(distinct))
        if None in ks or len(ids) < len(distinct):
            left.append(uid)  # a memory written meanwhile and not indexed yet, or no key
            continue
        for memory_id in ids.values():
            wanted.setdefault(memory_id, []).append(names[uid])
    rows = graph.by_keys(
        f"MATCH (m:Memory {{id: $key}}) WHERE {current} RETURN m.id, m.states, m.created_at",
        wanted,
        {"now": now}, measured=True,
    ) if wanted else []
    return left, [[r[0], r[1], r[2], key] for r in rows for key in wanted[r[0]]]


def customer_ticket_activity(
    graph: GraphStore, agent_id: str, customer_id: str, now: datetime
) -> list[TicketActivity]:
    """The customer's tickets: stored status, last activity, newest (current if any) memory."""
    tickets = graph.read(
        "MATCH (:Customer {uid: $uid})-[:RAISED]->(t:Ticket) RETURN t.uid, t.id, t.status",
        {"uid": node_uid(agent_id, customer_id)},
    )
    if not tickets:
        return []
    rows = graph.read(
        "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE t.uid IN $u "
        f"AND {LIVE} AND m.kind IS NULL "
        "RETURN t.uid, m.id, m.created_at, m.states, m.superseded_by IS NULL ORDER BY m.created_at",
        {"u": [t[0] for t in tickets], "now": now},
    )
    return ticket_activity(tickets, rows)


def session_embeddings(graph: GraphStore, session_id: str, ids: Sequence[str]) -> np.ndarray:
    if not ids:
        return np.zeros((0, 0), dtype=np.float32)
    rows = graph.read(
        "MATCH (m:Memory)-[:IN_SESSION]->(:Session {id: $id}) WHERE m.id IN $ids RETURN m.id, m.embedding",
        {"id": session_id, "ids": list(ids)},
    )
    by_id = {r[0]: r[1] for r in rows}
    return np.asarray([by_id[i] for i in ids], dtype=np.float32)


# -- writes (inside a transaction) ---------------------------------------------------
def write_states(run: Transaction, states: dict[str, tuple[str, ...]]) -> None:
    rows = [{"id": i, "s": list(s)} for i, s in states.items() if s]
    run.rows("MATCH (m:Memory {id: r.id}) SET m.states = CAST(r.s AS STRING[])", rows)


def write_reinforcements(run: Transaction, items: Sequence[Reinforcement], now: datetime) -> None:
    run.attrs_changed(x.memory_id for x in items)
    run.rows(
        "MATCH (m:Memory {id: r.id}) "
        "SET m.importance = r.imp, m.last_seen_at = r.seen, "
        "m.reinforce_count = coalesce(m.reinforce_count, 0) + r.n, m.updated_at = $now",
        [{"id": x.memory_id, "imp": float(x.importance), "seen": x.last_seen_at, "n": int(x.count)} for x in items],
        {"now": now},
    )


def write_supersessions(run: Transaction, items: Sequence[Supersession]) -> None:
    rows = [{"old": x.older_id, "new": x.newer_id, "t": x.at} for x in items]
    run.attrs_changed(x.older_id for x in items)
    run.rows("MATCH (m:Memory {id: r.old}) SET m.superseded_by = r.new", rows)
    run.rows("MATCH (n:Memory {id: r.new}), (o:Memory {id: r.old}) CREATE (n)-[:SUPERSEDES {at: r.t}]->(o)", rows)


def write_summary(run: Transaction, memory_id: str, session_id: str, ended_at: datetime, summary: str) -> None:
    """Mark the summary memory, link it to its session and end the session."""
    run.attrs_changed([memory_id])
    run("MATCH (m:Memory {id: $m}) SET m.kind = 'summary'", {"m": memory_id})
    run(
        "MATCH (m:Memory {id: $m}), (s:Session {id: $s}) CREATE (m)-[:SUMMARISES]->(s)",
        {"m": memory_id, "s": session_id},
    )
    run(
        "MATCH (s:Session {id: $s}) SET s.ended_at = $t, s.summary = $sum",
        {"s": session_id, "t": ended_at, "sum": summary},
    )


class EmbeddedHygiene:
    """``HygieneStore`` and ``CustomerContextStore`` on the graph (and, for embeddings, the
    vector index; the graph's when None)."""

    def __init__(self, graph: GraphStore, vectors: VectorStore | None = None) -> None:
        self.graph = graph
        self.vectors = vectors

    def dedup_neighbours(
        self,
        agent_id: str,
        customer_ids: Sequence[str],
        now: datetime,
        limit: int = 2000,
        *,
        near: Mapping[str, np.ndarray] | None = None,
        min_similarity: float | None = None,
    ) -> dict[str, list[Neighbour]]:
        return dedup_neighbours(self.graph, self.vectors, agent_id, customer_ids, now, limit, near, min_similarity)

    def stateful_neighbours(
        self, agent_id: str, orders: Sequence[str], tickets: Sequence[str], now: datetime
    ) -> list[StatefulMemory]:
        return stateful_neighbours(self.graph, agent_id, orders, tickets, now, self.vectors)

    def memory_session(self, agent_id: str, memory_id: str) -> str | None:
        rows = self.graph.read_prepared(
            "MATCH (m:Memory) WHERE m.id = $id AND m.agent_id = $a RETURN m.session_id",
            {"id": memory_id, "a": agent_id},
        )
        return rows[0][0] if rows else None

    def session_embeddings(self, session_id: str, ids: Sequence[str]) -> np.ndarray:
        return session_embeddings(self.graph, session_id, ids)

    def write_hygiene(
        self,
        tx: WriteTransaction,
        states: dict[str, tuple[str, ...]],
        reinforcements: Sequence[Reinforcement],
        supersessions: Sequence[Supersession],
        now: datetime,
    ) -> None:
        run = _ours(tx)
        write_states(run, states)
        write_reinforcements(run, reinforcements, now)
        write_supersessions(run, supersessions)

    def write_summary(
        self, tx: WriteTransaction, memory_id: str, session_id: str, ended_at: datetime, summary: str
    ) -> None:
        write_summary(_ours(tx), memory_id, session_id, ended_at, summary)

    def customer_ticket_activity(self, agent_id: str, customer_id: str, now: datetime) -> list[TicketActivity]:
        return customer_ticket_activity(self.graph, agent_id, customer_id, now)


def _ours(tx: WriteTransaction) -> Transaction:
    """The open transaction the write path handed on is this engine's own."""
    if not isinstance(tx, Transaction):
        raise TypeError(f"not a transaction of the embedded graph store: {type(tx).__name__}")
    return tx
