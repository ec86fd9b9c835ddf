"""forgetCustomer erases one customer everywhere (graph, keyword index, vectors), also
across a restart and (embedded engine) a crash image; exportCustomer returns all their data."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import LiveServer
from tests.storage.backends import graph_rows

JANE_WORD = "zephyrine"  # only Jane's memories use it: a keyword probe
LABELS = ("Memory", "Customer", "`Order`", "Ticket", "TicketEvent", "Session", "Entity")


def gql(server, query: str, variables: dict | None = None) -> dict:
    body = server.gql(query, variables)
    assert "errors" not in body, body
    return body["data"]


def store(server, agent: str, content: str, **fields) -> str:
    q = "mutation($i: StoreMemoryInput!) { store(input: $i) { id } }"
    return gql(server, q, {"i": {"agentId": agent, "content": content, **fields}})["store"]["id"]


def counts(graph) -> dict[str, int]:
    out = {label: graph_rows(graph, "bot", f"MATCH (n:{label}) RETURN count(n)")[0][0] for label in LABELS}
    out["edges"] = graph_rows(graph, "bot", "MATCH ()-[r]->() RETURN count(r)")[0][0]
    return out


def seed(server) -> dict[str, object]:
    sid = gql(server, 'mutation { sessionStart(agentId: "bot", customerId: "jane-doe") { id } }')["sessionStart"]["id"]
    jane = [
        store(server, "bot", f"Jane's order #9999 arrived broken, {JANE_WORD} case opened",
              customerId="jane-doe", tags=["ticket:T-77"]),
        store(server, "bot", f"Reach her at jane.doe@example.com about the {JANE_WORD} refund",
              tags=["customer:jane-doe", "order:4521"]),
        store(server, "bot", f"In chat she confirmed the {JANE_WORD} replacement address", sessionId=sid),
    ]
    gql(server, 'mutation($s: ID!) { sessionEnd(sessionId: $s, summary: "replacement agreed") { id } }', {"s": sid})
    gql(server, 'mutation { updateTicket(agentId: "bot", id: "T-77", status: PENDING, note: "called Jane") { id } }')
    bob = store(server, "bot", "Bob asked whether order #4521 can be split", customerId="bob-stone")
    other = store(server, "other-bot", f"Another agent's Jane Doe: {JANE_WORD} warranty", customerId="jane-doe")
    return {"session": sid, "jane": jane, "bob": bob, "other": other}


def assert_jane_is_gone(services, ids: dict) -> None:
    graph, vectors = services.graph, services.vectors
    hits = services.recall.recall("bot", f"{JANE_WORD} Jane Doe order 9999 ticket T-77 refund", top_k=20)
    assert [h.memory.id for h in hits] == [ids["bob"]]  # only Bob's memory is left to find
    assert services.keywords.search("bot", JANE_WORD, 50) == []
    assert not set(ids["jane"]) & vectors.keys("bot")
    assert graph.get_customer("bot", "jane-doe") is None
    assert graph.get_session(ids["session"]) is None
    assert graph_rows(graph, "bot", "MATCH (n:Entity) WHERE n.value CONTAINS 'jane.doe' RETURN n.uid") == []
    assert graph_rows(graph, "bot", "MATCH (t:Ticket) WHERE t.agent_id = 'bot' RETURN t.id") == []
    assert graph_rows(graph, "bot", "MATCH (e:TicketEvent) WHERE e.note CONTAINS 'Jane' RETURN e.id") == []
    assert graph_rows(graph, "bot", "MATCH (o:`Order`) WHERE o.agent_id = 'bot' RETURN o.id") == [["4521"]]  # Bob's order stays
    assert graph.get_memories("bot", [ids["bob"]]) and graph.get_memories("other-bot", [ids["other"]])


def forget(server) -> dict:
    return gql(server, 'mutation { forgetCustomer(agentId: "bot", customerId: "jane-doe") { agentId customerId '
               "memories sessions customers orders tickets ticketEvents entities edges vectors keywordEntries } }"
               )["forgetCustomer"]


def test_export_then_forget_a_customer_everywhere(live_server, open_services, tmp_path):
    server, services = live_server, live_server.services
    ids = seed(server)

    exported = gql(server, 'query { exportCustomer(agentId: "bot", customerId: "Jane Doe") }')["exportCustomer"]
    assert exported["customerId"] == "jane-doe" and exported["customer"]["id"] == "jane-doe"
    mine = [m for m in exported["memories"] if m["id"] in ids["jane"]]
    assert [m["id"] for m in mine] == ids["jane"]
    assert mine[1]["content"].startswith("Reach her at jane.doe@example.com")
    # Ending her session stored its summary as a memory about her too.
    assert [m["content"] for m in exported["memories"] if m not in mine] == ["replacement agreed"]
    assert [s["id"] for s in exported["sessions"]] == [ids["session"]]
    assert exported["sessions"][0]["summary"] == "replacement agreed"
    assert exported["orders"] == ["4521", "9999"]
    assert [(t["id"], t["status"]) for t in exported["tickets"]] == [("T-77", "pending")]
    assert exported["tickets"][0]["events"][-1]["note"] == "called Jane"
    assert {"kind": "email", "value": "jane.doe@example.com", "key": "jane.doe@example.com"} in exported["entities"]
    assert ids["bob"] not in str(exported) and ids["other"] not in str(exported)

    before = counts(services.graph)
    receipt = forget(server)
    after = counts(services.graph)
    # Her 3 memories and the summary memory of her session.
    assert receipt["memories"] == 4 and receipt["vectors"] == 4 and receipt["keywordEntries"] == 4
    assert receipt["sessions"] == 1 and receipt["customers"] == 1
    assert receipt["orders"] == 1 and receipt["tickets"] == 1  # #9999 and T-77; #4521 is also Bob's
    assert receipt["ticketEvents"] >= 1  # its status history, note included
    assert receipt["entities"] >= 1  # the e-mail address, and whatever else only Jane's text named
    removed = {k: before[k] - after[k] for k in before}
    assert removed == {"Memory": 4, "Customer": 1, "`Order`": 1, "Ticket": 1, "Session": 1,
                       "TicketEvent": receipt["ticketEvents"], "Entity": receipt["entities"],
                       "edges": receipt["edges"]}
    assert_jane_is_gone(services, ids)

    # Nothing is reachable over the API either, and a second erasure removes nothing.
    q = '{ customer(agentId: "bot", id: "jane-doe") { id } }'
    assert server.gql(q)["errors"][0]["extensions"]["code"] == "CUSTOMER_NOT_FOUND"
    orders = gql(server, '{ customer(agentId: "bot", id: "bob-stone") { orders { id memories { id } } } }')
    assert orders["customer"]["orders"] == [{"id": "4521", "memories": [{"id": ids["bob"]}]}]
    again = gql(server, 'mutation { forgetCustomer(agentId: "bot", customerId: "jane-doe") { memories edges } }')
    assert again["forgetCustomer"] == {"memories": 0, "edges": 0}
    assert gql(server, 'query { exportCustomer(agentId: "bot", customerId: "jane-doe") }')["exportCustomer"][
        "memories"] == []

    # The store opens without Jane after a clean restart.
    server.__exit__(None, None, None)
    services.close()
    reopened = open_services(services.settings.data_dir, store=services.settings.store)
    assert_jane_is_gone(reopened, ids)
    with LiveServer(reopened, reopened.settings) as again_server:
        hits = again_server.gql(f'{{ recall(agentId: "bot", query: "{JANE_WORD}", topK: 10) {{ memory {{ id }} }} }}')
        assert ids["jane"][0] not in str(hits)


@pytest.mark.embedded_only
def test_a_crash_image_taken_after_an_erasure_opens_without_the_customer(live_server, open_services, tmp_path):
    """The vector file on disk still holds the erased vectors; the graph (and WAL) does not."""
    server, services = live_server, live_server.services
    ids = seed(server)
    services.vectors.save()  # the index file on disk still holds Jane's vectors
    assert forget(server)["vectors"] == 4
    crash = tmp_path / "crash-image"
    # tantivy's temporary files come and go while the image is copied (none is part of a commit).
    shutil.copytree(services.settings.data_dir, crash, ignore=shutil.ignore_patterns(".casegraph.lock", ".tmp*"))
    assert_jane_is_gone(open_services(crash), ids)
