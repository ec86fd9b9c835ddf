"""Ticket relations on the real store: incremental, crash-safe, and migrated from 002.
On both engines (tests/storage/backends.py) but for the Kùzu engine's own migration and
edge staging."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from casegraph import graph_schema
from casegraph.domain.models import StoreRequest
from casegraph.times import utc

from tests.storage.backends import falkor, graph_rows


def store(services, ticket, customer, text):
    return services.memories.store(
        StoreRequest(agent_id="bot", content=text, ticket_id=ticket, tags=(f"customer:{customer}",))
    )


def related_ids(services, ticket):
    return [r.ticket_id for r in services.tickets.related("bot", [ticket])[ticket]]


def test_relations_a_crash_left_stale_are_recomputed_when_the_service_opens(open_services, tmp_path):
    services = open_services(tmp_path / "data")
    services.memories.listeners.clear()  # as if the process died right after each commit
    store(services, "T-1", "ann", "Order #4521 arrived damaged.")
    store(services, "T-2", "ben", "Refund request for order #4521.")
    assert services.tickets.tickets.relations("bot", ["T-1"], 0.0) == {}
    assert {t for _, t, _ in services.tickets.tickets.stale_tickets(10)} == {"T-1", "T-2"}
    services.close()

    reopened = open_services(tmp_path / "data")
    assert related_ids(reopened, "T-1") == ["T-2"]
    assert reopened.tickets.tickets.stale_tickets(10) == []


def test_a_store_does_not_wait_for_the_relation_refresh_and_a_read_catches_up(services, monkeypatch):
    """The refresh runs on its own thread: a store is acknowledged while it is held up,
    and a read of relations afterwards sees every acknowledged store."""
    held, running = threading.Event(), threading.Event()
    real = services.tickets.refresh

    def held_refresh(**options):
        running.set()
        assert held.wait(60)
        return real(**options)

    monkeypatch.setattr(services.tickets, "refresh", held_refresh)
    store(services, "T-1", "ann", "Order #4521 arrived damaged.")
    assert running.wait(60)  # the refresher is inside its refresh, held
    store(services, "T-2", "ben", "Refund request for order #4521.")  # acknowledged all the same
    assert services.tickets.tickets.relations("bot", ["T-1"], 0.0) == {}
    held.set()
    assert related_ids(services, "T-1") == ["T-2"]
    assert services.tickets.tickets.stale_tickets(10) == []


def test_a_read_catches_up_its_own_agent_only(services):
    """A read of one agent's relations finishes that agent's pending refresh, not every
    tenant's (with one graph per agent, that would be a read of every graph)."""
    services.memories.listeners.clear()  # nothing refreshed after the stores
    for agent in ("bot", "other-bot"):
        for ticket, customer in (("T-1", "ann"), ("T-2", "ben")):
            services.memories.store(StoreRequest(
                agent_id=agent, content=f"{customer} wrote about order #4521.", ticket_id=ticket,
                tags=(f"customer:{customer}",),
            ))
    assert related_ids(services, "T-1") == ["T-2"]
    assert services.tickets.tickets.stale_tickets(10, "bot") == []
    assert {(a, t) for a, t, _ in services.tickets.tickets.stale_tickets(10)} == {
        ("other-bot", "T-1"), ("other-bot", "T-2")
    }


def test_a_store_during_a_refresh_leaves_the_ticket_marked(services):
    services.memories.listeners.clear()
    store(services, "T-1", "ann", "Order #4521 arrived damaged.")
    store(services, "T-2", "ben", "Refund request for order #4521.")
    [(_, _, old_token)] = [s for s in services.tickets.tickets.stale_tickets(10) if s[1] == "T-1"]
    # A refresh read T-1 with old_token; meanwhile a new memory links T-1 to ben as well.
    store(services, "T-1", "ben", "Ben says he is the account holder for order #4521.")
    assert services.tickets._refresh_agent("bot", [("T-1", old_token)]) == 0
    assert "T-1" in {t for _, t, _ in services.tickets.tickets.stale_tickets(10)}
    assert services.tickets.refresh() == 2
    [rel] = services.tickets.related("bot", ["T-1"])["T-1"]
    assert [r.text for r in rel.reasons][:2] == ["shared order #4521", "same customer ben"]


