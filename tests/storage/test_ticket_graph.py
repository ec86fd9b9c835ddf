"""The TicketStore on a real store, through its interface only: tickets, paging, events,
stale marks across agents, a refresh's write, exploration (paths around noise entities,
hop limits, edge directions) and the aggregates. On both engines (tests/storage/backends.py).

Each test's world (agent A): ann raised T-1 about order 4521 and mentioned $20; bob raised T-2 and
mentioned $20 too, and in another memory order 4521. Agent B has a T-1 of ann's of its own.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from casegraph.domain.models import Entity
from casegraph.domain.ticket_models import NodeRef, Reason, Relation, TicketEvent
from casegraph.storage.tickets import TicketRefresh

from tests.storage.backends import open_store, tickets_of
from tests.storage.records import NOW, A, B, make_memory, rec, vec

MONEY = Entity("money", "$20", "20")


@pytest.fixture
def world(tmp_path):
    store = open_store(tmp_path / "store", dimension=4)
    m1 = make_memory("Ann: order #4521 for T-1, charged $20.", customer_id="ann")
    m2 = make_memory("Bob: T-2, charged $20.", customer_id="bob", created_at=NOW + timedelta(seconds=1))
    m3 = make_memory("Bob also ordered #4521.", customer_id="bob")
    other = make_memory("Agent B's ann about her T-1.", agent=B, customer_id="ann")
    store.write_memories([
        rec(m1, vec(1, 0, 0, 0), customer_ids=("ann",), orders=("4521",), tickets=("T-1",), others=(MONEY,)),
        rec(m2, vec(0, 1, 0, 0), customer_ids=("bob",), tickets=("T-2",), others=(MONEY,)),
        rec(m3, vec(0, 0, 1, 0), customer_ids=("bob",), orders=("4521",)),
        rec(other, vec(1, 0, 0, 0), customer_ids=("ann",), tickets=("T-1",)),
    ])
    yield store, tickets_of(store), {"m1": m1.id, "m2": m2.id, "m3": m3.id, "other": other.id}
    store.close()


def refs(nodes):
    return [str(n.ref) for n in nodes]


def test_tickets_and_their_links_are_read_per_agent(world):
    _, tickets, ids = world
    found = tickets.get_tickets(A, ["T-1", "T-2", "T-9"])
    assert sorted(found) == ["T-1", "T-2"] and found["T-1"].status == "open" and found["T-1"].agent_id == A
    assert found["T-2"].subject == "Bob: T-2, charged $20."
    assert tickets.ticket_orders(A, ["T-1", "T-2"]) == {"T-1": ["4521"]}
    assert tickets.ticket_customers(A, ["T-1", "T-2"]) == {"T-1": ["ann"], "T-2": ["bob"]}
    assert tickets.ticket_memory_ids(A, ["T-1"], NOW) == {"T-1": [ids["m1"]]}
    assert tickets.ticket_memory_ids(B, ["T-1"], NOW) == {"T-1": [ids["other"]]}
    assert tickets.tickets_of_memories(A, [ids["m1"], ids["m3"], ids["other"]]) == {ids["m1"]: ["T-1"]}
    assert [(s.ticket_id, s.memory_id) for s in tickets.ticket_sources(A, ["T-1"])] == [("T-1", ids["m1"])]
    [source] = tickets.ticket_sources(A, ["T-2"])
    assert source.embedding == pytest.approx([0, 1, 0, 0]) and source.created_at == NOW + timedelta(seconds=1)
    assert tickets.get_tickets("nobody", ["T-1"]) == {} and tickets.relations("nobody", ["T-1"], 0) == {}


def test_list_tickets_pages_newest_first_by_customer(world):
    _, tickets, _ = world

    def page(**kw):
        args = {"status": None, "customer_id": None, "limit": 10, "offset": 0, **kw}
        return [t.id for t in tickets.list_tickets(A, **args)]

    assert page() == ["T-2", "T-1"]
    assert page(offset=1, limit=1) == ["T-1"] and page(offset=2) == []
    assert page(customer_id="bob") == ["T-2"] and page(status="closed") == []


def test_every_agents_stale_tickets_are_listed_and_a_refresh_clears_only_unchanged_marks(world):
    _, tickets, _ = world
    stale = tickets.stale_tickets(10)
    assert [(a, t) for a, t, _ in stale] == [(A, "T-1"), (A, "T-2"), (B, "T-1")]
    assert tickets.stale_tickets(2) == stale[:2]
    token = {(a, t): tok for a, t, tok in stale}
    refreshed = [
        TicketRefresh("T-1", token[(A, "T-1")], [0.6, 0.8, 0, 0], 0.5, NOW - timedelta(days=1), NOW),
        TicketRefresh("T-2", "a token since replaced", None, None, None, None),
    ]
    similar = Relation("T-2", "T-1", 0.4, (Reason("similar", "similar wording (0.40)", 0.4),))
    assert tickets.save_refresh(A, refreshed, [similar], NOW) == 1
    assert [(a, t) for a, t, _ in tickets.stale_tickets(10)] == [(A, "T-2"), (B, "T-1")]
    # The edge is written whichever way round it was given, and read from both ends.
    [rel] = tickets.relations(A, ["T-1"], 0.4)["T-1"]
    assert (rel.a, rel.b, rel.weight, rel.reasons) == ("T-1", "T-2", 0.4, similar.reasons)
    assert tickets.relations(A, ["T-2"], 0.0)["T-2"][0].b == "T-1" and tickets.relations(A, ["T-1"], 0.5) == {}
    assert sorted(tickets.similar_neighbours(A, ["T-1", "T-2"])) == [("T-1", "T-2"), ("T-2", "T-1")]
    vectors = tickets.ticket_vectors(A, ["T-1", "T-2"])
    assert vectors["T-1"][0] == pytest.approx([0.6, 0.8, 0, 0]) and vectors["T-1"][1] == 0.5
    assert vectors["T-2"] == (None, None)
    # The first memory's time opens the ticket; a later one never moves updated_at back.
    t1 = tickets.get_tickets(A, ["T-1"])["T-1"]
    assert t1.created_at == NOW - timedelta(days=1) and t1.updated_at == NOW
    # Another refresh replaces the refreshed tickets' edges: none wanted, none left.
    assert tickets.save_refresh(A, [TicketRefresh("T-2", stale[1][2], None, None, None, None)], [], NOW) == 1
    assert tickets.relations(A, ["T-1", "T-2"], 0) == {} and tickets.stale_tickets(10) == [stale[2]]


def test_an_update_sets_fields_and_records_its_event(world):
    _, tickets, _ = world
    event = TicketEvent("ev-1", "T-2", "status", "pending", "open", None, NOW + timedelta(minutes=1))
    tickets.update_ticket(A, "T-2", fields={"status": "pending", "channel": "email", "updated_at": event.at}, event=event)
    t2 = tickets.get_tickets(A, ["T-2"])["T-2"]
    assert (t2.status, t2.channel, t2.updated_at) == ("pending", "email", event.at)
    assert tickets.ticket_events(A, ["T-1", "T-2"]) == {"T-2": [event]}
    assert [c.count for c in tickets.status_counts(A)] == [1, 1, 0, 0]
    tickets.update_ticket(A, "T-2", fields={"status": "open", "updated_at": event.at}, event=None)
    assert [c.count for c in tickets.status_counts(A)] == [2, 0, 0, 0]
    assert [t.id for t in tickets.list_tickets(B, status="open", customer_id="ann", limit=5, offset=0)] == ["T-1"]


def test_a_path_never_passes_a_money_or_date_entity_and_keeps_to_its_hops(world):
    _, tickets, ids = world
    ann, t2 = NodeRef("customer", "ann"), NodeRef("ticket", "T-2")
    nodes, edges = tickets.shortest_path(A, ann, t2, 3)
    assert refs(nodes) == ["customer:ann", "order:4521", "customer:bob", "ticket:T-2"]
    assert [(str(e.source), str(e.target), e.type) for e in edges] == [
        ("customer:ann", "order:4521", "PLACED"), ("customer:bob", "order:4521", "PLACED"),
        ("customer:bob", "ticket:T-2", "RAISED"),
    ]
    assert tickets.shortest_path(A, ann, t2, 2) is None
    # Two hops through $20 would join the memories; the walk takes three around it.
    m1, m2 = NodeRef("memory", ids["m1"]), NodeRef("memory", ids["m2"])
    nodes, edges = tickets.shortest_path(A, m1, m2, 8)
    assert refs(nodes) == [str(m1), "order:4521", "customer:bob", str(m2)] and len(edges) == 3
    assert tickets.shortest_path(A, m1, m2, 2) is None
    # A noise entity may be where a path starts.
    nodes, _ = tickets.shortest_path(A, NodeRef("entity", "money:20"), t2, 2)
    assert refs(nodes) == ["entity:money:20", f"memory:{ids['m2']}", "ticket:T-2"]
    assert tickets.shortest_path(A, NodeRef("customer", "nobody"), t2, 3) is None
    assert len(tickets.shortest_path(B, ann, NodeRef("ticket", "T-1"), 1)[1]) == 1


def test_neighbours_are_the_walkable_edges_with_their_directions(world):
    _, tickets, ids = world
    found = tickets.neighbours(A, [NodeRef("ticket", "T-1"), NodeRef("memory", ids["m1"])])
    edges = {(str(e.source), str(e.target), e.type) for e, _ in found}
    m1 = f"memory:{ids['m1']}"
    assert edges == {
        ("customer:ann", "ticket:T-1", "RAISED"), ("ticket:T-1", "order:4521", "CONCERNS"), (m1, "ticket:T-1", "MENTIONS"),
        (m1, "customer:ann", "ABOUT"), (m1, "order:4521", "MENTIONS"),
    }
    shown = {str(n.ref): n for _, n in found}
    assert shown["order:4521"].table == "Order" and shown[m1].table == "Memory"
    # As stored, and the same on both engines (FalkorDB's Memory.key, its vector key, is not shown).
    assert shown[m1].properties["content"] == "Ann: order #4521 for T-1, charged $20."
    assert shown[m1].properties["key"] is None and shown[m1].properties["importance"] == 0.5
    node = tickets.find_node(A, NodeRef("ticket", "T-1"))
    assert (node.table, node.properties["status"], node.properties["subject"]) == ("Ticket", "open", "Ann: order #4521 for T-1, charged $20.")
    assert tickets.find_node(A, NodeRef("entity", "money:20")).properties["value"] == "$20"
    assert tickets.find_node(B, NodeRef("customer", "bob")) is None


def test_aggregates(world):
    _, tickets, _ = world
    assert [(c.key, c.count) for c in tickets.top_entities(A, "money", 5)] == [("money:20", 2)]
    assert tickets.top_entities(A, None, 5) == []
    assert [(c.key, c.count) for c in tickets.repeat_customers(A, 1, 5)] == [("ann", 1), ("bob", 1)]
    assert tickets.repeat_customers(A, 2, 5) == []
    shared = tickets.shared_keys(A, ["T-1"], "entity", 5, ["money"])
    assert shared == [("T-1", "T-2", "money", "20", "$20")]
    assert tickets.shared_keys(A, ["T-1"], "order", 5) == [] and tickets.mentioned_together(A, ["T-1"]) == []


def test_shared_keys_skip_hubs_and_read_many_tickets_alike(tmp_path):
    """Keys shared by at most ``hub_limit`` tickets relate them, busier ones do not; the same
    answers for a few tickets as for more than a point-statement list holds (20 here)."""
    store = open_store(tmp_path / "keys", dimension=4)
    tickets = tickets_of(store)
    hub = Entity("product", "blender", "blender")
    records = []
    for i in range(20):
        # Pairs of tickets share an order, a customer and a tracking number; all share the hub.
        pair = i // 2
        m = make_memory(f"memory {i}", customer_id=f"c{pair}")
        others = (hub, Entity("tracking", f"TRK{pair}", f"trk{pair}"), MONEY)
        records.append(rec(m, vec(1, 0, 0, 0), customer_ids=(f"c{pair}",), orders=(str(5000 + pair),),
                           tickets=(f"T-{i:02d}",), others=others))
    # Two tickets named together in one memory; one memory of agent B with the same keys.
    records.append(rec(make_memory("both"), vec(0, 1, 0, 0), tickets=("T-00", "T-19")))
    records.append(rec(make_memory("agent b", agent=B, customer_id="c0"), vec(1, 0, 0, 0), customer_ids=("c0",),
                       orders=("5000",), tickets=("T-01",), others=(hub,)))
    store.write_memories(records)
    ids = [f"T-{i:02d}" for i in range(20)]
    kinds = ["product", "tracking", "money"]

    def expected(i):
        x = f"T-{i ^ 1:02d}"
        return {(ids[i], x, "order", str(5000 + i // 2), str(5000 + i // 2)),
                (ids[i], x, "customer", f"c{i // 2}", f"c{i // 2}"),
                (ids[i], x, "tracking", f"trk{i // 2}", f"TRK{i // 2}")}

    for few in (ids[:1], ids[:3], ids):
        got = set()
        for kind in ("order", "customer", "entity"):
            found = tickets.shared_keys(A, few, kind, 5, kinds)
            assert len(found) == len(set(found))  # each once
            got |= set(found)
        assert got == set().union(*(expected(i) for i in range(len(few))))
        # The product and the money are shared by 20 tickets: hubs at 5, not at 20.
        assert not tickets.shared_keys(A, few, "entity", 5, ["product", "money"])
    assert {(t, x) for t, x, *_ in tickets.shared_keys(A, ids, "entity", 20, ["product"])} == {
        (t, x) for t in ids for x in ids if t != x
    }
    assert sorted(tickets.mentioned_together(A, ids)) == [("T-00", "T-19"), ("T-19", "T-00")]
    assert tickets.shared_keys(B, ["T-01"], "order", 5) == []
    store.close()
