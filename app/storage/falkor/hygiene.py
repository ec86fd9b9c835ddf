"""Memory hygiene, customer context and session summaries on FalkorDB.

``FalkorHygiene`` implements the ``HygieneStore`` and ``CustomerContextStore`` protocols
(app/storage/hygiene.py) with the semantics of the embedded twin
(storage/embedded/hygiene.py): the same candidates, order and liveness. Reads run on the
agent's graph; embeddings are read from the memories themselves (``m.embedding``, a
``vecf32``), there being no separate vector store to ask.

Writes are queued on the write path's open ``Transaction`` (connection.py) and go out in
the same query as the memories they belong to, after them: a statement queued here sees
the memories created earlier in that query, but nothing here reads the transaction back
(``tx(...)`` reads what was committed before it). Every write is a MATCH by id, so a memory
deleted meanwhile is simply not matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from casegraph.storage.falkor.connection import Connection, Transaction
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

_CANDIDATES = (
    "MATCH (m:Memory)-[:ABOUT]->(c) "
    "WHERE m.superseded_by IS NULL AND m.kind IS NULL AND m.expires_at IS NULL "
)
_NEIGHBOUR = (
    "m.id, m.content, m.memory_type, m.entities, m.states, m.importance, "
    "m.reinforce_count, m.created_at, m.last_seen_at, m.embedding"
)
# The candidates within cosine distance $maxd of one of the batch's vectors: a row per
# (customer, batch vector) in $rows (r.q, the vector as text), each customer's candidates
# from r.cutoff on (its most recent ones only, when it has more than the limit). A vector
# read out of FalkorDB costs ~1 ms (the server's formatting and the client's parsing), a
# distance computed in it ~5 µs. Rows carry one parsed vector each: a value carried
# through a row is copied with it, so the batch's list must not travel with every memory.
_DEDUP_NEAR = (
    "UNWIND $rows AS r WITH r.key AS key, r.cutoff AS cutoff, vecf32([x IN split(r.q, ',') | toFloat(x)]) AS q "
    "MATCH (c:Customer {uid: key}) WITH c, cutoff, q "
    + _CANDIDATES
    + "AND (cutoff IS NULL OR m.created_at >= cutoff) "
    "WITH c, m, min(vec.cosineDistance(m.embedding, q)) AS distance WHERE distance <= $maxd "
    "RETURN c.uid, " + _NEIGHBOUR
)
_DEDUP_COUNTS = (
    "UNWIND $keys AS key MATCH (c:Customer {uid: key}) WITH c " + _CANDIDATES + "RETURN c.uid, count(m)"
)
_DEDUP_CUTOFF = (
    "MATCH (c:Customer {uid: $key}) WITH c " + _CANDIDATES
    + "RETURN m.created_at ORDER BY m.created_at DESC SKIP $skip LIMIT 1"
)
_DEDUP_ALL = "UNWIND $keys AS key MATCH (c:Customer {uid: key}) WITH c " + _CANDIDATES + "RETURN c.uid, " + _NEIGHBOUR
# Room for the engine's float32 arithmetic against the planner's (the planner decides).
_MARGIN = 1e-3


class FalkorHygiene:
    """``HygieneStore`` and ``CustomerContextStore`` on a ``FalkorStore``."""

    def __init__(self, store: Connection) -> None:
        self.store = store

    # -- reads ------------------------------------------------------------------------
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
        """See ``HygieneStore``: with ``near``, the server filters by distance (``_DEDUP_NEAR``)."""
        if not customer_ids:
            return {}
        by_uid = {node_uid(agent_id, c): c for c in customer_ids}
        if near is not None and min_similarity is not None:
            rows = self._near_candidates(agent_id, by_uid, near, min_similarity, int(limit))
        else:
            rows = self.store.read(agent_id, _DEDUP_ALL, {"keys": list(by_uid)})
        grouped = newest_per_customer(rows, by_uid, customer_ids, limit)
        return {
            customer_id: [neighbour(r, r[10]) for r in found if r[10] is not None]
            for customer_id, found in grouped.items()
        }

    def _near_candidates(
        self, agent_id: str, by_uid: dict[str, str], near: Mapping[str, np.ndarray], min_similarity: float,
        limit: int,
    ) -> list[list[Any]]:
        """The rows of ``_DEDUP_NEAR``: first how many candidates each customer has, and for
        one with more than ``limit`` the creation time of its ``limit``-th most recent."""
        counts = dict(self.store.read(agent_id, _DEDUP_COUNTS, {"keys": list(by_uid)}))
        cutoffs = {
            uid: (rows[0][0] if (rows := self.store.read(agent_id, _DEDUP_CUTOFF, {"key": uid, "skip": limit - 1}))
                  else None)
            for uid, n in counts.items() if n > limit
        }
        batch = [
            {"key": uid, "cutoff": cutoffs.get(uid), "q": _vector_text(v)}
            for uid, c in by_uid.items() if counts.get(uid)
            for v in np.atleast_2d(near.get(c, np.zeros((0, 1), dtype=np.float32)))
        ]
        if not batch:
            return []
        return self.store.read(agent_id, _DEDUP_NEAR, {"rows": batch, "maxd": 1.0 - float(min_similarity) + _MARGIN})

    def stateful_neighbours(
        self, agent_id: str, orders: Sequence[str], tickets: Sequence[str], now: datetime
    ) -> list[StatefulMemory]:
        found: dict[str, dict[str, Any]] = {}
        for label, keys, field in (("`Order`", orders, "orders"), ("Ticket", tickets, "tickets")):
            if not keys:
                continue
            rows = self.store.read(
                agent_id,
                # From the order or ticket (WITH): with the memory's WHERE in the same
                # MATCH, FalkorDB 4 plans a scan of every memory.
                f"UNWIND $keys AS key MATCH (n:{label} {{uid: key}}) WITH n MATCH (m:Memory)-[:MENTIONS]->(n) "
                "WHERE m.superseded_by IS NULL AND m.kind IS NULL AND m.states IS NOT NULL "
                f"AND {LIVE} RETURN m.id, m.states, m.created_at, n.id",
                {"keys": [node_uid(agent_id, k) for k in keys], "now": now},
            )
            for memory_id, states, created_at, key in rows:
                entry = found.setdefault(
                    memory_id, {"states": tuple(states or ()), "t": utc(created_at), "orders": set(), "tickets": set()}
                )
                entry[field].add(key)
        # The subjects found above are only the overlapping ones; each memory's full set of
        # tickets decides "shares a ticket".
        if found:
            rows = self.store.read(
                agent_id,
                "UNWIND $ids AS i MATCH (m:Memory {id: i})-[:MENTIONS]->(t:Ticket) RETURN m.id, t.id",
                {"ids": list(found)},
            )
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

    def memory_session(self, agent_id: str, memory_id: str) -> str | None:
        rows = self.store.read(agent_id, "MATCH (m:Memory {id: $id}) RETURN m.session_id", {"id": memory_id})
        return rows[0][0] if rows else None

    def session_embeddings(self, session_id: str, ids: Sequence[str]) -> np.ndarray:
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        agent_id = self.store.session_agents([session_id]).get(session_id)
        rows = [] if agent_id is None else self.store.read(
            agent_id,
            "MATCH (m:Memory)-[:IN_SESSION]->(:Session {id: $id}) WHERE m.id IN $ids RETURN m.id, m.embedding",
            {"id": session_id, "ids": list(ids)},
        )
        by_id = {r[0]: r[1] for r in rows}
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def customer_ticket_activity(self, agent_id: str, customer_id: str, now: datetime) -> list[TicketActivity]:
        tickets = self.store.read(
            agent_id,
            "MATCH (:Customer {uid: $uid})-[:RAISED]->(t:Ticket) RETURN t.uid, t.id, t.status",
            {"uid": node_uid(agent_id, customer_id)},
        )
        if not tickets:
            return []
        rows = self.store.read(
            agent_id,
            "UNWIND $u AS uid MATCH (t:Ticket {uid: uid}) WITH t MATCH (m:Memory)-[:MENTIONS]->(t) "
            f"WHERE {LIVE} AND m.kind IS NULL "
            "RETURN t.uid, m.id, m.created_at, m.states, m.superseded_by IS NULL ORDER BY m.created_at, m.id",
            {"u": [t[0] for t in tickets], "now": now},
        )
        return ticket_activity(tickets, rows)

    # -- writes (queued on the write's transaction) --------------------------------------
    def write_hygiene(
        self,
        tx: WriteTransaction,
        states: dict[str, tuple[str, ...]],
        reinforcements: Sequence[Reinforcement],
        supersessions: Sequence[Supersession],
        now: datetime,
    ) -> None:
        run = _ours(tx)
        run.unwind(
            "MATCH (m:Memory {id: r.id}) SET m.states = r.s",
            [{"id": i, "s": list(s)} for i, s in states.items() if s],
        )
        run.attrs_changed(x.memory_id for x in reinforcements)
        # The count adds up: a memory created in this write has none of its own yet.
        run.unwind(
            "MATCH (m:Memory {id: r.id}) SET m.importance = r.imp, m.last_seen_at = r.seen, "
            "m.reinforce_count = coalesce(m.reinforce_count, 0) + r.n, m.updated_at = $now",
            [
                {"id": x.memory_id, "imp": float(x.importance), "seen": x.last_seen_at, "n": int(x.count)}
                for x in reinforcements
            ],
            {"now": now},
        )
        rows = [{"old": x.older_id, "new": x.newer_id, "t": x.at} for x in supersessions]
        run.attrs_changed(x.older_id for x in supersessions)
        run.unwind("MATCH (m:Memory {id: r.old}) SET m.superseded_by = r.new", rows)
        run.unwind(
            "MATCH (n:Memory {id: r.new}), (o:Memory {id: r.old}) CREATE (n)-[:SUPERSEDES {at: r.t}]->(o)", rows
        )

    def write_summary(
        self, tx: WriteTransaction, memory_id: str, session_id: str, ended_at: datetime, summary: str
    ) -> None:
        """Mark the summary memory, link it to its session and end the session."""
        run = _ours(tx)
        run.attrs_changed([memory_id])
        run.write("MATCH (m:Memory {id: $m}) SET m.kind = 'summary'", {"m": memory_id})
        run.write(
            "MATCH (m:Memory {id: $m}), (s:Session {id: $s}) CREATE (m)-[:SUMMARISES]->(s)",
            {"m": memory_id, "s": session_id},
        )
        run.write(
            "MATCH (s:Session {id: $s}) SET s.ended_at = $t, s.summary = $sum",
            {"s": session_id, "t": ended_at, "sum": summary},
        )


def _vector_text(vector: np.ndarray) -> str:
    """A vector as the text of its float32 numbers, exact ("0.25,-1.5,..."): one string
    parameter instead of a list the client quotes number by number."""
    return ",".join(map(repr, np.asarray(vector, dtype=np.float32).tolist()))


def _ours(tx: WriteTransaction) -> Transaction:
    """The open transaction the write path handed on is this engine's own."""
    if not isinstance(tx, Transaction):
        raise TypeError(f"not a transaction of the FalkorDB store: {type(tx).__name__}")
    return tx