@pytest.mark.embedded_only
def test_tickets_from_before_migration_003_get_relations(open_services, tmp_path, monkeypatch, embedder):
    from casegraph.storage.embedded.graph import GraphStore

    every = graph_schema.migrations()
    monkeypatch.setattr(graph_schema, "migrations", lambda: [m for m in every if m.name < "003"])
    old = GraphStore(tmp_path / "data", buffer_pool_mb=64)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    vector = embedder.embed(["Order 4521 arrived damaged"])[0].tolist()
    with old.transaction() as run:  # what 0.1.0 wrote: tickets without relations
        run("CREATE (:Customer {uid: 'bot|ann', agent_id: 'bot', id: 'ann', created_at: $t})", {"t": now})
        run("CREATE (:`Order` {uid: 'bot|4521', agent_id: 'bot', id: '4521', created_at: $t})", {"t": now})
        for i, ticket in enumerate(("T-1", "T-2")):
            run(
                "CREATE (:Ticket {uid: $u, agent_id: 'bot', id: $id, status: 'open', created_at: $t, updated_at: $t})",
                {"u": f"bot|{ticket}", "id": ticket, "t": now},
            )
            run(
                "CREATE (:Memory {id: $m, agent_id: 'bot', content: 'x', importance: 0.5, tags: [], "
                "memory_type: 'episodic', metadata: '{}', entities: '[]', created_at: $t, updated_at: $t, "
                "access_count: 0, embedding: $e})",
                {"m": f"00000000-0000-0000-0000-00000000000{i}", "t": now, "e": vector},
            )
            run(
                "MATCH (m:Memory {id: $m}), (t:Ticket {uid: $u}), (c:Customer {uid: 'bot|ann'}), "
                "(o:`Order` {uid: 'bot|4521'}) CREATE (m)-[:MENTIONS]->(t), (c)-[:RAISED]->(t), (t)-[:CONCERNS]->(o)",
                {"m": f"00000000-0000-0000-0000-00000000000{i}", "u": f"bot|{ticket}"},
            )
    assert old.schema_version == "002_keyword_index"
    old.close()
    monkeypatch.undo()

    services = open_services(tmp_path / "data")
    assert services.graph.applied_migrations[0] == "003_tickets"  # and any later ones
    [rel] = services.tickets.related("bot", ["T-1"])["T-1"]
    assert rel.ticket_id == "T-2"
    assert [r.text for r in rel.reasons] == ["shared order #4521", "same customer ann", "similar wording (1.00)"]
    ticket = services.tickets.get("bot", "T-1")
    assert ticket.status == "open" and ticket.subject == "x"


