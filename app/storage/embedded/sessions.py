"""Sessions in the graph: their nodes, their memories in order, what they mention.

Implements ``SessionStore`` (app/storage/sessions.py). A memory's position in its session
is on its IN_SESSION edge (009_session_order); a session's customer is the one it started
with or the one it learned later (a HAD_SESSION edge, never a column updated after insert:
docs/kuzu-quirks.md #1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casegraph.domain.models import Memory, Session
from casegraph.storage.embedded.connection import Connection, Transaction
from casegraph.storage.rows import (
    LIVE,
    MEMORY_COLUMNS,
    NO_TEXT,
    memories_by_key,
    memory_from_row,
    node_uid,
    session_from_row,
)
from casegraph.times import utc

# A session's customer learned after it started (AliasLearning.learn_sessions): ``learned``, read
# beside ``s`` (Session.customer_id holds the one given at the start).
_SESSION_CUSTOMER = "OPTIONAL MATCH (lc:Customer)-[:HAD_SESSION]->(s) WITH s, min(lc.id) AS learned"


class SessionQueries(Connection):
    """Sessions (a part of ``GraphStore``)."""

    def create_session(self, session: Session) -> None:
        with self.transaction(reports_attrs=True) as run:
            create_sessions(run, [session])

    def end_session(self, session_id: str, ended_at: datetime, summary: str | None) -> None:
        with self.transaction(reports_attrs=True) as run:
            run(
                "MATCH (s:Session {id: $id}) SET s.ended_at = $t, s.summary = $sum",
                {"id": session_id, "t": ended_at, "sum": summary or NO_TEXT},
            )

    def session_memories(
        self, session_id: str, now: datetime, *, limit: int | None = None, offset: int = 0
    ) -> list[Memory]:
        # LIMIT offset+limit, then skip in Python (docs/kuzu-quirks.md #3).
        page = f" LIMIT {int(offset) + int(limit)}" if limit is not None else ""
        rows = self.read(
            "MATCH (m:Memory)-[e:IN_SESSION]->(s:Session {id: $id}) "
            f"WHERE {LIVE} "
            f"RETURN {MEMORY_COLUMNS} ORDER BY e.seq, m.created_at, m.id{page}",
            {"id": session_id, "now": now},
        )
        return [memory_from_row(r) for r in rows[int(offset):]]

    # -- reads: sessions and customers ------------------------------------------------
    def session_mentions(
        self, agent_id: str, kind: str, key: str, limit: int
    ) -> list[tuple[str, str, int, datetime | None, bool]]:
        """(memory id, session id, position, session start, session ended) of the memories
        in a session that MENTION the order, ticket or entity (``kind:key``) ``key``."""
        label = {"order": "`Order`", "ticket": "Ticket", "entity": "Entity"}[kind]
        # A ticket's memories first, then their sessions: in one pattern Kùzu 0.11 planned
        # the ticket's walk from the sessions' side, 8.9-12 ms a ticket at 100k memories
        # against 1.7-1.8 ms this way. Not for orders (the same either way) nor entities
        # (hundreds of memories each: 12.7 ms in one pattern, 19.5 this way).
        mentions = f"MATCH (:{label} {{uid: $u}})<-[:MENTIONS]-(m:Memory)"
        walk = f"{mentions} WITH m MATCH (m)" if kind == "ticket" else mentions
        rows = self.read_prepared(
            f"{walk}-[e:IN_SESSION]->(s:Session) "
            f"RETURN m.id, s.id, e.seq, s.started_at, s.ended_at IS NOT NULL LIMIT {int(limit)}",
            {"u": node_uid(agent_id, key)},
        )
        return [(r[0], r[1], int(r[2] or 0), utc(r[3]), bool(r[4])) for r in rows]

    def session_tail(
        self, session_id: str, after: int, limit: int, now: datetime
    ) -> list[tuple[str, int, str, dict[str, Any]]]:
        """(id, position, content, metadata) of the last ``limit`` unexpired memories of a
        session after position ``after``, in order."""
        rows = self.read_prepared(
            "MATCH (m:Memory)-[e:IN_SESSION]->(:Session {id: $s}) WHERE e.seq > $q "
            f"AND {LIVE} "
            f"RETURN m.id, e.seq, m.content, m.metadata ORDER BY e.seq DESC LIMIT {int(limit)}",
            {"s": session_id, "q": int(after), "now": now},
        )
        return [(r[0], int(r[1]), r[2], json.loads(r[3]) if r[3] else {}) for r in reversed(rows)]

    def idle_sessions(self, idle_since: datetime, limit: int) -> list[str]:
        """Open sessions started at or before ``idle_since`` with no memory created after
        it, oldest first."""
        rows = self.read(
            "MATCH (s:Session) WHERE s.ended_at IS NULL AND s.started_at <= $t "
            "OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
            "WITH s, max(m.created_at) AS last WHERE last IS NULL OR last <= $t "
            f"RETURN s.id ORDER BY s.started_at, s.id LIMIT {int(limit)}",
            {"t": idle_since},
        )
        return [r[0] for r in rows]

    def session_summary_memory(self, session_id: str) -> str | None:
        """The id of the memory that summarises a session (when it was ended with one)."""
        rows = self.read_prepared("MATCH (m:Memory)-[:SUMMARISES]->(:Session {id: $s}) RETURN m.id", {"s": session_id})
        return rows[0][0] if rows else None

    def get_session(self, session_id: str) -> Session | None:
        rows = self.read(
            f"MATCH (s:Session {{id: $id}}) {_SESSION_CUSTOMER} OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
            "RETURN s.id, s.agent_id, s.started_at, coalesce(s.customer_id, learned), s.ended_at, s.summary, "
            "s.metadata, count(m)",
            {"id": session_id},
        )
        return session_from_row(rows[0]) if rows else None

    def get_sessions(self, ids: Sequence[str]) -> dict[str, Session]:
        if not ids:
            return {}
        rows = self.read(
            f"MATCH (s:Session) WHERE s.id IN $ids {_SESSION_CUSTOMER} OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
            "RETURN s.id, s.agent_id, s.started_at, coalesce(s.customer_id, learned), s.ended_at, s.summary, "
            "s.metadata, count(m)",
            {"ids": list(ids)},
        )
        return {r[0]: session_from_row(r) for r in rows}

    def list_sessions(
        self, agent_id: str, *, customer_id: str | None = None, active_only: bool = False,
        limit: int = 100, offset: int = 0,
    ) -> list[Session]:
        where = ["s.agent_id = $a"]
        params: dict[str, Any] = {"a": agent_id}
        match = "MATCH (s:Session)"
        if customer_id is not None:
            # HAD_SESSION: given at the start or learned later (AliasLearning.learn_sessions).
            match = "MATCH (:Customer {uid: $cu})-[:HAD_SESSION]->(s:Session)"
            params["cu"] = node_uid(agent_id, customer_id)
        if active_only:
            where.append("s.ended_at IS NULL")
        rows = self.read(
            f"{match} WHERE {' AND '.join(where)} {_SESSION_CUSTOMER} "
            "OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
            "RETURN s.id, s.agent_id, s.started_at, coalesce(s.customer_id, learned), s.ended_at, s.summary, "
            # LIMIT offset+limit, then skip in Python (docs/kuzu-quirks.md #3).
            f"s.metadata, count(m) ORDER BY s.started_at DESC, s.id LIMIT {int(offset) + int(limit)}",
            params,
        )
        return [session_from_row(r) for r in rows[int(offset):]]

    def sessions_memories(self, session_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories (and summaries) of these sessions."""
        out: dict[str, str] = {}
        for rel in ("IN_SESSION", "SUMMARISES"):
            out.update((r[0], r[1]) for r in self.by_keys(
                f"MATCH (s:Session {{id: $key}})<-[:{rel}]-(m:Memory) RETURN m.id, s.id", session_ids))
        return out

    def sessions_live_memories(
        self, agent_id: str, session_ids: Sequence[str], now: datetime
    ) -> dict[str, list[Memory]]:
        """Session id -> its unexpired memories in the order they were stored (``session_memories``)."""
        rows = self.by_keys(
            "MATCH (m:Memory)-[e:IN_SESSION]->(s:Session {id: $key}) "
            f"WHERE m.agent_id = $a AND {LIVE} "
            f"RETURN s.id, {MEMORY_COLUMNS} ORDER BY e.seq, m.created_at, m.id",
            session_ids, {"a": agent_id, "now": now},
        )
        return memories_by_key(rows)

    def sessions_summaries(self, agent_id: str, session_ids: Sequence[str]) -> dict[str, str]:
        """Session id -> the id of its newest summary memory, for the sessions that have one."""
        rows = self.by_keys(
            "MATCH (m:Memory)-[:SUMMARISES]->(s:Session {id: $key}) WHERE m.agent_id = $a "
            "RETURN s.id, m.id ORDER BY m.created_at DESC",
            session_ids, {"a": agent_id},
        )
        out: dict[str, str] = {}
        for session_id, memory_id in rows:
            out.setdefault(session_id, memory_id)
        return out


