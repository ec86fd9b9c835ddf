"""The Cypher of data-subject requests (CustomerErasure in app/storage/customers.py): erase a customer, read theirs.

Erasure deletes the customer's graph in one transaction, then the memories' vectors and
keyword entries; both indexes are reconciled against the graph at start-up, so a crash in
between cannot bring a vector or a keyword entry back. An order, ticket or entity that
another customer's memory also mentions (or, for orders and tickets, that another customer
placed or raised) stays, and such a ticket is marked for its relations to be recomputed.
"""

from __future__ import annotations

from typing import Any

from casegraph.storage.customers import CustomerRecords, Erased, TicketHistory, TicketStatusEvent
from casegraph.storage.embedded.aliases import UNCLAIMED_ALIAS
from casegraph.storage.embedded.graph import GraphStore
from casegraph.storage.embedded.keywords import KeywordIndex
from casegraph.storage.embedded.tickets import mark_tickets_stale
from casegraph.storage.embedded.vectors import VectorStore
from casegraph.storage.rows import node_uid

# Nodes a customer's memories may mention, and the customer edge that also claims them.
_MENTIONED = (("orders", "`Order`", "PLACED"), ("tickets", "Ticket", "RAISED"), ("entities", "Entity", None))


def _ids(rows: list[list[Any]]) -> set[str]:
    return {r[0] for r in rows}


def _memory_ids(read: Any, agent_id: str, customer_id: str) -> set[str]:
    """The customer's memories: linked ABOUT them, naming them, or in their sessions."""
    return (
        _ids(read("MATCH (m:Memory)-[:ABOUT]->(:Customer {uid: $uid}) RETURN m.id",
                  {"uid": node_uid(agent_id, customer_id)}))
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


class EmbeddedCustomerErasure:
    """``CustomerErasure`` on the embedded engine's graph, vectors and keyword index."""

    def __init__(self, graph: GraphStore, vectors: VectorStore, keywords: KeywordIndex) -> None:
        self.graph = graph
        self.vectors = vectors
        self.keywords = keywords

    def erase_customer(self, agent_id: str, customer_id: str) -> Erased:
        graph = self.graph
        uid = node_uid(agent_id, customer_id)
        removed: dict[str, int] = {"ticket_events": 0}
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
                mark_tickets_stale(run, "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE m.id IN $ids",
                                    {"ids": memory_ids})
                run("MATCH (m:Memory) WHERE m.id IN $ids DETACH DELETE m", {"ids": memory_ids})
            if session_ids:
                run("MATCH (s:Session) WHERE s.id IN $ids DETACH DELETE s", {"ids": session_ids})
            aliases = sorted(_ids(run("MATCH (:Customer {uid: $uid})-[:KNOWN_AS]->(n:Alias) RETURN n.uid",
                                      {"uid": uid})))
            customers = run("MATCH (c:Customer {uid: $uid}) RETURN count(c)", {"uid": uid})[0][0]
            if customers:
                graph.aliases_forgotten()
                run("MATCH (c:Customer {uid: $uid}) DETACH DELETE c", {"uid": uid})
            removed["aliases"] = 0
            if aliases:
                # What they were known by goes too, unless another customer is known by it.
                removed["aliases"] = run(
                    f"MATCH (n:Alias) WHERE n.uid IN $u AND {UNCLAIMED_ALIAS} DETACH DELETE n RETURN count(n)",
                    {"u": aliases})[0][0]
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
        return Erased(
            memories=len(memory_ids),
            sessions=len(session_ids),
            customers=int(customers),
            orders=removed["orders"],
            tickets=removed["tickets"],
            ticket_events=int(removed["ticket_events"]),
            entities=removed["entities"],
            edges=int(edges),
            aliases=int(removed["aliases"]),
            vectors=self.vectors.remove(agent_id, memory_ids) if memory_ids else 0,
            keyword_entries=self.keywords.delete(agent_id, memory_ids) if memory_ids else 0,
        )

    def customer_records(self, agent_id: str, customer_id: str) -> CustomerRecords:
        graph = self.graph
        memory_ids = sorted(_memory_ids(graph.read, agent_id, customer_id))
        sessions = (graph.get_session(sid) for sid in sorted(_session_ids(graph.read, agent_id, customer_id)))
        return CustomerRecords(
            customer=graph.get_customer(agent_id, customer_id),
            memories=list(graph.get_memories(agent_id, memory_ids).values()),
            sessions=[s for s in sessions if s is not None],
            orders=graph.customer_orders(agent_id, customer_id),
            tickets=graph.customer_tickets(agent_id, customer_id),
            aliases=graph.customer_aliases(agent_id, customer_id),
        )

    def ticket_histories(self, agent_id: str, ticket_ids: list[str]) -> list[TicketHistory]:
        out = []
        for ticket_id in ticket_ids:
            uid = node_uid(agent_id, ticket_id)
            rows = self.graph.read("MATCH (t:Ticket {uid: $u}) RETURN t.status, t.subject, t.channel, "
                                   "t.created_at, t.updated_at", {"u": uid})
            if not rows:
                continue
            status, subject, channel, created_at, updated_at = rows[0]
            events = self.graph.read("MATCH (:Ticket {uid: $u})-[:HAS_EVENT]->(e:TicketEvent) "
                                     "RETURN e.kind, e.status, e.previous, e.note, e.at ORDER BY e.at, e.id",
                                     {"u": uid})
            out.append(TicketHistory(
                id=ticket_id, status=status, subject=subject, channel=channel, created_at=created_at,
                updated_at=updated_at, events=[TicketStatusEvent(*e) for e in events],
            ))
        return out
