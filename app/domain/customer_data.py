"""Data-subject requests for one customer of one agent: export everything, erase everything.

"Everything of a customer" is what the graph links to them: memories ``ABOUT`` them (tags
``customer:<id>``, ``customerId``, stored in their session, or stored in a session before
it learned its customer), their sessions (``HAD_SESSION``, also learned late), the
Customer node, the aliases it is known by (names, e-mails, phones, handles) that no other
customer shares, and the orders, tickets (with their status events) and entities
(e-mails, phones, names...) that only their memories mention. Erasure deletes all of it in one
graph transaction, then removes the memories' vectors and keyword-index entries; both
indexes are reconciled against the graph at start-up, so a crash in between cannot bring
a vector or a keyword entry back. An order, ticket or entity that another
customer's memory also mentions stays, and such a ticket's relations are recomputed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from casegraph.domain.memory import check_agent_id, check_customer_id
from casegraph.domain.models import Memory, Session
from casegraph.storage.embedded.graph import (
    UNCLAIMED_ALIAS,
    GraphStore,
    _mark_tickets_stale,
    node_uid,
)
from casegraph.storage.embedded.keywords import KeywordIndex
from casegraph.storage.embedded.vectors import VectorStore

log = logging.getLogger("casegraph.customer_data")

# Nodes a customer's memories may mention, and the customer edge that also claims them.
_MENTIONED = (("orders", "`Order`", "PLACED"), ("tickets", "Ticket", "RAISED"), ("entities", "Entity", None))


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """What an erasure removed, per store."""

    agent_id: str
    customer_id: str
    memories: int
    sessions: int
    customers: int
    orders: int
    tickets: int
    ticket_events: int
    entities: int
    edges: int
    vectors: int
    keyword_entries: int
    aliases: int = 0


def _ids(rows: list[list[Any]]) -> set[str]:
    return {r[0] for r in rows}


def _memory_ids(read: Any, agent_id: str, customer_id: str) -> set[str]:
    """The customer's memories: linked ABOUT them, naming them, or in their sessions."""
    p = {"uid": node_uid(agent_id, customer_id), "a": agent_id, "c": customer_id}
    return (
        _ids(read("MATCH (m:Memory)-[:ABOUT]->(:Customer {uid: $uid}) RETURN m.id", {"uid": p["uid"]}))
        | _ids(read("MATCH (m:Memory) WHERE m.agent_id = $a AND m.customer_id = $c RETURN m.id",
                    {"a": agent_id, "c": customer_id}))
        | _ids(read("MATCH (m:Memory)-[:IN_SESSION]->(s:Session) WHERE s.agent_id = $a AND s.customer_id = $c "
                    "RETURN m.id", {"a": agent_id, "c": customer_id}))
    )


def _session_ids(read: Any, agent_id: str, customer_id: str) -> set[str]:
    return _ids(read("MATCH (s:Session) WHERE s.agent_id = $a AND s.customer_id = $c RETURN s.id",
                     {"a": agent_id, "c": customer_id})) | _ids(
        read("MATCH (:Customer {uid: $uid})-[:HAD_SESSION]->(s:Session) RETURN s.id",
             {"uid": node_uid(agent_id, customer_id)}))


