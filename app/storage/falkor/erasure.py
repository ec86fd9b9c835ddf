"""Data-subject requests on FalkorDB (CustomerErasure in app/storage/customers.py): erase a customer, read theirs.

The semantics are the embedded twin's (storage/embedded/erasure.py): the customer's
memories (linked ABOUT them, naming them, or in their sessions), their sessions, the
Customer node, the aliases no other customer or session is known by, and the orders,
tickets (with their status events) and entities nothing else mentions or claims. A ticket
that loses memories but stays is marked for its relations to be recomputed.

Erasure is one transaction: under the agent's write lock it reads what goes (the reads see
the committed graph, which no other writer changes meanwhile), then queues the deletes,
which commit as one query. "Nothing else claims it" is judged before the delete, leaving
out what the erasure itself removes. A memory's vector and keyword entry are properties of
its node here (``embedding``, ``doc``), so they go with it; they are counted from the
nodes that had them. The session -> agent entries of erased sessions and the memory id ->
agent entries of erased memories (memory_ids.py) go after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from casegraph.storage.customers import CustomerRecords, Erased, TicketHistory, TicketStatusEvent
from casegraph.storage.falkor.keywords import count_changes, uncount
from casegraph.storage.falkor.memory_ids import MemoryDirectory
from casegraph.storage.rows import node_uid
from casegraph.times import utc

Read = Callable[[str, dict[str, Any] | None], list[list[Any]]]

# Nodes a customer's memories may mention, and the customer edge that also claims them.
_MENTIONED = (("orders", "`Order`", "PLACED"), ("tickets", "Ticket", "RAISED"), ("entities", "Entity", None))


def _ids(rows: list[list[Any]]) -> set[Any]:
    return {r[0] for r in rows}


def _memory_ids(read: Read, agent_id: str, customer_id: str) -> set[str]:
    """The customer's memories: linked ABOUT them, naming them, or in their sessions."""
    return (
        _ids(read("MATCH (m:Memory)-[:ABOUT]->(:Customer {uid: $uid}) RETURN m.id",
                  {"uid": node_uid(agent_id, customer_id)}))
        | _ids(read("MATCH (m:Memory) WHERE m.customer_id = $c RETURN m.id", {"c": customer_id}))
        | _ids(read("MATCH (m:Memory)-[:IN_SESSION]->(s:Session) WHERE s.customer_id = $c RETURN m.id",
                    {"c": customer_id}))
    )


def _session_ids(read: Read, agent_id: str, customer_id: str) -> set[str]:
    return _ids(read("MATCH (s:Session) WHERE s.customer_id = $c RETURN s.id", {"c": customer_id})) | _ids(
        read("MATCH (:Customer {uid: $uid})-[:HAD_SESSION]->(s:Session) RETURN s.id",
             {"uid": node_uid(agent_id, customer_id)}))


