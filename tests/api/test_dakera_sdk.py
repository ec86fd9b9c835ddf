"""The published Dakera SDK (dakera==0.14.1) against a real CaseGraph server over HTTP.

A bot written against Dakera changes only ``base_url``: these tests are that bot. One
server serves the module; each test uses its own agent id. ``max_retries=1``: in 0.14.1
``max_retries=0`` sends no request at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from casegraph.api.rest.errors import error_response
from casegraph.errors import InvalidTopK, StorageError
from casegraph.services import Services
from dakera import DakeraClient
from dakera.exceptions import (
    AuthenticationError,
    FeatureNotAvailableError,
    NotFoundError,
    ValidationError,
)
from dakera.models import BatchStoreMemoryItem, BatchStoreMemoryRequest
from dakera.session import ChatMemorySession
from starlette.requests import Request

from tests.conftest import LiveServer, make_settings

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def server(embedder, extractor, tmp_path_factory):
    services = Services.open(
        make_settings(tmp_path_factory.mktemp("dakera") / "data"), embedder=embedder, extractor=extractor
    )
    try:
        with LiveServer(services, services.settings) as live:
            yield live
    finally:
        services.close()


@pytest.fixture(scope="module")
def client(server) -> DakeraClient:
    return DakeraClient(server.url, max_retries=1, timeout=60)


def ids(memories) -> list[str]:
    return [m.id for m in memories]


def test_support_bot_story(server, client):
    agent = "story-bot"
    assert client.health()["status"] == "healthy"

    first = client.start_session(agent, metadata={"channel": "email"})
    assert first["ended_at"] is None and first["memory_count"] == 0 and first["metadata"] == {"channel": "email"}
    damaged = client.store_memory(
        agent, "Order #4521 arrived damaged: the espresso machine's water tank is cracked.",
        importance=0.9, tags=["customer:jane-doe", "returns"], session_id=first["id"],
    )
    assert damaged["session_state"] == "active" and damaged["customer_id"] == "jane-doe"
    assert ("order", "4521") in {(e["kind"], e["key"]) for e in damaged["entities"]}
    prefers = client.store_memory(
        agent, "Jane prefers to be contacted by e-mail, never by phone.", importance=0.6,
        memory_type="semantic", tags=["customer:jane-doe", "preferences"], session_id=first["id"],
    )
    bob = client.store_memory(agent, "Bob asked how to descale his coffee grinder.", tags=["customer:bob-smith"])
    ended = client.end_session(first["id"], summary="replacement tank promised")["session"]
    assert ended["ended_at"] >= ended["started_at"] and ended["ended_reason"] == "client"
    assert ended["summary"] == "replacement tank promised" and ended["memory_count"] == 2

    second = client.start_session(agent)
    followup = client.store_memory(
        agent, "Jane wrote again: the replacement water tank for order 4521 has not arrived yet.",
        tags=["customer:jane-doe"], session_id=second["id"],
    )

    # Recall across sessions, then within one, then by a customer tag.
    across = client.recall(agent, "replacement water tank for the damaged espresso machine", top_k=3)
    # Ending the first session stored its summary as a memory too; it may rank among them.
    assert {damaged["id"], followup["id"]} <= set(ids(across.memories))
    scores = [m.score for m in across.memories]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 3
    within = client.recall(agent, "water tank", top_k=5, session_id=second["id"])
    assert ids(within.memories) == [followup["id"]]
    assert ids(client.recall(agent, "coffee", top_k=5, tags=["customer:bob-smith"]).memories) == [bob["id"]]

    got = client.get_memory(agent, prefers["id"])
    assert (got["content"], got["memory_type"], got["tags"]) == (
        prefers["content"], "semantic", ["customer:jane-doe", "preferences"])

    updated = client.update_memory(
        agent, prefers["id"], content="Jane now prefers phone calls after 5pm; e-mail jane@example.com for invoices.",
        importance=0.7, tags=["customer:jane-doe", "preferences", "updated"],
    )
    assert updated["id"] == prefers["id"] and updated["created_at"] == prefers["created_at"]
    assert updated["importance"] == 0.7 and updated["updated_at"] > prefers["updated_at"]
    assert any(e["kind"] == "email" and e["key"] == "jane@example.com" for e in updated["entities"])
    assert client.get_memory(agent, prefers["id"])["content"].startswith("Jane now prefers phone calls")
    assert ids(client.recall(agent, "call her by phone after 5pm", top_k=1).memories) == [prefers["id"]]

    assert client.forget(agent, damaged["id"])["deleted_count"] == 1
    after = client.recall(agent, "damaged espresso machine cracked water tank", top_k=10)
    # Left: prefers, bob, followup and the first session's summary memory.
    assert damaged["id"] not in ids(after.memories) and len(after.memories) == 4
    with pytest.raises(NotFoundError):
        client.get_memory(agent, damaged["id"])

    assert [s["id"] for s in client.list_sessions(agent)] == [second["id"], first["id"]]
    assert [s["id"] for s in client.list_sessions(agent, limit=1, offset=1)] == [first["id"]]
    assert [s["id"] for s in client.list_sessions(agent, active_only=True)] == [second["id"]]
    assert [s["id"] for s in client.agent_sessions(agent, active_only=True)] == [second["id"]]
    assert [m["id"] for m in client.session_memories(first["id"])] == [prefers["id"]]
    assert client.get_session(second["id"])["session"]["memory_count"] == 1

    # Live: prefers, bob, followup and the first session's summary memory (importance 0.9).
    woken = client.wake_up(agent, top_n=2)
    assert woken.total_available == 4 and prefers["id"] in ids(woken.memories)
    assert client.wake_up(agent, min_importance=0.65).total_available == 2


def test_chat_memory_session_helper(client):
    """The SDK's own high-level session helper (it sends neighborhood_mode="separate")."""
    agent = "chat-bot"
    with ChatMemorySession.create(client, agent, metadata={"channel": "chat"}) as chat:
        chat.store("user", "My parcel with order #88123 was left at the wrong address.")
        chat.store("assistant", "I have asked the courier to collect it and redeliver.")
        context = chat.recall("where is my parcel", top_k=2)
        session_id = chat.session_id
    assert len(context) == 2 and "order #88123" in context[0].content
    session = client.get_session(session_id)["session"]
    assert session["ended_at"] is not None and session["memory_count"] == 2
    assert sorted(m["tags"][0] for m in client.session_memories(session_id)) == ["assistant", "user"]


