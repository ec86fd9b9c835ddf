"""The Python client, sync and async, against the real app over real HTTP: every call it
offers, its filters, its errors and its API key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from casegraph import AsyncCaseGraphClient, CaseGraphClient, CaseGraphClientError

BOT = "bot"


def test_sync_client_offers_every_call(live_server):
    with CaseGraphClient(live_server.url) as client:
        session = client.session_start(agent_id=BOT, customer_id="jane-doe", metadata={"channel": "chat"})
        assert session["active"] is True and session["customerId"] == "jane-doe"
        assert session["metadata"] == {"channel": "chat"}
        refund = client.store(
            agent_id=BOT, content="Order #4521 arrived with a cracked screen; we refunded it in full.",
            importance=0.9, tags=["returns"], session_id=session["id"], metadata={"ticket": "T-1"},
        )
        assert {"kind": "order", "value": "Order #4521", "key": "4521"} in refund["entities"]
        assert (refund["sessionId"], refund["customerId"]) == (session["id"], "jane-doe")
        assert refund["metadata"] == {"ticket": "T-1"} and refund["importance"] == 0.9
        router, blender = client.store_batch([
            {"agent_id": BOT, "content": "Bob asked how to reset his router; we sent the setup guide.",
             "customer_id": "bob-stone"},
            {"agent_id": BOT, "content": "Frank reported a damaged blender; a replacement shipped.",
             "tags": ["returns"], "created_at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC)},
        ])
        assert router["customerId"] == "bob-stone" and blender["tags"] == ["returns"]

        hits = client.recall(agent_id=BOT, query="cracked screen refund for order 4521", top_k=3)
        assert hits[0]["memory"]["id"] == refund["id"]
        assert set(hits[0]["signals"]) == {"semantic", "keyword", "importance", "recency", "graph"}
        # Each filter reaches the server: customer, time window (a datetime), tags, session.
        by_customer = client.recall(agent_id=BOT, query="router setup", customer_id="bob-stone")
        assert [h["memory"]["id"] for h in by_customer] == [router["id"]]
        before = client.recall(agent_id=BOT, query="damaged", top_k=10, until=datetime(2026, 2, 1, tzinfo=UTC))
        assert [h["memory"]["id"] for h in before] == [blender["id"]]
        returns = client.recall(agent_id=BOT, query="damaged blender replacement", top_k=10, tags=["returns"])
        assert returns[0]["memory"]["id"] == blender["id"]
        assert {h["memory"]["id"] for h in returns} <= {refund["id"], blender["id"]}
        in_session = client.recall(agent_id=BOT, query="refund", top_k=10, session_id=session["id"])
        assert [h["memory"]["id"] for h in in_session] == [refund["id"]]

        assert client.memory(agent_id=BOT, memory_id=blender["id"])["createdAt"].startswith("2026-01-05T09:30")
        assert client.execute(
            'query($c: String!) { customer(agentId: "bot", id: $c) { orders { id } } }', {"c": "jane-doe"}
        ) == {"customer": {"orders": [{"id": "4521"}]}}

        ended = client.session_end(session_id=session["id"], summary="refunded order 4521")
        assert ended["active"] is False and ended["summary"] == "refunded order 4521"
        with pytest.raises(CaseGraphClientError) as err:
            client.store(agent_id=BOT, content="late note", session_id=session["id"])
        assert err.value.code == "SESSION_ENDED"

        assert client.forget(agent_id=BOT, memory_id=router["id"]) is True
        with pytest.raises(CaseGraphClientError) as err:
            client.memory(agent_id=BOT, memory_id=router["id"])
        assert err.value.code == "MEMORY_NOT_FOUND" and err.value.errors[0]["extensions"]["code"] == "MEMORY_NOT_FOUND"


def test_async_client_offers_the_same_calls_concurrently(live_server):
    facts = {
        "jane-doe": "Jane's order #4521 arrived with a cracked screen; refund issued.",
        "bob-stone": "Bob's router kept dropping Wi-Fi; we replaced it under warranty.",
        "carol-white": "Carol's invoice for order #7788 was wrong; billing corrected it.",
    }

    async def scenario() -> None:
        async with AsyncCaseGraphClient(live_server.url) as client:
            session = await client.session_start(agent_id=BOT, customer_id="jane-doe")
            stored = await asyncio.gather(*(
                client.store(agent_id=BOT, content=text, customer_id=customer, tags=[f"customer:{customer}"])
                for customer, text in facts.items()
            ))
            ids = {m["customerId"]: m["id"] for m in stored}
            assert set(ids) == set(facts)
            batch = await client.store_batch([
                {"agent_id": BOT, "content": "Jane asked for email updates only.", "session_id": session["id"]},
            ])
            hits = await asyncio.gather(
                client.recall(agent_id=BOT, query="cracked screen refund", top_k=1),
                client.recall(agent_id=BOT, query="router Wi-Fi warranty", top_k=1),
                client.recall(agent_id=BOT, query="invoice billing order 7788", top_k=1),
                client.recall(agent_id=BOT, query="updates", top_k=5, session_id=session["id"]),
            )
            assert [h[0]["memory"]["id"] for h in hits] == [
                ids["jane-doe"], ids["bob-stone"], ids["carol-white"], batch[0]["id"]
            ]
            assert len(hits[3]) == 1
            got = await client.memory(agent_id=BOT, memory_id=ids["carol-white"])
            assert got["content"] == facts["carol-white"]
            data = await client.execute('{ customer(agentId: "bot", id: "carol-white") { orders { id } } }')
            assert data == {"customer": {"orders": [{"id": "7788"}]}}
            assert (await client.session_end(session_id=session["id"]))["active"] is False
            assert await client.forget(agent_id=BOT, memory_id=ids["bob-stone"]) is True
            with pytest.raises(CaseGraphClientError) as err:
                await client.forget(agent_id=BOT, memory_id=ids["bob-stone"])
            assert err.value.code == "MEMORY_NOT_FOUND"

    asyncio.run(scenario())


def test_both_clients_send_the_api_key(live_server_factory):
    server = live_server_factory(api_key="client-key-123")
    with pytest.raises(CaseGraphClientError) as err:
        CaseGraphClient(server.url).recall(agent_id=BOT, query="x")
    assert err.value.code == "UNAUTHENTICATED"
    stored = CaseGraphClient(server.url, api_key="client-key-123").store(agent_id=BOT, content="Keyed note.")

    async def recall(api_key: str | None) -> list:
        async with AsyncCaseGraphClient(server.url, api_key=api_key) as client:
            return await client.recall(agent_id=BOT, query="keyed note", top_k=1)

    with pytest.raises(CaseGraphClientError) as err:
        asyncio.run(recall("wrong-key-000"))
    assert err.value.code == "UNAUTHENTICATED"
    assert [h["memory"]["id"] for h in asyncio.run(recall("client-key-123"))] == [stored["id"]]
