"""Service-layer functions the REST adapter needs: update, forget_many, wake_up,
graph-associated memories, session paging, storing into an ended session.

Real Kùzu, real model, real spaCy (the ``services`` fixture)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from casegraph.domain.links import linked_memories
from casegraph.domain.models import StoreRequest
from casegraph.domain.ranking import wake_up_order
from casegraph.errors import (
    InvalidImportance,
    InvalidInput,
    InvalidTopK,
    MemoryNotFound,
    SessionEnded,
)
from casegraph.storage.search import NodeRefs


def put(services, content: str, **fields):
    return services.memories.store(StoreRequest(agent_id="bot", content=content, **fields))


def test_update_relinks_reembeds_and_keeps_identity(services):
    session = services.memories.session_start("bot")
    old = put(services, "Order #4521 arrived with a cracked water tank", tags=("customer:jane-doe",),
              session_id=session.id, importance=0.4)
    new = services.memories.update(
        "bot", old.id, content="Order #7777 shipped with the wrong colour kettle",
        tags=["customer:bob-smith", "ticket:T-9"], importance=0.9,
    )
    assert (new.id, new.created_at, new.session_id) == (old.id, old.created_at, session.id)
    assert new.updated_at >= old.updated_at and new.importance == 0.9
    assert new.orders == ("7777",) and new.tickets == ("T-9",) and new.customer_id == "bob-smith"
    g = services.graph
    assert g.memory_customers("bot", [old.id]) == {old.id: ["bob-smith"]}
    assert old.id in linked_memories(g, "bot", NodeRefs(orders=("7777",)))
    assert old.id not in linked_memories(g, "bot", NodeRefs(orders=("4521",)))
    assert [i for i, _ in services.keywords.search("bot", "kettle", 5)] == [old.id]
    assert services.keywords.search("bot", "cracked", 5) == []
    assert g.count_memories("bot") == 1 and services.vectors.count("bot") == 1
    assert [m.id for m in services.memories.session_memories(session.id)] == [old.id]
    hit = services.recall.recall("bot", "wrong colour kettle", top_k=1)[0]
    assert hit.memory.id == old.id and hit.signals.semantic > 0.5  # the vector is the new text's


def test_update_validates_like_store_and_changes_nothing_on_error(services):
    m = put(services, "Prefers e-mail", customer_id="acme-1")
    with pytest.raises(InvalidImportance):
        services.memories.update("bot", m.id, importance=1.5)
    with pytest.raises(InvalidInput) as exc:
        services.memories.update("bot", m.id)
    assert exc.value.code == "EMPTY_UPDATE"
    with pytest.raises(MemoryNotFound):
        services.memories.update("bot", "00000000-0000-4000-8000-000000000000", content="x")
    with pytest.raises(MemoryNotFound):  # another agent's memory is not there at all
        services.memories.update("other-bot", m.id, content="x")
    assert services.memories.get("bot", m.id) == m
    # The customer given explicitly at store time survives a change of tags.
    updated = services.memories.update("bot", m.id, tags=["customer:zed"])
    assert sorted(services.graph.memory_customers("bot", [m.id])[m.id]) == ["acme-1", "zed"]
    assert updated.content == "Prefers e-mail" and updated.metadata == {}


def test_forget_many(services):
    a, b = put(services, "first"), put(services, "second")
    missing = "00000000-0000-4000-8000-000000000000"
    assert services.memories.forget_many("bot", [a.id, missing]) == [a.id]
    with pytest.raises(MemoryNotFound):
        services.memories.forget_many("bot", [a.id, missing])
    assert services.graph.count_memories("bot") == 1 and services.vectors.keys("bot") == {b.id}


def test_wake_up_ranks_by_importance_times_recency(services):
    now = datetime.now(UTC)
    put(services, "about to expire", importance=1.0, ttl_seconds=1)
    old_vital = put(services, "VIP customer, always escalate", importance=0.9,
                    created_at=now - timedelta(days=60))  # 0.9 * 0.25 = 0.225
    fresh = put(services, "Asked about shipping times", importance=0.4)
    fresher = put(services, "Asked about gift wrapping", importance=0.3)
    time.sleep(max(0.0, 1.05 - (datetime.now(UTC) - now).total_seconds()))
    woken = services.recall.wake_up("bot", top_n=10)
    assert [m.id for m in woken.memories] == [fresh.id, fresher.id, old_vital.id]
    assert woken.total_available == 3  # the expired memory is neither shown nor counted
    woken = services.recall.wake_up("bot", top_n=1, min_importance=0.35)
    assert [m.id for m in woken.memories] == [fresh.id] and woken.total_available == 2
    with pytest.raises(InvalidTopK):
        services.recall.wake_up("bot", top_n=0)
    with pytest.raises(InvalidImportance):
        services.recall.wake_up("bot", min_importance=2)
    assert services.recall.wake_up("nobody").memories == ()


def test_wake_up_order_is_pure():
    now = datetime(2025, 6, 1, tzinfo=UTC)
    priors = [("a", 0.8, now - timedelta(days=30)), ("b", 0.5, now), ("c", 0.5, now - timedelta(seconds=1))]
    assert wake_up_order(priors, now=now, half_life_days=30, top_n=3) == ["b", "c", "a"]
    assert wake_up_order(priors, now=now, half_life_days=30, top_n=1) == ["b"]


def test_associated_memories_follow_customers_orders_tickets_hop_by_hop(services):
    seed = put(services, "Order #4521 arrived crushed", tags=("customer:jane-doe",))
    same_customer = put(services, "Prefers phone calls", tags=("customer:jane-doe",))
    same_order = put(services, "Courier confirmed order #4521 was dropped", tags=("ticket:T-9",))
    via_ticket = put(services, "Escalated to the carrier", tags=("ticket:T-9",))
    put(services, "Unrelated chat about the weather", tags=("customer:bob-smith",))

    def assoc(**kw):
        return [(a.memory.id, a.depth) for a in services.recall.associated("bot", [seed.id], **kw)]

    one = assoc(depth=1)
    assert sorted(one) == sorted([(same_customer.id, 1), (same_order.id, 1)])
    assert one[0][0] == same_order.id  # newest first within a depth
    assert assoc(depth=3) == [*one, (via_ticket.id, 2)]
    assert assoc(depth=3, limit=1) == one[:1]
    assert services.recall.associated("other-bot", [seed.id], depth=3) == []
    with pytest.raises(InvalidInput):
        services.recall.associated("bot", [seed.id], depth=4)
    services.memories.forget("bot", via_ticket.id)
    assert assoc(depth=3) == one


def test_store_into_ended_session_only_when_allowed(services):
    session = services.memories.session_start("bot", customer_id="jane-doe")
    services.memories.session_end(session.id)
    with pytest.raises(SessionEnded):
        put(services, "late note", session_id=session.id)
    late = put(services, "late note", session_id=session.id, allow_ended_session=True)
    assert late.session_id == session.id and late.customer_id == "jane-doe"
    assert services.memories.session_get(session.id).memory_count == 1


def test_session_paging(services):
    sessions = [services.memories.session_start("bot") for _ in range(3)]
    listed = services.memories.list_sessions("bot", limit=2, offset=1)
    assert len(listed) == 2 and {s.id for s in listed} <= {s.id for s in sessions}
    assert len(services.memories.list_sessions("bot", limit=50, offset=3)) == 0
    with pytest.raises(InvalidInput):
        services.memories.list_sessions("bot", limit=0)
    with pytest.raises(InvalidInput):
        services.memories.list_sessions("bot", offset=-1)
    s = sessions[0]
    stored = [put(services, f"note {i}", session_id=s.id) for i in range(4)]
    page = services.memories.session_memories(s.id, limit=2, offset=1)
    assert [m.id for m in page] == [m.id for m in stored[1:3]]
