"""FalkorTickets: tickets, their RELATED edges, exploration and aggregates on FalkorDB.

Implements ``TicketStore`` (app/storage/tickets.py) with the semantics of the embedded
``TicketGraph`` (storage/embedded/tickets.py) and its row mapping (../ticket_rows.py):
the same labels, properties and keys. What differs:

- Each agent has a graph of its own, so no statement checks ``agent_id``; the methods
  that span agents (``stale_tickets``) loop over ``FalkorStore.agents()``.
- ``save_refresh`` reads the refresh tokens and writes in one transaction under the
  agent's write lock: no other writer can change a token between that read and the
  commit, so the tokens read unchanged are exactly the ones the write clears.
- FalkorDB has no undirected ``shortestPath`` and no filter on the nodes a path passes:
  ``shortest_path`` is the search of ../walks.py, one statement a level.
- ``Ticket.embedding`` is a plain list (no vector index is built on tickets).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casegraph.domain.ticket_models import (
    TICKET_STATUSES,
    Count,
    GraphEdge,
    NodeRef,
    Relation,
    Ticket,
    TicketEvent,
)
from casegraph.storage import walks
from casegraph.storage.rows import LIVE, node_uid
from casegraph.storage.ticket_rows import (
    NODE_LABELS,
    NOISE_KINDS,
    SHARED_KEY_COLUMNS,
    SHARED_KEY_FILTERS,
    SHARED_KEY_PATTERNS,
    TICKET_COLUMNS,
    WALKABLE,
    graph_edge,
    grouped,
    node_from_row,
    node_match,
    node_ref,
    props_columns,
    quoted,
    relation_from_row,
    relation_row,
    ticket_from_row,
)
from casegraph.storage.tickets import StoredNode, TicketRefresh, TicketSource
from casegraph.times import utc

if TYPE_CHECKING:
    from casegraph.storage.falkor.store import FalkorStore

# A node as exploration reads it: its label, uid, id and the NODE_PROPS columns.
_NODE_COLUMNS = f"labels(b)[0], b.uid, b.id, {props_columns('b')}"
# Properties FalkorDB keeps beyond the embedded layout, hidden so both engines show a node
# alike (Memory.key is the memory's vector key here, not an entity key).
_NOT_SHOWN = {"Memory": ("key",)}
# The nodes a walk may reach: not a noise entity, unless one of a path's ends
# ($endpoints: their keys).
_WALKED = "(b.kind IS NULL OR NOT b.kind IN $noise OR b.uid IN $endpoints)"


class FalkorTickets:
    def __init__(self, store: FalkorStore) -> None:
        self.store = store

    def _read(self, agent_id: str, query: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        return self.store.read(agent_id, query, params)

    @staticmethod
    def _uids(agent_id: str, ids: Iterable[str]) -> list[str]:
        return [node_uid(agent_id, i) for i in ids]

    # -- tickets ----------------------------------------------------------------------
    def get_tickets(self, agent_id: str, ids: Sequence[str]) -> dict[str, Ticket]:
        if not ids:
            return {}
        rows = self._read(
            agent_id, f"MATCH (t:Ticket) WHERE t.uid IN $u RETURN {TICKET_COLUMNS}", {"u": self._uids(agent_id, ids)}
        )
        return {r[0]: ticket_from_row(r) for r in rows}

    def list_tickets(
        self, agent_id: str, *, status: str | None, customer_id: str | None, limit: int, offset: int
    ) -> list[Ticket]:
        params: dict[str, Any] = {}
        match = "MATCH (t:Ticket)"
        if customer_id is not None:
            match = "MATCH (:Customer {uid: $c})-[:RAISED]->(t:Ticket)"
            params["c"] = node_uid(agent_id, customer_id)
        where = ""
        if status is not None:
            where = " WHERE t.status = $s"
            params["s"] = status
        rows = self._read(
            agent_id,
            f"{match}{where} RETURN {TICKET_COLUMNS} "
            f"ORDER BY t.created_at DESC, t.id SKIP {int(offset)} LIMIT {int(limit)}",
            params,
        )
        return [ticket_from_row(r) for r in rows]

    def update_ticket(
        self, agent_id: str, ticket_id: str, *, fields: dict[str, Any], event: TicketEvent | None
    ) -> None:
        """Set ``fields`` (status, subject, channel, updated_at) and record ``event``."""
        uid = node_uid(agent_id, ticket_id)
        with self.store.transaction(agent_id) as tx:
            if fields:
                sets = ", ".join(f"t.{name} = ${name}" for name in fields)
                tx.write(f"MATCH (t:Ticket {{uid: $uid}}) SET {sets}", {"uid": uid, **fields})
            if event is not None:
                tx.write(
                    "MATCH (t:Ticket {uid: $uid}) CREATE (t)-[:HAS_EVENT]->(:TicketEvent {id: $id, "
                    "agent_id: $a, kind: $kind, status: $status, previous: $prev, note: $note, at: $at})",
                    {
                        "uid": uid, "id": event.id, "a": agent_id, "kind": event.kind,
                        "status": event.status, "prev": event.previous, "note": event.note, "at": event.at,
                    },
                )

    def ticket_orders(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        rows = self._read(
            agent_id,
            "MATCH (t:Ticket)-[:CONCERNS]->(o:`Order`) WHERE t.uid IN $u RETURN t.id, o.id ORDER BY o.id",
            {"u": self._uids(agent_id, ids)},
        )
        return grouped(rows)

    def ticket_customers(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        rows = self._read(
            agent_id,
            "MATCH (c:Customer)-[:RAISED]->(t:Ticket) WHERE t.uid IN $u RETURN t.id, c.id ORDER BY c.id",
            {"u": self._uids(agent_id, ids)},
        )
        return grouped(rows)

    def ticket_memory_ids(self, agent_id: str, ids: Sequence[str], now: datetime) -> dict[str, list[str]]:
        rows = self._read(
            agent_id,
            # WITH: from the tickets, not from a scan of every memory the liveness test
            # would start from (126 ms against 1 ms for 20 tickets at 20k memories).
            f"MATCH (t:Ticket) WHERE t.uid IN $u WITH t MATCH (m:Memory)-[:MENTIONS]->(t) WHERE {LIVE} "
            "RETURN t.id, m.id ORDER BY m.created_at, m.id",
            {"u": self._uids(agent_id, ids), "now": now},
        )
        return grouped(rows)

    def ticket_events(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
        rows = self._read(
            agent_id,
            "MATCH (t:Ticket)-[:HAS_EVENT]->(e:TicketEvent) WHERE t.uid IN $u "
            "RETURN t.id, e.id, e.kind, e.status, e.previous, e.note, e.at ORDER BY e.at, e.id",
            {"u": self._uids(agent_id, ids)},
        )
        out: dict[str, list[TicketEvent]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(TicketEvent(r[1], r[0], r[2], r[3], r[4], r[5], utc(r[6])))
        return out

    def tickets_of_memories(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, list[str]]:
        if not memory_ids:
            return {}
        rows = self._read(
            agent_id,
            "MATCH (m:Memory)-[:MENTIONS]->(x:Ticket) WHERE m.id IN $ids RETURN m.id, x.id",
            {"ids": list(memory_ids)},
        )
        return grouped(rows)

    # -- the relation refresh -----------------------------------------------------------
    def relations(self, agent_id: str, ids: Iterable[str], min_weight: float) -> dict[str, list[Relation]]:
        rows = self._read(
            agent_id,
            "MATCH (t:Ticket)-[r:RELATED]-(x:Ticket) WHERE t.uid IN $u AND r.weight >= $w "
            "RETURN t.id, x.id, r.weight, r.reasons, r.kinds, r.parts",
            {"u": self._uids(agent_id, ids), "w": float(min_weight)},
        )
        out: dict[str, list[Relation]] = {}
        for row in rows:
            out.setdefault(row[0], []).append(relation_from_row(*row))
        return out

    def stale_tickets(self, limit: int, agent_id: str | None = None) -> list[tuple[str, str, str]]:
        """(agent id, ticket id, refresh token), by agent then ticket, across agents (or of
        ``agent_id`` alone: one graph read instead of one per agent)."""
        out: list[tuple[str, str, str]] = []
        for agent in self.store.agents() if agent_id is None else [agent_id]:
            if len(out) >= limit:
                break
            rows = self._read(
                agent,
                "MATCH (t:Ticket) WHERE t.refresh_token IS NOT NULL "
                f"RETURN t.id, t.refresh_token ORDER BY t.id LIMIT {int(limit) - len(out)}",
            )
            out.extend((agent, r[0], r[1]) for r in rows)
        return out

    def ticket_sources(self, agent_id: str, ids: Sequence[str]) -> list[TicketSource]:
        rows = self._read(
            agent_id,
            "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE t.uid IN $u "
            "RETURN t.id, m.id, m.content, m.metadata, m.created_at, m.embedding ORDER BY t.id, m.created_at, m.id",
            {"u": self._uids(agent_id, ids)},
        )
        return [TicketSource(r[0], r[1], r[2], r[3], utc(r[4]), list(r[5] or ())) for r in rows]

    def mentioned_together(self, agent_id: str, ids: Sequence[str]) -> list[tuple[str, str]]:
        rows = self._read(
            agent_id,
            "MATCH (t:Ticket)<-[:MENTIONS]-(:Memory)-[:MENTIONS]->(x:Ticket) "
            "WHERE t.uid IN $u AND x.uid <> t.uid RETURN DISTINCT t.id, x.id",
            {"u": self._uids(agent_id, ids)},
        )
        return [(r[0], r[1]) for r in rows]

    def shared_keys(
        self, agent_id: str, ids: Sequence[str], kind: str, hub_limit: int, entity_kinds: Sequence[str] = ()
    ) -> list[tuple[str, str, str, str, str]]:
        """(ticket, other ticket, kind, key, value) for every order / customer / entity (of
        ``entity_kinds``) two tickets share, skipping keys shared by more than ``hub_limit``
        tickets (a product in every other ticket relates nothing)."""
        link = SHARED_KEY_PATTERNS[kind]
        params = {"u": self._uids(agent_id, ids), "kinds": list(entity_kinds)}
        counts = self._read(
            agent_id,
            f"MATCH {link.format(t='t')} WHERE t.uid IN $u {SHARED_KEY_FILTERS[kind]} WITH DISTINCT k "
            f"MATCH {link.format(t='x')} RETURN k.uid, count(DISTINCT x)",
            params,
        )
        keep = [uid for uid, n in counts if n <= hub_limit]
        if not keep:
            return []
        rows = self._read(
            agent_id,
            f"MATCH {link.format(t='t')}, {link.format(t='x')} WHERE t.uid IN $u AND k.uid IN $keep "
            f"AND x.uid <> t.uid RETURN DISTINCT t.id, x.id, {SHARED_KEY_COLUMNS[kind]}",
            {"u": params["u"], "keep": keep},
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def similar_neighbours(self, agent_id: str, ids: Sequence[str]) -> list[tuple[str, str]]:
        rows = self._read(
            agent_id,
            "MATCH (t:Ticket)-[r:RELATED]-(x:Ticket) WHERE t.uid IN $u AND 'similar' IN r.kinds RETURN t.id, x.id",
            {"u": self._uids(agent_id, ids)},
        )
        return [(r[0], r[1]) for r in rows]

    def ticket_vectors(self, agent_id: str, ids: Sequence[str]) -> dict[str, tuple[list[float] | None, float | None]]:
        if not ids:
            return {}
        rows = self._read(
            agent_id,
            "MATCH (x:Ticket) WHERE x.uid IN $u RETURN x.id, x.embedding, x.similar_floor",
            {"u": self._uids(agent_id, ids)},
        )
        return {r[0]: (list(r[1]) if r[1] else None, r[2]) for r in rows}

    def save_refresh(
        self, agent_id: str, refreshed: Sequence[TicketRefresh], relations: Sequence[Relation], now: datetime
    ) -> int:
        """Replace the refreshed tickets' RELATED edges; return how many tokens were cleared.

        A token changed since the refresh read it means a newer memory touched the ticket:
        its token stays, and the next refresh recomputes it with that memory included.
        """
        uids = self._uids(agent_id, dict.fromkeys(r.ticket_id for r in refreshed))
        wanted = {(row["f"], row["t"]): row for row in (relation_row(agent_id, rel) for rel in relations)}
        tokens = [{"uid": node_uid(agent_id, r.ticket_id), "tok": r.token} for r in refreshed]
        with self.store.transaction(agent_id) as tx:
            # Read under the agent's lock, so these tokens are still the stored ones when
            # the write below commits (tx reads committed state; nobody else writes now).
            unchanged = tx(
                "UNWIND $rows AS r MATCH (t:Ticket {uid: r.uid}) WHERE t.refresh_token = r.tok RETURN count(t)",
                {"rows": tokens},
            )
            tx.write("MATCH (t:Ticket)-[r:RELATED]-(:Ticket) WHERE t.uid IN $u DELETE r", {"u": uids})
            tx.unwind(
                "MATCH (a:Ticket {uid: r.f}), (b:Ticket {uid: r.t}) CREATE (a)-[:RELATED {weight: r.w, "
                "reasons: r.reasons, kinds: r.kinds, parts: r.parts, updated_at: $now}]->(b)",
                list(wanted.values()),
                {"now": now},
            )
            tx.unwind(
                "MATCH (t:Ticket {uid: r.uid}) "
                "SET t.created_at = CASE WHEN r.first IS NOT NULL AND (t.created_at IS NULL OR r.first < t.created_at) "
                "THEN r.first ELSE t.created_at END, "
                "t.updated_at = CASE WHEN r.last IS NOT NULL AND (t.updated_at IS NULL OR r.last > t.updated_at) "
                "THEN r.last ELSE t.updated_at END, t.embedding = r.emb, t.similar_floor = r.floor",
                [
                    {
                        "uid": node_uid(agent_id, r.ticket_id), "first": r.first_at, "last": r.last_at,
                        "floor": r.similar_floor,
                        "emb": [float(x) for x in r.embedding] if r.embedding else None,
                    }
                    for r in refreshed
                ],
            )
            tx.unwind("MATCH (t:Ticket {uid: r.uid}) WHERE t.refresh_token = r.tok SET t.refresh_token = NULL", tokens)
        return int(unchanged[0][0]) if unchanged else 0

    # -- exploration ----------------------------------------------------------------------
    def find_node(self, agent_id: str, ref: NodeRef) -> StoredNode | None:
        label, prop, value = node_match(agent_id, ref)
        rows = self._read(agent_id, f"MATCH (b:{quoted(label)} {{{prop}: $v}}) RETURN {_NODE_COLUMNS} LIMIT 1", {"v": value})
        return _node(rows[0]) if rows else None

    def shortest_path(
        self, agent_id: str, source: NodeRef, target: NodeRef, max_hops: int
    ) -> tuple[list[StoredNode], list[GraphEdge]] | None:
        """The shortest connection (fewest hops) between two nodes, or None (walks.py,
        over FalkorDB's node ids: a level is one statement of pairs of integers)."""
        ends = [self._node_id(agent_id, ref) for ref in (source, target)]
        if None in ends:
            return None
        walk = walks.shortest_walk(lambda ids: self._steps(agent_id, ids, ends), ends[0], ends[1], max_hops)
        if walk is None:
            return None
        rows = self._read(agent_id, f"UNWIND $ids AS i MATCH (b) WHERE id(b) = i RETURN i, {_NODE_COLUMNS}", {"ids": walk})
        by_id = {r[0]: _node(r[1:]) for r in rows}
        refs = [by_id[i].ref for i in walk]
        found = self._edges_at(agent_id, refs, [refs[0], refs[-1]])
        return walks.path_along(refs, found, [by_id[walk[0]], by_id[walk[-1]]])

    def _node_id(self, agent_id: str, ref: NodeRef) -> int | None:
        label, prop, value = node_match(agent_id, ref)
        rows = self._read(agent_id, f"MATCH (b:{quoted(label)} {{{prop}: $v}}) RETURN id(b) LIMIT 1", {"v": value})
        return rows[0][0] if rows else None

    def _steps(self, agent_id: str, ids: list[int], ends: list[int]) -> list[tuple[int, int]]:
        """(node, neighbour) over every walkable edge at the nodes ``ids``."""
        rows = self._read(
            agent_id,
            # The WITH keeps the plan starting from the seek by id: without it FalkorDB
            # starts from the filter on b (40 s instead of 10 ms for 171 nodes at 5k memories).
            f"UNWIND $ids AS i MATCH (a) WHERE id(a) = i WITH a, i MATCH (a)-[:{WALKABLE}]-(b) "
            "WHERE b.kind IS NULL OR NOT b.kind IN $noise OR id(b) IN $ends RETURN DISTINCT i, id(b)",
            {"ids": ids, "ends": ends, "noise": NOISE_KINDS},
        )
        return [(r[0], r[1]) for r in rows]

    def neighbours(self, agent_id: str, refs: Iterable[NodeRef]) -> list[tuple[GraphEdge, StoredNode]]:
        """Every walkable edge at ``refs`` with the node at its other end (one query)."""
        return self._edges_at(agent_id, refs, ())

    def _edges_at(
        self, agent_id: str, refs: Iterable[NodeRef], ends: Sequence[NodeRef]
    ) -> list[tuple[GraphEdge, StoredNode]]:
        """``neighbours``, also to the nodes ``ends`` when they are noise entities."""
        groups: dict[str, list[str]] = {}
        for ref in refs:
            label, _, value = node_match(agent_id, ref)
            groups.setdefault(label, []).append(value)
        if not groups:
            return []
        # One branch a label, each matching its nodes by key (a label cannot be a parameter).
        branches = [
            f"MATCH (a:{quoted(label)}) WHERE a.{NODE_LABELS[label][1]} IN $in_{label.lower()} "
            f"MATCH (a)-[r:{WALKABLE}]-(b) WHERE {_WALKED} "
            "RETURN labels(a)[0], a.uid, a.id, type(r), r.weight, r.reasons, id(startNode(r)) = id(a), "
            f"{_NODE_COLUMNS}"
            for label in groups
        ]
        params: dict[str, Any] = {f"in_{label.lower()}": values for label, values in groups.items()}
        params["endpoints"] = [node_match(agent_id, ref)[2] for ref in ends]
        rows = self._read(agent_id, " UNION ALL ".join(branches), {**params, "noise": NOISE_KINDS})
        out = []
        for r in rows:
            here = node_ref(r[0], r[1], r[2])
            other = _node(r[7:])
            src, dst = (here, other.ref) if r[6] else (other.ref, here)
            out.append((graph_edge(src, dst, r[3], r[4], r[5]), other))
        return out

    # -- aggregates ---------------------------------------------------------------------
    def status_counts(self, agent_id: str) -> list[Count]:
        rows = self._read(agent_id, "MATCH (t:Ticket) RETURN t.status, count(t)")
        found = {r[0]: int(r[1]) for r in rows}
        return [Count(s, s, found.get(s, 0)) for s in TICKET_STATUSES]

    def top_entities(self, agent_id: str, kind: str | None, limit: int) -> list[Count]:
        if kind is None:
            where, params = "NOT e.kind IN $noise", {"noise": NOISE_KINDS}
        else:
            where, params = "e.kind = $k", {"k": kind}
        rows = self._read(
            agent_id,
            f"MATCH (t:Ticket)<-[:MENTIONS]-(:Memory)-[:MENTIONS]->(e:Entity) WHERE {where} "
            "WITH e, count(DISTINCT t) AS n "
            f"RETURN e.kind, e.key, e.value, n ORDER BY n DESC, e.kind, e.key LIMIT {int(limit)}",
            params,
        )
        return [Count(key=f"{r[0]}:{r[1]}", label=r[2], count=int(r[3]), kind=r[0]) for r in rows]

    def repeat_customers(self, agent_id: str, min_tickets: int, limit: int) -> list[Count]:
        rows = self._read(
            agent_id,
            "MATCH (c:Customer)-[:RAISED]->(t:Ticket) WITH c, count(DISTINCT t) AS n WHERE n >= $min "
            f"RETURN c.id, coalesce(c.name, c.id), n ORDER BY n DESC, c.id LIMIT {int(limit)}",
            {"min": int(min_tickets)},
        )
        return [Count(key=r[0], label=r[1], count=int(r[2]), kind="customer") for r in rows]


def _node(r: Sequence[Any]) -> StoredNode:
    """A node read with ``_NODE_COLUMNS``."""
    node = node_from_row(r)
    for prop in _NOT_SHOWN.get(node.table, ()):
        node.properties[prop] = None
    return node

