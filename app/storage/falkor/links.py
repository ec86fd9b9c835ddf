"""Graph search on FalkorDB: the memories linked to what a recall query names, and their
neighbours.

Implements ``GraphSearch`` (app/storage/search.py) as the embedded twin does
(storage/embedded/links.py): which named nodes exist, the memories each path
(``LINK_PATHS``) leads to from them, the memories that share a customer, order or ticket
with others, and which memories only mention settled tickets. An agent's graph holds only
its own nodes, so no statement filters on ``agent_id``; nothing read here is kept between
calls, since other processes write the same graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from casegraph.storage.falkor.connection import Connection
from casegraph.storage.rows import live_clause, node_uid
from casegraph.storage.search import NodeRefs

# Each path from a memory ``m`` to the named node ``n`` (uid ``$u``): its pattern and
# conditions, and the label it returns (app/domain/links.py weighs the paths).
_PATHS: dict[str, tuple[str, str]] = {
    "about_customer": ("(m:Memory)-[:ABOUT]->(n:Customer {uid: $u})", "n.id"),
    "mentions_order": ("(m:Memory)-[:MENTIONS]->(n:`Order` {uid: $u})", "n.id"),
    "ticket_about_order": ("(m:Memory)-[:MENTIONS]->(t:Ticket)-[:CONCERNS]->(n:`Order` {uid: $u})",
                           "t.id + ' about order #' + n.id"),
    "customer_placed_order": ("(m:Memory)-[:ABOUT]->(:Customer)-[:PLACED]->(n:`Order` {uid: $u})", "n.id"),
    "mentions_ticket": ("(m:Memory)-[:MENTIONS]->(n:Ticket {uid: $u})", "n.id"),
    "order_of_ticket": ("(m:Memory)-[:MENTIONS]->(o:`Order`)<-[:CONCERNS]-(n:Ticket {uid: $u})",
                        "'order #' + o.id + ' of ticket ' + n.id"),
    "ticket_on_same_order": ("(m:Memory)-[:MENTIONS]->(t2:Ticket)-[:CONCERNS]->(o:`Order`)"
                             "<-[:CONCERNS]-(n:Ticket {uid: $u}) WHERE t2.uid <> n.uid",
                             "t2.id + ' (same order #' + o.id + ')'"),
    "customer_raised_ticket": ("(m:Memory)-[:ABOUT]->(:Customer)-[:RAISED]->(n:Ticket {uid: $u})", "n.id"),
    "mentions_entity": ("(m:Memory)-[:MENTIONS]->(n:Entity {uid: $u})", "n.value"),
    "customer_mentioned_entity": ("(m:Memory)-[:ABOUT]->(c:Customer)<-[:ABOUT]-(:Memory)"
                                  "-[:MENTIONS]->(n:Entity {uid: $u})", "c.id"),
}

# A ticket in one of these states no longer needs attention (``settled_memories``).
_SETTLED = ("resolved", "closed")


class GraphLinks(Connection):
    """Recall's graph reads on FalkorDB (``GraphSearch``). (a part of ``FalkorStore``)."""

    def resolve(self, agent_id: str, refs: NodeRefs) -> NodeRefs:
        """Keep only the referenced nodes that exist for this agent."""

        def existing(label: str, keys: Sequence[str]) -> tuple[str, ...]:
            if not keys:
                return ()
            rows = self.read(
                agent_id, f"MATCH (n:{label}) WHERE n.uid IN $u RETURN DISTINCT n.id",
                {"u": sorted({node_uid(agent_id, k) for k in keys})},
            )
            return tuple(sorted({r[0] for r in rows}))

        entities: tuple[tuple[str, str], ...] = ()
        if refs.entities:
            rows = self.read(
                agent_id, "MATCH (n:Entity) WHERE n.uid IN $u RETURN n.kind, n.key",
                {"u": sorted({node_uid(agent_id, f"{k}:{v}") for k, v in refs.entities})},
            )
            entities = tuple(sorted({(r[0], r[1]) for r in rows}))
        return NodeRefs(
            customers=existing("Customer", refs.customers),
            orders=existing("`Order`", refs.orders),
            tickets=existing("Ticket", refs.tickets),
            entities=entities,
        )

    def hop_memories(self, agent_id: str, hop: str, node_keys: Sequence[str]) -> list[tuple[str, str]]:
        """(memory id, label) of the memories the path ``hop`` leads to from each named node,
        node by node (by id: FalkorDB reads an id as cheaply as a key, so it needs no key map)."""
        pattern, label = _PATHS[hop]
        return [
            (r[0], r[1])
            for key in dict.fromkeys(node_keys)
            for r in self.read(agent_id, f"MATCH {pattern} RETURN DISTINCT m.id, {label}", {"u": node_uid(agent_id, key)})
        ]

    def associated_memories(
        self, agent_id: str, seed_ids: Sequence[str], *, max_depth: int, limit: int, now: datetime
    ) -> list[tuple[str, int]]:
        """Memories that share a customer, order or ticket with the seeds, hop by hop.

        Depth 1 shares a node with a seed; depth d shares one with a memory of depth d-1.
        Returns (id, depth) pairs, nearest first and newest first within a depth, at most
        ``limit``; the seeds themselves and expired memories are left out.
        """
        seen = set(seed_ids)
        frontier = list(dict.fromkeys(seed_ids))
        found: list[tuple[str, int]] = []
        for depth in range(1, max_depth + 1):
            if not frontier or len(found) >= limit:
                break
            # ABOUT leads only to customers and MENTIONS also to entities: those are left out.
            rows = self.read(
                agent_id,
                "MATCH (m:Memory)-[:ABOUT|MENTIONS]->(x)<-[:ABOUT|MENTIONS]-(o:Memory) "
                "WHERE m.id IN $ids AND NOT x:Entity AND NOT o.id IN $seen "
                f"AND {live_clause('o')} "
                "RETURN DISTINCT o.id AS id, o.created_at AS t "
                f"ORDER BY t DESC, id LIMIT {int(limit - len(found))}",
                {"ids": frontier, "seen": sorted(seen), "now": now},
            )
            frontier = [r[0] for r in rows]
            seen.update(frontier)
            found.extend((memory_id, depth) for memory_id in frontier)
        return found

    def settled_memories(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> its ticket, for those of ``memory_ids`` that mention a resolved or
        closed ticket and no other one (of several settled ones, the first by id).

        Read each time: a ticket's status changes in whichever process handles it."""
        ids = list(dict.fromkeys(memory_ids))
        if not ids:
            return {}
        rows = self.read(
            agent_id,
            "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE m.id IN $ids "
            "WITH m.id AS id, collect(t.id) AS tickets, collect(coalesce(t.status, '')) AS statuses "
            "WHERE all(s IN statuses WHERE s IN $settled) "
            "RETURN id, tickets",
            {"ids": ids, "settled": list(_SETTLED)},
        )
        return {memory_id: min(tickets) for memory_id, tickets in rows}