def test_store_memories_batch_of_500(server, client):
    agent = "batch-bot"
    items = [
        BatchStoreMemoryItem(
            f"Customer cust-{i:03d} asked where the parcel for order #{10000 + i} is.",
            importance=0.3 + (i % 5) / 10, tags=[f"customer:cust-{i % 50:03d}"],
        )
        for i in range(500)
    ]
    items[317] = BatchStoreMemoryItem("The blender lid cracked on first use.", tags=["customer:cust-017"])
    response = client.store_memories_batch(BatchStoreMemoryRequest(agent, items))
    assert response.stored_count == 500 and response.warnings == []
    assert [s.content for s in response.stored] == [i.content for i in items]
    assert len({s.id for s in response.stored}) == 500
    assert server.services.graph.count_memories(agent) == 500 and server.services.vectors.count(agent) == 500
    lid = client.recall(agent, "blender lid broke", top_k=1)
    assert ids(lid.memories) == [response.stored[317].id]
    order = client.recall(agent, "where is order 10042", top_k=1)
    assert ids(order.memories) == [response.stored[42].id]
    cust_007 = {response.stored[i].id for i in range(7, 500, 50)}
    tagged = client.recall(agent, "parcel", top_k=20, tags=["customer:cust-007"])
    assert tagged.memories and {m.id for m in tagged.memories} <= cust_007
    named = client.recall(agent, "order 10057", top_k=3, tags=["customer:cust-007"])
    assert ids(named.memories)[0] == response.stored[57].id and {m.id for m in named.memories} <= cust_007


