"""Tickets over GraphQL against the real app (uvicorn on loopback, real Kùzu, model, spaCy)."""

from __future__ import annotations

import httpx
import pytest
from casegraph.services import Services

from tests.api.statements import StatementCounter
from tests.conftest import LiveServer, make_settings

AGENT = "bot"
STORE_BATCH = "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id tickets { id } } }"

# Texts avoid names and brands so spaCy adds no entities the expectations do not list;
# products come from product: tags. Semantic similarity is switched off (threshold 0.99)
# in the scenario so every weight below is exact; it has a test of its own.
SCENARIO = [
    ("T-1042", "jane-doe", "The parcel for order #4521 arrived with a cracked filter housing.", ["product:AquaPure 300"]),
    ("T-1043", "jane-doe", "Refund approved for order #4521 after the cracked housing report.", []),
    ("T-1050", "jane-doe", "Asked how to change the delivery address on the account.", []),
    ("T-2000", "bob", "The filter leaks from the bottom seal after two days.", ["product:AquaPure 300"]),
    ("T-2001", "carol", "Water drips from the base of the filter unit.", ["product:AquaPure 300"]),
    ("T-2002", "bob", "Wants a copy of the invoice for last month.", []),
    ("T-3000", "dan", "The password reset e-mail never arrived.", []),
]

RELATED_QUERY = """
query($id: String!) {
  ticket(agentId: "bot", id: $id) {
    id status subject
    related(depth: 2, minWeight: 0.15) {
      ticket { id status subject customer { id } orders { id } memories { id content } events { status } }
      weight hops via { id status } reasons
    }
  }
}"""


def store_scenario(server, rows=SCENARIO, agent=AGENT):
    inputs = [
        {"agentId": agent, "content": text, "ticketId": ticket, "tags": [f"customer:{cust}", *tags]}
        for ticket, cust, text, tags in rows
    ]
    body = server.gql(STORE_BATCH, {"is": inputs})
    assert "errors" not in body, body
    return body["data"]["storeBatch"]


def code_of(body: dict) -> str:
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


OTHER_AGENT_ROW = ("T-1042", "jane-doe", "Different agent, order #4521 again.", [])


@pytest.fixture(scope="module")
def shared(embedder, extractor, tmp_path_factory):
    """One server for the tests that only read (and the requests that must change nothing)."""
    settings = make_settings(tmp_path_factory.mktemp("tickets") / "data", ticket_similarity_threshold=0.99)
    services = Services.open(settings, embedder=embedder, extractor=extractor)
    try:
        with LiveServer(services, settings) as server:
            store_scenario(server)
            store_scenario(server, [OTHER_AGENT_ROW], agent="other-bot")
            yield server
    finally:
        services.close()


@pytest.fixture
def server(live_server_factory):
    """A server of its own, for tests that change tickets."""
    server = live_server_factory(ticket_similarity_threshold=0.99)
    store_scenario(server)
    return server


def test_related_tickets_within_two_hops_with_reasons_in_one_request(shared):
    """'Tickets related to T-1042 within two hops, with reasons' is one GraphQL request."""
    body = shared.gql(RELATED_QUERY, {"id": "T-1042"})
    assert "errors" not in body, body
    t = body["data"]["ticket"]
    assert t["status"] == "OPEN"
    assert t["subject"] == "The parcel for order #4521 arrived with a cracked filter housing."
    got = [(r["ticket"]["id"], r["weight"], r["hops"], [v["id"] for v in r["via"]], r["reasons"]) for r in t["related"]]
    assert got == [
        ("T-1043", 0.9, 1, [], ["shared order #4521", "same customer jane-doe"]),
        ("T-1050", 0.5, 1, [], ["same customer jane-doe"]),
        ("T-2000", 0.4, 1, [], ["shared product AquaPure 300"]),
        ("T-2001", 0.4, 1, [], ["shared product AquaPure 300"]),
        ("T-2002", 0.2, 2, ["T-2000"], ["via T-2000", "same customer bob"]),
    ]
    first = t["related"][0]["ticket"]
    assert first["customer"] == {"id": "jane-doe"} and first["orders"] == [{"id": "4521"}]
    assert [m["content"] for m in first["memories"]] == [SCENARIO[1][2]]
    # Without the second hop or above a higher minimum weight, less comes back.
    one_hop = shared.gql('{ ticket(agentId: "bot", id: "1042") { related(minWeight: 0.45) { ticket { id } } } }')
    assert [r["ticket"]["id"] for r in one_hop["data"]["ticket"]["related"]] == ["T-1043", "T-1050"]


