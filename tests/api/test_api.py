"""The GraphQL API over real HTTP against the real app (uvicorn on loopback)."""

from __future__ import annotations

import re

import httpx
import pytest
from casegraph.api.errors import shape_error
from casegraph.errors import InvalidTopK, StorageError
from graphql import GraphQLError

STORE = "mutation($i: StoreMemoryInput!) { store(input: $i) { id content tags customerId entities { kind key } orders { id } tickets { id } customer { id } } }"
RECALL = "query($q: String!, $k: Int, $f: RecallFilter) { recall(agentId: \"bot\", query: $q, topK: $k, filter: $f) { memory { id content } score signals { semantic keyword importance recency graph } why } }"


def code_of(body: dict) -> str:
    assert body.get("errors"), body
    return body["errors"][0]["extensions"]["code"]


def store(server, **fields) -> dict:
    body = server.gql(STORE, {"i": {"agentId": "bot", **fields}})
    assert "errors" not in body, body
    return body["data"]["store"]


def test_store_links_and_recall_returns_signals(live_server):
    m = store(live_server, content="Order #4521 for ticket T-1042 arrived damaged", tags=["customer:jane-doe"])
    assert m["customerId"] == "jane-doe" and m["customer"] == {"id": "jane-doe"}
    assert m["orders"] == [{"id": "4521"}] and m["tickets"] == [{"id": "T-1042"}]
    assert {"kind": "order", "key": "4521"} in m["entities"]
    hits = live_server.gql(RECALL, {"q": "order 4521", "k": 3})["data"]["recall"]
    assert hits[0]["memory"]["id"] == m["id"]
    signals = hits[0]["signals"]
    assert all(0.0 <= v <= 1.0 for v in signals.values())
    assert signals["graph"] == 1.0 and "linked to order #4521" in hits[0]["why"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": ""}, "CONTENT_EMPTY"),
        ({"content": "   "}, "CONTENT_EMPTY"),
        ({"content": "x" * 20_001}, "CONTENT_TOO_LARGE"),
        ({"content": "hi", "importance": 1.5}, "INVALID_IMPORTANCE"),
        ({"content": "hi", "importance": -0.01}, "INVALID_IMPORTANCE"),
        ({"content": "hi", "tags": ["customer:"]}, "INVALID_TAG"),
        ({"content": "hi", "tags": ["bad\ttag"]}, "INVALID_TAG"),
        ({"content": "hi", "memoryType": "dream"}, "INVALID_MEMORY_TYPE"),
        ({"content": "hi", "sessionId": "00000000-0000-0000-0000-000000000000"}, "SESSION_NOT_FOUND"),
        ({"content": "hi", "sessionId": "not a session"}, "INVALID_ID"),
        ({"content": "hi", "createdAt": "yesterday-ish"}, "BAD_USER_INPUT"),
        ({"content": "hi", "createdAt": "2999-01-01T00:00:00Z"}, "INVALID_DATE"),
        ({"content": "hi", "ttlSeconds": 0}, "INVALID_TTL"),
        ({"content": "hi", "importance": "high"}, "BAD_USER_INPUT"),
        ({"content": "hi", "agentId": "bad agent!"}, "INVALID_AGENT_ID"),
    ],
)
def test_bad_store_input_gets_a_code_and_changes_nothing(live_server, fields, code):
    before = live_server.services.graph.count_memories()
    body = live_server.gql(STORE, {"i": {"agentId": "bot", **fields}})
    assert code_of(body) == code
    assert body["errors"][0]["message"] and "Traceback" not in body["errors"][0]["message"]
    assert live_server.services.graph.count_memories() == before


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"q": "x", "k": 0}, "INVALID_TOP_K"),
        ({"q": "x", "k": 101}, "INVALID_TOP_K"),
        ({"q": "  ", "k": 5}, "QUERY_EMPTY"),
        ({"q": "x", "k": 5, "f": {"minImportance": 2}}, "INVALID_IMPORTANCE"),
        ({"q": "x", "k": 5, "f": {"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}}, "INVALID_DATE"),
        ({"q": "x", "k": 5, "f": {"since": "last week"}}, "BAD_USER_INPUT"),
        ({"q": "x", "k": 5, "f": {"memoryTypes": ["dream"]}}, "INVALID_MEMORY_TYPE"),
        ({"q": "x", "k": 5, "f": {"tags": [""]}}, "INVALID_TAG"),
    ],
)
def test_bad_recall_input_gets_a_code(live_server, variables, code):
    assert code_of(live_server.gql(RECALL, variables)) == code


def test_failed_store_batch_stores_nothing(live_server):
    q = "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }"
    good = {"agentId": "bot", "content": "fine memory"}
    body = live_server.gql(q, {"is": [good, good, {**good, "importance": 7}, good]})
    assert code_of(body) == "INVALID_IMPORTANCE"
    assert "inputs[2]" in body["errors"][0]["message"]
    assert live_server.services.graph.count_memories() == 0
    body = live_server.gql(q, {"is": [good, {**good, "content": "second"}]})
    assert len(body["data"]["storeBatch"]) == 2
    assert live_server.services.graph.count_memories() == 2
    assert code_of(live_server.gql(q, {"is": []})) == "EMPTY_BATCH"


def test_forget_removes_memory_everywhere(live_server):
    m = store(live_server, content="Customer asked about warranty for the espresso machine")
    q = 'mutation($id: ID!) { forget(agentId: "bot", id: $id) }'
    assert live_server.gql(q, {"id": m["id"]})["data"]["forget"] is True
    hits = live_server.gql(RECALL, {"q": "espresso machine warranty", "k": 5})["data"]["recall"]
    assert m["id"] not in [h["memory"]["id"] for h in hits]
    assert live_server.services.keywords.search("bot", "espresso", 10) == []
    assert live_server.services.vectors.count("bot") == 0
    assert code_of(live_server.gql(q, {"id": m["id"]})) == "MEMORY_NOT_FOUND"
    get = 'query($id: ID!) { memory(agentId: "bot", id: $id) { id } }'
    assert code_of(live_server.gql(get, {"id": m["id"]})) == "MEMORY_NOT_FOUND"


def test_sessions_over_graphql(live_server):
    start = 'mutation { sessionStart(agentId: "bot", customerId: "Jane Doe", metadata: {channel: "chat"}) { id customerId metadata active endedAt } }'
    s = live_server.gql(start)["data"]["sessionStart"]
    assert s["customerId"] == "jane-doe" and s["metadata"] == {"channel": "chat"} and s["active"]
    m = store(live_server, content="Asked to change delivery address", sessionId=s["id"])
    assert m["customerId"] == "jane-doe"  # inherited from the session
    end = 'mutation($s: ID!) { sessionEnd(sessionId: $s, summary: "address changed") { endedAt summary active memories { id } customer { id } } }'
    ended = live_server.gql(end, {"s": s["id"]})["data"]["sessionEnd"]
    assert ended["endedAt"] and ended["summary"] == "address changed" and not ended["active"]
    assert ended["memories"] == [{"id": m["id"]}] and ended["customer"] == {"id": "jane-doe"}
    assert code_of(live_server.gql(end, {"s": s["id"]})) == "SESSION_ENDED"
    assert code_of(store_raw(live_server, content="late", sessionId=s["id"])) == "SESSION_ENDED"
    get = 'query($s: ID!) { session(agentId: "bot", id: $s) { id memoryCount } }'
    assert live_server.gql(get, {"s": s["id"]})["data"]["session"]["memoryCount"] == 1
    other_agent = 'query($s: ID!) { session(agentId: "other-bot", id: $s) { id } }'
    assert code_of(live_server.gql(other_agent, {"s": s["id"]})) == "SESSION_NOT_FOUND"


def store_raw(server, **fields) -> dict:
    return server.gql(STORE, {"i": {"agentId": "bot", **fields}})


def test_customer_query(live_server):
    store(live_server, content="Order #4521 refunded", tags=["customer:jane-doe", "ticket:T-77"])
    q = '{ customer(agentId: "bot", id: "jane-doe") { id orders { id memories { content } } tickets { id } memories { content } } }'
    c = live_server.gql(q)["data"]["customer"]
    assert c["orders"] == [{"id": "4521", "memories": [{"content": "Order #4521 refunded"}]}]
    assert c["tickets"] == [{"id": "T-77"}]
    missing = '{ customer(agentId: "bot", id: "nobody") { id } }'
    assert code_of(live_server.gql(missing)) == "CUSTOMER_NOT_FOUND"
    # Another agent cannot see this customer at all.
    assert code_of(live_server.gql(q.replace('"bot"', '"other-bot"'))) == "CUSTOMER_NOT_FOUND"


def test_graphql_errors_have_codes(live_server):
    assert code_of(live_server.gql("{ recall(")) == "GRAPHQL_PARSE_FAILED"
    assert code_of(live_server.gql("{ nope }")) == "GRAPHQL_VALIDATION_FAILED"
    deep = "{ customer(agentId: \"bot\", id: \"x\") { " + "sessions { customer { " * 6 + "id" + " } }" * 6 + " } }"
    assert code_of(live_server.gql(deep)) == "GRAPHQL_VALIDATION_FAILED"


def test_a_document_is_parsed_and_validated_once_and_failures_every_time(live_server, monkeypatch):
    import strawberry.schema.schema as executor

    calls = {"parse": 0, "validate": 0}
    parse, validate = executor.parse, executor.validate_document

    def counting(name, fn):
        def call(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return call

    monkeypatch.setattr(executor, "parse", counting("parse", parse))
    monkeypatch.setattr(executor, "validate_document", counting("validate", validate))
    for query in ("same words", "other words", "third"):
        assert "errors" not in live_server.gql(RECALL, {"q": query, "k": 2})
    assert calls == {"parse": 1, "validate": 1}
    # Failures are never kept: a parse failure is parsed again, a validation failure
    # validated again, and each gets its code.
    deep = "{ customer(agentId: \"bot\", id: \"x\") { " + "sessions { customer { " * 6 + "id" + " } }" * 6 + " } }"
    for _ in range(2):
        assert code_of(live_server.gql("{ recall(")) == "GRAPHQL_PARSE_FAILED"
        assert code_of(live_server.gql("{ nope }")) == "GRAPHQL_VALIDATION_FAILED"
        assert code_of(live_server.gql(deep)) == "GRAPHQL_VALIDATION_FAILED"
    assert calls == {"parse": 1 + 2 + 1 + 1, "validate": 1 + 2 + 2}


def test_unexpected_errors_are_masked_and_logged(caplog):
    leaked = GraphQLError("boom", original_error=StorageError("MATCH (m:Memory) secret cypher"))
    shaped = shape_error(leaked, "req-1")
    assert shaped.message == "Internal server error"
    assert shaped.extensions == {"code": "INTERNAL_ERROR", "requestId": "req-1"}
    assert "secret cypher" in caplog.text  # logged for operators, not sent to clients
    expected = shape_error(GraphQLError("x", original_error=InvalidTopK("topK must be...")), None)
    assert expected.extensions == {"code": "INVALID_TOP_K"} and expected.message == "topK must be..."


def test_a_full_buffer_pool_is_told_to_the_client_with_its_code_and_no_internals():
    from casegraph.errors import StorageFull
    from casegraph.storage.embedded.connection import translated

    with pytest.raises(StorageFull) as full:
        with translated("MATCH (m:Memory) secret cypher"):
            raise RuntimeError("Buffer manager exception: Unable to allocate memory! The buffer pool is full and no memory could be freed!")
    shaped = shape_error(GraphQLError("boom", original_error=full.value), "req-2")
    assert shaped.extensions == {"code": "STORAGE_FULL", "requestId": "req-2"}
    assert "nothing was written" in shaped.message and "secret cypher" not in shaped.message


def test_health_and_request_id(live_server):
    r = httpx.get(f"{live_server.url}/health")
    assert r.status_code == 200 and r.json()["status"] == "healthy"
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    assert httpx.get(f"{live_server.url}/health/live").json()["status"] == "healthy"
    r = httpx.post(f"{live_server.url}/graphql", json={"query": "{ nope }"}, headers={"X-Request-ID": "abc123"})
    assert r.json()["errors"][0]["extensions"]["requestId"] == "abc123"


def test_playground_is_served_offline(live_server):
    r = httpx.get(f"{live_server.url}/graphql", headers={"Accept": "text/html"})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/playground-assets/graphiql.min.js" in r.text
    assert not re.search(r"(src|href)=\"https?://", r.text), "the page must not load anything from a CDN"
    for asset in ("graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js"):
        assert httpx.get(f"{live_server.url}/playground-assets/{asset}").status_code == 200


def test_api_key_is_required_when_configured(live_server_factory):
    server = live_server_factory(api_key="s3cret-key-123")
    q = {"query": '{ recall(agentId: "bot", query: "x") { score } }'}
    r = httpx.post(f"{server.url}/graphql", json=q)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
    r = httpx.post(f"{server.url}/graphql", json=q, headers={"Authorization": "Bearer wrong-key-000"})
    assert r.status_code == 401
    r = httpx.get(f"{server.url}/graphql", params={"query": "{ __typename }"})
    assert r.status_code == 401  # queries over GET need the key too
    r = httpx.post(f"{server.url}/graphql", json=q, headers={"Authorization": "Bearer s3cret-key-123"})
    assert r.status_code == 200 and r.json()["data"]["recall"] == []
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"}).status_code == 200