def test_failed_batch_stores_none_of_its_items(server, client):
    agent = "failing-batch-bot"
    good = [BatchStoreMemoryItem(f"fine memory {i}") for i in range(3)]
    bad = [*good[:2], BatchStoreMemoryItem("too important", importance=7), good[2]]
    with pytest.raises(ValidationError) as exc:
        client.store_memories_batch(BatchStoreMemoryRequest(agent, bad))
    assert exc.value.response_body["code"] == "INVALID_IMPORTANCE" and "memories[2]" in exc.value.message
    too_many = [BatchStoreMemoryItem(f"memory {i}") for i in range(1001)]
    with pytest.raises(ValidationError) as exc:
        client.store_memories_batch(BatchStoreMemoryRequest(agent, too_many))
    assert exc.value.response_body["code"] == "BATCH_TOO_LARGE"
    with pytest.raises(FeatureNotAvailableError):  # caller-chosen ids: 501, and nothing stored
        client.store_memories_batch(BatchStoreMemoryRequest(agent, [*good, BatchStoreMemoryItem("x", id=UNKNOWN_ID)]))
    assert server.services.graph.count_memories(agent) == 0


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.store_memory("bad-bot", ""), "CONTENT_EMPTY"),
        (lambda c: c.store_memory("bad-bot", "   "), "CONTENT_EMPTY"),
        (lambda c: c.store_memory("bad-bot", "hi", importance=1.5), "INVALID_IMPORTANCE"),
        (lambda c: c.store_memory("bad-bot", "hi", importance=-0.01), "INVALID_IMPORTANCE"),
        (lambda c: c.store_memory("bad-bot", "hi", memory_type="dream"), "INVALID_MEMORY_TYPE"),
        (lambda c: c.store_memory("bad-bot", "hi", tags=["customer:"]), "INVALID_TAG"),
        (lambda c: c.store_memory("bad-bot", "hi", ttl_seconds=0), "INVALID_TTL"),
        (lambda c: c.store_memory("bad-bot", "hi", event_time="yesterday-ish"), "INVALID_DATE"),
        (lambda c: c.store_memory("bad agent!", "hi"), "INVALID_AGENT_ID"),
        (lambda c: c.recall("bad-bot", "x", top_k=0), "INVALID_TOP_K"),
        (lambda c: c.recall("bad-bot", "x", top_k=101), "INVALID_TOP_K"),
        (lambda c: c.recall("bad-bot", "  "), "QUERY_EMPTY"),
        (lambda c: c.recall("bad-bot", "x", since="last week"), "INVALID_DATE"),
        (lambda c: c.recall("bad-bot", "x", min_importance=2), "INVALID_IMPORTANCE"),
        (lambda c: c.recall("bad-bot", "x", include_associated=True, associated_memories_depth=4), "INVALID_DEPTH"),
        (lambda c: c.wake_up("bad-bot", top_n=0), "INVALID_TOP_K"),
        (lambda c: c.list_sessions(), "INVALID_REQUEST"),
    ],
)
def test_bad_input_raises_validation_error_and_changes_nothing(server, client, call, code):
    with pytest.raises(ValidationError) as exc:
        call(client)
    assert exc.value.status_code == 400 and exc.value.response_body["code"] == code
    assert exc.value.message and "Traceback" not in exc.value.message
    assert server.services.graph.count_memories("bad-bot") == 0


def test_unknown_memory_or_session_raises_not_found(client):
    agent = "lookup-bot"
    mine = client.store_memory(agent, "Order #5 was refunded.")
    session = client.start_session(agent)
    calls = [
        lambda: client.get_memory(agent, UNKNOWN_ID),
        lambda: client.get_memory(agent, "mem_0123abc"),  # a Dakera-style id names nothing here
        lambda: client.get_memory("other-bot", mine["id"]),  # another agent's memory
        lambda: client.update_memory(agent, UNKNOWN_ID, content="x"),
        lambda: client.forget(agent, UNKNOWN_ID),
        lambda: client.get_session(UNKNOWN_ID),
        lambda: client.end_session(UNKNOWN_ID),
        lambda: client.session_memories(UNKNOWN_ID),
        lambda: client.store_memory(agent, "x", session_id=UNKNOWN_ID),
    ]
    for call in calls:
        with pytest.raises(NotFoundError) as exc:
            call()
        assert exc.value.response_body["code"] in ("MEMORY_NOT_FOUND", "SESSION_NOT_FOUND")
    assert client.get_memory(agent, mine["id"])["content"] == "Order #5 was refunded."
    assert client.get_session(session["id"])["session"]["memory_count"] == 0


def test_storing_into_an_ended_session_reports_its_state(client):
    agent = "late-bot"
    session = client.start_session(agent)
    client.end_session(session["id"], summary="done")
    late = client.store_memory(agent, "Customer replied after the chat closed.", session_id=session["id"])
    assert late["session_state"] == "ended" and late["session_id"] == session["id"]
    batch = client.store_memories_batch(BatchStoreMemoryRequest(
        agent, [BatchStoreMemoryItem("another late reply", session_id=session["id"])]))
    assert batch.ended_sessions == [session["id"]]
    again = client.end_session(session["id"], summary="ignored")["session"]  # persisted state back
    assert again["summary"] == "done" and again["memory_count"] == 2