def forget_customer(
    graph: GraphStore,
    vectors: VectorStore,
    keywords: KeywordIndex,
    agent_id: str,
    customer_id: str,
    on_change: Callable[[], object] | None = None,
) -> ErasureReceipt:
    """Erase one customer of one agent everywhere; idempotent (a second call removes 0).

    ``on_change`` runs after the commit (the write path's change listeners: tickets that
    lost memories get their relations recomputed)."""
    agent_id = check_agent_id(agent_id)
    customer_id = check_customer_id(customer_id)
    uid = node_uid(agent_id, customer_id)
    removed: dict[str, int] = {}
    with graph.transaction(reports_attrs=True) as run:
        memory_ids = sorted(_memory_ids(run, agent_id, customer_id))
        run.attrs_changed(memory_ids)
        session_ids = sorted(_session_ids(run, agent_id, customer_id))
        candidates: dict[str, set[str]] = {}
        for name, label, claim in _MENTIONED:
            found: set[str] = set()
            if memory_ids:
                found = _ids(run(f"MATCH (m:Memory)-[:MENTIONS]->(n:{label}) WHERE m.id IN $ids RETURN n.uid",
                                 {"ids": memory_ids}))
            if claim:
                found |= _ids(run(f"MATCH (:Customer {{uid: $uid}})-[:{claim}]->(n:{label}) RETURN n.uid",
                                  {"uid": uid}))
            candidates[name] = found
        # Edges are counted as a difference: exact, whatever mix of types they were.
        edges_before = run("MATCH ()-[r]->() RETURN count(r)")[0][0]
        if memory_ids:
            # Tickets that keep other memories must recompute their relations.
            _mark_tickets_stale(run, "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE m.id IN $ids",
                                {"ids": memory_ids})
            run("MATCH (m:Memory) WHERE m.id IN $ids DETACH DELETE m", {"ids": memory_ids})
        if session_ids:
            run("MATCH (s:Session) WHERE s.id IN $ids DETACH DELETE s", {"ids": session_ids})
        aliases = sorted(_ids(run("MATCH (:Customer {uid: $uid})-[:KNOWN_AS]->(n:Alias) RETURN n.uid", {"uid": uid})))
        customers = run("MATCH (c:Customer {uid: $uid}) RETURN count(c)", {"uid": uid})[0][0]
        if customers:
            graph.aliases_forgotten()
            run("MATCH (c:Customer {uid: $uid}) DETACH DELETE c", {"uid": uid})
        if aliases:
            # What they were known by goes too, unless another customer is known by it.
            removed["aliases"] = run(
                f"MATCH (n:Alias) WHERE n.uid IN $u AND {UNCLAIMED_ALIAS} DETACH DELETE n RETURN count(n)",
                {"u": aliases})[0][0]
        removed["ticket_events"] = 0
        for name, label, claim in _MENTIONED:
            if not candidates[name]:
                removed[name] = 0
                continue
            still_claimed = f" OR EXISTS {{ MATCH (:Customer)-[:{claim}]->(n) }}" if claim else ""
            orphans = sorted(_ids(run(
                f"MATCH (n:{label}) WHERE n.uid IN $u AND NOT (EXISTS {{ MATCH (:Memory)-[:MENTIONS]->(n) }}"
                f"{still_claimed}) RETURN n.uid",
                {"u": sorted(candidates[name])},
            )))
            if orphans and label == "Ticket":
                # A ticket's status history (notes may name the customer) goes with it.
                removed["ticket_events"] = run(
                    "MATCH (n:Ticket)-[:HAS_EVENT]->(e:TicketEvent) WHERE n.uid IN $u "
                    "WITH DISTINCT e DETACH DELETE e RETURN count(e)", {"u": orphans})[0][0]
            if orphans:
                run(f"MATCH (n:{label}) WHERE n.uid IN $u DETACH DELETE n", {"u": orphans})
            removed[name] = len(orphans)
        edges = edges_before - run("MATCH ()-[r]->() RETURN count(r)")[0][0]
    vectors_removed = vectors.remove(agent_id, memory_ids) if memory_ids else 0
    keywords_removed = keywords.delete(agent_id, memory_ids) if memory_ids else 0
    if on_change is not None and memory_ids:
        on_change()
    receipt = ErasureReceipt(
        agent_id=agent_id,
        customer_id=customer_id,
        memories=len(memory_ids),
        sessions=len(session_ids),
        customers=int(customers),
        edges=int(edges),
        vectors=vectors_removed,
        keyword_entries=keywords_removed,
        ticket_events=int(removed.pop("ticket_events", 0)),
        aliases=int(removed.pop("aliases", 0)),
        **removed,
    )
    log.info("erased customer %s of agent %s: %s", customer_id, agent_id, asdict(receipt))
    return receipt


