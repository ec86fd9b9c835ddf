"""Nested customer, order and session fields resolve through DataLoaders: a list of N
customers with every nested field costs the same statements for N = 20 as for N = 40, and
each nested field answers what the one-object reads answer (real app, Kùzu, model, spaCy)."""

from __future__ import annotations

from datetime import UTC, datetime

from casegraph.domain.models import StoreRequest
from casegraph.services import Services

from tests.api.statements import StatementCounter
from tests.clock import FakeClock
from tests.conftest import LiveServer, make_settings

AGENT = "bot"
# Every nested field of Session, Customer and Order, and the ticket and memory fields under them.
NESTED = """{ sessions(agentId: "bot", limit: 1000) {
  id memories { id content } summaryMemory { id kind }
  customer { id name
    memories { id orders { id } tickets { id } customer { id } }
    aliases { kind key value source }
    orders { id memories { id content } }
    tickets { id status customer { id } }
    sessions { id active memories { id } customer { id } }
    timeline { kind summary memory { id } session { id } ticket { id } }
  } } }"""


def add_customers(services, first: int, count: int) -> None:
    """``count`` customers, each with one ended session holding a memory that names its
    order, its ticket and its e-mail (the end adds a summary memory)."""
    memories = services.memories
    sessions = [memories.session_start(AGENT, f"cust-{i}") for i in range(first, first + count)]
    memories.store_batch([
        StoreRequest(
            agent_id=AGENT, session_id=s.id, tags=(f"customer:cust-{i}",),
            content=f"Order #{5000 + i} on ticket T-{700 + i} has not arrived; write to cust{i}@example.com.",
        )
        for i, s in zip(range(first, first + count), sessions, strict=True)
    ])
    for s in sessions:
        memories.session_end(s.id, "waiting for the courier", agent_id=AGENT)


def statements_for(server) -> tuple[int, list[dict]]:
    # The stores' relation refresh runs on its own thread: finished before the count.
    server.services.tickets.catch_up()
    with StatementCounter(server.services.graph) as counter:
        body = server.gql(NESTED)
    assert "errors" not in body, body
    return counter.count, body["data"]["sessions"]


def test_a_list_of_customers_with_nested_fields_costs_statements_independent_of_its_length(live_server):
    # Both sizes are past the 16 keys up to which the store reads key by key (a primary-key
    # probe each, cheaper than a join at small sizes); past them one statement serves all keys.
    add_customers(live_server.services, 0, 20)
    few, sessions = statements_for(live_server)
    assert len(sessions) == 20
    add_customers(live_server.services, 20, 20)
    many, sessions = statements_for(live_server)
    assert len(sessions) == 40
    assert many == few, (few, many)

    # What came back is each customer's own data, as the one-object reads give it.
    services = live_server.services
    for s in sessions:
        c = s["customer"]
        i = int(c["id"].removeprefix("cust-"))
        stored = services.memories.session_memories(s["id"], agent_id=AGENT)
        assert [m["id"] for m in s["memories"]] == [m.id for m in stored]
        assert [m["content"] for m in s["memories"]] == [stored[0].content]
        assert s["summaryMemory"]["kind"] == "summary"
        assert [m["id"] for m in c["memories"]] == [m.id for m in services.graph.customer_memories(
            AGENT, c["id"], services.memories.clock())]
        assert c["memories"][-1]["orders"] == [{"id": str(5000 + i)}]
        assert {"id": f"T-{700 + i}"} in c["memories"][-1]["tickets"]
        assert all(m["customer"] == {"id": c["id"]} for m in c["memories"])
        assert ("email", f"cust{i}@example.com") in {(a["kind"], a["value"]) for a in c["aliases"]}
        assert c["orders"] == [{"id": str(5000 + i), "memories": [
            {"id": m.id, "content": m.content} for m in sorted(
                (m for m in services.graph.customer_memories(AGENT, c["id"], services.memories.clock())
                 if str(5000 + i) in m.orders), key=lambda m: (m.created_at, m.id))]}]
        assert c["tickets"] == [{"id": f"T-{700 + i}", "status": "OPEN", "customer": {"id": c["id"]}}]
        assert c["sessions"] == [{"id": s["id"], "active": False, "memories": [{"id": stored[0].id}],
                                  "customer": {"id": c["id"]}}]
        assert [(e["kind"], e["summary"]) for e in c["timeline"]] == [
            ("session_started", "session started"),
            ("ticket_opened", f"T-{700 + i} opened: {stored[0].content}"),
            ("memory", stored[0].content),
            ("memory", "waiting for the courier"),
            ("session_ended", "session ended: waiting for the courier"),
        ]


def test_nested_fields_leave_out_expired_memories(embedder, extractor, tmp_path):
    clock = FakeClock(datetime.now(UTC))
    services = Services.open(make_settings(tmp_path / "data"), embedder=embedder, extractor=extractor, clock=clock)
    try:
        with LiveServer(services, services.settings) as server:
            memories = services.memories
            session = memories.session_start(AGENT, "jane")
            kept, expiring = memories.store_batch([
                StoreRequest(agent_id=AGENT, session_id=session.id, tags=("customer:jane",),
                             content="Order #4521 arrived damaged."),
                StoreRequest(agent_id=AGENT, session_id=session.id, tags=("customer:jane",),
                             content="Order #4521: call back at five.", ttl_seconds=60),
            ])
            query = """{ customer(agentId: "bot", id: "jane") { memories { id } orders { memories { id } }
              sessions { memories { id } } } }"""
            c = server.gql(query)["data"]["customer"]
            assert {m["id"] for m in c["memories"]} == {kept.id, expiring.id}
            assert {m["id"] for m in c["orders"][0]["memories"]} == {kept.id, expiring.id}
            assert [m["id"] for m in c["sessions"][0]["memories"]] == [kept.id, expiring.id]
            clock.advance(hours=1)  # the second one has expired: no field returns it
            c = server.gql(query)["data"]["customer"]
            assert [m["id"] for m in c["memories"]] == [kept.id]
            assert [m["id"] for m in c["orders"][0]["memories"]] == [kept.id]
            assert [m["id"] for m in c["sessions"][0]["memories"]] == [kept.id]
    finally:
        services.close()