class FalkorErasure:
    """``CustomerErasure`` on a ``FalkorStore``."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def _reader(self, agent_id: str) -> Read:
        return lambda query, params=None: self.store.read(agent_id, query, params)

    def erase_customer(self, agent_id: str, customer_id: str) -> Erased:
        store: MemoryDirectory = self.store
        uid = node_uid(agent_id, customer_id)
        if not store.has_agent(agent_id):
            return Erased(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        with store.transaction(agent_id) as tx:
            memory_ids = sorted(_memory_ids(tx, agent_id, customer_id))
            tx.attrs_changed(memory_ids)
            session_ids = sorted(_session_ids(tx, agent_id, customer_id))
            indexed = tx("UNWIND $ids AS i MATCH (m:Memory {id: i}) "
                         "RETURN count(m.embedding), count(m.doc)", {"ids": memory_ids})[0]
            customers = tx("MATCH (c:Customer {uid: $uid}) RETURN count(c)", {"uid": uid})[0][0]
            orphans: dict[str, list[str]] = {}
            mentioned_tickets: set[str] = set()
            for name, label, claim in _MENTIONED:
                found: set[str] = set()
                if memory_ids:
                    found = _ids(tx(f"UNWIND $ids AS i MATCH (m:Memory {{id: i}})-[:MENTIONS]->(n:{label}) "
                                    "RETURN DISTINCT n.uid", {"ids": memory_ids}))
                if label == "Ticket":
                    mentioned_tickets = set(found)
                if claim:
                    found |= _ids(tx(f"MATCH (:Customer {{uid: $uid}})-[:{claim}]->(n:{label}) RETURN n.uid",
                                     {"uid": uid}))
                orphans[name] = sorted(_ids(tx(*_unclaimed(label, claim, sorted(found), memory_ids, uid)))) \
                    if found else []
            # What they were known by goes too, unless another customer, or a session that
            # stays, is known by it.
            aliases = sorted(_ids(tx(
                "MATCH (:Customer {uid: $uid})-[:KNOWN_AS]->(n:Alias) "
                "OPTIONAL MATCH (c:Customer)-[:KNOWN_AS]->(n) WHERE c.uid <> $uid "
                "WITH n, count(c) AS customers "
                "OPTIONAL MATCH (s:Session)-[:SAID]->(n) WHERE NOT s.id IN $sessions "
                "WITH n, customers, count(s) AS sessions WHERE customers = 0 AND sessions = 0 RETURN n.uid",
                {"uid": uid, "sessions": session_ids},
            )))
            # A ticket's status history (notes may name the customer) goes with it.
            events = sorted(_ids(tx(
                "UNWIND $u AS uid MATCH (:Ticket {uid: uid})-[:HAS_EVENT]->(e:TicketEvent) RETURN DISTINCT e.id",
                {"u": orphans["tickets"]},
            ))) if orphans["tickets"] else []
            doomed = {
                "Memory": ("id", memory_ids), "Session": ("id", session_ids), "Customer": ("uid", [uid]),
                "Alias": ("uid", aliases), "`Order`": ("uid", orphans["orders"]), "Ticket": ("uid", orphans["tickets"]),
                "Entity": ("uid", orphans["entities"]), "TicketEvent": ("id", events),
            }
            # Edges are counted by identity: one between two erased nodes counts once.
            edges: set[int] = set()
            for label, (key, values) in doomed.items():
                if values:
                    edges |= _ids(tx(f"UNWIND $v AS k MATCH (n:{label} {{{key}: k}})-[r]-() RETURN DISTINCT id(r)",
                                     {"v": values}))
            if mentioned_tickets:
                # Tickets that keep other memories must recompute their relations.
                tx.unwind("MATCH (t:Ticket {uid: r.u}) SET t.refresh_token = $token",
                          [{"u": u} for u in sorted(mentioned_tickets)], {"token": uuid.uuid4().hex})
            uncount(tx, memory_ids)
            for label, (key, values) in doomed.items():
                tx.unwind(f"MATCH (n:{label} {{{key}: r.k}}) DETACH DELETE n", [{"k": v} for v in values])
            count_changes(tx, len(memory_ids))
            if session_ids:
                tx.after_commit(lambda: store.redis.hdel(store.key("sessions"), *session_ids))
            if memory_ids:
                # The erased ids are free again, as on the embedded engine (under the
                # lock still, so no write of the agent commits one of them in between).
                tx.after_commit(lambda: store.forget_memories(agent_id, memory_ids))
        return Erased(
            memories=len(memory_ids),
            sessions=len(session_ids),
            customers=int(customers),
            orders=len(orphans["orders"]),
            tickets=len(orphans["tickets"]),
            ticket_events=len(events),
            entities=len(orphans["entities"]),
            edges=len(edges),
            aliases=len(aliases),
            vectors=int(indexed[0]),
            keyword_entries=int(indexed[1]),
        )

    def customer_records(self, agent_id: str, customer_id: str) -> CustomerRecords:
        store = self.store
        read = self._reader(agent_id)
        memory_ids = sorted(_memory_ids(read, agent_id, customer_id))
        sessions = store.get_sessions(sorted(_session_ids(read, agent_id, customer_id)))
        return CustomerRecords(
            customer=store.get_customer(agent_id, customer_id),
            memories=list(store.get_memories(agent_id, memory_ids).values()),
            sessions=[sessions[sid] for sid in sorted(sessions)],
            orders=store.customer_orders(agent_id, customer_id),
            tickets=store.customer_tickets(agent_id, customer_id),
            aliases=store.customer_aliases(agent_id, customer_id),
        )

    def ticket_histories(self, agent_id: str, ticket_ids: list[str]) -> list[TicketHistory]:
        out = []
        for ticket_id in ticket_ids:
            uid = node_uid(agent_id, ticket_id)
            rows = self.store.read(agent_id, "MATCH (t:Ticket {uid: $u}) RETURN t.status, t.subject, t.channel, "
                                   "t.created_at, t.updated_at", {"u": uid})
            if not rows:
                continue
            status, subject, channel, created_at, updated_at = rows[0]
            events = self.store.read(agent_id, "MATCH (:Ticket {uid: $u})-[:HAS_EVENT]->(e:TicketEvent) "
                                     "RETURN e.kind, e.status, e.previous, e.note, e.at ORDER BY e.at, e.id",
                                     {"u": uid})
            out.append(TicketHistory(
                id=ticket_id, status=status, subject=subject, channel=channel, created_at=utc(created_at),
                updated_at=utc(updated_at),
                events=[TicketStatusEvent(kind, st, prev, note, utc(at)) for kind, st, prev, note, at in events],
            ))
        return out


def _unclaimed(
    label: str, claim: str | None, uids: list[str], memory_ids: list[str], customer_uid: str
) -> tuple[str, dict[str, Any]]:
    """The nodes among ``uids`` no memory outside ``memory_ids`` mentions and (``claim``) no
    other customer placed or raised: what is left without them once the customer is gone."""
    query = (
        f"UNWIND $u AS uid MATCH (n:{label} {{uid: uid}}) "
        "OPTIONAL MATCH (m:Memory)-[:MENTIONS]->(n) WHERE NOT m.id IN $ids "
        "WITH n, count(m) AS mentions "
    )
    if claim:
        query += (
            f"OPTIONAL MATCH (c:Customer)-[:{claim}]->(n) WHERE c.uid <> $c "
            "WITH n, mentions, count(c) AS claims WHERE mentions = 0 AND claims = 0 "
        )
    else:
        query += "WITH n, mentions WHERE mentions = 0 "
    return query + "RETURN n.uid", {"u": uids, "ids": memory_ids, "c": customer_uid}
