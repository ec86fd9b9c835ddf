"""The seed's support-bot scenario, end to end: the real `casegraph serve` process,
real HTTP, the Python client, the real model, spaCy and the suite's backend.
tests/e2e/test_falkor_shared.py runs the same story through two processes sharing a
FalkorDB server."""

from __future__ import annotations

import pytest
from casegraph import CaseGraphClient, CaseGraphClientError

from tests.procs import ServerProcess

pytestmark = pytest.mark.e2e

OTHER_CUSTOMERS = [
    ("bob-stone", "Bob asked how to reset his router; we sent the setup guide and he prefers chat."),
    ("carol-white", "Carol's invoice for order #7788 was wrong; billing corrected it and she likes phone calls."),
    ("dan-ng", "Dan's parcel was lost in transit; a replacement shipped with tracking 1Z999AA10123456784."),
    ("eve-king", "Eve prefers to be contacted by email and wants to close her account."),
    ("frank-li", "Frank reported a damaged blender, order #9001; we offered a replacement."),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("e2e") / "data")
    yield proc
    proc.stop()


def test_support_bot_remembers_jane_across_sessions(server):
    client = CaseGraphClient(server.url)
    bot = "support-bot"

    # Last week: Jane's chat about a damaged parcel.
    first = client.session_start(agent_id=bot, customer_id="jane-doe")
    refund = client.store(
        agent_id=bot,
        content="Customer reported that order #4521 arrived with a cracked screen. "
        "We issued a full refund; she prefers email updates.",
        importance=0.8,
        tags=["support", "returns", "customer:jane-doe"],
        session_id=first["id"],
    )
    tried = client.store(
        agent_id=bot,
        content="Walked her through the display reset steps; it did not help.",
        tags=["support", "customer:jane-doe"],
        session_id=first["id"],
    )
    client.session_end(session_id=first["id"])

    # #4521 was extracted and linked to an Order node of Jane's.
    assert {"kind": "order", "value": "order #4521", "key": "4521"} in refund["entities"]
    customer = client.execute(
        '{ customer(agentId: "support-bot", id: "jane-doe") { orders { id } memories { id } } }'
    )["customer"]
    assert customer["orders"] == [{"id": "4521"}]
    # Ending the chat consolidated it into a summary memory of Jane's (issue 3).
    summary = client.execute(
        'query($s: ID!) { session(agentId: "support-bot", id: $s) { summaryMemory { id kind } } }',
        {"s": first["id"]},
    )["session"]["summaryMemory"]
    assert summary["kind"] == "summary"
    assert {m["id"] for m in customer["memories"]} == {refund["id"], tried["id"], summary["id"]}

    # Other customers' histories, in sessions of their own.
    for customer_id, text in OTHER_CUSTOMERS:
        s = client.session_start(agent_id=bot, customer_id=customer_id)
        client.store(agent_id=bot, content=text, tags=["support", f"customer:{customer_id}"], session_id=s["id"])
        client.session_end(session_id=s["id"])

    # This week: a new chat. The bot recalls her history without asking again.
    second = client.session_start(agent_id=bot)
    hits = client.recall(agent_id=bot, query="Jane Doe previous interactions and preferences", top_k=5)
    jane_ids = {refund["id"], tried["id"]}
    # Her two memories and the summary of that chat come first, all linked to her.
    assert {h["memory"]["id"] for h in hits[:3]} == jane_ids | {summary["id"]}
    assert all(h["signals"]["graph"] == 1.0 and "about customer jane-doe" in h["why"] for h in hits[:3])

    hits = client.recall(agent_id=bot, query="what happened with order 4521?", top_k=3)
    assert {h["memory"]["id"] for h in hits[:2]} == {refund["id"], summary["id"]}
    assert all("linked to order #4521" in h["why"] for h in hits[:2])

    # Session-scoped recall sees only that session's memories.
    note = client.store(
        agent_id=bot, content="Customer asked whether the refund for the screen has landed.",
        session_id=second["id"], tags=["customer:jane-doe"],
    )
    scoped = client.recall(agent_id=bot, query="refund", top_k=10, session_id=second["id"])
    assert [h["memory"]["id"] for h in scoped] == [note["id"]]
    scoped_first = client.recall(agent_id=bot, query="refund", top_k=10, session_id=first["id"])
    assert {h["memory"]["id"] for h in scoped_first} == jane_ids

    # Ending a session twice, or storing into an ended one, is refused with a code.
    with pytest.raises(CaseGraphClientError) as err:
        client.store(agent_id=bot, content="late note", session_id=first["id"])
    assert err.value.code == "SESSION_ENDED"


def test_memories_survive_a_restart(server):
    client = CaseGraphClient(server.url)
    stored = client.store(agent_id="restart-bot", content="Ticket T-5512: printer jams on duplex jobs.")
    server.restart()
    client = CaseGraphClient(server.url)
    hits = client.recall(agent_id="restart-bot", query="ticket T-5512", top_k=1)
    assert [h["memory"]["id"] for h in hits] == [stored["id"]]
    # The earlier test's memories are still there too.
    hits = client.recall(agent_id="support-bot", query="order 4521", top_k=1)
    assert "4521" in hits[0]["memory"]["content"]
