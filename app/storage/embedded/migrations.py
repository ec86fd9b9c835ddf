"""Schema migrations of the embedded graph: the recorded ones and their data steps.

Owns applying ``casegraph.graph_schema.migrations()`` in order, recording each in the
``Migration`` table, and the Python steps some of them need after their statements
(backfills computed here and joined in through scratch tables). Every step is
rerunnable: a crash before a migration is recorded runs it again from the start.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from casegraph import graph_schema
from casegraph.domain.ticket_models import MAX_CHANNEL, MAX_SUBJECT, default_subject
from casegraph.errors import StorageError
from casegraph.extractors import IDENTIFIER, identifier_mentions
from casegraph.storage.embedded.aliases import Linked
from casegraph.storage.embedded.connection import Transaction
from casegraph.storage.rows import entity_triples_json, node_uid
from casegraph.storage.search import vector_key
from casegraph.times import utc

log = logging.getLogger("casegraph.graph")


class MigratingStore(Protocol):
    """What the migrations need of the store: its writer, and alias learning (008)."""

    def autocommit(self) -> contextlib.AbstractContextManager[Transaction]: ...

    def learn_aliases(self, run: Transaction, linked: Sequence[Linked]) -> None: ...

    def aliases_forgotten(self) -> None: ...


def migrate(store: MigratingStore) -> list[str]:
    """Apply the migrations not yet recorded in this database; return their names."""
    with store.autocommit() as w:
        w("CREATE NODE TABLE IF NOT EXISTS Migration(name STRING, applied_at TIMESTAMP, PRIMARY KEY (name))")
        done = {r[0] for r in w("MATCH (x:Migration) RETURN x.name")}
        applied = []
        for migration in graph_schema.migrations():
            if migration.name in done:
                continue
            for statement in migration.statements:
                w(statement)
            if migration.name in _DATA_STEPS:
                _DATA_STEPS[migration.name](store, w)
            w("CREATE (:Migration {name: $n, applied_at: $t})", {"n": migration.name, "t": datetime.now(UTC)})
            applied.append(migration.name)
            log.info("applied schema migration %s", migration.name)
        return applied


def _backfill_edge_keys(store: MigratingStore, w: Transaction) -> None:
    """005_edge_keys: give every ABOUT/MENTIONS edge its memory's key.

    The keys are computed here and joined in through a scratch table: one UNWIND that
    MATCHes memories by id is planned as a table scan per row (~1 ms a memory at 100k),
    the join takes ~3.5 s for 91k memories. Rerunnable: a crash before the migration is
    recorded runs it again from the start.
    """
    started = time.perf_counter()
    w("DROP TABLE IF EXISTS EdgeKeyBackfill")
    w("CREATE NODE TABLE EdgeKeyBackfill(id STRING, k INT64, PRIMARY KEY (id))")
    ids = [r[0] for r in w("MATCH (m:Memory) RETURN m.id")]
    for start in range(0, len(ids), 20_000):
        rows = [{"id": i, "k": vector_key(i)} for i in ids[start : start + 20_000]]
        w("UNWIND $rows AS r CREATE (:EdgeKeyBackfill {id: r.id, k: r.k})", {"rows": rows})
    for rel in ("ABOUT", "MENTIONS"):
        w(f"MATCH (x:EdgeKeyBackfill), (m:Memory)-[e:{rel}]->() WHERE m.id = x.id SET e.k = x.k")
    w("DROP TABLE EdgeKeyBackfill")
    log.info("keyed the edges of %d memories in %.1f s", len(ids), time.perf_counter() - started)


def _compact_ticket_text(store: MigratingStore, w: Transaction) -> None:
    """007_ticket_text: copy Ticket.subject and Ticket.channel into new columns.

    Before 007 each ticket refresh SET its tickets' subjects again, and each such
    checkpoint appended the whole column to its dictionary (docs/kuzu-quirks.md #1): at 100k
    memories 8k subjects held 530k entries, 50 MB. A column filled by one statement
    holds one entry a ticket.

    A column an insert of NULL has corrupted holds a value that is the whole dictionary
    joined (longer than the API allows), and its other values may belong to other
    tickets; at 100k it could not be read at all. Such a column is not copied: the
    subjects are computed again from each ticket's first memory, the channels are
    left empty. Kùzu 0.11 crashed checkpointing a copy, a drop and a rename together
    on the 100k store (docs/kuzu-quirks.md #7), so each is checkpointed alone; and a column that need not be
    copied (a new store's) is left alone. Rerunnable: a crash part-way leaves a state
    the next run finishes.
    """
    w("CHECKPOINT")  # storage_info describes what is checkpointed
    tickets = int(w("MATCH (t:Ticket) RETURN count(t)")[0][0])
    for column, limit in (("subject", MAX_SUBJECT), ("channel", MAX_CHANNEL)):
        fresh = f"{column}_compacted"
        columns = {r[0] for r in w("CALL table_info('Ticket') RETURN name")}
        if column in columns:
            try:
                longest = w(f"MATCH (t:Ticket) RETURN max(size(t.{column}))")[0][0]
            except StorageError as exc:
                intact, reason = False, f"it cannot be read: {exc.message}"
            else:
                intact, reason = longest is None or longest <= limit, f"a value of {longest} characters"
            entries = sum(
                n for name, n in w("CALL storage_info('Ticket') RETURN column_name, num_values")
                if name == f"{column}_offset"
            )
            if intact and fresh not in columns and entries <= 2 * tickets:
                continue  # as compact as a copy would be: no DDL (a new store)
            w(f"ALTER TABLE Ticket ADD IF NOT EXISTS {fresh} STRING")
            if intact:
                w(f"MATCH (t:Ticket) WHERE t.{column} IS NOT NULL SET t.{fresh} = t.{column}")
            else:
                log.error("Ticket.%s is corrupted (%s); not copied", column, reason)
            w("CHECKPOINT")
            w(f"ALTER TABLE Ticket DROP {column}")
            w("CHECKPOINT")
        if fresh in {r[0] for r in w("CALL table_info('Ticket') RETURN name")}:
            w(f"ALTER TABLE Ticket RENAME {fresh} TO {column}")
            w("CHECKPOINT")
    # Tickets without a subject: all of them after a corrupted column, and any a crash
    # left stale before 007 (the refresh no longer writes subjects).
    first: dict[str, tuple[datetime, str]] = {}
    for uid, content, at in w(
        "MATCH (m:Memory)-[:MENTIONS]->(t:Ticket) WHERE t.subject IS NULL RETURN t.uid, m.content, m.created_at"
    ):
        if uid not in first or at < first[uid][0]:
            first[uid] = (at, content)
    rows = [{"uid": uid, "s": default_subject(content)} for uid, (_, content) in first.items()]
    for start in range(0, len(rows), 20_000):  # one update each, not one a ticket
        w("UNWIND $rows AS r MATCH (t:Ticket {uid: r.uid}) SET t.subject = r.s", {"rows": rows[start : start + 20_000]})
    if rows:
        w("CHECKPOINT")
        log.warning("computed the subjects of %d tickets from their first memories", len(rows))


def _number_sessions(store: MigratingStore, w: Transaction) -> None:
    """009_session_order: number the memories of existing sessions, oldest first.

    Ties in createdAt (a batch) fall back to the id: the order they were given in was
    not kept. Computed here and joined in through a scratch table, like
    ``_backfill_edge_keys``; rerunnable from the start.
    """
    started = time.perf_counter()
    by_session: dict[str, list[tuple[datetime, str]]] = {}
    for session_id, memory_id, at in w("MATCH (m:Memory)-[:IN_SESSION]->(s:Session) RETURN s.id, m.id, m.created_at"):
        by_session.setdefault(session_id, []).append((at, memory_id))
    rows = [
        {"id": memory_id, "q": n}
        for items in by_session.values()
        for n, (_, memory_id) in enumerate(sorted(items), start=1)
    ]
    if not rows:
        return
    w("DROP TABLE IF EXISTS SeqBackfill")
    w("CREATE NODE TABLE SeqBackfill(id STRING, q INT64, PRIMARY KEY (id))")
    for start in range(0, len(rows), 20_000):
        w("UNWIND $rows AS r CREATE (:SeqBackfill {id: r.id, q: r.q})", {"rows": rows[start : start + 20_000]})
    w("MATCH (x:SeqBackfill), (m:Memory)-[e:IN_SESSION]->() WHERE m.id = x.id SET e.seq = x.q")
    w("DROP TABLE SeqBackfill")
    log.info("numbered the memories of %d sessions in %.1f s", len(by_session), time.perf_counter() - started)


def _link_existing_identifiers(store: MigratingStore, w: Transaction) -> None:
    """011_identifiers: link every memory to the identifiers its text names (the rules
    alone, as a store runs them). Rerunnable: nodes and edges are merged."""
    started = time.perf_counter()
    nodes: dict[str, dict[str, str]] = {}
    links: list[dict[str, Any]] = []
    for a, memory_id, content in w("MATCH (m:Memory) RETURN m.agent_id, m.id, m.content"):
        for key, value in identifier_mentions(content or "").items():
            uid = node_uid(a, f"{IDENTIFIER}:{key}")
            nodes.setdefault(uid, {"uid": uid, "a": a, "kind": IDENTIFIER, "key": key, "value": value})
            links.append({"f": memory_id, "t": uid, "k": vector_key(memory_id)})
    node_rows = list(nodes.values())
    for start in range(0, len(node_rows), 20_000):
        w.rows(
            "MERGE (n:Entity {uid: r.uid}) "
            "ON CREATE SET n.agent_id = r.a, n.kind = r.kind, n.key = r.key, n.value = r.value",
            node_rows[start : start + 20_000],
        )
    for start in range(0, len(links), 20_000):
        w.edges(
            ("Memory", "id"), ("Entity", "uid"), "MERGE (a)-[e:MENTIONS]->(b) ON CREATE SET e.k = {r}.k",
            links[start : start + 20_000],
        )
    log.info("linked %d mentions of %d identifiers in %.1f s", len(links), len(nodes), time.perf_counter() - started)


def _learn_existing_aliases(store: MigratingStore, w: Transaction) -> None:
    """008_customer_identity: learn the aliases of the customers stored before it, from
    their ids and their memories. Rerunnable: nodes and edges are merged."""
    started = time.perf_counter()
    rows = w("MATCH (m:Memory)-[:ABOUT]->(c:Customer) RETURN m.agent_id, c.id, m.id, m.content, m.entities, m.created_at")
    linked = [(a, cid, mid, text, entity_triples_json(ents), utc(at)) for a, cid, mid, text, ents, at in rows]
    for start in range(0, len(linked), 5_000):
        store.learn_aliases(w, linked[start : start + 5_000])
        w.aliases_linked.clear()  # not remembered: nothing tells the store of this write
    store.aliases_forgotten()
    log.info("learned the aliases of %d linked memories in %.1f s", len(linked), time.perf_counter() - started)


# Python steps of migrations, run after their statements and before they are recorded.
_DATA_STEPS: dict[str, Callable[[MigratingStore, Transaction], None]] = {
    "005_edge_keys": _backfill_edge_keys,
    "007_ticket_text": _compact_ticket_text,
    "008_customer_identity": _learn_existing_aliases,
    "009_session_order": _number_sessions,
    "011_identifiers": _link_existing_identifiers,
}
