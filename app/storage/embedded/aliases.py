"""Who a customer is known by: learning aliases and sessions' customers as memories are written.

Owns the write side of customer identity: a session that learns its customer (HAD_SESSION
and ABOUT edges), the aliases a customer's memories and id reveal (Alias nodes and
KNOWN_AS edges, extractors/aliases.py says which), what a session without a customer
says of who speaks (SAID), and unlearning them when memories are deleted. Alias nodes
and their edges are written whole when first learned and never changed
(docs/kuzu-quirks.md #1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casegraph.extractors.aliases import SOURCE_ID, Alias, id_aliases, text_aliases
from casegraph.storage.embedded.connection import Connection, Transaction
from casegraph.storage.memories import MemoryRecord
from casegraph.storage.rows import (
    entity_triples,
    entity_triples_json,
    node_uid,
)
from casegraph.storage.search import vector_key
from casegraph.times import utc

log = logging.getLogger("casegraph.graph")

# (customer uid, alias uid) pairs known to be linked, kept so that a store does not MERGE
# its customer's id aliases again each time; past this many, the set starts again.
_ALIAS_MEMO_LIMIT = 200_000

# (agent, customer, memory id, content, entity triples, created_at) of a memory linked to a customer.
Linked = tuple[str, str, str, str, list[tuple[str, str, str]], datetime]

# An Alias no customer is known by and no session said (then it is deleted).
UNCLAIMED_ALIAS = (
    "NOT EXISTS { MATCH (:Customer)-[:KNOWN_AS]->(n) } AND NOT EXISTS { MATCH (:Session)-[:SAID]->(n) }"
)


class AliasLearning(Connection):
    """The alias and session-customer links a write learns (a part of ``GraphStore``)."""

    _alias_memo: set[tuple[str, str]]
    _alias_uids: set[str] | None

    def _remember_aliases(self, tx: Transaction, committed: bool, reported: bool) -> None:
        """After a commit: remember the customer-alias pairs it linked."""
        if committed and tx.aliases_linked:
            if len(self._alias_memo) + len(tx.aliases_linked) > _ALIAS_MEMO_LIMIT:
                self._alias_memo.clear()
            self._alias_memo.update(tx.aliases_linked)

    def learn_sessions(
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
        """Learn what the customers of ``linked`` memories are known by (extractors/aliases.py):
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

    def learn_session_aliases(self, run: Transaction, records: Sequence[MemoryRecord]) -> None:
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

    def forget_aliases_of(self, run: Transaction, agent_id: str, memory_ids: Sequence[str]) -> None:
        """Unlearn the aliases learned from these memories (an alias another customer
        still has stays)."""
        self._alias_memo.clear()
        for rel in ("KNOWN_AS", "SAID"):
            run(f"MATCH ()-[k:{rel}]->(n:Alias) WHERE n.agent_id = $a AND k.source IN $ids DELETE k",
                {"a": agent_id, "ids": list(memory_ids)})
        run(f"MATCH (n:Alias) WHERE n.agent_id = $a AND {UNCLAIMED_ALIAS} DELETE n", {"a": agent_id})


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
