"""TicketGraph: the Cypher for tickets, their RELATED edges, exploration and aggregates.

Implements ``TicketStore`` (app/storage/tickets.py). Its statements run through the
graph's ``Connection`` (connection.py: one writer, per-thread readers, errors
translated). Every query is parameterised and scoped to one
agent: ticket, customer, order and entity keys carry the agent id, and untyped
traversals check ``agent_id`` on every node they pass.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

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
from casegraph.storage.embedded.connection import Connection
from casegraph.storage.rows import LIVE, node_uid
from casegraph.storage.ticket_rows import (
    NODE_LABELS,
    NODE_PROPS,
    NOISE_KINDS,
    SHARED_KEY_COLUMNS,
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
    stored_node,
    ticket_from_row,
)
from casegraph.storage.tickets import StoredNode, TicketRefresh, TicketSource
from casegraph.times import utc


def _keyed(pattern: str, var: str) -> str:
    """``pattern`` with its node ``var`` found by ``uid`` = ``$key`` (for ``by_keys``)."""
    return re.sub(rf"\(({var}:[^)]+)\)", r"(\1 {uid: $key})", pattern, count=1)


def mark_tickets_stale(run: Callable[..., Any], match: str, params: dict[str, Any]) -> None:
    """Give the matched tickets (variable ``t``) a new refresh token."""
    run(f"{match} WITH DISTINCT t SET t.refresh_token = $token", {**params, "token": uuid.uuid4().hex})


class TicketGraph:
    def __init__(self, store: Connection) -> None:
        self.store = store

    def _uids(self, agent_id: str, ids: Iterable[str]) -> list[str]:
        return [node_uid(agent_id, i) for i in ids]

    # -- tickets ----------------------------------------------------------------------
    def get_tickets(self, agent_id: str, ids: Sequence[str]) -> dict[str, Ticket]:
        if not ids:
            return {}
        rows = self.store.read(
            f"MATCH (t:Ticket) WHERE t.uid IN $u RETURN {TICKET_COLUMNS}",
            {"u": self._uids(agent_id, ids)},
        )
        return {r[0]: ticket_from_row(r) for r in rows}

    def list_tickets(
        self, agent_id: str, *, status: str | None, customer_id: str | None, limit: int, offset: int
    ) -> list[Ticket]:
        params: dict[str, Any] = {"a": agent_id}
        match = "MATCH (t:Ticket)"
        if customer_id is not None:
            match = "MATCH (:Customer {uid: $c})-[:RAISED]->(t:Ticket)"
            params["c"] = node_uid(agent_id, customer_id)
        where = "t.agent_id = $a"
        if status is not None:
            where += " AND t.status = $s"
            params["s"] = status
        rows = self.store.read(
            f"{match} WHERE {where} RETURN {TICKET_COLUMNS} "
            # LIMIT offset+limit, then skip in Python (docs/kuzu-quirks.md #3).
            f"ORDER BY t.created_at DESC, t.id LIMIT {int(offset) + int(limit)}",
            params,
        )
        return [ticket_from_row(r) for r in rows[int(offset):]]

    def update_ticket(
        self,
        agent_id: str,
        ticket_id: str,
        *,
        fields: dict[str, Any],
        event: TicketEvent | None,
    ) -> None:
        """Set ``fields`` (status, subject, channel, updated_at) and record ``event``."""
        uid = node_uid(agent_id, ticket_id)
        sets = ", ".join(f"t.{name} = ${name}" for name in fields)
        with self.store.transaction(reports_attrs=True) as run:
            run(f"MATCH (t:Ticket {{uid: $uid}}) SET {sets}", {"uid": uid, **fields})
            if event is not None:
                run(
                    "MATCH (t:Ticket {uid: $uid}) CREATE (t)-[:HAS_EVENT]->(:TicketEvent {id: $id, "
                    "agent_id: $a, kind: $kind, status: $status, previous: $prev, note: $note, at: $at})",
                    {
                        "uid": uid, "id": event.id, "a": agent_id, "kind": event.kind,
                        "status": event.status, "prev": event.previous, "note": event.note, "at": event.at,
                    },
                )

    def ticket_orders(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        rows = self.store.read(
            "MATCH (t:Ticket)-[:CONCERNS]->(o:`Order`) WHERE t.uid IN $u RETURN t.id, o.id ORDER BY o.id",
            {"u": self._uids(agent_id, ids)},
        )
        return grouped(rows)

    def ticket_customers(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
        rows = self.store.read(
            "MATCH (c:Customer)-[:RAISED]->(t:Ticket) WHERE t.uid IN $u RETURN t.id, c.id ORDER BY c.id",
            {"u": self._uids(agent_id, ids)},
        )
        return grouped(rows)

    def ticket_memory_ids(self, agent_id: str, ids: Sequence[str], now: datetime) -> dict[str, list[str]]:
        rows = self.store.read(
            "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE t.uid IN $u "
            f"AND {LIVE} "
            "RETURN t.id, m.id ORDER BY m.created_at, m.id",
            {"u": self._uids(agent_id, ids), "now": now},
        )
        return grouped(rows)

    def ticket_events(self, agent_id: str, ids: Sequence[str]) -> dict[str, list[TicketEvent]]:
        rows = self.store.read(
            "MATCH (t:Ticket)-[:HAS_EVENT]->(e:TicketEvent) WHERE t.uid IN $u "
            "RETURN t.id, e.id, e.kind, e.status, e.previous, e.note, e.at ORDER BY e.at, e.id",
            {"u": self._uids(agent_id, ids)},
        )
        out: dict[str, list[TicketEvent]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(TicketEvent(r[1], r[0], r[2], r[3], r[4], r[5], utc(r[6])))
        return out

    # -- RELATED edges ------------------------------------------------------------------
    def relations(self, agent_id: str, ids: Iterable[str], min_weight: float) -> dict[str, list[Relation]]:
        """The RELATED edges of each ticket (either direction) at least ``min_weight`` strong."""
        ids = list(ids)
        rows = self.store.read(
            "MATCH (t:Ticket)-[r:RELATED]-(x:Ticket) WHERE t.uid IN $u AND r.weight >= $w "
            "AND x.agent_id = $a RETURN t.id, x.id, r.weight, r.reasons, r.kinds, r.parts",
            {"u": self._uids(agent_id, ids), "w": float(min_weight), "a": agent_id},
        )
        out: dict[str, list[Relation]] = {}
        for row in rows:
            out.setdefault(row[0], []).append(relation_from_row(*row))
        return out

    def stale_tickets(self, limit: int, agent_id: str | None = None) -> list[tuple[str, str, str]]:
        """(agent id, ticket id, refresh token) of tickets whose relations need recomputing
        (``agent_id``'s only, when given)."""
        one = "AND t.agent_id = $a " if agent_id is not None else ""
        rows = self.store.read(
            f"MATCH (t:Ticket) WHERE t.refresh_token IS NOT NULL {one}"
            f"RETURN t.agent_id, t.id, t.refresh_token ORDER BY t.agent_id, t.id LIMIT {int(limit)}",
            {"a": agent_id} if agent_id is not None else None,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def ticket_sources(self, agent_id: str, ids: Sequence[str]) -> list[TicketSource]:
        rows = self.store.by_keys(
            "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket {uid: $key}) "
            "RETURN t.id, m.id, m.content, m.metadata, m.created_at, m.embedding ORDER BY m.created_at, m.id",
            self._uids(agent_id, ids), measured=True,
        )
        return [TicketSource(r[0], r[1], r[2], r[3], utc(r[4]), r[5]) for r in rows]

    def mentioned_together(self, agent_id: str, ids: Sequence[str]) -> list[tuple[str, str]]:
        # The ticket's key in the pattern: ``t.uid IN $u`` scans the Ticket table (#17).
        rows = self.store.by_keys(
            "MATCH (t:Ticket {uid: $key})<-[:MENTIONS]-(:Memory)-[:MENTIONS]->(x:Ticket) "
            "WHERE x.uid <> t.uid RETURN DISTINCT t.id, x.id",
            self._uids(agent_id, ids), measured=True,
        )
        return list(dict.fromkeys((r[0], r[1]) for r in rows))

    def shared_keys(
        self, agent_id: str, ids: Sequence[str], kind: str, hub_limit: int, entity_kinds: Sequence[str] = ()
    ) -> list[tuple[str, str, str, str, str]]:
        """(ticket, other ticket, kind, key, value) for every order / customer / entity (of
        ``entity_kinds``) two tickets share, skipping keys shared by more than ``hub_limit``
        tickets (a product in every other ticket relates nothing).

        Two rounds of statements with a node's key in the pattern (docs/kuzu-quirks.md
        #17): the keys of each ticket, then the tickets of each key. As one statement over
        ``t.uid IN $u`` and ``k.uid IN $keep`` it scanned the graph: 138-426 ms a refresh
        at 100k memories, however few the tickets."""
        link = SHARED_KEY_PATTERNS[kind]
        mine = self.store.by_keys(
            f"MATCH {_keyed(link.format(t='t'), 't')} RETURN DISTINCT t.id, k.uid, {SHARED_KEY_COLUMNS[kind]}",
            self._uids(agent_id, ids), measured=True,
        )
        if kind == "entity":
            # Filtered here: ``k.kind IN $kinds`` in the statement makes Kùzu start from
            # the Entity table (9 ms a ticket at 100k memories, against 3.6 ms).
            mine = [r for r in mine if r[2] in entity_kinds]
        # The tickets of each key (more than hub_limit: a hub).
        theirs = grouped(self.store.by_keys(
            f"MATCH {_keyed(link.format(t='x'), 'k')} RETURN DISTINCT k.uid, x.id",
            dict.fromkeys(r[1] for r in mine), measured=True,
        ))
        out: dict[tuple[str, str, str, str, str], None] = {}
        for t, uid, k, key, value in mine:
            others = theirs.get(uid, ())
            if len(others) <= hub_limit:
                out.update(((t, x, k, key, value), None) for x in others if x != t)
        return list(out)

    def tickets_of_memories(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, list[str]]:
        """The tickets each memory mentions."""
        if not memory_ids:
            return {}
        # Not ``m.id IN $ids``: Kùzu tests an IN list against every row, and this list
        # holds thousands of ids (1.5 s against 20 ms as an UNWIND join at 90k memories).
        rows = self.store.by_keys(
            "MATCH (m:Memory {id: $key})-[:MENTIONS]->(x:Ticket) WHERE m.agent_id = $a RETURN m.id, x.id",
            memory_ids,
            {"a": agent_id}, measured=True,
        )
        return grouped(rows)

    def similar_neighbours(self, agent_id: str, ids: Sequence[str]) -> list[tuple[str, str]]:
        """(ticket, other) pairs already RELATED by similar wording."""
        rows = self.store.by_keys(
            "MATCH (t:Ticket {uid: $key})-[r:RELATED]-(x:Ticket) WHERE list_contains(r.kinds, 'similar') "
            "RETURN t.id, x.id",
            self._uids(agent_id, ids), measured=True,
        )
        return [(r[0], r[1]) for r in rows]

    def ticket_vectors(self, agent_id: str, ids: Sequence[str]) -> dict[str, tuple[list[float] | None, float | None]]:
        """Stored (embedding, similar_floor) of tickets."""
        if not ids:
            return {}
        rows = self.store.by_keys(
            "MATCH (x:Ticket {uid: $key}) RETURN x.id, x.embedding, x.similar_floor", self._uids(agent_id, ids), measured=True,
        )
        return {r[0]: (r[1] or None, r[2]) for r in rows}

    def save_refresh(
        self, agent_id: str, refreshed: Sequence[TicketRefresh], relations: Sequence[Relation], now: datetime
    ) -> int:
        """Replace the refreshed tickets' RELATED edges; return how many tokens were cleared.

        All of a refreshed ticket's edges are deleted and the wanted ones created: updating
        only the changed edges along their path in one transaction fills Kùzu's buffer pool
        (docs/kuzu-quirks.md #9). A token changed since it was read means a newer memory
        touched the ticket: its token stays, and the next refresh recomputes it with that
        memory included. Taken again after a checkpoint if it fills the buffer pool.
        """
        return self.store.once_more_when_full(lambda: self._save_refresh(agent_id, refreshed, relations, now))

    def _save_refresh(
        self, agent_id: str, refreshed: Sequence[TicketRefresh], relations: Sequence[Relation], now: datetime
    ) -> int:
        uids = self._uids(agent_id, dict.fromkeys(r.ticket_id for r in refreshed))
        wanted = {(row["f"], row["t"]): row for row in (relation_row(agent_id, rel) for rel in relations)}
        with_emb = [r for r in refreshed if r.embedding]
        with self.store.transaction(reports_attrs=True) as run:
            run("MATCH (t:Ticket)-[r:RELATED]->(:Ticket) WHERE t.uid IN $u DELETE r", {"u": uids})
            run("MATCH (:Ticket)-[r:RELATED]->(t:Ticket) WHERE t.uid IN $u DELETE r", {"u": uids})
            run.edges(
                ("Ticket", "uid"),
                ("Ticket", "uid"),
                "CREATE (a)-[:RELATED {{weight: {r}.w, reasons: CAST({r}.reasons AS STRING[]), "
                "kinds: CAST({r}.kinds AS STRING[]), parts: CAST({r}.parts AS DOUBLE[]), updated_at: $now}}]->(b)",
                list(wanted.values()),
                {"now": now},
            )
            # The CASTs type fields that are NULL in every row (a ticket with no memories left).
            run(
                "UNWIND $rows AS r MATCH (t:Ticket {uid: r.uid}) "
                "WITH t, CAST(r.first AS TIMESTAMP) AS first, CAST(r.last AS TIMESTAMP) AS last, "
                "CAST(r.floor AS DOUBLE) AS floor "
                "SET t.created_at = CASE WHEN first IS NOT NULL AND (t.created_at IS NULL OR first < t.created_at) "
                "THEN first ELSE t.created_at END, "
                "t.updated_at = CASE WHEN last IS NOT NULL AND (t.updated_at IS NULL OR last > t.updated_at) "
                "THEN last ELSE t.updated_at END, t.embedding = NULL, t.similar_floor = floor",
                {"rows": [
                    {"uid": node_uid(agent_id, r.ticket_id), "first": r.first_at, "last": r.last_at,
                     "floor": r.similar_floor}
                    for r in refreshed
                ]},
            )
            # Subject and channel are written when a ticket is created (MemoryWrites.write_memories)
            # and never here: see NO_TEXT.
            if with_emb:
                # Embeddings travel as a parallel list (see MemoryWrites.write_memories).
                run(
                    "UNWIND $rows AS r MATCH (t:Ticket {uid: r.uid}) SET t.embedding = $embs[r.i]",
                    {
                        "rows": [{"uid": node_uid(agent_id, r.ticket_id), "i": i + 1} for i, r in enumerate(with_emb)],
                        "embs": [list(map(float, r.embedding)) for r in with_emb],
                    },
                )
            cleared = run(
                "UNWIND $rows AS r MATCH (t:Ticket {uid: r.uid}) WHERE t.refresh_token = r.tok "
                "SET t.refresh_token = NULL RETURN count(t)",
                {"rows": [{"uid": node_uid(agent_id, r.ticket_id), "tok": r.token} for r in refreshed]},
            )
        return int(cleared[0][0]) if cleared else 0

    # -- exploration ----------------------------------------------------------------------
    def find_node(self, agent_id: str, ref: NodeRef) -> StoredNode | None:
        label, prop, value = node_match(agent_id, ref)
        rows = self.store.read(
            f"MATCH (b:{quoted(label)} {{{prop}: $v}}) WHERE b.agent_id = $a RETURN b",
            {"v": value, "a": agent_id},
        )
        return _node_from_dict(rows[0][0]) if rows else None

    def shortest_path(
        self, agent_id: str, source: NodeRef, target: NodeRef, max_hops: int
    ) -> tuple[list[StoredNode], list[GraphEdge]] | None:
        """The shortest connection (fewest hops) between two nodes, or None (walks.py:
        Kùzu's own SHORTEST does not keep to a filter on the nodes it passes)."""
        first, last = self.find_node(agent_id, source), self.find_node(agent_id, target)
        if first is None or last is None:
            return None
        ends = [first.ref, last.ref]
        walk = walks.shortest_walk(lambda refs: self._steps(agent_id, refs, ends), first.ref, last.ref, max_hops)
        if walk is None:
            return None
        return walks.path_along(walk, self._edges_at(agent_id, walk, ends), [first, last])

    def _steps(self, agent_id: str, refs: list[NodeRef], ends: list[NodeRef]) -> list[tuple[NodeRef, NodeRef]]:
        """(node, neighbour) over every walkable edge at ``refs``: per label, each node by
        its key (``by_keys``: point statements for a few, one join for many)."""
        groups: dict[str, list[str]] = {}
        for ref in refs:
            label, _, value = node_match(agent_id, ref)
            groups.setdefault(label, []).append(value)
        params = {"ag": agent_id, "noise": NOISE_KINDS, "endpoints": [node_match(agent_id, ref)[2] for ref in ends]}
        out = []
        for label, keys in groups.items():
            prop = NODE_LABELS[label][1]
            rows = self.store.by_keys(
                f"MATCH (a:{quoted(label)} {{{prop}: $key}})-[:{WALKABLE}]-(b) "
                "WHERE b.agent_id = $ag AND (b.kind IS NULL OR NOT b.kind IN $noise OR b.uid IN $endpoints) "
                f"RETURN DISTINCT a.{prop}, label(b), b.uid, b.id",
                keys,
                params,
            )
            out.extend((node_ref(label, r[0], r[0]), node_ref(r[1], r[2], r[3])) for r in rows)
        return out

    def neighbours(self, agent_id: str, refs: Iterable[NodeRef]) -> list[tuple[GraphEdge, StoredNode]]:
        """Every walkable edge at ``refs`` with the node at its other end (two queries)."""
        return self._edges_at(agent_id, refs, ())

    def _edges_at(
        self, agent_id: str, refs: Iterable[NodeRef], ends: Sequence[NodeRef]
    ) -> list[tuple[GraphEdge, StoredNode]]:
        """``neighbours``, also to the nodes ``ends`` when they are noise entities."""
        groups: dict[str, list[str]] = {f"in_{label.lower()}": [] for label in NODE_LABELS}
        for ref in refs:
            label, _, value = node_match(agent_id, ref)
            groups[f"in_{label.lower()}"].append(value)
        frontier = " OR ".join(
            f"(label(a) = '{label}' AND a.{prop} IN $in_{label.lower()})"
            for label, (_, prop, _) in NODE_LABELS.items()
        )
        params = {
            **groups, "ag": agent_id, "noise": NOISE_KINDS, "endpoints": [node_match(agent_id, ref)[2] for ref in ends],
        }
        out = []
        for arrow, outgoing in (("-[r:{w}]->", True), ("<-[r:{w}]-", False)):
            rows = self.store.read(
                f"MATCH (a){arrow.format(w=WALKABLE)}(b) WHERE a.agent_id = $ag AND ({frontier}) "
                "AND b.agent_id = $ag AND (b.kind IS NULL OR NOT b.kind IN $noise OR b.uid IN $endpoints) "
                f"RETURN label(a), a.uid, a.id, label(r), r.weight, r.reasons, label(b), b.uid, b.id, {props_columns('b')}",
                params,
            )
            for r in rows:
                here = node_ref(r[0], r[1], r[2])
                other = node_from_row([r[6], r[7], r[8], *r[9:]])
                src, dst = (here, other.ref) if outgoing else (other.ref, here)
                out.append((graph_edge(src, dst, r[3], r[4], r[5]), other))
        return out

    # -- aggregates ---------------------------------------------------------------------
    def status_counts(self, agent_id: str) -> list[Count]:
        rows = self.store.read(
            "MATCH (t:Ticket) WHERE t.agent_id = $a RETURN t.status, count(t)", {"a": agent_id}
        )
        found = {r[0]: int(r[1]) for r in rows}
        return [Count(s, s, found.get(s, 0)) for s in TICKET_STATUSES]

    def top_entities(self, agent_id: str, kind: str | None, limit: int) -> list[Count]:
        params: dict[str, Any] = {"a": agent_id}
        if kind is None:
            where = "AND NOT e.kind IN $noise"
            params["noise"] = NOISE_KINDS
        else:
            where = "AND e.kind = $k"
            params["k"] = kind
        rows = self.store.read(
            "MATCH (t:Ticket)<-[:MENTIONS]-(:Memory)-[:MENTIONS]->(e:Entity) "
            f"WHERE t.agent_id = $a {where} "
            "WITH e, count(DISTINCT t) AS n "
            f"RETURN e.kind, e.key, e.value, n ORDER BY n DESC, e.kind, e.key LIMIT {int(limit)}",
            params,
        )
        return [Count(key=f"{r[0]}:{r[1]}", label=r[2], count=int(r[3]), kind=r[0]) for r in rows]

    def repeat_customers(self, agent_id: str, min_tickets: int, limit: int) -> list[Count]:
        rows = self.store.read(
            "MATCH (c:Customer)-[:RAISED]->(t:Ticket) WHERE c.agent_id = $a "
            "WITH c, count(DISTINCT t) AS n WHERE n >= $min "
            f"RETURN c.id, coalesce(c.name, c.id), n ORDER BY n DESC, c.id LIMIT {int(limit)}",
            {"a": agent_id, "min": int(min_tickets)},
        )
        return [Count(key=r[0], label=r[1], count=int(r[2]), kind="customer") for r in rows]


# -- row mapping (Kùzu's node and relationship dictionaries) ----------------------------
def _node_from_dict(d: dict[str, Any]) -> StoredNode:
    return stored_node(d["_label"], d.get("uid"), d.get("id"), {p: d.get(p) for p in NODE_PROPS})
