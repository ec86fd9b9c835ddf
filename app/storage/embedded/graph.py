"""GraphStore: the embedded Kùzu graph, the store every kind of record lives in.

Kùzu is CaseGraph's source of truth: memories (with their embeddings), customers,
orders, tickets, sessions and extracted entities, all scoped by ``agent_id``. The
connection, statements and pool policy are ``connection.py``'s; the migrations
``migrations.py``'s; the row layout ``rows.py``'s.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from casegraph.domain.identity import SOURCE_ID, Alias, id_aliases, text_aliases
from casegraph.domain.models import Customer, Memory, RecallFilter, Session
from casegraph.domain.ticket_models import (
    default_channel,
    default_subject,
)
from casegraph.errors import MemoryNotFound
from casegraph.storage.customers import KnownAlias
from casegraph.storage.embedded.attrs_cache import AttrsCache
from casegraph.storage.embedded.batching import POINT_LOOKUP_LIMIT
from casegraph.storage.embedded.connection import Connection, Tracer, Transaction
from casegraph.storage.embedded.migrations import Linked, migrate
from casegraph.storage.embedded.rows import (
    ATTR_COLUMNS,
    MEMORY_COLUMNS,
    NO_TEXT,
    attrs_from_row,
    entity_triples,
    entity_triples_json,
    memories_by_key,
    memory_from_row,
    memory_row,
    node_uid,
    session_from_row,
)
from casegraph.storage.embedded.tickets import mark_tickets_stale
from casegraph.storage.memories import Attrs, Columns, MemoryRecord
from casegraph.storage.search import GraphLink, KeyIds, NodeRefs, vector_key
from casegraph.times import utc

log = logging.getLogger("casegraph.graph")


# Up to this many ids, one primary-key lookup each beats one scan of the Memory table.
# More memory texts than this are read by a scan of the agent's memories (memory_texts).
_TEXT_LOOKUP_LIMIT = 500


# Sessions whose last position _number_in_sessions keeps (past it, it starts again empty).
_MAX_CACHED_SESSIONS = 100_000

# A write that changed at most this many memories' attributes reads them back into the
# attribute cache (a point lookup each); past it, they are looked up when recall needs them.
_REREAD_CHANGED = 64
# A customer filter answered from the attribute cache looks up at most this many memories
# the cache lacks (a point lookup each); past it, the filter scans (GraphStore._customer_attrs).
_CACHE_MISSES_LOOKED_UP = 16

# (customer uid, alias uid) pairs known to be linked, kept so that a store does not MERGE
# its customer's id aliases again each time; past this many, the set starts again.
_ALIAS_MEMO_LIMIT = 200_000


# How a memory reaches a node the query names: (named kind, path from m to that node n
# [WHERE more], what the reason shows, strength, reason, direct). Direct links to named
# orders and tickets are pushed down when the query asks for *other* ones. ``e`` is the edge
# that leaves the memory: hops return its key (005_edge_keys) and no memory property, since
# Kùzu reads a node's first property at ~10-18 µs a row; the ranking attributes come from
# the attribute cache.
_LINK_HOPS: tuple[tuple[str, str, str, float, str, bool], ...] = (
    ("customer", "(m:Memory)-[e:ABOUT]->(n:Customer)", "n.id", 1.0, "about customer {}", False),
    ("order", "(m:Memory)-[e:MENTIONS]->(n:`Order`)", "n.id", 1.0, "linked to order #{}", True),
    ("order", "(m:Memory)-[e:MENTIONS]->(t:Ticket)-[:CONCERNS]->(n:`Order`)", "t.id + ' about order #' + n.id",
     0.75, "linked to ticket {}", False),
    ("order", "(m:Memory)-[e:ABOUT]->(:Customer)-[:PLACED]->(n:`Order`)", "n.id", 0.5,
     "same customer as order #{}", False),
    ("ticket", "(m:Memory)-[e:MENTIONS]->(n:Ticket)", "n.id", 1.0, "linked to ticket {}", True),
    # One hop further: the order(s) the ticket is about, and the other tickets on them.
    ("ticket", "(m:Memory)-[e:MENTIONS]->(o:`Order`)<-[:CONCERNS]-(n:Ticket)",
     "'order #' + o.id + ' of ticket ' + n.id", 0.75, "linked to {}", False),
    ("ticket", "(m:Memory)-[e:MENTIONS]->(t2:Ticket)-[:CONCERNS]->(o:`Order`)<-[:CONCERNS]-(n:Ticket) "
     "WHERE t2.uid <> n.uid", "t2.id + ' (same order #' + o.id + ')'", 0.75, "linked to ticket {}", False),
    ("ticket", "(m:Memory)-[e:ABOUT]->(:Customer)-[:RAISED]->(n:Ticket)", "n.id", 0.5, "same customer as ticket {}",
     False),
    ("entity", "(m:Memory)-[e:MENTIONS]->(n:Entity)", "n.value", 1.0, "mentions {}", False),
    ("entity", "(m:Memory)-[e:ABOUT]->(c:Customer)<-[:ABOUT]-(:Memory)-[:MENTIONS]->(n:Entity)", "c.id", 0.5,
     "same customer ({}) as a mentioned entity", False),
)


class GraphStore(Connection):
    """The embedded Kùzu database in ``<data_dir>/graph``."""

    def __init__(
        self,
        directory: Path,
        *,
        buffer_pool_mb: int = 384,
        checkpoint_wal_mb: int = 32,
        tracer: Tracer | None = None,
    ) -> None:
        Connection.__init__(
            self, directory, buffer_pool_mb=buffer_pool_mb, checkpoint_wal_mb=checkpoint_wal_mb, tracer=tracer
        )
        self._attrs_cache = AttrsCache()
        self._alias_memo: set[tuple[str, str]] = set()
        # Every Alias uid ever written (a superset: deleted ones stay), loaded on first use:
        # a query's dozens of candidate names are checked here before any lookup.
        self._alias_uids: set[str] | None = None
        # Session id -> the last position a write gave one of its memories (_number_in_sessions).
        self._last_seq: dict[str, int] = {}
        # Bumped by every committed write that touched tickets; agent -> (the generation
        # read, memory key -> settled ticket) for settled_memories.
        self._ticket_generation = 0
        self._settled: dict[str, tuple[int, dict[int, str]]] = {}
        self.on_write(self._after_write)
        self.applied_migrations = self.migrate()

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded in this database; return their names."""
        return migrate(self)


    def _after_write(self, tx: Transaction, committed: bool, reported: bool) -> None:
        """Bring the attribute cache up to a finished write (never raises: it clears)."""
        cache = self._attrs_cache
        if committed and tx.touches_tickets:
            self._ticket_generation += 1
        if committed and tx.aliases_linked:
            if len(self._alias_memo) + len(tx.aliases_linked) > _ALIAS_MEMO_LIMIT:
                self._alias_memo.clear()
            self._alias_memo.update(tx.aliases_linked)
        try:
            if not committed:
                cache.forget(tx.changed)  # nothing changed; only in case
            elif not reported:
                cache.clear()
            else:
                for agent_id, attrs in tx.written.items():
                    cache.record(agent_id, attrs)
                cache.forget(tx.changed)
                if len(tx.changed) <= _REREAD_CHANGED:
                    # Still under the write lock: nothing can change them again meanwhile.
                    for memory_id in tx.changed:
                        for row in self.read_prepared(
                            f"MATCH (m:Memory {{id: $id}}) RETURN m.agent_id, {ATTR_COLUMNS}", {"id": memory_id}
                        ):
                            cache.record(row[0], {memory_id: attrs_from_row(row[1:])})
        except Exception:  # a cache must not fail a committed write
            log.exception("attribute cache update failed; cleared")
            cache.clear()


    @property
    def schema_version(self) -> str:
        rows = self.read("MATCH (x:Migration) RETURN x.name ORDER BY x.name DESC LIMIT 1")
        return rows[0][0] if rows else ""

    def get_meta(self, key: str) -> str | None:
        rows = self.read("MATCH (x:Meta {key: $k}) RETURN x.value", {"k": key})
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction(reports_attrs=True) as run:
            run("MERGE (x:Meta {key: $k}) SET x.value = $v", {"k": key, "v": value})

    # -- writes -------------------------------------------------------------------
    def write_memories(
        self,
        records: Sequence[MemoryRecord],
        sessions: Sequence[Session] = (),
        after: Callable[[Transaction], None] | None = None,
        *,
        replace: bool = False,
        learns: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        """Create memories and link them to their nodes, all in one transaction.

        ``learns``: (agent, session id, customer id) of stores that named a customer for a
        session which had none when they were validated, whether or not their memory is
        written (a near-duplicate is not): the session and its memories are linked to that
        customer in the same transaction (``_learn_sessions``).

        ``sessions`` (an import's sessions not stored yet) are created in the same
        transaction, before the memories that join them. ``after(run)`` runs last inside
        the same transaction (hygiene: reinforcement, supersession, summary links), so the
        whole store commits or nothing does; it reports every memory whose ranking
        attributes it changes (``Transaction.attrs_changed``). With ``replace`` each memory must already
        exist (same id, same agent): its node and edges are deleted and written anew in
        the same transaction; a missing one is MemoryNotFound. A write that fills the
        buffer pool is taken again after a checkpoint (``once_more_when_full``).
        """
        self.once_more_when_full(
            lambda: self._write_memories(records, sessions, after, replace=replace, learns=learns)
        )

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
                    self.learn_aliases(run, self._learn_sessions(run, (), learns))
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
                placed.update((node_uid(a, c), node_uid(a, key)) for c in rec.customer_ids)
            for key in rec.tickets:
                first = tickets.get(node_uid(a, key))
                if first is None or m.created_at < first["t"]:
                    # A new ticket's subject and channel: from its first memory (below).
                    tickets[node_uid(a, key)] = {
                        "uid": node_uid(a, key), "a": a, "id": key, "t": m.created_at,
                        "s": default_subject(m.content), "c": default_channel(mems[-1]["metadata"]) or NO_TEXT,
                    }
                mention_t.append({"f": m.id, "t": node_uid(a, key), "k": key_of})
                raised.update((node_uid(a, c), node_uid(a, key)) for c in rec.customer_ids)
                concerns.update((node_uid(a, key), node_uid(a, o)) for o in rec.orders)
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
                _create_sessions(run, sessions)
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
            # Every string of a new ticket is written with its node, none is left NULL:
            # - at a checkpoint, Kùzu 0.11 appends every value of a string column's node
            #   group to its dictionary again if any one of them was updated (SET by each
            #   refresh, 8k subjects grew to 530k entries, 50 MB, over a 100k load);
            # - after that, a row inserted with NULL in the column corrupted it at the next
            #   checkpoint (values read back as the whole dictionary). See NO_TEXT and
            #   BENCHMARKS.md (ninth round).
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
            linked = self._learn_sessions(run, records, learns)
            known = {item[2] for item in linked}
            self._learn_session_aliases(run, [
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

    def _learn_sessions(
        self, run: Transaction, records: Sequence[MemoryRecord], learns: Sequence[tuple[str, str, str]]
    ) -> list[Linked]:
        """Link sessions to the customers they learn, and memories to their session's customer.

        A store that names a customer for a session which had none (``learns``)
        gives the session a HAD_SESSION edge, and every memory of the session not yet ABOUT
        that customer an ABOUT edge: the messages a bot stored before it looked the
        customer up. A memory stored without a customer into a session whose customer
        became known after the store was validated (a concurrent store) is linked here too.
        Edges only: Session.customer_id and Memory.customer_id keep what was known at
        insert (Kùzu 0.11 corrupts a string column updated after insert), and every reader
        of a customer's memories or sessions follows the edges. Returns the memories linked.
        """
        learning: dict[str, tuple[str, str]] = {}
        for agent_id, session_id, customer_id in learns:
            learning.setdefault(session_id, (agent_id, customer_id))
        unlinked: dict[str, list[MemoryRecord]] = {}
        for rec in records:
            if rec.memory.session_id and not rec.customer_ids:
                unlinked.setdefault(rec.memory.session_id, []).append(rec)
        about: list[dict[str, Any]] = []
        linked: list[Linked] = []
        for sid in dict.fromkeys([*learning, *unlinked]):
            known = [r[0] for r in run(
                "MATCH (c:Customer)-[:HAD_SESSION]->(s:Session {id: $sid}) RETURN c.id ORDER BY c.id", {"sid": sid}
            )]
            if known:
                for rec in unlinked.get(sid, ()):
                    m = rec.memory
                    for cid in known:
                        about.append({"f": m.id, "t": node_uid(m.agent_id, cid), "k": vector_key(m.id)})
                        linked.append(
                            (m.agent_id, cid, m.id, m.content, entity_triples(m.entities), m.created_at)
                        )
                continue
            if sid not in learning:
                continue
            agent_id, cid = learning[sid]
            uid = node_uid(agent_id, cid)
            run("MATCH (c:Customer {uid: $c}), (s:Session {id: $sid}) CREATE (c)-[:HAD_SESSION]->(s)",
                {"c": uid, "sid": sid})
            have = {r[0] for r in run(
                "MATCH (:Customer {uid: $c})<-[:ABOUT]-(m:Memory)-[:IN_SESSION]->(:Session {id: $sid}) RETURN m.id",
                {"c": uid, "sid": sid},
            )}
            for memory_id, content, entities, at in run(
                "MATCH (m:Memory)-[:IN_SESSION]->(:Session {id: $sid}) RETURN m.id, m.content, m.entities, m.created_at",
                {"sid": sid},
            ):
                if memory_id not in have:
                    about.append({"f": memory_id, "t": uid, "k": vector_key(memory_id)})
                    linked.append((agent_id, cid, memory_id, content, entity_triples_json(entities), utc(at)))
        run.edges(("Memory", "id"), ("Customer", "uid"), "CREATE (a)-[:ABOUT {{k: {r}.k}}]->(b)", about)
        return linked

    def learn_aliases(self, run: Transaction, linked: Sequence[Linked]) -> None:
        """Learn what the customers of ``linked`` memories are known by (app/domain/identity.py):
        the aliases each memory reveals (source: the memory) and each customer's id
        aliases (source: "id"). An Alias node and its KNOWN_AS edge are written whole
        when first learned and never changed; pairs known linked are not written again."""
        facts: dict[tuple[str, str], tuple[str, Alias, str, datetime]] = {}
        memo = self._alias_memo
        customers: dict[str, tuple[str, str, datetime]] = {}
        for agent_id, cid, memory_id, content, entities, at in sorted(linked, key=lambda x: x[5]):
            customers.setdefault(node_uid(agent_id, cid), (agent_id, cid, at))
            for alias in text_aliases(content, entities):
                pair = (node_uid(agent_id, cid), node_uid(agent_id, alias.node_key))
                if pair not in facts and pair not in memo:
                    facts[pair] = (agent_id, alias, memory_id, at)
        for cuid, (agent_id, cid, at) in customers.items():
            for alias in id_aliases(cid):
                pair = (cuid, node_uid(agent_id, alias.node_key))
                if pair not in memo:
                    facts[pair] = (agent_id, alias, SOURCE_ID, at)  # the id speaks first
        if not facts:
            return
        _merge_aliases(run, facts, self._alias_uids)
        run.rows(
            "MATCH (c:Customer {uid: r.c}), (n:Alias {uid: r.u}) MERGE (c)-[k:KNOWN_AS]->(n) "
            "ON CREATE SET k.source = r.s, k.at = r.t",
            [{"c": c, "u": u, "s": source, "t": at} for (c, u), (_, _, source, at) in facts.items()],
        )
        run.aliases_linked.update(facts)

    def _learn_session_aliases(self, run: Transaction, records: Sequence[MemoryRecord]) -> None:
        """What memories of a session without a customer say of who speaks (008_session_aliases)."""
        facts: dict[tuple[str, str], tuple[str, Alias, str, datetime]] = {}
        for rec in records:
            m = rec.memory
            for alias in text_aliases(m.content, entity_triples(m.entities)):
                facts.setdefault((m.session_id or "", node_uid(m.agent_id, alias.node_key)),
                                 (m.agent_id, alias, m.id, m.created_at))
        if not facts:
            return
        _merge_aliases(run, facts, self._alias_uids)
        run.rows(
            "MATCH (s:Session {id: r.s}), (n:Alias {uid: r.u}) MERGE (s)-[k:SAID]->(n) "
            "ON CREATE SET k.source = r.m, k.at = r.t",
            [{"s": sid, "u": u, "m": source, "t": at} for (sid, u), (_, _, source, at) in facts.items()],
        )

    def aliases_forgotten(self) -> None:
        """Customers or aliases were deleted: pairs remembered as linked may be gone."""
        self._alias_memo.clear()

    @staticmethod
    def _delete_for_replace(run: Callable[..., list[list[Any]]], records: Sequence[MemoryRecord]) -> None:
        wanted = {(r.memory.id, r.memory.agent_id) for r in records}
        ids = [memory_id for memory_id, _ in wanted]
        rows = run("MATCH (m:Memory) WHERE m.id IN $ids RETURN m.id, m.agent_id", {"ids": ids})
        missing = wanted - {(r[0], r[1]) for r in rows}
        if missing:
            raise MemoryNotFound(f"memory {sorted(missing)[0][0]!r} does not exist")
        run("MATCH (m:Memory) WHERE m.id IN $ids DETACH DELETE m", {"ids": ids})

    def delete_memories(self, agent_id: str, ids: Sequence[str]) -> list[str]:
        """Delete memories (and their edges, and the aliases learned from them); return
        the ids that existed."""
        with self.transaction(reports_attrs=True) as run:
            run.attrs_changed(ids)
            if len(ids) <= POINT_LOOKUP_LIMIT:
                # One primary-key statement per id: an IN list scans the whole table.
                found = []
                for memory_id in dict.fromkeys(ids):
                    mark_tickets_stale(
                        run,
                        "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE m.id = $id AND m.agent_id = $a",
                        {"id": memory_id, "a": agent_id},
                    )
                    rows = run(
                        "MATCH (m:Memory) WHERE m.id = $id AND m.agent_id = $a "
                        "DETACH DELETE m RETURN m.id",
                        {"id": memory_id, "a": agent_id},
                    )
                    found.extend(r[0] for r in rows)
                if found:
                    # What a deleted memory superseded is the latest known state again.
                    rows = run(
                        "MATCH (m:Memory) WHERE m.agent_id = $a AND m.superseded_by IN $ids "
                        "SET m.superseded_by = NULL RETURN m.id",
                        {"ids": found, "a": agent_id},
                    )
                    run.attrs_changed(r[0] for r in rows)
                    self._forget_aliases_of(run, agent_id, found)
                return found
            rows = run(
                "MATCH (m:Memory) WHERE m.id IN $ids AND m.agent_id = $a RETURN m.id",
                {"ids": list(ids), "a": agent_id},
            )
            found = [r[0] for r in rows]
            if found:
                mark_tickets_stale(
                    run, "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE m.id IN $ids", {"ids": found}
                )
                run(
                    "MATCH (m:Memory) WHERE m.id IN $ids AND m.agent_id = $a DETACH DELETE m",
                    {"ids": found, "a": agent_id},
                )
                # What a deleted memory superseded is the latest known state again.
                rows = run(
                    "MATCH (m:Memory) WHERE m.agent_id = $a AND m.superseded_by IN $ids "
                    "SET m.superseded_by = NULL RETURN m.id",
                    {"ids": found, "a": agent_id},
                )
                run.attrs_changed(r[0] for r in rows)
                self._forget_aliases_of(run, agent_id, found)
        return found

    def _forget_aliases_of(self, run: Transaction, agent_id: str, memory_ids: Sequence[str]) -> None:
        """Unlearn the aliases learned from these memories (an alias another customer
        still has stays)."""
        self._alias_memo.clear()
        for rel in ("KNOWN_AS", "SAID"):
            run(f"MATCH ()-[k:{rel}]->(n:Alias) WHERE n.agent_id = $a AND k.source IN $ids DELETE k",
                {"a": agent_id, "ids": list(memory_ids)})
        run(f"MATCH (n:Alias) WHERE n.agent_id = $a AND {UNCLAIMED_ALIAS} DELETE n", {"a": agent_id})

    def expired_memory_ids(self, now: datetime) -> list[tuple[str, str]]:
        rows = self.read(
            "MATCH (m:Memory) WHERE m.expires_at IS NOT NULL AND m.expires_at <= $now "
            "RETURN m.agent_id, m.id",
            {"now": now},
        )
        return [(r[0], r[1]) for r in rows]

    def create_session(self, session: Session) -> None:
        with self.transaction(reports_attrs=True) as run:
            _create_sessions(run, [session])

    def end_session(self, session_id: str, ended_at: datetime, summary: str | None) -> None:
        with self.transaction(reports_attrs=True) as run:
            run(
                "MATCH (s:Session {id: $id}) SET s.ended_at = $t, s.summary = $sum",
                {"id": session_id, "t": ended_at, "sum": summary or NO_TEXT},
            )

    # -- reads: memories ------------------------------------------------------------
    def existing_memory_ids(self, ids: Sequence[str]) -> set[str]:
        """The ids among ``ids`` that are stored (for any agent: ids are global keys)."""
        rows = self.read("MATCH (m:Memory) WHERE m.id IN $ids RETURN m.id", {"ids": list(ids)})
        return {r[0] for r in rows}

    def agent_memories(
        self, agent_id: str, now: datetime, *, after: tuple[datetime, str] | None = None, limit: int = 500
    ) -> list[Memory]:
        """One page of an agent's unexpired memories, oldest first (keyset paging on (created_at, id))."""
        params: dict[str, Any] = {"a": agent_id, "now": now}
        where = "m.agent_id = $a AND (m.expires_at IS NULL OR m.expires_at > $now)"
        if after is not None:
            where += " AND (m.created_at > $t OR (m.created_at = $t AND m.id > $id))"
            params["t"], params["id"] = after
        rows = self.read(
            f"MATCH (m:Memory) WHERE {where} RETURN {MEMORY_COLUMNS} "
            f"ORDER BY m.created_at, m.id LIMIT {int(limit)}",
            params,
        )
        return [memory_from_row(r) for r in rows]

    def get_memories(self, agent_id: str, ids: Sequence[str]) -> dict[str, Memory]:
        """Memories by id: a few ids as primary-key lookups, many as one UNWIND join."""
        if not ids:
            return {}
        if len(ids) <= POINT_LOOKUP_LIMIT:
            rows = self._point_lookups(
                ids, f"MATCH (m:Memory) WHERE m.id = $id AND m.agent_id = $a RETURN {MEMORY_COLUMNS}", agent_id
            )
        else:
            rows = self.read(
                f"UNWIND $ids AS i MATCH (m:Memory {{id: i}}) WHERE m.agent_id = $a RETURN {MEMORY_COLUMNS}",
                {"ids": list(dict.fromkeys(ids)), "a": agent_id},
            )
        return {r[0]: memory_from_row(r) for r in rows}

    def cached_attrs(self, agent_id: str, ids: Sequence[str]) -> dict[str, Attrs]:
        """The ranking attributes the attribute cache holds for ``ids`` (no lookups)."""
        return self._attrs_cache.get(agent_id, ids)[0]

    def cached_columns(self, agent_id: str, keys: np.ndarray) -> Columns:
        """``cached_attrs`` by vector keys, as arrays (``AttrsCache.columns``)."""
        return self._attrs_cache.columns(agent_id, keys)

    def memory_attrs(self, agent_id: str, ids: Sequence[str]) -> dict[str, Attrs]:
        """The ranking attributes of each existing memory, by id (from the attribute
        cache, app/storage/embedded/attrs_cache.py; one point lookup each for those it does not hold)."""
        with self._attrs_cache.reading() as reading:
            found, missing = self._attrs_cache.get(agent_id, list(dict.fromkeys(ids)))
            rows = self._point_lookups(
                missing, f"MATCH (m:Memory) WHERE m.id = $id AND m.agent_id = $a RETURN m.id, {ATTR_COLUMNS}",
                agent_id,
            )
            fresh = {r[0]: attrs_from_row(r[1:]) for r in rows}
            self._attrs_cache.put(reading, agent_id, fresh)
        return {**found, **fresh}

    def _point_lookups(self, ids: Sequence[str], query: str, agent_id: str) -> list[list[Any]]:
        rows: list[list[Any]] = []
        for memory_id in dict.fromkeys(ids):
            rows.extend(self.read_prepared(query, {"id": memory_id, "a": agent_id}))
        return rows

    def session_memories(
        self, session_id: str, now: datetime, *, limit: int | None = None, offset: int = 0
    ) -> list[Memory]:
        # LIMIT offset+limit and skip in Python: Kùzu 0.11.3 segfaults on a SKIP far past the rows.
        page = f" LIMIT {int(offset) + int(limit)}" if limit is not None else ""
        rows = self.read(
            "MATCH (m:Memory)-[e:IN_SESSION]->(s:Session {id: $id}) "
            "WHERE m.expires_at IS NULL OR m.expires_at > $now "
            f"RETURN {MEMORY_COLUMNS} ORDER BY e.seq, m.created_at, m.id{page}",
            {"id": session_id, "now": now},
        )
        return [memory_from_row(r) for r in rows[int(offset):]]

    def customer_memories(self, agent_id: str, customer_id: str, now: datetime) -> list[Memory]:
        rows = self.read(
            "MATCH (m:Memory)-[:ABOUT]->(c:Customer {uid: $uid}) "
            "WHERE m.expires_at IS NULL OR m.expires_at > $now "
            f"RETURN {MEMORY_COLUMNS} ORDER BY m.created_at DESC, m.id",
            {"uid": node_uid(agent_id, customer_id), "now": now},
        )
        return [memory_from_row(r) for r in rows]

    def memory_priors(
        self, agent_id: str, now: datetime, min_importance: float = 0.0
    ) -> list[tuple[str, float, datetime]]:
        """(id, importance, created_at) of the agent's live memories at or above ``min_importance``."""
        rows = self.read(
            "MATCH (m:Memory) WHERE m.agent_id = $a AND m.importance >= $mi "
            "AND (m.expires_at IS NULL OR m.expires_at > $now) "
            "RETURN m.id, m.importance, m.created_at",
            {"a": agent_id, "mi": float(min_importance), "now": now},
        )
        return [(r[0], float(r[1]), utc(r[2])) for r in rows]

    def embeddings(self, agent_id: str, ids: Sequence[str]) -> np.ndarray:
        rows = self.read(
            "UNWIND $ids AS i MATCH (m:Memory {id: i}) WHERE m.agent_id = $a RETURN m.id, m.embedding",
            {"ids": list(dict.fromkeys(ids)), "a": agent_id},
        )
        by_id = {r[0]: r[1] for r in rows}
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def load_attrs(self) -> dict[str, set[str]]:
        """Fill the attribute cache with every memory's ranking attributes; return each
        agent's memory ids.

        Read in 16 slices of the id range, so the rows in Python at once stay small (one
        read of 91k memories left ~85 MB of freed objects in the heap; slices ~20 MB).
        """
        out: dict[str, set[str]] = {}
        bounds: list[str | None] = [None, *"123456789abcdef", None]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            where = " AND ".join(c for c, v in (("m.id >= $lo", lo), ("m.id < $hi", hi)) if v)
            params = {k: v for k, v in (("lo", lo), ("hi", hi)) if v}
            with self._attrs_cache.reading() as reading:
                rows = self.read(f"MATCH (m:Memory) WHERE {where} RETURN m.agent_id, m.id, {ATTR_COLUMNS}", params)
                by_agent: dict[str, dict[str, Attrs]] = {}
                for r in rows:
                    by_agent.setdefault(r[0], {})[r[1]] = attrs_from_row(r[2:])
                for agent_id, attrs in by_agent.items():
                    self._attrs_cache.put(reading, agent_id, attrs)
                    out.setdefault(agent_id, set()).update(attrs)
        return out

    def all_memory_ids(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for agent_id, memory_id in self.read("MATCH (m:Memory) RETURN m.agent_id, m.id"):
            out.setdefault(agent_id, set()).add(memory_id)
        return out

    def filtered_ids(self, agent_id: str, flt: RecallFilter, now: datetime, limit: int) -> list[str] | None:
        """Ids of every memory the filter allows, or None when there are more than ``limit``
        (then recall searches the vector index and filters its hits instead)."""
        found = self.filtered_attrs(agent_id, flt, now, limit)
        return None if found is None else list(found)

    def filtered_attrs(
        self, agent_id: str, flt: RecallFilter, now: datetime, limit: int, ids_of: KeyIds | None = None
    ) -> dict[str, Attrs] | None:
        """``filtered_ids`` with each memory's ranking attributes (same scan, same order).

        With ``ids_of`` (the vector store's key map), a filter on a customer and at most the
        ranking attributes (dates, importance, superseded) is answered from the keys on
        the customer's ABOUT edges and the attribute cache (``_customer_attrs``).
        """
        if ids_of is not None and _customer_and_attrs_only(flt):
            answered, found = self._customer_attrs(agent_id, flt, now, limit, ids_of)
            if answered:
                return found
        where, params = _filter_clause(agent_id, flt, now)
        match = _filter_match(agent_id, flt, params)
        rows = self.read(f"{match} WHERE {where} RETURN m.id, m.tags, {ATTR_COLUMNS} LIMIT {int(limit) + 1}", params)
        if len(rows) > limit:
            return None
        return {r[0]: attrs_from_row(r[2:]) for r in rows if _tags_pass(flt, r[1])}

    def _customer_attrs(
        self, agent_id: str, flt: RecallFilter, now: datetime, limit: int, ids_of: KeyIds
    ) -> tuple[bool, dict[str, Attrs] | None]:
        """(answered, ``filtered_attrs``) for a filter ``_customer_and_attrs_only`` accepts.

        The scan reads seven columns of each of the customer's memories, a random read
        each in Kùzu 0.11 (~6 ms for 30 memories at 100k); the keys on the ABOUT edges come
        with the adjacency list (~0.25 ms) and the attribute cache holds the rest. Not
        answered (the caller scans) when an edge has no key, the vector store does not
        know a key, or the cache lacks more than ``_CACHE_MISSES_LOOKED_UP`` memories.
        """
        rows = self.read(
            "MATCH (c:Customer)<-[e:ABOUT]-(m:Memory) WHERE c.uid = $cuid RETURN e.k",
            {"cuid": node_uid(agent_id, flt.customer_id or "")},
        )
        keys = list(dict.fromkeys(r[0] for r in rows))
        if any(k is None for k in keys):
            return False, None
        ids = ids_of(agent_id, keys)
        if len(ids) < len(keys):
            return False, None
        ordered = [ids[k] for k in keys]
        attrs, missing = self._attrs_cache.get(agent_id, ordered)
        if len(missing) > _CACHE_MISSES_LOOKED_UP:
            return False, None
        attrs.update(self.memory_attrs(agent_id, missing) if missing else {})
        since, until = utc(flt.since), utc(flt.until)
        passing = {
            i: a
            for i in ordered
            if (a := attrs.get(i)) is not None
            and (a.expires_at is None or a.expires_at > now)
            and (flt.include_superseded or a.superseded_by is None)
            and (since is None or a.created_at >= since)
            and (until is None or a.created_at <= until)
            and (flt.min_importance is None or a.importance >= flt.min_importance)
        }
        return True, None if len(passing) > limit else passing

    def filter_ids(self, agent_id: str, ids: Sequence[str], flt: RecallFilter, now: datetime) -> set[str]:
        """The subset of ``ids`` that passes the filter (and is not expired)."""
        if not ids:
            return set()
        where, params = _filter_clause(agent_id, flt, now)
        params["ids"] = list(ids)
        match = _filter_match(agent_id, flt, params)
        rows = self.read(f"{match} WHERE m.id IN $ids AND {where} RETURN m.id, m.tags", params)
        return {r[0] for r in rows if _tags_pass(flt, r[1])}

    def memory_texts(self, agent_id: str, ids: Sequence[str]) -> Iterator[tuple[str, str, list[str]]]:
        """``(id, content, tags)`` of each existing memory of ``ids`` (what the keyword
        index holds). A few are point lookups; many (a keyword index rebuilt) are read
        by scanning the agent's memories in 16 slices of the id range, since an UNWIND
        that matches by id scans the table per row."""
        wanted = list(dict.fromkeys(ids))
        if len(wanted) <= _TEXT_LOOKUP_LIMIT:
            rows = self._point_lookups(
                wanted, "MATCH (m:Memory) WHERE m.id = $id AND m.agent_id = $a RETURN m.id, m.content, m.tags",
                agent_id,
            )
            yield from ((r[0], r[1], list(r[2] or ())) for r in rows)
            return
        keep = set(wanted)
        bounds: list[str | None] = [None, *"123456789abcdef", None]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            where = " AND ".join(c for c, v in (("m.id >= $lo", lo), ("m.id < $hi", hi)) if v)
            params = {k: v for k, v in (("lo", lo), ("hi", hi)) if v}
            rows = self.read(
                f"MATCH (m:Memory) WHERE m.agent_id = $a AND {where} RETURN m.id, m.content, m.tags",
                {**params, "a": agent_id},
            )
            yield from ((r[0], r[1], list(r[2] or ())) for r in rows if r[0] in keep)

    # -- reads: graph ---------------------------------------------------------------
    def resolve(self, agent_id: str, refs: NodeRefs) -> NodeRefs:
        """Keep only the referenced nodes that exist for this agent."""

        # One prepared primary-key lookup per key: an IN list scans the whole node table.
        # Customers are the exception: a query yields a dozen candidate names (word
        # n-grams) and the Customer table is small, so one scan is cheaper.
        def lookup(label: str, uids: Sequence[str], columns: str) -> list[list[Any]]:
            if label == "Customer" and len(uids) > 4:
                return self.read(f"MATCH (n:Customer) WHERE n.uid IN $u RETURN {columns}", {"u": list(uids)})
            query = f"MATCH (n:{label}) WHERE n.uid = $uid RETURN {columns}"
            return [row for uid in dict.fromkeys(uids) for row in self.read_prepared(query, {"uid": uid})]

        def existing(label: str, keys: Sequence[str]) -> tuple[str, ...]:
            rows = lookup(label, [node_uid(agent_id, k) for k in keys], "n.id")
            return tuple(sorted({r[0] for r in rows}))

        entity_rows = lookup("Entity", [node_uid(agent_id, f"{k}:{v}") for k, v in refs.entities], "n.kind, n.key")
        return NodeRefs(
            customers=existing("Customer", refs.customers),
            orders=existing("`Order`", refs.orders),
            tickets=existing("Ticket", refs.tickets),
            entities=tuple(sorted({(r[0], r[1]) for r in entity_rows})),
        )

    def linked_memories(
        self,
        agent_id: str,
        refs: NodeRefs,
        *,
        others: bool = False,
        limit: int | None = None,
        ids_of: KeyIds | None = None,
    ) -> dict[str, GraphLink]:
        """Memories connected to the referenced nodes: 1.0 direct, 0.75 one ticket<->order
        hop away (the order a ticket is about, the other tickets on that order), 0.5 via
        their customer. ``others`` (the query asks for *other* tickets/orders than the ones
        it names) puts the memories directly linked to the named orders and tickets at 0.25,
        whatever other path also reaches them.

        With a ``limit`` (the caller keeps only the ``limit`` strongest links), hops run
        strongest first, and once ``limit`` memories are linked more strongly than the next
        hop could link anything, the weaker hops are skipped: they could change neither
        which memories are kept nor their strength and reasons. A customer's name in 651
        memories at 100k saves its 22 ms "same customer" hop.

        ``ids_of`` (agent, memory keys) -> {key: memory id} (the vector store's map): the
        hops then read the memory's key off the edge that leaves it (005_edge_keys), ~15x
        cheaper a row than the memory's id. A hop with a key the map lacks (a memory
        whose vector is not stored yet) reads the ids instead.
        """
        links: dict[str, GraphLink] = {}
        own: dict[str, str] = {}  # with ``others``: memory id -> why it is pushed down

        def add(rows: list[list[Any]], strength: float, reason: str) -> None:
            for row in rows:
                memory_id, label = row[0], row[1]
                link = links.setdefault(memory_id, GraphLink(0.0))
                if strength < link.strength:
                    continue  # a stronger connection already explains this memory
                if strength > link.strength:
                    link.strength, link.reasons = strength, []
                text = reason.format(label)
                if text not in link.reasons:
                    link.reasons.append(text)

        named = {
            "customer": refs.customers,
            "order": refs.orders,
            "ticket": refs.tickets,
            "entity": [f"{k}:{v}" for k, v in refs.entities],
        }
        # Strongest first (stable, so equal strengths keep their order and their reasons).
        for kind, path, label, strength, reason, direct in sorted(_LINK_HOPS, key=lambda hop: -hop[3]):
            if limit is not None and not others and named[kind]:
                if sum(1 for link in links.values() if link.strength > strength) >= limit:
                    break
            for key in dict.fromkeys(named[kind]):
                # One named node at a time, by its primary key: an IN list would scan the
                # whole Order/Ticket/Entity table (Kùzu 0.11), and queries name one or two.
                rows = self._hop(agent_id, path, label, node_uid(agent_id, key), ids_of)
                add(rows, strength, reason)
                if others and direct:
                    own.update({r[0]: f"{reason.format(r[1])} itself (asked for others)" for r in rows})
        for memory_id, reason in own.items():
            links[memory_id] = GraphLink(0.25, [reason])
        return links

    def _hop(self, agent_id: str, path: str, label: str, uid: str, ids_of: KeyIds | None) -> list[list[Any]]:
        """(memory id, label) of the memories ``path`` leads to from the node ``uid``."""
        match, _, more = path.partition(" WHERE ")
        where = f"WHERE {more + ' AND ' if more else ''}n.uid = $u"
        if ids_of is not None:
            rows = self.read(f"MATCH {match} {where} RETURN DISTINCT e.k, {label}", {"u": uid})
            ids = ids_of(agent_id, [r[0] for r in rows if r[0] is not None])
            if all(r[0] in ids for r in rows):
                return [[ids[r[0]], r[1]] for r in rows]
        return self.read(f"MATCH {match} {where} RETURN DISTINCT m.id, {label}", {"u": uid})

    def associated_memories(
        self, agent_id: str, seed_ids: Sequence[str], *, max_depth: int, limit: int, now: datetime
    ) -> list[tuple[str, int]]:
        """Memories that share a customer, order or ticket with the seeds, hop by hop.

        Depth 1 shares a node with a seed; depth d shares one with a memory of depth d-1.
        Returns (id, depth) pairs, nearest first and newest first within a depth, at most
        ``limit``; the seeds themselves and expired memories are left out.
        """
        seen = set(seed_ids)
        frontier = list(seed_ids)
        found: list[tuple[str, int]] = []
        for depth in range(1, max_depth + 1):
            if not frontier or len(found) >= limit:
                break
            rows = self.read(
                "MATCH (m:Memory)-[:ABOUT|MENTIONS]->(:Customer:`Order`:Ticket)<-[:ABOUT|MENTIONS]-(o:Memory) "
                "WHERE m.id IN $ids AND m.agent_id = $a AND o.agent_id = $a AND NOT o.id IN $seen "
                "AND (o.expires_at IS NULL OR o.expires_at > $now) "
                "RETURN DISTINCT o.id AS id, o.created_at AS t "
                f"ORDER BY t DESC, id LIMIT {int(limit - len(found))}",
                {"ids": frontier, "a": agent_id, "seen": sorted(seen), "now": now},
            )
            # Fewer rows than asked for means this depth is complete: it is the next frontier.
            frontier = [r[0] for r in rows]
            seen.update(frontier)
            found.extend((memory_id, depth) for memory_id in frontier)
        return found

    # -- reads: sessions and customers ------------------------------------------------
    def session_mentions(
        self, agent_id: str, kind: str, key: str, limit: int
    ) -> list[tuple[str, str, int, datetime | None, bool]]:
        """(memory id, session id, position, session start, session ended) of the memories
        in a session that MENTION the order, ticket or entity (``kind:key``) ``key``."""
        label = {"order": "`Order`", "ticket": "Ticket", "entity": "Entity"}[kind]
        rows = self.read_prepared(
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
        rows = self.read_prepared(
            "MATCH (m:Memory)-[e:IN_SESSION]->(:Session {id: $s}) WHERE e.seq > $q "
            "AND (m.expires_at IS NULL OR m.expires_at > $now) "
            f"RETURN m.id, e.seq, m.content, m.metadata ORDER BY e.seq DESC LIMIT {int(limit)}",
            {"s": session_id, "q": int(after), "now": now},
        )
        return [(r[0], int(r[1]), r[2], json.loads(r[3]) if r[3] else {}) for r in reversed(rows)]

    def settled_memories(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> its ticket, for those of ``memory_ids`` that mention a resolved or
        closed ticket and no other one.

        From the memory keys on the MENTIONS edges of the agent's tickets, read once and
        kept until a write touches tickets: a lookup per memory from its id cost ~0.2-2 ms
        (Kùzu 0.11 plans it as a join), and recall asks for ten memories each time.
        """
        generation = self._ticket_generation
        cached = self._settled.get(agent_id)
        if cached is None or cached[0] != generation:
            settled: dict[int, str] = {}
            mixed: set[int] = set()
            for key, ticket, status in self.read(
                "MATCH (t:Ticket)<-[e:MENTIONS]-(:Memory) WHERE t.agent_id = $a RETURN e.k, t.id, t.status",
                {"a": agent_id},
            ):
                if key is None:
                    continue
                if status in ("resolved", "closed") and int(key) not in mixed:
                    settled.setdefault(int(key), ticket)
                else:
                    mixed.add(int(key))
                    settled.pop(int(key), None)
            cached = self._settled[agent_id] = (generation, settled)
        keys = cached[1]
        return {i: keys[k] for i in dict.fromkeys(memory_ids) if (k := vector_key(i)) in keys}

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
            # HAD_SESSION: given at the start or learned later (_learn_sessions).
            match = "MATCH (:Customer {uid: $cu})-[:HAD_SESSION]->(s:Session)"
            params["cu"] = node_uid(agent_id, customer_id)
        if active_only:
            where.append("s.ended_at IS NULL")
        rows = self.read(
            f"{match} WHERE {' AND '.join(where)} {_SESSION_CUSTOMER} "
            "OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
            "RETURN s.id, s.agent_id, s.started_at, coalesce(s.customer_id, learned), s.ended_at, s.summary, "
            # No SKIP: Kùzu 0.11.3 segfaults on ORDER BY ... SKIP n when n is far past the rows
            # (e.g. SKIP 15000 over 3 rows); LIMIT alone is safe, so skip in Python.
            f"s.metadata, count(m) ORDER BY s.started_at DESC, s.id LIMIT {int(offset) + int(limit)}",
            params,
        )
        return [session_from_row(r) for r in rows[int(offset):]]

    def get_customer(self, agent_id: str, customer_id: str) -> Customer | None:
        rows = self.read(
            "MATCH (c:Customer {uid: $uid}) RETURN c.id, c.agent_id, c.name, c.created_at",
            {"uid": node_uid(agent_id, customer_id)},
        )
        if not rows:
            return None
        r = rows[0]
        return Customer(id=r[0], agent_id=r[1], name=r[2], created_at=utc(r[3]))

    def get_customers(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, Customer]:
        """Several customers in one query (for DataLoaders)."""
        if not customer_ids:
            return {}
        rows = self.read(
            "MATCH (c:Customer) WHERE c.uid IN $uids RETURN c.id, c.agent_id, c.name, c.created_at",
            {"uids": [node_uid(agent_id, c) for c in customer_ids]},
        )
        return {r[0]: Customer(id=r[0], agent_id=r[1], name=r[2], created_at=utc(r[3])) for r in rows}

    def customer_session_memories(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories of these customers' sessions (their
        session summaries included)."""
        out: dict[str, str] = {}
        for rel in ("IN_SESSION", "SUMMARISES"):
            rows = self.by_keys(
                f"MATCH (:Customer {{uid: $key}})-[:HAD_SESSION]->(s:Session)<-[:{rel}]-(m:Memory) RETURN m.id, s.id",
                [node_uid(agent_id, c) for c in customer_ids],
            )
            out.update((r[0], r[1]) for r in rows)
        return out

    def customer_aliases(self, agent_id: str, customer_id: str) -> list[KnownAlias]:
        """What the customer is known by, in the order it was learned."""
        rows = self.read(
            "MATCH (:Customer {uid: $uid})-[k:KNOWN_AS]->(n:Alias) "
            "RETURN n.kind, n.key, n.value, k.source, k.at ORDER BY k.at, n.kind, n.key",
            {"uid": node_uid(agent_id, customer_id)},
        )
        return [KnownAlias(r[0], r[1], r[2], r[3], utc(r[4])) for r in rows]

    def alias_customers(self, agent_id: str, node_keys: Sequence[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
        """For each alias node key (``Alias.node_key``) that exists for this agent: its
        value and the ids of the customers known by it."""
        rows = self.by_keys(
            "MATCH (n:Alias {uid: $key})<-[:KNOWN_AS]-(c:Customer) RETURN n.uid, n.value, c.id",
            self._existing_alias_uids(agent_id, node_keys),
        )
        out: dict[str, tuple[str, tuple[str, ...]]] = {}
        for uid, value, cid in rows:
            key = uid.split("|", 1)[1]
            out[key] = (value, tuple(sorted({*out.get(key, ("", ()))[1], cid})))
        return out

    def _existing_alias_uids(self, agent_id: str, node_keys: Sequence[str]) -> list[str]:
        """The uids of these alias keys that may exist (most candidate names do not)."""
        known = self._alias_uids
        if known is None:
            with self._write_lock:  # no alias is written while the set loads
                if self._alias_uids is None:
                    self._alias_uids = {r[0] for r in self._run(self._reader(), "MATCH (n:Alias) RETURN n.uid")}
                known = self._alias_uids
        return [uid for uid in (node_uid(agent_id, k) for k in node_keys) if uid in known]

    def alias_sessions(self, agent_id: str, node_keys: Sequence[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
        """For each alias node key said in conversations whose customer was never given:
        its value and those sessions, with the sessions that share an e-mail, phone or
        handle with them (one hop; an alias said in more than ``_SAID_LIMIT`` sessions,
        say a support address, links none)."""
        rows = self.by_keys(
            "MATCH (n:Alias {uid: $key})<-[:SAID]-(s:Session) RETURN n.uid, n.value, s.id",
            self._existing_alias_uids(agent_id, node_keys),
        )
        found: dict[str, tuple[str, set[str]]] = {}
        for uid, value, sid in rows:
            found.setdefault(uid.split("|", 1)[1], (value, set()))[1].add(sid)
        found = {k: v for k, v in found.items() if len(v[1]) <= _SAID_LIMIT}
        sessions = sorted({sid for _, ids in found.values() for sid in ids})
        shared: dict[str, set[str]] = {}
        for first, uid, other in self.by_keys(
            "MATCH (s0:Session {id: $key})-[:SAID]->(a:Alias)<-[:SAID]-(s:Session) "
            "WHERE a.kind IN ['email', 'phone', 'handle'] RETURN s0.id, a.uid, s.id",
            sessions,
        ):
            shared.setdefault(uid, {first}).add(other)
        more: dict[str, set[str]] = {}
        for ids in shared.values():
            if len(ids) <= _SAID_LIMIT:
                for sid in ids:
                    more.setdefault(sid, set()).update(ids)
        return {
            k: (value, tuple(sorted(ids.union(*(more.get(i, set()) for i in ids)))))
            for k, (value, ids) in found.items()
        }

    def sessions_memories(self, session_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories (and summaries) of these sessions."""
        out: dict[str, str] = {}
        for rel in ("IN_SESSION", "SUMMARISES"):
            out.update((r[0], r[1]) for r in self.by_keys(
                f"MATCH (s:Session {{id: $key}})<-[:{rel}]-(m:Memory) RETURN m.id, s.id", session_ids))
        return out

    def customer_orders(self, agent_id: str, customer_id: str) -> list[str]:
        rows = self.read(
            "MATCH (:Customer {uid: $uid})-[:PLACED]->(o:`Order`) RETURN o.id ORDER BY o.id",
            {"uid": node_uid(agent_id, customer_id)},
        )
        return [r[0] for r in rows]

    def customer_tickets(self, agent_id: str, customer_id: str) -> list[str]:
        rows = self.read(
            "MATCH (:Customer {uid: $uid})-[:RAISED]->(t:Ticket) RETURN t.id ORDER BY t.id",
            {"uid": node_uid(agent_id, customer_id)},
        )
        return [r[0] for r in rows]

    def memory_customers(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, list[str]]:
        rows = self.read(
            "MATCH (m:Memory)-[:ABOUT]->(c:Customer) WHERE m.id IN $ids AND m.agent_id = $a "
            "RETURN m.id, c.id ORDER BY c.id",
            {"ids": list(memory_ids), "a": agent_id},
        )
        out: dict[str, list[str]] = {}
        for memory_id, customer_id in rows:
            out.setdefault(memory_id, []).append(customer_id)
        return out

    # -- batch reads by node (the API's DataLoaders): per key up to _FEW_KEYS, then one UNWIND
    def customers_memories(self, agent_id: str, customer_ids: Sequence[str], now: datetime) -> dict[str, list[Memory]]:
        """Customer id -> its unexpired memories, newest first."""
        rows = self.by_keys(
            "MATCH (m:Memory)-[:ABOUT]->(c:Customer {uid: $key}) WHERE m.expires_at IS NULL OR m.expires_at > $now "
            f"RETURN c.id, {MEMORY_COLUMNS} ORDER BY m.created_at DESC, m.id",
            [node_uid(agent_id, c) for c in customer_ids], {"now": now},
        )
        return memories_by_key(rows)

    def orders_memories(self, agent_id: str, order_ids: Sequence[str], now: datetime) -> dict[str, list[Memory]]:
        """Order id -> the unexpired memories that mention it (or are tagged with it), oldest first."""
        rows = self.by_keys(
            "MATCH (m:Memory)-[:MENTIONS]->(o:`Order` {uid: $key}) WHERE m.expires_at IS NULL OR m.expires_at > $now "
            f"RETURN o.id, {MEMORY_COLUMNS} ORDER BY m.created_at, m.id",
            [node_uid(agent_id, o) for o in order_ids], {"now": now},
        )
        return memories_by_key(rows)

    def sessions_live_memories(
        self, agent_id: str, session_ids: Sequence[str], now: datetime
    ) -> dict[str, list[Memory]]:
        """Session id -> its unexpired memories in the order they were stored (``session_memories``)."""
        rows = self.by_keys(
            "MATCH (m:Memory)-[e:IN_SESSION]->(s:Session {id: $key}) "
            "WHERE m.agent_id = $a AND (m.expires_at IS NULL OR m.expires_at > $now) "
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

    def customers_aliases(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[KnownAlias]]:
        """Customer id -> what it is known by, in the order it was learned (``customer_aliases``)."""
        rows = self.by_keys(
            "MATCH (c:Customer {uid: $key})-[k:KNOWN_AS]->(n:Alias) "
            "RETURN c.id, n.kind, n.key, n.value, k.source, k.at ORDER BY k.at, n.kind, n.key",
            [node_uid(agent_id, c) for c in customer_ids],
        )
        out: dict[str, list[KnownAlias]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(KnownAlias(r[1], r[2], r[3], r[4], utc(r[5])))
        return out

    def customers_neighbours(self, agent_id: str, customer_ids: Sequence[str], kind: str) -> dict[str, list[str]]:
        """Customer id -> the sorted ids of its orders (``kind`` "order"), tickets ("ticket")
        or sessions ("session")."""
        pattern = _CUSTOMER_NEIGHBOURS[kind]
        rows = self.by_keys(
            f"MATCH (c:Customer {{uid: $key}})-{pattern} RETURN c.id, n.id ORDER BY n.id",
            [node_uid(agent_id, c) for c in customer_ids],
        )
        out: dict[str, list[str]] = {}
        for customer_id, node_id in rows:
            out.setdefault(customer_id, []).append(node_id)
        return out

    def count_memories(self, agent_id: str | None = None) -> int:
        if agent_id is None:
            return int(self.read("MATCH (m:Memory) RETURN count(m)")[0][0])
        return int(self.read("MATCH (m:Memory) WHERE m.agent_id = $a RETURN count(m)", {"a": agent_id})[0][0])


    def count_memories_by_agent(self) -> dict[str, int]:
        """Stored memories per agent (one aggregate over the agent_id column)."""
        return {r[0]: int(r[1]) for r in self.read("MATCH (m:Memory) RETURN m.agent_id, count(*)")}


def _session_positions(run: Callable[..., list[list[Any]]], memory_ids: Sequence[str]) -> dict[str, int]:
    """Memory id -> its position in its session, for those of ``memory_ids`` that have one."""
    out: dict[str, int] = {}
    for memory_id in dict.fromkeys(memory_ids):
        for (seq,) in run("MATCH (:Memory {id: $id})-[e:IN_SESSION]->(:Session) RETURN e.seq", {"id": memory_id}):
            if seq is not None:
                out[memory_id] = int(seq)
    return out


def _create_sessions(run: Transaction, sessions: Sequence[Session]) -> None:
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


# A session's customer learned after it started (_learn_sessions): ``learned``, read
# beside ``s`` (Session.customer_id holds the one given at the start).
_SESSION_CUSTOMER = "OPTIONAL MATCH (lc:Customer)-[:HAD_SESSION]->(s) WITH s, min(lc.id) AS learned"

# An Alias no customer is known by and no session said (then it is deleted).
UNCLAIMED_ALIAS = (
    "NOT EXISTS { MATCH (:Customer)-[:KNOWN_AS]->(n) } AND NOT EXISTS { MATCH (:Session)-[:SAID]->(n) }"
)
# An alias said in more sessions than this (a support address, a shared phone) links none.
_SAID_LIMIT = 25


def _merge_aliases(
    run: Transaction, facts: dict[tuple[str, str], tuple[str, Alias, str, datetime]], known: set[str] | None
) -> None:
    """Alias nodes for ``facts`` ((owner, alias uid) -> (agent, alias, source, at)), written
    whole when first learned."""
    nodes = {
        auid: {"uid": auid, "a": agent_id, "kind": a.kind, "key": a.key, "value": a.value, "t": at}
        for (_, auid), (agent_id, a, _, at) in facts.items()
    }
    if known is not None:
        known.update(nodes)  # before the commit: at worst a lookup finds nothing
    run.rows(
        "MERGE (n:Alias {uid: r.uid}) ON CREATE SET n.agent_id = r.a, n.kind = r.kind, n.key = r.key, "
        "n.value = r.value, n.created_at = r.t",
        list(nodes.values()),
    )


# What ``GraphStore.customers_neighbours`` follows from a customer, to the node ``n``.
_CUSTOMER_NEIGHBOURS = {
    "order": "[:PLACED]->(n:`Order`)",
    "ticket": "[:RAISED]->(n:Ticket)",
    "session": "[:HAD_SESSION]->(n:Session)",
}


def _customer_and_attrs_only(flt: RecallFilter) -> bool:
    """A customer filter whose other conditions are all on ranking attributes (``Attrs``)."""
    return flt.customer_id is not None and flt.session_id is None and not flt.memory_types and not flt.tags


def _filter_match(agent_id: str, flt: RecallFilter, params: dict[str, Any]) -> str:
    """The MATCH of a filtered memory scan: through its session and/or customer node.

    A pattern, not ``EXISTS { ... $cuid ... }``: Kùzu 0.11 cannot bind a parameter inside
    a subquery of a prepared statement, and every parameterised query is prepared
    (GraphStore._run).
    """
    path = "(m:Memory)"
    if flt.customer_id is not None:
        path = "(:Customer {uid: $cuid})<-[:ABOUT]-" + path
        params["cuid"] = node_uid(agent_id, flt.customer_id)
    if flt.session_id is not None:
        path += "-[:IN_SESSION]->(:Session {id: $sid})"
        params["sid"] = flt.session_id
    return f"MATCH {path}"


def _filter_clause(agent_id: str, flt: RecallFilter, now: datetime) -> tuple[str, dict[str, Any]]:
    where = ["m.agent_id = $a", "(m.expires_at IS NULL OR m.expires_at > $now)"]
    params: dict[str, Any] = {"a": agent_id, "now": now}
    if not flt.include_superseded:
        where.append("m.superseded_by IS NULL")
    if flt.since is not None:
        where.append("m.created_at >= $since")
        params["since"] = flt.since
    if flt.until is not None:
        where.append("m.created_at <= $until")
        params["until"] = flt.until
    if flt.min_importance is not None:
        where.append("m.importance >= $mi")
        params["mi"] = flt.min_importance
    if flt.memory_types:
        where.append("m.memory_type IN $types")
        params["types"] = list(flt.memory_types)
    # Tags ("any of") are checked by _tags_pass: Kùzu 0.11 cannot bind a parameter
    # inside a list comprehension.
    return " AND ".join(where), params


def _tags_pass(flt: RecallFilter, tags: list[str] | None) -> bool:
    return not flt.tags or bool(set(flt.tags).intersection(tags or ()))