def test_nested_ticket_queries_cost_the_same_number_of_queries_for_more_tickets(server):
    graph = server.services.graph
    # The stores' relation refresh runs on its own thread: counted apart from the reads.
    server.services.tickets.catch_up()
    with StatementCounter(graph) as few:
        assert "errors" not in server.gql(RELATED_QUERY, {"id": "T-1042"})
    # Six more of jane's tickets, each with its own order: three times as many related tickets.
    store_scenario(server, [
        (f"T-50{i}", "jane-doe", f"Question about order #{7000 + i} and its delivery date.", []) for i in range(6)
    ])
    server.services.tickets.catch_up()
    with StatementCounter(graph) as many:
        body = server.gql(RELATED_QUERY, {"id": "T-1042"})
    assert len(body["data"]["ticket"]["related"]) == 11
    assert many.count == few.count <= 12, (few.count, many.count)


def test_related_edges_follow_stores_and_forgets(server):
    q = '{ ticket(agentId: "bot", id: "T-3000") { related { ticket { id } reasons } } }'
    assert server.gql(q)["data"]["ticket"]["related"] == []
    [new] = store_scenario(server, [("T-3001", "dan", "Second reset e-mail also missing.", [])])
    related = server.gql(q)["data"]["ticket"]["related"]
    assert related == [{"ticket": {"id": "T-3001"}, "reasons": ["same customer dan"]}]
    forget = 'mutation($id: ID!) { forget(agentId: "bot", id: $id) }'
    assert server.gql(forget, {"id": new["id"]})["data"]["forget"] is True
    # T-3001 still exists (raised by dan), so the customer relation stays; a memory that
    # named both tickets adds a reason, and forgetting it takes the reason away again.
    both = server.gql(
        'mutation { store(input: {agentId: "bot", content: "T-3000 and T-3001 are the same problem."}) { id } }'
    )["data"]["store"]
    reasons = server.gql(q)["data"]["ticket"]["related"][0]["reasons"]
    assert reasons == ["named together in one memory", "same customer dan"]
    server.gql(forget, {"id": both["id"]})
    assert server.gql(q)["data"]["ticket"]["related"][0]["reasons"] == ["same customer dan"]


