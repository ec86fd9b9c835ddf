"""Every paged list, over real HTTP (GraphQL and the Dakera REST routes), refuses a bad
page the same way: a negative or too deep ``offset`` is ``INVALID_OFFSET``, a ``limit``
outside its range is ``INVALID_LIMIT``, each with a readable message, and nothing changes.
The bounds are ``check_page`` / ``check_limit`` in app/domain/validation.py."""

from __future__ import annotations

import httpx
import pytest
from casegraph.domain.validation import MAX_OFFSET, MAX_PAGE
from casegraph.services import Services

from tests.conftest import LiveServer, make_settings

AGENT = "bot"
CUSTOMER = "jane-doe"
TICKET = "T-1042"

# Each GraphQL list with its page arguments; {page} is replaced by the arguments under test.
GRAPHQL_PAGED = {
    "sessions": '{ sessions(agentId: "bot", {page}) { id } }',
    "tickets": '{ tickets(agentId: "bot", {page}) { id } }',
}
GRAPHQL_LIMITED = {
    "sessions": '{ sessions(agentId: "bot", {page}) { id } }',
    "tickets": '{ tickets(agentId: "bot", {page}) { id } }',
    "customer.memories": '{ customer(agentId: "bot", id: "jane-doe") { memories({page}) { id } } }',
    "customer.timeline": '{ customer(agentId: "bot", id: "jane-doe") { timeline({page}) { kind } } }',
    "ticket.memories": '{ ticket(agentId: "bot", id: "T-1042") { memories({page}) { id } } }',
    "ticket.related": '{ ticket(agentId: "bot", id: "T-1042") { related({page}) { weight } } }',
}
REST_PAGED = {
    "GET /v1/sessions": "/v1/sessions?agent_id=bot&{page}",
    "GET /v1/agents/{agent_id}/sessions": "/v1/agents/bot/sessions?{page}",
    "GET /v1/sessions/{session_id}/memories": "/v1/sessions/{session}/memories?{page}",
}


@pytest.fixture(scope="module")
def shared(embedder, extractor, tmp_path_factory):
    """One server with a session, a ticket and a customer that every list has rows for."""
    settings = make_settings(tmp_path_factory.mktemp("paging") / "data")
    services = Services.open(settings, embedder=embedder, extractor=extractor)
    try:
        with LiveServer(services, settings) as server:
            session = services.memories.session_start(AGENT, customer_id=CUSTOMER)
            store = "mutation($i: StoreMemoryInput!) { store(input: $i) { id } }"
            for text in ("The parcel arrived damaged.", "A refund was approved."):
                body = server.gql(store, {"i": {"agentId": AGENT, "content": text, "sessionId": session.id,
                                                "ticketId": TICKET, "customerId": CUSTOMER}})
                assert "errors" not in body, body
            server.session_id = session.id
            yield server
    finally:
        services.close()


def snapshot(server: LiveServer) -> dict:
    """What a bad page must leave as it was."""
    body = server.gql('{ sessions(agentId: "bot") { id active memoryCount } tickets(agentId: "bot") '
                      '{ id status } customer(agentId: "bot", id: "jane-doe") { memories { id content } } }')
    assert "errors" not in body, body
    return {"graphql": body["data"], "memories": server.services.graph.count_memories()}


def graphql_refusal(server: LiveServer, query: str) -> tuple[str, str]:
    body = server.gql(query)
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"], body["errors"][0]["message"]


def rest_refusal(server: LiveServer, path: str) -> tuple[str, str]:
    r = httpx.get(server.url + path.replace("{session}", server.session_id), timeout=60)
    assert r.status_code == 400, r.text
    return r.json()["code"], r.json()["error"]


@pytest.mark.parametrize("name", sorted(GRAPHQL_PAGED))
@pytest.mark.parametrize("offset", [-1, MAX_OFFSET + 1])
def test_a_graphql_offset_out_of_range_is_invalid_offset_and_changes_nothing(shared, name, offset):
    before = snapshot(shared)
    code, message = graphql_refusal(shared, GRAPHQL_PAGED[name].replace("{page}", f"offset: {offset}"))
    assert (code, message) == ("INVALID_OFFSET", f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
    assert snapshot(shared) == before


@pytest.mark.parametrize("name", sorted(GRAPHQL_LIMITED))
@pytest.mark.parametrize("limit", [-1, 0, MAX_PAGE + 1])
def test_a_graphql_limit_out_of_range_is_invalid_limit_and_changes_nothing(shared, name, limit):
    before = snapshot(shared)
    code, message = graphql_refusal(shared, GRAPHQL_LIMITED[name].replace("{page}", f"limit: {limit}"))
    assert (code, message) == ("INVALID_LIMIT", f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    assert snapshot(shared) == before


@pytest.mark.parametrize("name", sorted(REST_PAGED))
@pytest.mark.parametrize(
    ("page", "code", "message"),
    [
        ("offset=-1", "INVALID_OFFSET", f"offset must be between 0 and {MAX_OFFSET}, got -1"),
        (f"offset={MAX_OFFSET + 1}", "INVALID_OFFSET", f"offset must be between 0 and {MAX_OFFSET}, got {MAX_OFFSET + 1}"),
        ("limit=0", "INVALID_LIMIT", f"limit must be between 1 and {MAX_PAGE}, got 0"),
        (f"limit={MAX_PAGE + 1}", "INVALID_LIMIT", f"limit must be between 1 and {MAX_PAGE}, got {MAX_PAGE + 1}"),
    ],
)
def test_a_rest_page_out_of_range_gets_the_same_codes_and_changes_nothing(shared, name, page, code, message):
    before = snapshot(shared)
    assert rest_refusal(shared, REST_PAGED[name].replace("{page}", page)) == (code, message)
    assert snapshot(shared) == before


def test_the_bounds_themselves_are_pages(shared):
    """The deepest offset and the largest limit are accepted: past the rows is just empty."""
    edge = f"limit: {MAX_PAGE}, offset: {MAX_OFFSET}"
    for query in GRAPHQL_PAGED.values():
        body = shared.gql(query.replace("{page}", edge))
        assert "errors" not in body and next(iter(body["data"].values())) == [], body
    first = shared.gql('{ sessions(agentId: "bot", limit: 1, offset: 0) { id } '
                       'tickets(agentId: "bot", limit: 1, offset: 0) { id } }')["data"]
    assert first == {"sessions": [{"id": shared.session_id}], "tickets": [{"id": TICKET}]}
    for query in GRAPHQL_LIMITED.values():
        body = shared.gql(query.replace("{page}", f"limit: {MAX_PAGE}"))
        assert "errors" not in body, body
    for path in REST_PAGED.values():
        page = f"limit={MAX_PAGE}&offset={MAX_OFFSET}"
        r = httpx.get(shared.url + path.replace("{session}", shared.session_id).replace("{page}", page), timeout=60)
        assert r.status_code == 200, r.text
