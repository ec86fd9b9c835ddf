"""The write path's statements: memories, their nodes and links, in one transaction.

Owns ``write_memories`` (new memories, or replaced ones, with the customers, orders,
tickets, entities and sessions they name, the session positions and the links a session
learns) and the numbering of memories in their sessions.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from casegraph.domain.models import Session
from casegraph.errors import MemoryExists, MemoryNotFound, StorageError
from casegraph.storage.embedded.connection import Connection, Transaction
from casegraph.storage.embedded.sessions import create_sessions
from casegraph.storage.memories import Attrs, MemoryRecord
from casegraph.storage.rows import (
    NO_TEXT,
    entity_triples,
    memory_row,
    node_uid,
)
from casegraph.storage.search import vector_key

# Sessions whose last position _number_in_sessions keeps (past it, it starts again empty).
_MAX_CACHED_SESSIONS = 100_000


class MemoryWrites(Connection):
    """Writing memories (a part of ``GraphStore``)."""

    _last_seq: dict[str, int]

    # -- writes -------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, agent_ids: Sequence[str]) -> Iterator[None]:
        """One planned write at a time (``MemoryStore.writing``). One process owns the
        directory, so a lock of its own is enough; it is not the write lock, which each
        transaction inside takes as usual."""
        with self._planning:
            yield

    def write_memories(
        self,
        records: Sequence[MemoryRecord],
        sessions: Sequence[Session] = (),
        after: Callable[[Transaction], None] | None = None,
        *,
        replace: bool = False,
        learns: Sequence[tuple[str, str, str]] = (),
        agents: Sequence[str] = (),
    ) -> None:
        """Create memories and link them to their nodes, all in one transaction.

        ``agents`` is not needed here: one transaction holds every agent's writes.

        ``learns``: (agent, session id, customer id) of stores that named a customer for a
        session which had none when they were validated, whether or not their memory is
        written (a near-duplicate is not): the session and its memories are linked to that
        customer in the same transaction (``learn_sessions``).

        ``sessions`` (an import's sessions not stored yet) are created in the same
        transaction, before the memories that join them. ``after(run)`` runs last inside
        the same transaction (hygiene: reinforcement, supersession, summary links), so the
        whole store commits or nothing does; it reports every memory whose ranking
        attributes it changes (``Transaction.attrs_changed``). With ``replace`` each memory must already
        exist (same id, same agent): its node and edges are deleted and written anew in
        the same transaction; a missing one is MemoryNotFound. A write that fills the
        buffer pool is taken again after a checkpoint (``once_more_when_full``).
        """
        try:
            self.once_more_when_full(
                lambda: self._write_memories(records, sessions, after, replace=replace, learns=learns)
            )
        except StorageError:
            # Kùzu's primary key refused an id: a store that raced another with the same id
            # past the domain's check gets the answer that check gives (MEMORY_EXISTS).
            taken = () if replace else self.existing_memory_ids([r.memory.id for r in records])
            if taken:
                raise MemoryExists(f"memory {sorted(taken)[0]!r} already exists") from None
            raise

    def _write_memories(
        self,
        records: Sequence[MemoryRecord],
        sessions: Sequence[Session],
        after: Callable[[Transaction], None] | None,
        *,
        replace: bool,
        learns: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        if not records:
            if after is not None or learns:
                with self.transaction(reports_attrs=True) as run:
                    self.learn_aliases(run, self.learn_sessions(run, (), learns))
                    if after is not None:
                        after(run)
            return
        mems, embs, customers, orders, tickets, entities = [], [], {}, {}, {}, {}
        about, mention_o, mention_t, mention_e, in_session = [], [], [], [], []
        placed, raised, concerns = set(), set(), set()
        for rec in records:
            m = rec.memory
            a = m.agent_id
            key_of = vector_key(m.id)  # on its ABOUT/MENTIONS edges (005_edge_keys)
            mems.append(memory_row(m))
            embs.append(np.asarray(rec.embedding, dtype=np.float32).tolist())
            for cid in rec.customer_ids:
                customers[node_uid(a, cid)] = {"uid": node_uid(a, cid), "a": a, "id": cid, "t": m.created_at}
                about.append({"f": m.id, "t": node_uid(a, cid), "k": key_of})
            for key in rec.orders:
                orders[node_uid(a, key)] = {"uid": node_uid(a, key), "a": a, "id": key, "t": m.created_at}
                mention_o.append({"f": m.id, "t": node_uid(a, key), "k": key_of})
            for key in rec.tickets:
                first = tickets.get(node_uid(a, key))
                if first is None or m.created_at < first["t"]:
                    # A new ticket's subject and channel: from its first memory (below).
                    tickets[node_uid(a, key)] = {
                        "uid": node_uid(a, key), "a": a, "id": key, "t": m.created_at,
                        "s": rec.ticket_subject, "c": rec.ticket_channel or NO_TEXT,
                    }
                mention_t.append({"f": m.id, "t": node_uid(a, key), "k": key_of})
            placed.update((node_uid(a, c), node_uid(a, o)) for c, o in rec.placed)
            raised.update((node_uid(a, c), node_uid(a, t)) for c, t in rec.raised)
            concerns.update((node_uid(a, t), node_uid(a, o)) for t, o in rec.concerns)
            for e in rec.others:
                uid = node_uid(a, f"{e.kind}:{e.key}")
                entities[uid] = {"uid": uid, "a": a, "kind": e.kind, "key": e.key, "value": e.value}
                mention_e.append({"f": m.id, "t": uid, "k": key_of})
            if m.session_id:
                in_session.append({"f": m.id, "t": m.session_id, "at": m.created_at, "i": len(in_session)})

        def pairs(s: set[tuple[str, str]]) -> list[dict[str, str]]:
            return [{"f": f, "t": t} for f, t in sorted(s)]

        token = uuid.uuid4().hex  # marks the touched tickets for a refresh (003_tickets)
        with self.transaction(reports_attrs=True) as run:
            # What the CREATE below writes (superseded_by and kind start NULL; hygiene in
            # ``after`` sets them and reports it).
            for row in mems:
                run.attrs_written(
                    row["agent_id"], {row["id"]: Attrs(row["importance"], row["created_at"], row["expires_at"])}
                )
            if sessions:
                create_sessions(run, sessions)
            # Positions in their sessions (009_session_order): read before a replaced
            # memory's edge is deleted, so it keeps its own.
            kept = _session_positions(run, [r.memory.id for r in records if r.memory.session_id]) if replace else {}
            numbered = self._number_in_sessions(run, in_session, kept)
            if replace:
                self._delete_for_replace(run, records)
            # One prepared CREATE per memory.
            run.each(
                "CREATE (m:Memory {id: $id, agent_id: $agent_id, content: $content, "
                "importance: $importance, tags: CAST($tags AS STRING[]), memory_type: $memory_type, "
                "metadata: $metadata, entities: $entities, created_at: $created_at, "
                "updated_at: $updated_at, expires_at: CAST($expires_at AS TIMESTAMP), "
                "session_id: CAST($session_id AS STRING), customer_id: CAST($customer_id AS STRING), "
                "access_count: $access_count, embedding: $embedding})",
                [{**row, "embedding": emb} for row, emb in zip(mems, embs, strict=True)],
            )
            for label, nodes in (("Customer", customers), ("`Order`", orders)):
                run.rows(
                    f"MERGE (n:{label} {{uid: r.uid}}) "
                    "ON CREATE SET n.agent_id = r.a, n.id = r.id, n.created_at = r.t",
                    list(nodes.values()),
                )
            # Every string of a new ticket is written with its node and none is left NULL
            # (docs/kuzu-quirks.md #1 and #2; NO_TEXT stands for "no text").
            run.rows(
                "MERGE (n:Ticket {uid: r.uid}) ON CREATE SET n.agent_id = r.a, n.id = r.id, "
                "n.created_at = r.t, n.updated_at = r.t, n.status = 'open', n.subject = r.s, n.channel = r.c, "
                "n.refresh_token = $token",
                list(tickets.values()),
                {"token": token},
            )
            if tickets:
                uids = [{"u": uid} for uid in tickets]
                # In this transaction, so a crash cannot leave their relations stale
                # unnoticed: app/domain/tickets.py recomputes marked tickets (see 003_tickets).
                run.rows("MATCH (t:Ticket {uid: r.u}) SET t.refresh_token = $token", uids, {"token": token})
            run.rows(
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
                run.edges(("Memory", "id"), (label, "uid"), f"CREATE (a)-[:{rel} {{{{k: {{r}}.k}}}}]->(b)", rows)
            run.edges(("Memory", "id"), ("Session", "id"), "CREATE (a)-[:IN_SESSION {{seq: {r}.k}}]->(b)", numbered)
            for rel, src, dst, rows in (
                ("PLACED", "Customer", "`Order`", placed),
                ("RAISED", "Customer", "Ticket", raised),
                ("CONCERNS", "Ticket", "`Order`", concerns),
            ):
                run.edges((src, "uid"), (dst, "uid"), f"MERGE (a)-[:{rel}]->(b)", pairs(rows))
            linked = self.learn_sessions(run, records, learns)
            known = {item[2] for item in linked}
            self.learn_session_aliases(run, [
                rec for rec in records
                if rec.memory.session_id and not rec.customer_ids and rec.memory.id not in known
            ])
            self.learn_aliases(run, [
                (rec.memory.agent_id, cid, rec.memory.id, rec.memory.content, entity_triples(rec.memory.entities),
                 rec.memory.created_at)
                for rec in records
                for cid in rec.customer_ids
            ] + linked)
            if after is not None:
                after(run)

    def _number_in_sessions(
        self, run: Transaction, rows: Sequence[dict[str, Any]], kept: dict[str, int]
    ) -> list[dict[str, Any]]:
        """IN_SESSION edge rows with each memory's position in its session (``k``).

        New memories follow the session's last position, in createdAt order and, at
        equal times (a batch, or stores that arrived together), in the order given; a
        replaced memory keeps its position. Writes hold the write lock, so no other
        transaction numbers the same session meanwhile. The last position of each
        session is kept in ``_last_seq`` (a write that then rolls back leaves a gap, and
        gaps do not change the order).
        """
        by_session: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_session.setdefault(row["t"], []).append(row)
        if len(self._last_seq) + len(by_session) > _MAX_CACHED_SESSIONS:
            self._last_seq.clear()
        out = []
        for session_id, items in by_session.items():
            last = self._last_seq.get(session_id)
            if last is None:
                found = run("MATCH (:Session {id: $s})<-[e:IN_SESSION]-(:Memory) RETURN max(e.seq)", {"s": session_id})
                last = int(found[0][0] or 0) if found else 0
            out.extend({"f": r["f"], "t": session_id, "k": kept[r["f"]]} for r in items if r["f"] in kept)
            for r in sorted((r for r in items if r["f"] not in kept), key=lambda r: (r["at"], r["i"])):
                last += 1
                out.append({"f": r["f"], "t": session_id, "k": last})
            self._last_seq[session_id] = last
        return out

    @staticmethod
    def _delete_for_replace(run: Callable[..., list[list[Any]]], records: Sequence[MemoryRecord]) -> None:
        wanted = {(r.memory.id, r.memory.agent_id) for r in records}
        ids = [memory_id for memory_id, _ in wanted]
        rows = run("MATCH (m:Memory) WHERE m.id IN $ids RETURN m.id, m.agent_id", {"ids": ids})
        missing = wanted - {(r[0], r[1]) for r in rows}
        if missing:
            raise MemoryNotFound(f"memory {sorted(missing)[0][0]!r} does not exist")
        run("MATCH (m:Memory) WHERE m.id IN $ids DETACH DELETE m", {"ids": ids})


def _session_positions(run: Callable[..., list[list[Any]]], memory_ids: Sequence[str]) -> dict[str, int]:
    """Memory id -> its position in its session, for those of ``memory_ids`` that have one."""
    out: dict[str, int] = {}
    for memory_id in dict.fromkeys(memory_ids):
        for (seq,) in run("MATCH (:Memory {id: $id})-[e:IN_SESSION]->(:Session) RETURN e.seq", {"id": memory_id}):
            if seq is not None:
                out[memory_id] = int(seq)
    return out
