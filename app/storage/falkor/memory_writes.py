"""The write path on FalkorDB: memories, their nodes and links, one query per agent.

Owns ``write_memories`` (new memories, or replaced ones, with the customers, orders,
tickets, entities and sessions they name, the session positions and the links a session
learns), ``delete_memories``, and the numbering of memories in their sessions.

Semantics are the embedded engine's (storage/embedded/memory_writes.py). What differs:
a write is one ``Transaction`` per agent (each agent is its own graph): everything is
queued and sent as one query under the agent's lock, so it lands whole or not at all.
Reads inside it see what was committed before it, never its own queued statements, so
the plan below is made from committed state plus the records in hand. Nothing is cached
between writes: other processes write the same graphs. Memory ids are global: a write
claims them in the id directory before its first transaction, confirms them under each
agent's lock, and releases what it claimed if it does not commit (memory_ids.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from casegraph.domain.models import Session
from casegraph.errors import MemoryExists, MemoryNotFound, StorageError
from casegraph.storage.falkor.aliases import AliasLearning
from casegraph.storage.falkor.connection import Transaction
from casegraph.storage.falkor.keywords import count_changes, memory_document, uncount
from casegraph.storage.falkor.memory_ids import Claims, MemoryDirectory
from casegraph.storage.falkor.sessions import queue_sessions
from casegraph.storage.memories import Attrs, MemoryRecord
from casegraph.storage.rows import entity_triples, memory_row, node_uid
from casegraph.storage.search import vector_key

# Learns: (agent, session id, customer id).
Learn = tuple[str, str, str]


class MemoryWrites(AliasLearning, MemoryDirectory):
    """Writing and deleting memories (a part of ``FalkorStore``)."""

    dimension: int | None

    def write_memories(
        self,
        records: Sequence[MemoryRecord],
        sessions: Sequence[Session] = (),
        after: Callable[[Transaction], None] | None = None,
        *,
        replace: bool = False,
        learns: Sequence[Learn] = (),
        agents: Sequence[str] = (),
    ) -> None:
        """Create memories and link them to their nodes: one transaction per agent.

        The semantics of the embedded ``write_memories``. Each agent's part commits as
        one query (all of it or nothing); a write naming several agents commits agent by
        agent, in sorted order. ``after(tx)`` runs last inside each agent's transaction:
        the hygiene statements it queues match memories by id, so those of another
        agent's memories match nothing in this agent's graph. ``agents``: agents
        ``after`` writes to that no record, session or learn names (a batch whose every
        store merged into an existing memory); without any, ``after`` runs for every agent.
        """
        if records and self.dimension is None:
            self.dimension = int(np.asarray(records[0].embedding).shape[-1])
            # Graphs set up before the vector size was known lack the vector index.
            self._ready.clear()
        if not records and after is None and not learns:
            return
        by_agent: dict[str, tuple[list[MemoryRecord], list[Session], list[Learn]]] = {}

        def part(agent_id: str) -> tuple[list[MemoryRecord], list[Session], list[Learn]]:
            return by_agent.setdefault(agent_id, ([], [], []))

        for rec in records:
            part(rec.memory.agent_id)[0].append(rec)
        if records:
            for s in sessions:
                part(s.agent_id)[1].append(s)
        for learn in learns:
            part(learn[0])[2].append(learn)
        if after is not None:
            for agent_id in agents or (() if by_agent else self.agents()):
                part(agent_id)
        ids = [r.memory.id for r in records]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise StorageError(f"memory {dup!r} appears twice in one write")
        claims: Claims = {}
        if records:
            # Session and memory ids are global: known before any graph holds them. A
            # memory id another agent holds refuses the write here, before anything is
            # written (memory_ids.py).
            self.register_sessions((s.id, s.agent_id) for s in sessions)
            claims = self.claim_memories([(r.memory.id, r.memory.agent_id) for r in records])
        committed: set[str] = set()
        try:
            for agent_id in sorted(by_agent):
                recs, new_sessions, agent_learns = by_agent[agent_id]
                with self.transaction(agent_id) as tx:
                    # Under the agent's lock: the claim still holds until the commit.
                    claims.setdefault(agent_id, []).extend(
                        self.confirm_claims(agent_id, [r.memory.id for r in recs]))
                    self._write_agent(tx, recs, new_sessions, agent_learns, replace=replace)
                    if after is not None:
                        after(tx)
                committed.add(agent_id)
        except BaseException:
            # A failed write reserves no id: its own claims go, unless its graph has them.
            self.release_claims({a: i for a, i in claims.items() if a not in committed})
            raise

    def _write_agent(
        self,
        tx: Transaction,
        records: Sequence[MemoryRecord],
        sessions: Sequence[Session],
        learns: Sequence[Learn],
        *,
        replace: bool,
    ) -> None:
        """Queue one agent's part of a write on its transaction."""
        if not records:
            self.learn_aliases(tx, self.learn_sessions(tx, (), learns))
            return
        ids = [r.memory.id for r in records]
        before = Committed.read(tx, records, sessions, learns, replace=replace)
        if replace:
            missing = [i for i in ids if i not in before.memories]
            if missing:
                raise MemoryNotFound(f"memory {missing[0]!r} does not exist")
        elif before.memories:
            # As the domain's check says it (a write that raced it to the same id).
            raise MemoryExists(f"memory {sorted(before.memories)[0]!r} already exists")
        if sessions:
            queue_sessions(tx, sessions, before.sessions)
        numbered = _number_in_sessions(records, before)
        if replace:
            uncount(tx, ids)
            tx.write("UNWIND $ids AS id MATCH (m:Memory {id: id}) DETACH DELETE m", {"ids": ids})
        self._queue_records(tx, records, numbered)
        count_changes(tx, len(records), ids)
        linked = self.learn_sessions(tx, records, learns, sessions, had=before.customers)
        known = {item[2] for item in linked}
        self.learn_session_aliases(tx, [
            rec for rec in records
            if rec.memory.session_id and not rec.customer_ids and rec.memory.id not in known
        ])
        self.learn_aliases(tx, [
            (rec.memory.agent_id, cid, rec.memory.id, rec.memory.content, entity_triples(rec.memory.entities),
             rec.memory.created_at)
            for rec in records
            for cid in rec.customer_ids
        ] + linked)

    @staticmethod
    def _queue_records(tx: Transaction, records: Sequence[MemoryRecord], numbered: list[dict[str, Any]]) -> None:
        """The memories, the nodes they name and every edge from them."""
        mems: list[dict[str, Any]] = []
        customers: dict[str, dict[str, Any]] = {}
        orders: dict[str, dict[str, Any]] = {}
        tickets: dict[str, dict[str, Any]] = {}
        entities: dict[str, dict[str, Any]] = {}
        about, mention_o, mention_t, mention_e = [], [], [], []
        placed: set[tuple[str, str]] = set()
        raised: set[tuple[str, str]] = set()
        concerns: set[tuple[str, str]] = set()
        for rec in records:
            m = rec.memory
            a = m.agent_id
            k = vector_key(m.id)
            row = memory_row(m)
            row.update(key=k, doc=memory_document(m.content, m.tags),
                       embedding=_vector_text(rec.embedding))
            mems.append(row)
            tx.attrs_written(a, {m.id: Attrs(row["importance"], m.created_at, m.expires_at)})
            for cid in rec.customer_ids:
                customers.setdefault(node_uid(a, cid), {"uid": node_uid(a, cid), "a": a, "id": cid, "t": m.created_at})
                about.append({"f": m.id, "t": node_uid(a, cid), "k": k})
            for key in rec.orders:
                orders.setdefault(node_uid(a, key), {"uid": node_uid(a, key), "a": a, "id": key, "t": m.created_at})
                mention_o.append({"f": m.id, "t": node_uid(a, key), "k": k})
            for key in rec.tickets:
                first = tickets.get(node_uid(a, key))
                if first is None or m.created_at < first["t"]:
                    # A new ticket's subject and channel: from its first memory.
                    tickets[node_uid(a, key)] = {
                        "uid": node_uid(a, key), "a": a, "id": key, "t": m.created_at,
                        "s": rec.ticket_subject, "c": rec.ticket_channel,
                    }
                mention_t.append({"f": m.id, "t": node_uid(a, key), "k": k})
            placed.update((node_uid(a, c), node_uid(a, o)) for c, o in rec.placed)
            raised.update((node_uid(a, c), node_uid(a, t)) for c, t in rec.raised)
            concerns.update((node_uid(a, t), node_uid(a, o)) for t, o in rec.concerns)
            for e in rec.others:
                uid = node_uid(a, f"{e.kind}:{e.key}")
                entities.setdefault(uid, {"uid": uid, "a": a, "kind": e.kind, "key": e.key, "value": e.value})
                mention_e.append({"f": m.id, "t": uid, "k": k})

        tx.unwind(
            "CREATE (:Memory {id: r.id, agent_id: r.agent_id, content: r.content, importance: r.importance, "
            "tags: r.tags, memory_type: r.memory_type, metadata: r.metadata, entities: r.entities, "
            "created_at: r.created_at, updated_at: r.updated_at, expires_at: r.expires_at, "
            "session_id: r.session_id, customer_id: r.customer_id, access_count: r.access_count, "
            "key: r.key, doc: r.doc, embedding: vecf32([x IN split(r.embedding, ',') | toFloat(x)])})",
            mems,
        )
        for label, nodes in (("Customer", customers), ("`Order`", orders)):
            tx.unwind(
                f"MERGE (n:{label} {{uid: r.uid}}) ON CREATE SET n.agent_id = r.a, n.id = r.id, n.created_at = r.t",
                list(nodes.values()),
            )
        # Every ticket the write touches gets a new refresh token: app/domain/tickets.py
        # recomputes marked tickets, so a crash cannot leave their relations stale unnoticed.
        tx.unwind(
            "MERGE (n:Ticket {uid: r.uid}) ON CREATE SET n.agent_id = r.a, n.id = r.id, "
            "n.created_at = r.t, n.updated_at = r.t, n.status = 'open', n.subject = r.s, n.channel = r.c "
            "SET n.refresh_token = $token",
            list(tickets.values()),
            {"token": uuid.uuid4().hex},
        )
        tx.unwind(
            "MERGE (n:Entity {uid: r.uid}) "
            "ON CREATE SET n.agent_id = r.a, n.kind = r.kind, n.key = r.key, n.value = r.value",
            list(entities.values()),
        )
        for rel, label, rows in (
            ("ABOUT", "Customer", about),
            ("MENTIONS", "`Order`", mention_o),
            ("MENTIONS", "Ticket", mention_t),
            ("MENTIONS", "Entity", mention_e),
        ):
            tx.unwind(
                f"MATCH (a:Memory {{id: r.f}}), (b:{label} {{uid: r.t}}) CREATE (a)-[:{rel} {{k: r.k}}]->(b)", rows
            )
        tx.unwind(
            "MATCH (a:Memory {id: r.f}), (b:Session {id: r.t}) CREATE (a)-[:IN_SESSION {seq: r.k}]->(b)", numbered
        )
        for rel, src, dst, pairs in (
            ("PLACED", "Customer", "`Order`", placed),
            ("RAISED", "Customer", "Ticket", raised),
            ("CONCERNS", "Ticket", "`Order`", concerns),
        ):
            tx.unwind(
                f"MATCH (a:{src} {{uid: r.f}}), (b:{dst} {{uid: r.t}}) MERGE (a)-[:{rel}]->(b)",
                [{"f": f, "t": t} for f, t in sorted(pairs)],
            )

    def delete_memories(self, agent_id: str, ids: Sequence[str]) -> list[str]:
        """Delete memories (and their edges, and the aliases learned from them); return
        the ids that existed."""
        wanted = list(dict.fromkeys(ids))
        if not wanted or not self.has_agent(agent_id):
            return []
        with self.transaction(agent_id) as tx:
            tx.attrs_changed(wanted)
            rows = tx("UNWIND $ids AS id MATCH (m:Memory {id: id}) RETURN m.id", {"ids": wanted})
            there = {r[0] for r in rows}
            found = [i for i in wanted if i in there]
            if not found:
                return []
            # Their tickets' relations must be recomputed (app/domain/tickets.py).
            tx.write(
                "UNWIND $ids AS id MATCH (:Memory {id: id})-[:MENTIONS]->(t:Ticket) "
                "WITH DISTINCT t SET t.refresh_token = $token",
                {"ids": found, "token": uuid.uuid4().hex},
            )
            uncount(tx, found)
            tx.write("UNWIND $ids AS id MATCH (m:Memory {id: id}) DETACH DELETE m", {"ids": found})
            count_changes(tx, len(found))
            # What a deleted memory superseded is the latest known state again.
            superseded = tx("MATCH (m:Memory) WHERE m.superseded_by IN $ids RETURN m.id", {"ids": found})
            tx.attrs_changed(r[0] for r in superseded)
            tx.write("MATCH (m:Memory) WHERE m.superseded_by IN $ids SET m.superseded_by = NULL", {"ids": found})
            self.forget_aliases_of(tx, agent_id, found)
            tx.after_commit(lambda: self.forget_memories(agent_id, found))
        return found


