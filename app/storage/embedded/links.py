"""Graph search: the memories linked to what a recall query names, and their neighbours.

Implements ``GraphSearch`` (app/storage/search.py): which named nodes exist, the memories
each path (``LINK_PATHS``) leads to from them, the memories that share a
customer, order or ticket with others, and which memories only mention settled tickets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casegraph.storage.embedded.connection import Connection, Transaction
from casegraph.storage.rows import (
    live_clause,
    node_uid,
)
from casegraph.storage.search import KeyIds, NodeRefs, vector_key

# The Cypher of each path from a memory ``m`` to a node ``n`` a query names (``LINK_PATHS``;
# app/domain/links.py weighs them): what follows MATCH, and the label it returns. ``e``
# is the edge that leaves the memory: hops return its key (005_edge_keys) and no memory
# property, since Kùzu reads a node's first property at ~10-18 µs a row; the ranking
# attributes come from the attribute cache.
_PATHS: dict[str, tuple[str, str]] = {
    "about_customer": ("(m:Memory)-[e:ABOUT]->(n:Customer)", "n.id"),
    "mentions_order": ("(m:Memory)-[e:MENTIONS]->(n:`Order`)", "n.id"),
    "ticket_about_order": ("(m:Memory)-[e:MENTIONS]->(t:Ticket)-[:CONCERNS]->(n:`Order`)",
                           "t.id + ' about order #' + n.id"),
    "customer_placed_order": ("(m:Memory)-[e:ABOUT]->(:Customer)-[:PLACED]->(n:`Order`)", "n.id"),
    "mentions_ticket": ("(m:Memory)-[e:MENTIONS]->(n:Ticket)", "n.id"),
    "order_of_ticket": ("(m:Memory)-[e:MENTIONS]->(o:`Order`)<-[:CONCERNS]-(n:Ticket)",
                        "'order #' + o.id + ' of ticket ' + n.id"),
    # The two longest walk from the named node and then to its memories (WITH): Kùzu 0.11
    # planned them from the memories' side, at 100k 10.9-11.1 against 7.5-7.8 ms a ticket,
    # and 22-28 against 20-26 ms an entity (the others measured the same either way).
    "ticket_on_same_order": ("(n:Ticket)-[:CONCERNS]->(o:`Order`)<-[:CONCERNS]-(t2:Ticket) WHERE t2.uid <> n.uid "
                             "WITH o, t2 MATCH (m:Memory)-[e:MENTIONS]->(t2)",
                             "t2.id + ' (same order #' + o.id + ')'"),
    "customer_raised_ticket": ("(m:Memory)-[e:ABOUT]->(:Customer)-[:RAISED]->(n:Ticket)", "n.id"),
    "mentions_entity": ("(m:Memory)-[e:MENTIONS]->(n:Entity)", "n.value"),
    "customer_mentioned_entity": ("(n:Entity)<-[:MENTIONS]-(:Memory)-[:ABOUT]->(c:Customer) WITH DISTINCT c "
                                  "MATCH (m:Memory)-[e:ABOUT]->(c)", "c.id"),
}


_NAMED_NODE = re.compile(r"\(n:([^)\s]+)\)")
# Past this many customers, one statement reads them all with an IN list (``resolve``,
# ``hop_memories``): the Customer table is small, and a name can match dozens.
_FEW_CUSTOMERS = 4


class GraphLinks(Connection):
    """Recall's graph reads (a part of ``GraphStore``)."""

    key_ids: KeyIds | None  # graph.py
    _ticket_generation: int
    _settled: dict[str, tuple[int, dict[int, str]]]

    def _count_ticket_writes(self, tx: Transaction, committed: bool, reported: bool) -> None:
        """After a commit that touched tickets: what settled_memories read is stale."""
        if committed and tx.touches_tickets:
            self._ticket_generation += 1

    # -- reads: graph ---------------------------------------------------------------
    def resolve(self, agent_id: str, refs: NodeRefs) -> NodeRefs:
        """Keep only the referenced nodes that exist for this agent."""

        # One prepared primary-key lookup per key: an IN list scans the whole node table.
        # Customers are the exception: a query yields a dozen candidate names (word
        # n-grams) and the Customer table is small, so one scan is cheaper.
        def lookup(label: str, uids: Sequence[str], columns: str) -> list[list[Any]]:
            if label == "Customer" and len(uids) > _FEW_CUSTOMERS:
                return self.read(f"MATCH (n:Customer) WHERE n.uid IN $u RETURN {columns}", {"u": list(uids)})
            query = f"MATCH (n:{label} {{uid: $uid}}) RETURN {columns}"
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

    def hop_memories(self, agent_id: str, hop: str, node_keys: Sequence[str]) -> list[tuple[str, str]]:
        """(memory id, label) of the memories the path ``hop`` leads to from each named
        node, node by node.

        One named node at a time, by its primary key: an IN list would scan the whole
        Order/Ticket/Entity table (Kùzu 0.11), and queries name one or two. Customers are
        the exception: a name can match dozens (25 on average in the perf corpus at 100k),
        and their table is small, so past ``_FEW_CUSTOMERS`` one IN list reads them all
        (7 customers 3.4 against 8.3 ms, 25 customers 6.4 against 24.3 ms). With the key map
        (``key_ids``, the vector store's, wired at opening), the hop reads the memory's key
        off the edge that leaves it (005_edge_keys), ~15x cheaper a row than the memory's
        id; a hop with a key the map lacks (a memory whose vector is not stored yet) reads
        the ids instead.
        """
        path, label = _PATHS[hop]
        uids = [node_uid(agent_id, k) for k in dict.fromkeys(node_keys)]
        if hop == "about_customer" and len(uids) > _FEW_CUSTOMERS:
            rows = self._hop_rows(f"MATCH {path} WHERE n.uid IN $u", f"{label}, n.uid", {"u": uids}, agent_id)
            order = {uid: i for i, uid in enumerate(uids)}
            rows.sort(key=lambda r: order[r[2]])  # stable: node by node, as asked
            return [(r[0], r[1]) for r in rows]
        # The named node by its key in the pattern, not ``WHERE n.uid = $u``: 0.60 against
        # 0.80 ms for a customer's 27 memories at 100k.
        match = "MATCH " + _NAMED_NODE.sub(r"(n:\1 {uid: $u})", path, count=1)
        return [(r[0], r[1]) for uid in uids for r in self._hop_rows(match, label, {"u": uid}, agent_id)]

    def _hop_rows(self, match: str, columns: str, params: dict[str, Any], agent_id: str) -> list[list[Any]]:
        """(memory id, *columns) of ``match``'s memories, by their edge keys when the key
        map knows them all, else by their ids."""
        ids_of = self.key_ids
        if ids_of is not None:
            rows = self.read(f"{match} RETURN DISTINCT e.k, {columns}", params)
            ids = ids_of(agent_id, [r[0] for r in rows if r[0] is not None])
            if all(r[0] in ids for r in rows):
                return [[ids[r[0]], *r[1:]] for r in rows]
        return self.read(f"{match} RETURN DISTINCT m.id, {columns}", params)

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
                f"AND {live_clause('o')} "
                "RETURN DISTINCT o.id AS id, o.created_at AS t "
                f"ORDER BY t DESC, id LIMIT {int(limit - len(found))}",
                {"ids": frontier, "a": agent_id, "seen": sorted(seen), "now": now},
            )
            # Fewer rows than asked for means this depth is complete: it is the next frontier.
            frontier = [r[0] for r in rows]
            seen.update(frontier)
            found.extend((memory_id, depth) for memory_id in frontier)
        return found

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