def export_customer(graph: GraphStore, agent_id: str, customer_id: str, now: datetime) -> dict[str, Any]:
    """Everything stored about one customer, as plain JSON-ready data."""
    agent_id = check_agent_id(agent_id)
    customer_id = check_customer_id(customer_id)
    customer = graph.get_customer(agent_id, customer_id)
    memories = sorted(
        graph.get_memories(agent_id, sorted(_memory_ids(graph.read, agent_id, customer_id))).values(),
        key=lambda m: (m.created_at, m.id),
    )
    sessions = [
        graph.get_session(sid) for sid in sorted(_session_ids(graph.read, agent_id, customer_id))
    ]
    entities = {(e.kind, e.key): e for m in memories for e in m.entities}
    return {
        "agentId": agent_id,
        "customerId": customer_id,
        "exportedAt": now.isoformat(),
        "customer": None if customer is None else {
            "id": customer.id, "name": customer.name, "createdAt": customer.created_at.isoformat(),
        },
        "memories": [_memory_json(m) for m in memories],
        "sessions": [_session_json(s) for s in sessions if s is not None],
        "orders": sorted(set(graph.customer_orders(agent_id, customer_id)) | {o for m in memories for o in m.orders}),
        "tickets": _tickets_json(
            graph, agent_id,
            sorted(set(graph.customer_tickets(agent_id, customer_id)) | {t for m in memories for t in m.tickets}),
        ),
        "entities": [
            {"kind": e.kind, "value": e.value, "key": e.key} for _, e in sorted(entities.items())
        ],
        "aliases": [
            {"kind": a.kind, "value": a.value, "key": a.key, "source": a.source, "learnedAt": _iso(a.at)}
            for a in graph.customer_aliases(agent_id, customer_id)
        ],
    }


def _tickets_json(graph: GraphStore, agent_id: str, ticket_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for ticket_id in ticket_ids:
        uid = node_uid(agent_id, ticket_id)
        rows = graph.read("MATCH (t:Ticket {uid: $u}) RETURN t.status, t.subject, t.channel, t.created_at, "
                          "t.updated_at", {"u": uid})
        if not rows:
            continue
        status, subject, channel, created_at, updated_at = rows[0]
        events = graph.read("MATCH (:Ticket {uid: $u})-[:HAS_EVENT]->(e:TicketEvent) "
                            "RETURN e.kind, e.status, e.previous, e.note, e.at ORDER BY e.at, e.id", {"u": uid})
        out.append({
            "id": ticket_id, "status": status, "subject": subject, "channel": channel,
            "createdAt": _iso(created_at), "updatedAt": _iso(updated_at),
            "events": [{"kind": k, "status": st, "previous": pr, "note": n, "at": _iso(at)}
                       for k, st, pr, n, at in events],
        })
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _memory_json(m: Memory) -> dict[str, Any]:
    return {
        "id": m.id, "content": m.content, "importance": m.importance, "tags": list(m.tags),
        "memoryType": m.memory_type, "metadata": m.metadata, "createdAt": _iso(m.created_at),
        "updatedAt": _iso(m.updated_at), "expiresAt": _iso(m.expires_at), "sessionId": m.session_id,
        "customerId": m.customer_id,
        "entities": [{"kind": e.kind, "value": e.value, "key": e.key} for e in m.entities],
    }


def _session_json(s: Session) -> dict[str, Any]:
    return {
        "id": s.id, "customerId": s.customer_id, "startedAt": _iso(s.started_at), "endedAt": _iso(s.ended_at),
        "summary": s.summary, "metadata": s.metadata, "memoryCount": s.memory_count,
    }