def test_update_ticket_status_events_and_timeline(server):
    upd = """mutation($s: TicketStatus, $n: String) {
      updateTicket(agentId: "bot", id: "T-1042", status: $s, note: $n, channel: "email") {
        id status channel events { status previous note } } }"""
    body = server.gql(upd, {"s": "PENDING", "n": "waiting for the courier"})
    assert body["data"]["updateTicket"] == {
        "id": "T-1042", "status": "PENDING", "channel": "email",
        "events": [{"status": "PENDING", "previous": "OPEN", "note": "waiting for the courier"}],
    }
    server.gql(upd, {"s": "RESOLVED", "n": None})
    timeline = server.gql(
        '{ customer(agentId: "bot", id: "jane-doe") { timeline { kind summary ticket { id } memory { id } } } }'
    )["data"]["customer"]["timeline"]
    kinds = [(e["kind"], (e["ticket"] or {}).get("id")) for e in timeline]
    # The three memories were stored in one batch (same time): opened-before-memory per ticket.
    assert kinds.count(("ticket_opened", "T-1042")) == 1 and kinds.count(("memory", None)) == 3
    assert kinds[-2:] == [("ticket_status", "T-1042"), ("ticket_status", "T-1042")]
    assert timeline[-2]["summary"] == "T-1042 open → pending: waiting for the courier"
    assert timeline[-1]["summary"] == "T-1042 pending → resolved"
    counts = server.gql('{ ticketInsights(agentId: "bot") { byStatus { status count } } }')
    assert counts["data"]["ticketInsights"]["byStatus"] == [
        {"status": "OPEN", "count": 6}, {"status": "PENDING", "count": 0},
        {"status": "RESOLVED", "count": 1}, {"status": "CLOSED", "count": 0},
    ]
    assert server.gql('{ tickets(agentId: "bot", status: RESOLVED) { id } }')["data"]["tickets"] == [{"id": "T-1042"}]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ('{ ticket(agentId: "bot", id: "T-9999") { id } }', "TICKET_NOT_FOUND"),
        ('{ ticket(agentId: "bot", id: "nonsense") { id } }', "INVALID_TICKET_ID"),
        ('{ ticket(agentId: "bot", id: "T-1042") { related(depth: 4) { weight } } }', "INVALID_DEPTH"),
        ('{ ticket(agentId: "bot", id: "T-1042") { related(minWeight: 1.5) { weight } } }', "INVALID_WEIGHT"),
        ('mutation { updateTicket(agentId: "bot", id: "T-1042") { id } }', "NOTHING_TO_UPDATE"),
        ('mutation { updateTicket(agentId: "bot", id: "T-1042", status: DONE) { id } }', "GRAPHQL_VALIDATION_FAILED"),
        ('mutation { updateTicket(agentId: "bot", id: "T-77", status: CLOSED) { id } }', "TICKET_NOT_FOUND"),
        ('mutation { store(input: {agentId: "bot", content: "x", ticketId: "abc"}) { id } }', "INVALID_TICKET_ID"),
        ('{ path(agentId: "bot", from: "T-1042", to: "planet:mars") { length } }', "INVALID_NODE_REF"),
        ('{ path(agentId: "bot", from: "T-1042", to: "customer:nobody") { length } }', "NODE_NOT_FOUND"),
        ('{ graph(agentId: "bot", around: "T-1042", depth: 5) { truncated } }', "INVALID_DEPTH"),
        ('{ ticketInsights(agentId: "bot") { topEntities(kind: "planet") { key } } }', "INVALID_KIND"),
        ('{ customer(agentId: "bot", id: "jane-doe") { timeline(limit: 0) { kind } } }', "INVALID_LIMIT"),
    ],
)
def test_bad_ticket_requests_get_codes_and_change_nothing(shared, query, code):
    before = shared.services.graph.count_memories()
    assert code_of(shared.gql(query)) == code
    assert shared.services.graph.count_memories() == before
    status = shared.gql('{ ticket(agentId: "bot", id: "T-1042") { status events { status } } }')
    assert status["data"]["ticket"] == {"status": "OPEN", "events": []}


@pytest.mark.parametrize(
    ("subject", "message"),
    [("damaged\x00parcel", "subject must not contain NUL characters"),
     ("x" * 201, "subject must be at most 200 characters")],
)
def test_a_bad_ticket_subject_is_refused_with_what_is_wrong_and_changes_nothing(shared, subject, message):
    update = "mutation($s: String!) { updateTicket(agentId: \"bot\", id: \"T-1042\", subject: $s) { id } }"
    body = shared.gql(update, {"s": subject})
    assert code_of(body) == "INVALID_INPUT"
    assert body["errors"][0]["message"] == message
    after = shared.gql('{ ticket(agentId: "bot", id: "T-1042") { subject events { status } } }')["data"]["ticket"]
    assert after["subject"] != subject and after["events"] == []