def _vector_text(embedding: Any) -> str:
    """An embedding as the text of its numbers ("0.25,-1.5,..."), which the statement
    splits into a ``vecf32``: a list parameter costs the client a Python call per number
    to quote (most of a batch's time), one string costs it one."""
    return ",".join(map(repr, np.asarray(embedding, dtype=np.float32).tolist()))


@dataclass(frozen=True, slots=True)
class Committed:
    """What a write's plan needs of the graph as committed before it, read in one query
    under the agent's lock (so it stays true until the write commits)."""

    memories: set[str]  # the write's memory ids that exist
    sessions: set[str]  # the write's new session ids that exist
    positions: dict[str, int]  # a replaced memory -> its position in its session
    last_seq: dict[str, int]  # a session the write adds to -> its last position
    customers: dict[str, set[str]]  # a session the write may link -> the customers it had

    @classmethod
    def read(
        cls, tx: Transaction, records: Sequence[MemoryRecord], sessions: Sequence[Session],
        learns: Sequence[Learn], *, replace: bool,
    ) -> Committed:
        ids = [r.memory.id for r in records]
        in_session = list(dict.fromkeys(r.memory.session_id for r in records if r.memory.session_id))
        linking = list(dict.fromkeys([
            *(learn[1] for learn in learns),
            *(r.memory.session_id for r in records if r.memory.session_id and not r.customer_ids),
        ]))
        rows = tx(
            "UNWIND $ids AS id MATCH (:Memory {id: id}) RETURN 'memory' AS what, id AS key, null AS value "
            "UNION ALL UNWIND $new AS id MATCH (:Session {id: id}) RETURN 'session' AS what, id AS key, null AS value "
            "UNION ALL UNWIND $replaced AS id MATCH (:Memory {id: id})-[e:IN_SESSION]->(:Session) "
            "RETURN 'position' AS what, id AS key, e.seq AS value "
            "UNION ALL UNWIND $sids AS sid MATCH (:Session {id: sid})<-[e:IN_SESSION]-(:Memory) "
            "RETURN 'last' AS what, sid AS key, max(e.seq) AS value "
            "UNION ALL UNWIND $linking AS sid MATCH (c:Customer)-[:HAD_SESSION]->(:Session {id: sid}) "
            "RETURN 'customer' AS what, sid AS key, c.id AS value",
            {"ids": ids, "new": [s.id for s in sessions], "replaced": ids if replace else [],
             "sids": in_session, "linking": linking},
        )
        out = cls(set(), set(), {}, {}, {})
        for what, key, value in rows:
            if what == "memory":
                out.memories.add(key)
            elif what == "session":
                out.sessions.add(key)
            elif what == "position" and value is not None:
                out.positions[key] = int(value)
            elif what == "last":
                out.last_seq[key] = int(value or 0)
            elif what == "customer":
                out.customers.setdefault(key, set()).add(value)
        return out


def _number_in_sessions(records: Sequence[MemoryRecord], before: Committed) -> list[dict[str, Any]]:
    """IN_SESSION edge rows (memory ``f``, session ``t``, position ``k``).

    New memories follow the session's last position, in createdAt order and, at equal
    times (a batch, or stores that arrived together), in the order given; a replaced
    memory keeps its position. The last position was read in the transaction: the agent's
    lock keeps every other writer, in any process, from numbering the session meanwhile.
    """
    by_session: dict[str, list[tuple[Any, int, str]]] = {}
    for i, rec in enumerate(records):
        m = rec.memory
        if m.session_id:
            by_session.setdefault(m.session_id, []).append((m.created_at, i, m.id))
    kept = before.positions
    out: list[dict[str, Any]] = []
    for session_id, items in by_session.items():
        last = before.last_seq.get(session_id, 0)
        out.extend({"f": mid, "t": session_id, "k": kept[mid]} for _, _, mid in items if mid in kept)
        for _, _, mid in sorted(item for item in items if item[2] not in kept):
            last += 1
            out.append({"f": mid, "t": session_id, "k": last})
    return out