@pytest.mark.parametrize(
    "staged", [False, pytest.param(True, marks=pytest.mark.embedded_only)], ids=["point-statements", "staged-join"]
)
def test_a_refresh_replaces_exactly_the_refreshed_tickets_relations(services, staged, monkeypatch):
    from casegraph.domain.ticket_models import Reason, Relation
    from casegraph.storage.tickets import TicketRefresh

    if not falkor():
        import casegraph.storage.embedded.batching

        # Many edges go through the EdgeStage join (006_edge_staging), a few through point
        # statements: the same edges either way.
        monkeypatch.setattr(casegraph.storage.embedded.batching, "STAGE_MIN_EDGES", 0 if staged else 1000)

    for ticket in ("T-1", "T-2", "T-3", "T-4"):
        store(services, ticket, "ann", f"Ticket {ticket} opened about a late parcel.")
    services.tickets.catch_up()  # the stores' own refresh, finished before the edges are saved by hand
    graph, tickets = services.graph, services.tickets.tickets

    def save(relations, at):
        refresh = [TicketRefresh(t, "tok", None, None, None, None) for t in ("T-1", "T-2")]
        tickets.save_refresh("bot", refresh, relations, at)

    def edges():
        rows = graph_rows(
            graph, "bot",
            "MATCH (a:Ticket)-[r:RELATED]->(b:Ticket) WHERE a.agent_id = 'bot' "
            "RETURN a.id, b.id, r.weight, r.reasons, r.updated_at ORDER BY a.id, b.id",
        )
        # T-3/T-4 keep the relation the store's own refresh gave them: not refreshed here.
        return [(a, b, w, reasons, utc(t)) for a, b, w, reasons, t in rows if {a, b} & {"T-1", "T-2"}]

    def rel(a, b, weight, why):
        return Relation(a, b, weight, (Reason("order", why, weight),))

    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    save([rel("T-1", "T-2", 0.5, "shared order #1"), rel("T-1", "T-3", 0.4, "shared order #2"),
          rel("T-2", "T-4", 0.3, "shared order #3")], t0)
    # T-1/T-2 unchanged (given the other way round), T-1/T-3 re-weighted, T-2/T-4 gone, T-1/T-4 new.
    save([rel("T-2", "T-1", 0.5, "shared order #1"), rel("T-1", "T-3", 0.6, "shared order #2"),
          rel("T-1", "T-4", 0.2, "shared order #4")], t1)
    assert edges() == [
        ("T-1", "T-2", 0.5, ["shared order #1"], t1),
        ("T-1", "T-3", 0.6, ["shared order #2"], t1),
        ("T-1", "T-4", 0.2, ["shared order #4"], t1),
    ]
    # Two edges for one pair (as a crash mid-write could never leave) collapse into one.
    second = ("MATCH (a:Ticket {id: 'T-1'}), (b:Ticket {id: 'T-2'}) CREATE (a)-[:RELATED {weight: 0.5, "
              "reasons: ['shared order #1'], kinds: ['order'], parts: [0.5], updated_at: $t}]->(b)")
    if falkor():
        with graph.transaction("bot") as tx:
            tx.write(second, {"t": t0})
    else:
        with graph.transaction() as run:
            run(second, {"t": t0})
    save([rel("T-1", "T-2", 0.5, "shared order #1")], t1)
    assert edges() == [("T-1", "T-2", 0.5, ["shared order #1"], t1)]
    if not falkor():
        assert graph.read("MATCH (s:EdgeStage) RETURN count(s)") == [[0]]  # emptied in the transaction
    kinds = graph_rows(graph, "bot", "MATCH (a:Ticket {id: 'T-1'})-[r:RELATED]->(:Ticket) RETURN r.kinds, r.parts")
    assert kinds == [[["order"], [0.5]]]


@pytest.mark.embedded_only
def test_a_staged_edge_write_that_fails_leaves_nothing_staged(services, monkeypatch):
    import casegraph.storage.embedded.batching
    from casegraph.errors import StorageError

    monkeypatch.setattr(casegraph.storage.embedded.batching, "STAGE_MIN_EDGES", 0)
    for ticket in ("T-1", "T-2"):
        store(services, ticket, "ann", f"Ticket {ticket} about a late parcel.")
    graph = services.graph
    before = graph.read("MATCH ()-[r:RELATED]->() RETURN count(r)")
    row = {"f": "bot|T-1", "t": "bot|T-2", "w": 0.5, "reasons": ["x"], "kinds": ["order"], "parts": [0.5]}
    with pytest.raises(StorageError), graph.transaction() as run:
        run.edges(("Ticket", "uid"), ("Ticket", "uid"), "CREATE (a)-[:RELATED {{weight: {r}.w}}]->(b)", [row])
        assert run("MATCH ()-[r:RELATED]->() RETURN count(r)") == [[before[0][0] + 1]]
        run("MATCH (s:EdgeStage) RETURN s.nope")  # fails after staging and joining
    assert graph.read("MATCH (s:EdgeStage) RETURN count(s)") == [[0]]
    assert graph.read("MATCH ()-[r:RELATED]->() RETURN count(r)") == before