def create_sessions(run: Transaction, sessions: Sequence[Session]) -> None:
    """Create sessions (ended ones too, for imports) and link them to their customers."""
    rows = [
        {
            "id": s.id,
            "a": s.agent_id,
            "c": s.customer_id,
            "t": s.started_at,
            "e": s.ended_at,
            "sum": s.summary or NO_TEXT,
            "meta": json.dumps(s.metadata, sort_keys=True),
        }
        for s in sessions
    ]
    # The CASTs type fields that may be NULL in every row (Kùzu 0.11 UNWIND).
    run(
        "UNWIND $rows AS r CREATE (:Session {id: r.id, agent_id: r.a, "
        "customer_id: CAST(r.c AS STRING), started_at: r.t, ended_at: CAST(r.e AS TIMESTAMP), "
        "summary: CAST(r.sum AS STRING), metadata: r.meta})",
        {"rows": rows},
    )
    customers = [
        {"uid": node_uid(s.agent_id, s.customer_id), "a": s.agent_id, "cid": s.customer_id,
         "t": s.started_at, "sid": s.id}
        for s in sessions
        if s.customer_id
    ]
    if customers:
        unique = list({r["uid"]: r for r in reversed(customers)}.values())  # earliest row wins
        run(
            "UNWIND $rows AS r MERGE (c:Customer {uid: r.uid}) "
            "ON CREATE SET c.agent_id = r.a, c.id = r.cid, c.created_at = r.t",
            {"rows": unique},
        )
        run.rows("MATCH (c:Customer {uid: r.uid}), (s:Session {id: r.sid}) CREATE (c)-[:HAD_SESSION]->(s)", customers)
