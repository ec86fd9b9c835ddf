"""Sessions on FalkorDB: their nodes, their memories in order, what they mention.

Implements ``SessionStore`` (app/storage/sessions.py) with the semantics of
storage/embedded/sessions.py. A session lives in its agent's graph; session ids are
global, so a read by session id first finds the agent (``session_agents``, the
``NS:sessions`` hash). A memory's position in its session is on its IN_SESSION edge; a
session's customer is the one it started with or the one it learned later (HAD_SESSION).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casegraph.domain.models import Memory, Session
from casegraph.errors import StorageError
from casegraph.storage.falkor.connection import Connection, Transaction
from casegraph.storage.rows import (
    LIVE,
    MEMORY_COLUMNS,
    memories_by_key,
    memory_from_row,
    node_uid,
    session_from_row,
)
from casegraph.times import utc

# A session's customer learned after it started: ``learned``, read beside ``s``
# (Session.customer_id holds the one given at the start).
_SESSION_CUSTOMER = "OPTIONAL MATCH (lc:Customer)-[:HAD_SESSION]->(s) WITH s, min(lc.id) AS learned"
_SESSION_RETURN = (
    "OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
    "RETURN s.id, s.agent_id, s.started_at, coalesce(s.customer_id, learned), s.ended_at, s.summary, "
    "s.metadata, count(m)"
)


class SessionQueries(Connection):
    """Sessions (a part of ``FalkorStore``)."""

    dimension: int | None

    def create_session(self, session: Session) -> None:
        self.register_sessions([(session.id, session.agent_id)])
        with self.transaction(session.agent_id) as tx:
            existing = tx("MATCH (s:Session {id: $id}) RETURN s.id", {"id": session.id})
            queue_sessions(tx, [session], {r[0] for r in existing})

    def end_session(self, session_id: str, ended_at: datetime, summary: str | None) -> None:
        agent_id = self._agent_of(session_id)
        if agent_id is None:
            return
        with self.transaction(agent_id) as tx:
            tx.write("MATCH (s:Session {id: $id}) SET s.ended_at = $t, s.summary = $sum",
                     {"id": session_id, "t": ended_at, "sum": summary or None})

    def _agent_of(self, session_id: str) -> str | None:
        return self.session_agents([session_id]).get(session_id)

    def _by_agent(self, session_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for sid, agent_id in self.session_agents(session_ids).items():
            out.setdefault(agent_id, []).append(sid)
        return out

    # -- reads --------------------------------------------------------------------------
    def get_session(self, session_id: str) -> Session | None:
        return self.get_sessions([session_id]).get(session_id)

    def get_sessions(self, ids: Sequence[str]) -> dict[str, Session]:
        out: dict[str, Session] = {}
        for agent_id, sids in self._by_agent(ids).items():
            rows = self.read(
                agent_id,
                f"UNWIND $ids AS sid MATCH (s:Session {{id: sid}}) {_SESSION_CUSTOMER} {_SESSION_RETURN}",
                {"ids": sids},
            )
            out.update((r[0], session_from_row(r)) for r in rows)
        return out

    def list_sessions(
        self, agent_id: str, *, customer_id: str | None = None, active_only: bool = False,
        limit: int = 100, offset: int = 0,
    ) -> list[Session]:
        params: dict[str, Any] = {}
        match = "MATCH (s:Session)"
        if customer_id is not None:
            # HAD_SESSION: given at the start or learned later (AliasLearning.learn_sessions).
            match = "MATCH (:Customer {uid: $cu})-[:HAD_SESSION]->(s:Session)"
            params["cu"] = node_uid(agent_id, customer_id)
        where = " WHERE s.ended_at IS NULL" if active_only else ""
        rows = self.read(
            agent_id,
            f"{match}{where} {_SESSION_CUSTOMER} {_SESSION_RETURN} "
            f"ORDER BY s.started_at DESC, s.id SKIP {int(offset)} LIMIT {int(limit)}",
            params,
        )
        return [session_from_row(r) for r in rows]

    def session_memories(
        self, session_id: str, now: datetime, *, limit: int | None = None, offset: int = 0
    ) -> list[Memory]:
        agent_id = self._agent_of(session_id)
        if agent_id is None:
            return []
        page = f" SKIP {int(offset)}" + (f" LIMIT {int(limit)}" if limit is not None else "")
        rows = self.read(
            agent_id,
            f"MATCH (m:Memory)-[e:IN_SESSION]->(s:Session {{id: $id}}) WHERE {LIVE} "
            f"RETURN {MEMORY_COLUMNS} ORDER BY e.seq, m.created_at, m.id{page}",
            {"id": session_id, "now": now},
        )
        return [memory_from_row(r) for r in rows]

    def session_mentions(
        self, agent_id: str, kind: str, key: str, limit: int
    ) -> list[tuple[str, str, int, datetime | None, bool]]:
        """(memory id, session id, position, session start, session ended) of the memories
        in a session that MENTION the order, ticket or entity (``kind:key``) ``key``."""
        label = {"order": "`Order`", "ticket": "Ticket", "entity": "Entity"}[kind]
        rows = self.read(
            agent_id,
            f"MATCH (:{label} {{uid: $u}})<-[:MENTIONS]-(m:Memory)-[e:IN_SESSION]->(s:Session) "
            f"RETURN m.id, s.id, e.seq, s.started_at, s.ended_at IS NOT NULL LIMIT {int(limit)}",
            {"u": node_uid(agent_id, key)},
        )
        return [(r[0], r[1], int(r[2] or 0), utc(r[3]), bool(r[4])) for r in rows]

    def session_tail(
        self, session_id: str, after: int, limit: int, now: datetime
    ) -> list[tuple[str, int, str, dict[str, Any]]]:
        """(id, position, content, metadata) of the last ``limit`` unexpired memories of a
        session after position ``after``, in order."""
        agent_id = self._agent_of(session_id)
        if agent_id is None:
            return []
        rows = self.read(
            agent_id,
            f"MATCH (m:Memory)-[e:IN_SESSION]->(:Session {{id: $s}}) WHERE e.seq > $q AND {LIVE} "
            f"RETURN m.id, e.seq, m.content, m.metadata ORDER BY e.seq DESC LIMIT {int(limit)}",
            {"s": session_id, "q": int(after), "now": now},
        )
        return [(r[0], int(r[1]), r[2], json.loads(r[3]) if r[3] else {}) for r in reversed(rows)]

    def idle_sessions(self, idle_since: datetime, limit: int) -> list[str]:
        """Open sessions started at or before ``idle_since`` with no memory created after
        it, oldest first (across agents)."""
        found: list[list[tuple[int, str]]] = []
        for agent_id in self.agents():
            rows = self.read(
                agent_id,
                "MATCH (s:Session) WHERE s.ended_at IS NULL AND s.started_at <= $t "
                "OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
                "WITH s, max(m.created_at) AS last WHERE last IS NULL OR last <= $t "
                f"RETURN s.started_at, s.id ORDER BY s.started_at, s.id LIMIT {int(limit)}",
                {"t": idle_since},
            )
            found.append([(int(r[0]), r[1]) for r in rows])
        return [sid for _, sid in heapq.merge(*found)][: int(limit)]

    def session_summary_memory(self, session_id: str) -> str | None:
        """The id of the memory that summarises a session (when it was ended with one)."""
        agent_id = self._agent_of(session_id)
        if agent_id is None:
            return None
        rows = self.read(agent_id, "MATCH (m:Memory)-[:SUMMARISES]->(:Session {id: $s}) RETURN m.id", {"s": session_id})
        return rows[0][0] if rows else None

    def sessions_memories(self, session_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories (and summaries) of these sessions."""
        out: dict[str, str] = {}
        for agent_id, sids in self._by_agent(session_ids).items():
            for rel in ("IN_SESSION", "SUMMARISES"):
                out.update((r[0], r[1]) for r in self.read(
                    agent_id,
                    f"UNWIND $ids AS sid MATCH (s:Session {{id: sid}})<-[:{rel}]-(m:Memory) RETURN m.id, s.id",
                    {"ids": sids},
                ))
        return out

    def sessions_live_memories(
        self, agent_id: str, session_ids: Sequence[str], now: datetime
    ) -> dict[str, list[Memory]]:
        """Session id -> its unexpired memories in the order they were stored (``session_memories``)."""
        if not session_ids:
            return {}
        rows = self.read(
            agent_id,
            "UNWIND $ids AS sid MATCH (m:Memory)-[e:IN_SESSION]->(s:Session {id: sid}) "
            f"WHERE m.agent_id = $a AND {LIVE} "
            f"RETURN s.id, {MEMORY_COLUMNS} ORDER BY e.seq, m.created_at, m.id",
            {"ids": list(dict.fromkeys(session_ids)), "a": agent_id, "now": now},
        )
        return memories_by_key(rows)

    def sessions_summaries(self, agent_id: str, session_ids: Sequence[str]) -> dict[str, str]:
        """Session id -> the id of its newest summary memory, for the sessions that have one."""
        if not session_ids:
            return {}
        rows = self.read(
            agent_id,
            "UNWIND $ids AS sid MATCH (m:Memory)-[:SUMMARISES]->(s:Session {id: sid}) WHERE m.agent_id = $a "
            "RETURN s.id, m.id ORDER BY m.created_at DESC",
            {"ids": list(dict.fromkeys(session_ids)), "a": agent_id},
        )
        out: dict[str, str] = {}
        for session_id, memory_id in rows:
            out.setdefault(session_id, memory_id)
        return out