def test_rest_and_graphql_recall_agree(server, client):
    agent = "parity-bot"
    session = client.start_session(agent)
    week_ago = datetime.now(UTC) - timedelta(days=7)
    texts = [
        ("Order #4521 arrived damaged; replacement sent.", 0.9, ["customer:jane-doe", "returns"], "episodic"),
        ("Jane prefers e-mail over phone.", 0.6, ["customer:jane-doe"], "semantic"),
        ("Bob's grinder needs descaling every month.", 0.4, ["customer:bob-smith"], "procedural"),
        ("Ticket T-1042: courier lost the parcel for order #4521.", 0.8, ["customer:jane-doe"], "episodic"),
        ("Refunds take five business days to appear.", 0.5, ["policy"], "semantic"),
        ("Bob asked whether the warranty covers a cracked carafe.", 0.7, ["customer:bob-smith"], "episodic"),
        ("Customer in Berlin asked about express delivery.", 0.3, [], "episodic"),
        ("Escalate damaged deliveries to the carrier within 48 hours.", 0.9, ["policy"], "procedural"),
    ]
    items = [
        BatchStoreMemoryItem(t, importance=i, tags=tags, memory_type=mt,
                             session_id=session["id"] if n % 2 else None,
                             event_time=week_ago if n < 3 else None)
        for n, (t, i, tags, mt) in enumerate(texts)
    ]
    client.store_memories_batch(BatchStoreMemoryRequest(agent, items))
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = [
        ("damaged order", {}, {}),
        ("what does Jane Doe prefer", {}, {}),
        ("order 4521", {"top_k": 3}, {}),
        ("warranty", {"tags": ["customer:bob-smith"]}, {"tags": ["customer:bob-smith"]}),
        ("refund policy", {"memory_type": "semantic"}, {"memoryTypes": ["semantic"]}),
        ("delivery", {"min_importance": 0.5}, {"minImportance": 0.5}),
        ("parcel", {"session_id": session["id"]}, {"sessionId": session["id"]}),
        ("customer", {"since": since}, {"since": since}),
        ("jane", {"customer_id": "jane-doe"}, {"customerId": "jane-doe"}),
    ]
    query = ("query($q: String!, $k: Int!, $f: RecallFilter) { recall(agentId: \"parity-bot\", query: $q, "
             "topK: $k, filter: $f) { memory { id } score } }")
    for text, rest_args, gql_filter in cases:
        top_k = rest_args.pop("top_k", 8)
        body = httpx.post(f"{server.url}/v1/memory/recall",
                          json={"agent_id": agent, "query": text, "top_k": top_k, **rest_args}).json()
        rest = [(h["memory"]["id"], h["score"]) for h in body["memories"]]
        gql = server.gql(query, {"q": text, "k": top_k, "f": gql_filter or None})["data"]["recall"]
        assert [i for i, _ in rest] == [h["memory"]["id"] for h in gql], text
        assert [s for _, s in rest] == pytest.approx([h["score"] for h in gql], abs=1e-4), text
        assert rest and body["warnings"] == [], text


def test_include_associated_returns_graph_linked_memories_with_depth(client):
    agent = "assoc-bot"
    seed = client.store_memory(agent, "Order #4521 arrived crushed in a torn box.", tags=["customer:jane-doe"])
    same_customer = client.store_memory(agent, "Prefers phone calls in the evening.", tags=["customer:jane-doe"])
    same_order = client.store_memory(agent, "Courier confirmed order #4521 was dropped.", tags=["ticket:T-9"])
    via_ticket = client.store_memory(agent, "Escalated to the carrier's claims desk.", tags=["ticket:T-9"])
    client.store_memory(agent, "Weather smalltalk with Bob.", tags=["customer:bob-smith"])
    plain = client.recall(agent, "box arrived crushed", top_k=1)
    assert ids(plain.memories) == [seed["id"]] and plain.associated_memories is None
    linked = client.recall(agent, "box arrived crushed", top_k=1, include_associated=True,
                           associated_memories_depth=2)
    got = {m.id: m.depth for m in linked.associated_memories}
    assert got == {same_customer["id"]: 1, same_order["id"]: 1, via_ticket["id"]: 2}
    capped = client.recall(agent, "box arrived crushed", top_k=1, include_associated=True,
                           associated_memories_cap=1)
    assert [m.depth for m in capped.associated_memories] == [1]


def test_unknown_and_unsupported_fields_become_warnings(server, client):
    agent = "warn-bot"
    stored = client.store_memory(agent, "Likes tea.", lang="en")
    assert stored["warnings"] == ["field 'lang' ignored: CaseGraph extracts entities from English text"]
    body = httpx.post(f"{server.url}/v1/memory/store",
                      json={"agent_id": agent, "content": "Likes coffee.", "mood": "happy"}).json()
    assert body["warnings"] == ["unknown field 'mood' ignored"] and body["memory"]["content"] == "Likes coffee."
    recalled = client.recall(agent, "tea", rerank=True, neighborhood_mode="separate")
    assert len(recalled.warnings) == 2 and all(w.startswith("field '") for w in recalled.warnings)
    batch = httpx.post(f"{server.url}/v1/memories/store/batch", json={
        "agent_id": agent, "memories": [{"content": "a", "when": 1}, {"content": "b", "when": 2}, {"content": "c"}]
    }).json()
    assert batch["stored_count"] == 3 and batch["warnings"] == ["unknown field 'memories[].when' ignored (in 2 items)"]


