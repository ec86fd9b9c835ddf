"""GraphQL limits from settings: depth, aliases, tokens, body size, topK, batch size,
introspection; and unexpected errors masked but logged with the request id."""

from __future__ import annotations

import logging

import httpx
import pytest
from casegraph.api.auth import Authenticator
from casegraph.api.middleware import RequestGate
from casegraph.ops.keys import KeyStore
from casegraph.ops.settings import Settings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.testclient import TestClient


def post(server, query: str, variables: dict | None = None, **kw) -> httpx.Response:
    return httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60, **kw)


def code(r: httpx.Response) -> str:
    body = r.json()
    return body["errors"][0]["extensions"]["code"] if "errors" in body else body.get("code", "OK")


@pytest.fixture
def tight(live_server_factory):
    return live_server_factory(
        max_query_depth=4, max_aliases=3, max_tokens=120, max_body_bytes=4096,
        max_top_k=3, max_batch_size=2, introspection=False,
    )


def test_depth_aliases_and_tokens_come_from_settings(tight):
    ok = '{ customer(agentId: "bot", id: "x") { sessions { id } } }'
    assert code(post(tight, ok)) == "CUSTOMER_NOT_FOUND"  # within the limits: it ran
    deep = '{ customer(agentId: "bot", id: "x") { sessions { customer { sessions { customer { id } } } } } }'
    r = post(tight, deep)
    assert code(r) == "GRAPHQL_VALIDATION_FAILED" and "exceeds maximum operation depth" in r.text
    aliases = "{ " + " ".join(f'a{i}: sessions(agentId: "bot") {{ id }}' for i in range(4)) + " }"
    r = post(tight, aliases)
    assert code(r) == "GRAPHQL_VALIDATION_FAILED" and "aliases" in r.text.lower()
    tokens = "{ " + " ".join("__typename" for _ in range(130)) + " }"
    r = post(tight, tokens)
    assert "errors" in r.json() and "token" in r.text.lower()


def test_body_size_is_refused_before_parsing(tight):
    big = "x" * 5000
    r = post(tight, "mutation($i: StoreMemoryInput!) { store(input: $i) { id } }",
             {"i": {"agentId": "bot", "content": big}})
    assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE" and r.json()["requestId"]

    def chunked():  # no Content-Length: counted while it streams in
        for _ in range(10):
            yield b"x" * 1000

    r = httpx.post(f"{tight.url}/graphql", content=chunked(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"
    assert tight.services.graph.count_memories() == 0
    small = post(tight, "mutation($i: StoreMemoryInput!) { store(input: $i) { id } }",
                 {"i": {"agentId": "bot", "content": "fits"}})
    assert small.status_code == 200 and small.json()["data"]["store"]["id"]


def test_top_k_and_batch_caps_come_from_settings(tight):
    recall = 'query($k: Int!) { recall(agentId: "bot", query: "x", topK: $k) { score } }'
    assert post(tight, recall, {"k": 3}).json()["data"]["recall"] == []
    assert code(post(tight, recall, {"k": 4})) == "INVALID_TOP_K"
    batch = "mutation($is: [StoreMemoryInput!]!) { storeBatch(inputs: $is) { id } }"
    three = [{"agentId": "bot", "content": f"m{i}"} for i in range(3)]
    assert code(post(tight, batch, {"is": three})) == "BATCH_TOO_LARGE"
    assert tight.services.graph.count_memories() == 0


def test_introspection_can_be_switched_off(tight, live_server):
    query = "{ __schema { types { name } } }"
    r = post(tight, query)
    assert code(r) == "GRAPHQL_VALIDATION_FAILED" and "introspection" in r.text.lower()
    assert code(post(tight, '{ __type(name: "Memory") { name } }')) == "GRAPHQL_VALIDATION_FAILED"
    assert post(tight, "{ __typename }").json() == {"data": {"__typename": "Query"}}
    assert "Memory" in {t["name"] for t in post(live_server, query).json()["data"]["__schema"]["types"]}


def test_settings_for_limits_parse_from_the_environment():
    s = Settings.from_env({"CASEGRAPH_MAX_QUERY_DEPTH": "7", "CASEGRAPH_INTROSPECTION": "off",
                           "CASEGRAPH_MAX_BODY_BYTES": "65536", "CASEGRAPH_PII_PATTERNS": '["\\\\bSSN\\\\b"]'})
    assert (s.max_query_depth, s.introspection, s.max_body_bytes, s.pii_patterns) == (7, False, 65536, (r"\bSSN\b",))
    for bad in ({"CASEGRAPH_INTROSPECTION": "maybe"}, {"CASEGRAPH_MAX_ALIASES": "-1"},
                {"CASEGRAPH_PII_PATTERNS": '["("]'}, {"CASEGRAPH_PII_PATTERNS": '["a*"]'}):
        with pytest.raises(Exception) as err:
            Settings.from_env(bad)
        assert err.value.code == "CONFIGURATION_ERROR"


def test_an_exception_escaping_a_route_is_masked_and_logged(tmp_path, caplog):
    async def broken(request):
        raise RuntimeError("MATCH (m:Memory) secret internals")

    # The gate sits where create_app puts it: inside Starlette, around the routes.
    authenticator = Authenticator(None, KeyStore(tmp_path / "keys.json"))
    app = Starlette(routes=[Route("/boom", broken)],
                    middleware=[Middleware(RequestGate, authenticator=authenticator, max_body_bytes=1024)])
    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom", headers={"X-Request-ID": "req-42"})
    assert r.status_code == 500
    assert r.json() == {"error": "Internal server error", "code": "INTERNAL_ERROR", "requestId": "req-42"}
    assert "secret internals" not in r.text
    assert "req-42" in caplog.text and "secret internals" in caplog.text