def queue_sessions(tx: Transaction, sessions: Sequence[Session], existing: set[str]) -> None:
    """Queue new sessions (ended ones too, for imports) and their links to their
    customers; ``existing``: ids among them the graph already holds (refused, as the
    embedded engine's primary key refuses them)."""
    taken = [s.id for s in sessions if s.id in existing]
    ids = [s.id for s in sessions]
    if taken or len(set(ids)) != len(ids):
        raise StorageError(f"session {(taken or ids)[0]!r} already exists")
    tx.unwind(
        "CREATE (:Session {id: r.id, agent_id: r.a, customer_id: r.c, started_at: r.t, ended_at: r.e, "
        "summary: r.sum, metadata: r.meta})",
        [
            {"id": s.id, "a": s.agent_id, "c": s.customer_id, "t": s.started_at, "e": s.ended_at,
             "sum": s.summary or None, "meta": json.dumps(s.metadata, sort_keys=True)}
            for s in sessions
        ],
    )
    customers = [
        {"uid": node_uid(s.agent_id, s.customer_id), "a": s.agent_id, "cid": s.customer_id, "t": s.started_at,
         "sid": s.id}
        for s in sessions
        if s.customer_id
    ]
    unique = list({r["uid"]: r for r in reversed(customers)}.values())  # the first session's row wins
    tx.unwind(
        "MERGE (c:Customer {uid: r.uid}) ON CREATE SET c.agent_id = r.a, c.id = r.cid, c.created_at = r.t", unique
    )
    tx.unwind("MATCH (c:Customer {uid: r.uid}), (s:Session {id: r.sid}) CREATE (c)-[:HAD_SESSION]->(s)", customers)