def test_http_refusals_are_dakera_json(server, client):
    url = server.url

    def refusal(method: str, path: str, **kw) -> tuple[int, str]:
        r = httpx.request(method, url + path, **kw)
        assert r.headers["content-type"] == "application/json", r.text
        body = r.json()
        assert set(body) >= {"error", "code"} and body["error"]
        return r.status_code, body["code"]

    assert refusal("GET", "/v1/no-such-thing") == (404, "ROUTE_NOT_FOUND")
    assert refusal("GET", "/nowhere") == (404, "ROUTE_NOT_FOUND")
    assert refusal("GET", "/v1/capabilities") == (404, "ROUTE_NOT_FOUND")  # SDK preflight then skips
    assert refusal("POST", "/v1/namespaces/x/query", json={}) == (501, "NOT_IMPLEMENTED")
    assert refusal("GET", "/v1/admin/cluster/status") == (501, "NOT_IMPLEMENTED")
    assert refusal("GET", "/v1/memory/store") == (405, "METHOD_NOT_ALLOWED")
    assert refusal("DELETE", "/v1/sessions/start") == (405, "METHOD_NOT_ALLOWED")
    store = "/v1/memory/store"
    assert refusal("POST", store, content=b"{oops", headers={"content-type": "application/json"}) == (400, "INVALID_JSON")
    assert refusal("POST", store, content=b"agent_id=x") == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert refusal("POST", store, json=["not", "an", "object"]) == (400, "INVALID_REQUEST")
    assert refusal("POST", store, json={"agent_id": "b", "content": "x", "importance": "high"}) == (400, "INVALID_REQUEST")
    assert refusal("POST", store, json={"content": "x"}) == (400, "INVALID_REQUEST")
    assert refusal("GET", f"/v1/memory/get/{UNKNOWN_ID}") == (400, "INVALID_REQUEST")  # agent_id missing
    with pytest.raises(FeatureNotAvailableError):
        client.list_namespaces()
    assert server.services.graph.count_memories("b") == 0


def test_same_bearer_keys_as_graphql(live_server_factory):
    server = live_server_factory(api_key="s3cret-key-123", max_batch_size=2, max_content_chars=100)
    for key in (None, "wrong-key-0000"):
        anonymous = DakeraClient(server.url, api_key=key, max_retries=1)
        with pytest.raises(AuthenticationError) as exc:
            anonymous.store_memory("bot", "hello")
        assert exc.value.status_code == 401 and exc.value.response_body["error"]
        with pytest.raises(AuthenticationError):
            anonymous.recall("bot", "hello")
    assert server.services.graph.count_memories() == 0
    assert DakeraClient(server.url, max_retries=1).health()["status"] == "healthy"  # public, as before
    keyed = DakeraClient(server.url, api_key="s3cret-key-123", max_retries=1)
    assert keyed.store_memory("bot", "hello there")["content"] == "hello there"
    # A body larger than the biggest valid batch is refused before it is parsed.
    r = httpx.post(f"{server.url}/v1/memories/store/batch", headers={"Authorization": "Bearer s3cret-key-123"},
                   json={"agent_id": "bot", "memories": [{"content": "x" * 300_000}]})
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_unexpected_errors_are_masked_and_logged(caplog):
    request = Request({"type": "http", "method": "POST", "path": "/v1/memory/recall", "headers": [],
                       "query_string": b"", "state": {"request_id": "req-9"}})
    response = error_response(request, StorageError("MATCH (m:Memory) secret cypher"))
    assert response.status_code == 500
    assert json.loads(response.body) == {"error": "Internal server error", "code": "INTERNAL_ERROR",
                                         "request_id": "req-9"}
    assert "secret cypher" in caplog.text  # for operators, never for clients
    expected = error_response(request, InvalidTopK("topK must be between 1 and 100"))
    assert expected.status_code == 400 and json.loads(expected.body)["code"] == "INVALID_TOP_K"
    from casegraph.errors import StorageFull

    full = error_response(request, StorageFull("the graph store's buffer pool is full ...; nothing was written"))
    assert full.status_code == 503 and full.headers["retry-after"] == "1"
    assert json.loads(full.body) == {"error": "the graph store's buffer pool is full ...; nothing was written",
                                     "code": "STORAGE_FULL"}
