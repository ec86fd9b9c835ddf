"""Customers in the graph: the customer, what it is known by, and what is theirs.

Implements ``CustomerStore`` (app/storage/customers.py): reads of customers and of the
memories, sessions, orders, tickets and aliases linked to them, one customer at a time or
by keys for the API's DataLoaders. The links themselves are written by aliases.py and
memory_writes.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from casegraph.domain.models import Customer, Memory, Session
from casegraph.storage.customers import KnownAlias
from casegraph.storage.embedded.connection import Connection
from casegraph.storage.rows import (
    LIVE,
    MEMORY_COLUMNS,
    memories_by_key,
    memory_from_row,
    node_uid,
    session_from_row,
)
from casegraph.times import utc

# An alias said in more sessions than this (a support address, a shared phone) links none.
_SAID_LIMIT = 25

# What ``customers_neighbours`` follows from a customer, to the node ``n``.
_CUSTOMER_NEIGHBOURS = {
    "order": "[:PLACED]->(n:`Order`)",
    "ticket": "[:RAISED]->(n:Ticket)",
}


class CustomerQueries(Connection):
    """Customers (a part of ``GraphStore``)."""

    _alias_uids: set[str] | None

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

    def customer_memories(self, agent_id: str, customer_id: str, now: datetime) -> list[Memory]:
        rows = self.read(
            "MATCH (m:Memory)-[:ABOUT]->(c:Customer {uid: $uid}) "
            f"WHERE {LIVE} "
            f"RETURN {MEMORY_COLUMNS} ORDER BY m.created_at DESC, m.id",
            {"uid": node_uid(agent_id, customer_id), "now": now},
        )
        return [memory_from_row(r) for r in rows]

    # -- batch reads by node (the API's DataLoaders): per key up to _FEW_KEYS, then one UNWIND
    def customers_memories(self, agent_id: str, customer_ids: Sequence[str], now: datetime) -> dict[str, list[Memory]]:
        """Customer id -> its unexpired memories, newest first."""
        rows = self.by_keys(
            f"MATCH (m:Memory)-[:ABOUT]->(c:Customer {{uid: $key}}) WHERE {LIVE} "
            f"RETURN c.id, {MEMORY_COLUMNS} ORDER BY m.created_at DESC, m.id",
            [node_uid(agent_id, c) for c in customer_ids], {"now": now},
        )
        return memories_by_key(rows)

    def customer_session_memories(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories of these customers' sessions (their
        session summaries included)."""
        # The sessions first, then each one's memories: in one pattern Kùzu 0.11 joined
        # from the memories' side, ~5 ms a customer at 100k memories even with no session
        # at all, against ~0.35 ms for a customer's sessions alone.
        sessions = self.by_keys(
            "MATCH (:Customer {uid: $key})-[:HAD_SESSION]->(s:Session) RETURN s.id",
            [node_uid(agent_id, c) for c in customer_ids],
        )
        out: dict[str, str] = {}
        for rel in ("IN_SESSION", "SUMMARISES"):
            rows = self.by_keys(
                f"MATCH (s:Session {{id: $key}})<-[:{rel}]-(m:Memory) RETURN m.id, s.id", [r[0] for r in sessions]
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

    def customers_sessions(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[Session]]:
        """Customer id -> its sessions (given at the start or learned later), newest first."""
        rows = self.by_keys(
            "MATCH (c:Customer {uid: $key})-[:HAD_SESSION]->(s:Session) "
            "OPTIONAL MATCH (lc:Customer)-[:HAD_SESSION]->(s) WITH c, s, min(lc.id) AS learned "
            "OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
            "RETURN c.id, s.id, s.agent_id, s.started_at, coalesce(s.customer_id, learned), s.ended_at, s.summary, "
            "s.metadata, count(m) ORDER BY s.started_at DESC, s.id",
            [node_uid(agent_id, c) for c in customer_ids],
        )
        out: dict[str, list[Session]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(session_from_row(r[1:]))
        return out

    def customers_neighbours(self, agent_id: str, customer_ids: Sequence[str], kind: str) -> dict[str, list[str]]:
        """Customer id -> the sorted ids of its orders (``kind`` "order") or tickets ("ticket")."""
        pattern = _CUSTOMER_NEIGHBOURS[kind]
        rows = self.by_keys(
            f"MATCH (c:Customer {{uid: $key}})-{pattern} RETURN c.id, n.id ORDER BY n.id",
            [node_uid(agent_id, c) for c in customer_ids],
        )
        out: dict[str, list[str]] = {}
        for customer_id, node_id in rows:
            out.setdefault(customer_id, []).append(node_id)
        return out
