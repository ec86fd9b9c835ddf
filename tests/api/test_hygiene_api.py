"""Hygiene over the real GraphQL API (uvicorn on loopback, real model, spaCy and Kùzu):
the store result says when it reinforced a near-duplicate, superseded memories come back
only when asked for, ending a session exposes its summary memory, and customerContext
answers with no query."""

from __future__ import annotations

STORE = """mutation($i: StoreMemoryInput!) { store(input: $i) {
  id deduplicated reinforceCount lastSeenAt importance states supersededBy kind } }"""
RECALL = """query($q: String!, $f: RecallFilter) { recall(agentId: "bot", query: $q, topK: 5, filter: $f) {
  memory { id supersededBy } score why signals { graph } } }"""
CONTEXT = """query($c: String!, $n: Int!) { customerContext(agentId: "bot", customerId: $c, limit: $n) {
  customer { id } memories { memory { id content } score why signals { importance recency semantic } }
  openTickets { ticket { id } status lastActivityAt latest { content } } } }"""


def store(server, **fields) -> dict:
    body = server.gql(STORE, {"i": {"agentId": "bot", "tags": ["customer:jane-doe"], **fields}})
    assert "errors" not in body, body
    return body["data"]["store"]


def test_hygiene_over_graphql(live_server):
    first = store(live_server, content="Prefers to be contacted by email.", importance=0.6,
                  createdAt="2025-01-10T10:00:00Z")
    again = store(live_server, content="Prefers being contacted by e-mail.", importance=0.6,
                  createdAt="2025-02-10T10:00:00Z")
    assert first["deduplicated"] is False and first["reinforceCount"] == 0
    assert again["id"] == first["id"] and again["deduplicated"] is True
    assert again["reinforceCount"] == 1 and again["importance"] == 0.65
    assert again["lastSeenAt"].startswith("2025-02-10T10:00:00")

    pending = store(live_server, content="Refund pending for order #48213.", createdAt="2025-03-01T09:00:00Z",
                    tags=["customer:jane-doe", "ticket:T-1042"])
    approved = store(live_server, content="Refund approved for order #48213.", createdAt="2025-03-05T09:00:00Z")
    assert pending["states"] == ["refund:pending"] and approved["states"] == ["refund:approved"]
    default = live_server.gql(RECALL, {"q": "refund order 48213"})["data"]["recall"]
    assert [h["memory"]["id"] for h in default if h["memory"]["id"] in (pending["id"], approved["id"])] == [approved["id"]]
    everything = live_server.gql(RECALL, {"q": "refund order 48213", "f": {"includeSuperseded": True}})["data"]["recall"]
    ids = [h["memory"]["id"] for h in everything]
    assert ids.index(approved["id"]) < ids.index(pending["id"])
    old = everything[ids.index(pending["id"])]
    assert old["memory"]["supersededBy"] == approved["id"] and "superseded by a newer memory" in old["why"]

    ctx = live_server.gql(CONTEXT, {"c": "jane-doe", "n": 5})["data"]["customerContext"]
    assert ctx["customer"] == {"id": "jane-doe"}
    assert {h["memory"]["id"] for h in ctx["memories"]} == {first["id"], approved["id"]}  # not the superseded one
    assert all(h["signals"]["semantic"] == 0 for h in ctx["memories"])
    assert ctx["openTickets"][0]["ticket"] == {"id": "T-1042"} and ctx["openTickets"][0]["status"] == "open"
    assert ctx["openTickets"][0]["latest"]["content"] == "Refund pending for order #48213."

    missing = live_server.gql(CONTEXT, {"c": "nobody", "n": 5})
    assert missing["errors"][0]["extensions"]["code"] == "CUSTOMER_NOT_FOUND"
    bad = live_server.gql(CONTEXT, {"c": "jane-doe", "n": 0})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_LIMIT"


def test_session_end_returns_its_summary_memory(live_server):
    start = 'mutation { sessionStart(agentId: "bot", customerId: "ann-lee") { id } }'
    session_id = live_server.gql(start)["data"]["sessionStart"]["id"]
    for i, text in enumerate((
        "Ann says the toaster from order #55120 arrived with a bent lever.",
        "Replacement toaster shipped with tracking 1Z999AA10123456784.",
    )):
        store(live_server, content=text, sessionId=session_id, tags=[], createdAt=f"2025-04-01T10:0{i}:00Z")
    end = """mutation($s: ID!) { sessionEnd(sessionId: $s) { summary memoryCount
      summaryMemory { content kind customerId orders { id } } } }"""
    ended = live_server.gql(end, {"s": session_id})["data"]["sessionEnd"]
    summary = ended["summaryMemory"]
    assert summary["kind"] == "summary" and summary["customerId"] == "ann-lee"
    assert summary["content"] == ended["summary"] and ended["memoryCount"] == 2
    assert "Outcome: Replacement toaster shipped with tracking 1Z999AA10123456784." in summary["content"]
    assert summary["orders"] == [{"id": "55120"}]
