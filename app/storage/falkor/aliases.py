"""Who a customer is known by, on FalkorDB: learning aliases and sessions' customers as
memories are written, and unlearning them when memories are deleted.

The semantics of storage/embedded/aliases.py: a session that learns its customer
(HAD_SESSION and ABOUT edges), the aliases a customer's memories and id reveal (Alias
nodes, KNOWN_AS edges), what a session without a customer says of who speaks (SAID).
What differs: statements are queued on the write's ``Transaction`` and its reads see only
what was committed before it, so what the write itself adds (its memories, its new
sessions) is taken from the records in hand. No memo of linked pairs is kept (another
process may delete them): MERGE finds what exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from casegraph.domain.models import Session
from casegraph.extractors.aliases import SOURCE_ID, Alias, id_aliases, text_aliases
from casegraph.storage.falkor.connection import Connection, Transaction
from casegraph.storage.memories import MemoryRecord
from casegraph.storage.rows import entity_triples, entity_triples_json, node_uid
from casegraph.storage.search import vector_key
from casegraph.times import utc

# (agent, customer, memory id, content, entity triples, created_at) of a memory linked to a customer.
Linked = tuple[str, str, str, str, list[tuple[str, str, str]], datetime]

# An Alias (``n``) no customer is known by and no session said (then it is deleted).
UNCLAIMED_ALIAS = "NOT (n)<-[:KNOWN_AS]-(:Customer) AND NOT (n)<-[:SAID]-(:Session)"


class AliasLearning(Connection):
    """The alias and session-customer links a write learns (a part of ``FalkorStore``)."""

    def learn_sessions(
        self,
        tx: Transaction,
        records: Sequence[MemoryRecord],
        learns: Sequence[tuple[str, str, str]],
        new_sessions: Sequence[Session] = (),
        had: dict[str, set[str]] | None = None,
    ) -> list[Linked]:
        """Link sessions to the customers they learn, and memories to their session's customer.

        As the embedded ``learn_sessions``: a store that names a customer for a session
        which had none (``learns``) gives the session a HAD_SESSION edge, and every memory
        of the session not yet ABOUT that customer an ABOUT edge; a memory stored without
        a customer into a session whose customer is known is linked to it. ``records`` and
        ``new_sessions`` are this write's (queued, not readable yet). ``had``: the
        customers each of these sessions had when the transaction began, when the
        caller read them already. Returns the memories linked.
        """
        learning: dict[str, tuple[str, str]] = {}
        for agent_id, session_id, customer_id in learns:
            learning.setdefault(session_id, (agent_id, customer_id))
        unlinked: dict[str, list[MemoryRecord]] = {}
        for rec in records:
            if rec.memory.session_id and not rec.customer_ids:
                unlinked.setdefault(rec.memory.session_id, []).append(rec)
        sids = list(dict.fromkeys([*learning, *unlinked]))
        if not sids:
            return []
        if had is None:
            had = {}
            for sid, cid in tx(
                "UNWIND $ids AS sid MATCH (c:Customer)-[:HAD_SESSION]->(:Session {id: sid}) RETURN sid, c.id",
                {"ids": sids},
            ):
                had.setdefault(sid, set()).add(cid)
        known = {sid: set(had.get(sid, ())) for sid in sids}
        for s in new_sessions:
            if s.customer_id:
                known.setdefault(s.id, set()).add(s.customer_id)
        mine = {rec.memory.id: rec for rec in records}
        about: list[dict[str, Any]] = []
        linked: list[Linked] = []
        for sid in sids:
            if known.get(sid):
                for rec in unlinked.get(sid, ()):
                    m = rec.memory
                    for cid in sorted(known[sid]):
                        about.append({"f": m.id, "t": node_uid(m.agent_id, cid), "k": vector_key(m.id)})
                        linked.append((m.agent_id, cid, m.id, m.content, entity_triples(m.entities), m.created_at))
                continue
            if sid not in learning:
                continue
            agent_id, cid = learning[sid]
            uid = node_uid(agent_id, cid)
            tx.write("MATCH (c:Customer {uid: $c}), (s:Session {id: $sid}) CREATE (c)-[:HAD_SESSION]->(s)",
                     {"c": uid, "sid": sid})
            have = {r[0] for r in tx(
                "MATCH (:Customer {uid: $c})<-[:ABOUT]-(m:Memory)-[:IN_SESSION]->(:Session {id: $sid}) RETURN m.id",
                {"c": uid, "sid": sid},
            ) if r[0] not in mine}
            have.update(rec.memory.id for rec in records if cid in rec.customer_ids)
            members: list[tuple[str, str, list[tuple[str, str, str]], datetime]] = [
                (memory_id, content, entity_triples_json(entities), utc(at))
                for memory_id, content, entities, at in tx(
                    "MATCH (m:Memory)-[:IN_SESSION]->(:Session {id: $sid}) "
                    "RETURN m.id, m.content, m.entities, m.created_at",
                    {"sid": sid},
                )
                if memory_id not in mine
            ]
            members.extend(
                (r.memory.id, r.memory.content, entity_triples(r.memory.entities), r.memory.created_at)
                for r in records if r.memory.session_id == sid
            )
            for memory_id, content, entities, at in members:
                if memory_id not in have:
                    about.append({"f": memory_id, "t": uid, "k": vector_key(memory_id)})
                    linked.append((agent_id, cid, memory_id, content, entities, at))
        tx.unwind("MATCH (a:Memory {id: r.f}), (b:Customer {uid: r.t}) CREATE (a)-[:ABOUT {k: r.k}]->(b)", about)
        return linked

    def learn_aliases(self, tx: Transaction, linked: Sequence[Linked]) -> None:
        """Learn what the customers of ``linked`` memories are known by (extractors/aliases.py):
        the aliases each memory reveals (source: the memory) and each customer's id
        aliases (source: "id"). An alias edge is written once, when first learned."""
        facts: dict[tuple[str, str], tuple[str, Alias, str, datetime]] = {}
        customers: dict[str, tuple[str, str, datetime]] = {}
        for agent_id, cid, memory_id, content, entities, at in sorted(linked, key=lambda x: x[5]):
            customers.setdefault(node_uid(agent_id, cid), (agent_id, cid, at))
            for alias in text_aliases(content, entities):
                facts.setdefault((node_uid(agent_id, cid), node_uid(agent_id, alias.node_key)),
                                 (agent_id, alias, memory_id, at))
        for cuid, (agent_id, cid, at) in customers.items():
            for alias in id_aliases(cid):
                facts[(cuid, node_uid(agent_id, alias.node_key))] = (agent_id, alias, SOURCE_ID, at)  # the id speaks first
        if not facts:
            return
        _merge_aliases(tx, facts)
        tx.unwind(
            "MATCH (c:Customer {uid: r.c}), (n:Alias {uid: r.u}) MERGE (c)-[k:KNOWN_AS]->(n) "
            "ON CREATE SET k.source = r.s, k.at = r.t",
            [{"c": c, "u": u, "s": source, "t": at} for (c, u), (_, _, source, at) in facts.items()],
        )

    def learn_session_aliases(self, tx: Transaction, records: Sequence[MemoryRecord]) -> None:
        """What memories of a session without a customer say of who speaks (SAID edges)."""
        facts: dict[tuple[str, str], tuple[str, Alias, str, datetime]] = {}
        for rec in records:
            m = rec.memory
            for alias in text_aliases(m.content, entity_triples(m.entities)):
                facts.setdefault((m.session_id or "", node_uid(m.agent_id, alias.node_key)),
                                 (m.agent_id, alias, m.id, m.created_at))
        if not facts:
            return
        _merge_aliases(tx, facts)
        tx.unwind(
            "MATCH (s:Session {id: r.s}), (n:Alias {uid: r.u}) MERGE (s)-[k:SAID]->(n) "
            "ON CREATE SET k.source = r.m, k.at = r.t",
            [{"s": sid, "u": u, "m": source, "t": at} for (sid, u), (_, _, source, at) in facts.items()],
        )

    def aliases_forgotten(self) -> None:
        """Nothing to forget: this engine remembers no links between writes."""

    def forget_aliases_of(self, tx: Transaction, agent_id: str, memory_ids: Sequence[str]) -> None:
        """Unlearn the aliases learned from these memories (an alias another customer or
        session still has stays). Queued after the statements before it, so it sees them."""
        for rel in ("KNOWN_AS", "SAID"):
            tx.write(f"MATCH ()-[k:{rel}]->(n:Alias) WHERE k.source IN $ids DELETE k", {"ids": list(memory_ids)})
        tx.write(f"MATCH (n:Alias) WHERE {UNCLAIMED_ALIAS} DELETE n")


def _merge_aliases(tx: Transaction, facts: dict[tuple[str, str], tuple[str, Alias, str, datetime]]) -> None:
    """Alias nodes for ``facts`` ((owner, alias uid) -> (agent, alias, source, at)), written
    whole when first learned."""
    nodes = {
        auid: {"uid": auid, "a": agent_id, "kind": a.kind, "key": a.key, "value": a.value, "t": at}
        for (_, auid), (agent_id, a, _, at) in facts.items()
    }
    tx.unwind(
        "MERGE (n:Alias {uid: r.uid}) ON CREATE SET n.agent_id = r.a, n.kind = r.kind, n.key = r.key, "
        "n.value = r.value, n.created_at = r.t",
        list(nodes.values()),
    )