def test_path_and_graph(shared):
    path = shared.gql(
        '{ path(agentId: "bot", from: "customer:jane-doe", to: "customer:bob") '
        "{ length nodes { id kind label } edges { source target type weight reasons } } }"
    )["data"]["path"]
    assert path["length"] == 3
    assert [n["id"] for n in path["nodes"]] == ["customer:jane-doe", "ticket:T-1042", "ticket:T-2000", "customer:bob"]
    assert [e["type"] for e in path["edges"]] == ["RAISED", "RELATED", "RAISED"]
    assert path["edges"][1]["reasons"] == ["shared product AquaPure 300"] and path["edges"][1]["weight"] == 0.4
    assert path["edges"][2] == {
        "source": "customer:bob", "target": "ticket:T-2000", "type": "RAISED", "weight": None, "reasons": [],
    }
    none = shared.gql('{ path(agentId: "bot", from: "T-1042", to: "T-3000") { length } }')
    assert none["data"]["path"] is None

    g = shared.gql(
        '{ graph(agentId: "bot", around: "customer:jane-doe", depth: 2) '
        "{ truncated nodes { id kind } edges { source target type } } }"
    )["data"]["graph"]
    ids = {n["id"] for n in g["nodes"]}
    assert {"ticket:T-1042", "ticket:T-1043", "ticket:T-1050", "order:4521", "ticket:T-2000"} <= ids
    assert "ticket:T-3000" not in ids and not g["truncated"]
    assert {"source": "customer:jane-doe", "target": "ticket:T-1042", "type": "RAISED"} in g["edges"]
    assert all(e["source"] in ids and e["target"] in ids for e in g["edges"])
    small = shared.gql('{ graph(agentId: "bot", around: "customer:jane-doe", depth: 2, limit: 3) { truncated nodes { id } } }')
    assert small["data"]["graph"]["truncated"] and len(small["data"]["graph"]["nodes"]) == 3


def test_insights(shared):
    body = shared.gql(
        '{ ticketInsights(agentId: "bot") { topProducts { key value ticketCount } '
        "repeatCustomers { customerId ticketCount customer { id } } } }"
    )["data"]["ticketInsights"]
    assert body["topProducts"] == [{"key": "aquapure 300", "value": "AquaPure 300", "ticketCount": 3}]
    assert body["repeatCustomers"] == [
        {"customerId": "jane-doe", "ticketCount": 3, "customer": {"id": "jane-doe"}},
        {"customerId": "bob", "ticketCount": 2, "customer": {"id": "bob"}},
    ]


def test_agents_never_see_each_others_tickets(shared):
    # "other-bot" has a T-1042 of its own, for jane-doe and order #4521 too (OTHER_AGENT_ROW).
    other = shared.gql('{ ticket(agentId: "other-bot", id: "T-1042") { related(depth: 3) { ticket { id } } } }')
    assert other["data"]["ticket"]["related"] == []
    assert code_of(shared.gql('{ ticket(agentId: "other-bot", id: "T-1043") { id } }')) == "TICKET_NOT_FOUND"
    assert shared.gql('{ path(agentId: "other-bot", from: "T-1042", to: "order:4521") { length } }')["data"]["path"]["length"] == 1
    assert code_of(shared.gql('{ path(agentId: "other-bot", from: "T-1042", to: "customer:bob") { length } }')) == "NODE_NOT_FOUND"
    g = shared.gql('{ graph(agentId: "other-bot", around: "T-1042", depth: 3) { nodes { id } } }')["data"]["graph"]
    assert {n["id"] for n in g["nodes"]} == {
        "ticket:T-1042", "customer:jane-doe", "order:4521", *(f"memory:{m}" for m in _memory_ids(shared, "other-bot")),
    }
    # And the first agent's view did not change.
    assert len(shared.gql(RELATED_QUERY, {"id": "T-1042"})["data"]["ticket"]["related"]) == 5


def _memory_ids(server, agent):
    body = server.gql('query($a: String!) { ticket(agentId: $a, id: "T-1042") { memories { id } } }', {"a": agent})
    return [m["id"] for m in body["data"]["ticket"]["memories"]]


def test_similar_wording_relates_tickets_that_share_nothing_else(live_server):
    rows = [
        ("T-1", "ann", "My parcel never arrived and the tracking has shown no movement for ten days.", []),
        ("T-2", "ben", "The package still has not been delivered; tracking has not updated in over a week.", []),
        ("T-3", "cat", "How do I change the password on my account?", []),
    ]
    store_scenario(live_server, rows)
    q = '{ ticket(agentId: "bot", id: "T-1") { related { ticket { id } weight reasonDetails { kind weight } } } }'
    [rel] = live_server.gql(q)["data"]["ticket"]["related"]
    assert rel["ticket"] == {"id": "T-2"} and rel["reasonDetails"][0]["kind"] == "similar"
    assert 0.3 < rel["weight"] == rel["reasonDetails"][0]["weight"] < 0.5
    assert httpx.get(f"{live_server.url}/health").json()["schemaVersion"] >= "003_tickets"
