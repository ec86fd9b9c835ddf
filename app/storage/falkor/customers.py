"""Customers on FalkorDB: the customer, what it is known by, and what is theirs.

Implements the reads of ``CustomerStore`` (app/storage/customers.py) with the semantics
of the embedded twin (storage/embedded/customers.py): customers and the memories,
sessions, orders, tickets and aliases linked to them, one customer at a time or by keys
for the API's DataLoaders (one ``UNWIND`` per call). Alias learning (and
``aliases_forgotten``) is aliases.py; the links are written by memory_writes.py.

A statement that filters memories (``rows.LIVE``) matches the customer first and passes it
on by a WITH: with the WHERE in the same MATCH, FalkorDB 4 plans a scan of every memory
instead of starting from the customer's index (memories.py ``_filter_match``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casegraph.domain.models import Customer, Memory, Session
from casegraph.storage.customers import AliasMatches, KnownAlias
from casegraph.storage.falkor.connection import Connection
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

_CUSTOMER_COLUMNS = "c.id, c.agent_id, c.name, c.created_at"


def _customer(r: Sequence[Any]) -> Customer:
    return Customer(id=r[0], agent_id=r[1], name=r[2], created_at=utc(r[3]))


class CustomerQueries(Connection):
    """Customers on FalkorDB (``CustomerStore``, but alias learning: aliases.py). (a part of ``FalkorStore``)."""

    def _by_keys(self, agent_id: str, query: str, keys: Sequence[Any], params: dict[str, Any] | None = None) -> list[list[Any]]:
        """``query`` (which names the key ``key``) over ``UNWIND $keys AS key``, each key once.
        An ORDER BY in ``query`` orders all rows, so also the rows of each key."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        return self.read(agent_id, f"UNWIND $keys AS key {query}", {**(params or {}), "keys": keys})

    def _customer_keys(self, agent_id: str, customer_ids: Sequence[str]) -> list[str]:
        return [node_uid(agent_id, c) for c in customer_ids]

    # -- one customer -----------------------------------------------------------------
    def get_customer(self, agent_id: str, customer_id: str) -> Customer | None:
        """One customer, or None."""
        rows = self.read(
            agent_id, f"MATCH (c:Customer {{uid: $uid}}) RETURN {_CUSTOMER_COLUMNS}",
            {"uid": node_uid(agent_id, customer_id)},
        )
        return _customer(rows[0]) if rows else None

    def customer_memories(self, agent_id: str, customer_id: str, now: datetime) -> list[Memory]:
        """The customer's live memories, newest first."""
        rows = self.read(
            agent_id,
            f"MATCH (c:Customer {{uid: $uid}}) WITH c MATCH (m:Memory)-[:ABOUT]->(c) WITH m WHERE {LIVE} "
            f"RETURN {MEMORY_COLUMNS} ORDER BY m.created_at DESC, m.id",
            {"uid": node_uid(agent_id, customer_id), "now": now},
        )
        return [memory_from_row(r) for r in rows]

    def customer_orders(self, agent_id: str, customer_id: str) -> list[str]:
        """The ids of the orders the customer placed, sorted."""
        return self.customers_neighbours(agent_id, [customer_id], "order").get(customer_id, [])

    def customer_tickets(self, agent_id: str, customer_id: str) -> list[str]:
        """The ids of the tickets the customer raised, sorted."""
        return self.customers_neighbours(agent_id, [customer_id], "ticket").get(customer_id, [])

    def customer_aliases(self, agent_id: str, customer_id: str) -> list[KnownAlias]:
        """What the customer is known by, in the order it was learned."""
        return self.customers_aliases(agent_id, [customer_id]).get(customer_id, [])

    # -- by keys (the API's DataLoaders) --------------------------------------------------
    def get_customers(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, Customer]:
        """Several customers in one query (those that exist)."""
        rows = self._by_keys(
            agent_id, f"MATCH (c:Customer {{uid: key}}) RETURN {_CUSTOMER_COLUMNS}",
            self._customer_keys(agent_id, customer_ids),
        )
        return {r[0]: _customer(r) for r in rows}

    def customers_memories(self, agent_id: str, customer_ids: Sequence[str], now: datetime) -> dict[str, list[Memory]]:
        """Customer id -> its live memories, newest first (those with none are left out)."""
        rows = self._by_keys(
            agent_id,
            f"MATCH (c:Customer {{uid: key}}) WITH c MATCH (m:Memory)-[:ABOUT]->(c) WITH c, m WHERE {LIVE} "
            f"RETURN c.id, {MEMORY_COLUMNS} ORDER BY m.created_at DESC, m.id",
            self._customer_keys(agent_id, customer_ids), {"now": now},
        )
        return memories_by_key(rows)

    def customers_neighbours(self, agent_id: str, customer_ids: Sequence[str], kind: str) -> dict[str, list[str]]:
        """Customer id -> the sorted ids of its orders (``kind`` "order") or tickets ("ticket")."""
        pattern = _CUSTOMER_NEIGHBOURS[kind]
        rows = self._by_keys(
            agent_id, f"MATCH (c:Customer {{uid: key}})-{pattern} RETURN c.id, n.id ORDER BY n.id",
            self._customer_keys(agent_id, customer_ids),
        )
        out: dict[str, list[str]] = {}
        for customer_id, node_id in rows:
            out.setdefault(customer_id, []).append(node_id)
        return out

    def customers_sessions(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[Session]]:
        """Customer id -> its sessions (given at the start or learned later), newest first;
        a session that was given no customer shows the first (by id) that learned it."""
        rows = self._by_keys(
            agent_id,
            "MATCH (c:Customer {uid: key})-[:HAD_SESSION]->(s:Session) "
            "OPTIONAL MATCH (lc:Customer)-[:HAD_SESSION]->(s) WITH c, s, min(lc.id) AS learned "
            "OPTIONAL MATCH (m:Memory)-[:IN_SESSION]->(s) "
            "RETURN c.id, s.id, s.agent_id, s.started_at, coalesce(s.customer_id, learned), s.ended_at, s.summary, "
            "s.metadata, count(m) ORDER BY s.started_at DESC, s.id",
            self._customer_keys(agent_id, customer_ids),
        )
        out: dict[str, list[Session]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(session_from_row(r[1:]))
        return out

    def customer_session_memories(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, str]:
        """Memory id -> session id, for the memories of these customers' sessions (their
        session summaries included)."""
        out: dict[str, str] = {}
        for rel in ("IN_SESSION", "SUMMARISES"):  # a summary's own session wins
            rows = self._by_keys(
                agent_id,
                f"MATCH (:Customer {{uid: key}})-[:HAD_SESSION]->(s:Session)<-[:{rel}]-(m:Memory) RETURN m.id, s.id",
                self._customer_keys(agent_id, customer_ids),
            )
            out.update((r[0], r[1]) for r in rows)
        return out

    def customers_aliases(self, agent_id: str, customer_ids: Sequence[str]) -> dict[str, list[KnownAlias]]:
        """Customer id -> what it is known by, in the order it was learned."""
        rows = self._by_keys(
            agent_id,
            "MATCH (c:Customer {uid: key})-[k:KNOWN_AS]->(n:Alias) "
            "RETURN c.id, n.kind, n.key, n.value, k.source, k.at ORDER BY k.at, n.kind, n.key",
            self._customer_keys(agent_id, customer_ids),
        )
        out: dict[str, list[KnownAlias]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(KnownAlias(r[1], r[2], r[3], r[4], utc(r[5])))
        return out

    def memory_customers(self, agent_id: str, memory_ids: Sequence[str]) -> dict[str, list[str]]:
        """The customers each memory is about, sorted."""
        rows = self._by_keys(
            agent_id, "MATCH (m:Memory {id: key})-[:ABOUT]->(c:Customer) RETURN m.id, c.id ORDER BY c.id", memory_ids
        )
        out: dict[str, list[str]] = {}
        for memory_id, customer_id in rows:
            out.setdefault(memory_id, []).append(customer_id)
        return out

    # -- aliases ------------------------------------------------------------------------
    def alias_customers(self, agent_id: str, node_keys: Sequence[str]) -> AliasMatches:
        """For each alias node key (``Alias.node_key``) that exists for this agent: its
        value and the ids of the customers known by it."""
        rows = self._by_keys(
            agent_id, "MATCH (n:Alias {uid: key})<-[:KNOWN_AS]-(c:Customer) RETURN n.uid, n.value, c.id",
            [node_uid(agent_id, k) for k in node_keys],
        )
        out: AliasMatches = {}
        for uid, value, cid in rows:
            key = uid.split("|", 1)[1]
            out[key] = (value, tuple(sorted({*out.get(key, ("", ()))[1], cid})))
        return out

    def alias_sessions(self, agent_id: str, node_keys: Sequence[str]) -> AliasMatches:
        """For each alias node key said in conversations whose customer was never given:
        its value and those sessions, with the sessions that share an e-mail, phone or
        handle with them (one hop; an alias said in more than ``_SAID_LIMIT`` sessions,
        say a support address, links none)."""
        rows = self._by_keys(
            agent_id, "MATCH (n:Alias {uid: key})<-[:SAID]-(s:Session) RETURN n.uid, n.value, s.id",
            [node_uid(agent_id, k) for k in node_keys],
        )
        found: dict[str, tuple[str, set[str]]] = {}
        for uid, value, sid in rows:
            found.setdefault(uid.split("|", 1)[1], (value, set()))[1].add(sid)
        found = {k: v for k, v in found.items() if len(v[1]) <= _SAID_LIMIT}
        sessions = sorted({sid for _, ids in found.values() for sid in ids})
        shared: dict[str, set[str]] = {}
        for first, uid, other in self._by_keys(
            agent_id,
            "MATCH (s0:Session {id: key})-[:SAID]->(a:Alias)<-[:SAID]-(s:Session) "
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
