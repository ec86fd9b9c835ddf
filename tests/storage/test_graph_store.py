"""The storage interfaces (MemoryStore, SessionStore, CustomerStore, GraphSearch) on a real store.

Embeddings here are small fake 4-dim vectors: the store keeps them but never interprets
them, so the embedding model is irrelevant at this layer.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from casegraph.domain.links import linked_memories
from casegraph.domain.models import Entity, RecallFilter, Session
from casegraph.errors import MemoryExists, StorageError
from casegraph.storage.memories import NO_TIME, micros
from casegraph.storage.search import GraphLink, NodeRefs, vector_key

from tests.storage.backends import falkor, hygiene_of, open_store, tickets_of
from tests.storage.records import (
    NOW,
    A,
    B,
    filter_world,
    make_memory,
    new_id,
    rec,
    vec,
    write_linked_memory,
)


@pytest.fixture
def store(tmp_path):
    """The store under test, used only through the storage interfaces (MemoryStore,
    SessionStore, CustomerStore, GraphSearch, StoreMaintenance); a second engine yields
    its own here."""
    s = open_store(tmp_path)
    yield s
    s.close()


@pytest.fixture
def tickets(store):
    """The same store's TicketStore."""
    return tickets_of(store)


def test_meta_set_and_get(store):
    store.set_meta("k", "v1")
    store.set_meta("k", "v2")
    assert store.get_meta("k") == "v2"
    assert store.get_meta("other") is None


# -- write_memories ----------------------------------------------------------------------
@pytest.fixture
def linked(store):
    return write_linked_memory(store)


def test_write_creates_the_memory_and_its_nodes(store, tickets, linked):
    m, session = linked
    got = store.get_memories(A, [m.id])[m.id]
    assert got == m
    assert store.count_memories() == 1 and store.count_memories(A) == 1 and store.count_memories(B) == 0
    customer = store.get_customer(A, "jane")
    assert customer is not None and customer.id == "jane" and customer.agent_id == A
    assert store.customer_orders(A, "jane") == ["4521"]
    assert store.customer_tickets(A, "jane") == ["T-77"]
    assert store.memory_customers(A, [m.id]) == {m.id: ["jane"]}
    # The order, the ticket (open) and the e-mail exist for this agent only.
    email = (("email", "jane@example.com"),)
    named = NodeRefs(customers=("jane",), orders=("4521",), tickets=("T-77",), entities=email)
    assert store.resolve(A, named) == named
    assert store.resolve(B, named) == NodeRefs()
    ticket = tickets.get_tickets(A, ["T-77"])["T-77"]
    assert (ticket.agent_id, ticket.status) == (A, "open")
    assert tickets.get_tickets(B, ["T-77"]) == {}


def test_write_creates_the_links(store, tickets, linked):
    """Every link the write made, read back through the interfaces."""
    m, session = linked
    assert store.memory_customers(A, [m.id]) == {m.id: ["jane"]}  # about the customer
    assert store.orders_memories(A, ["4521"], NOW) == {"4521": [m]}  # mentions the order
    assert tickets.tickets_of_memories(A, [m.id]) == {m.id: ["T-77"]}  # ... the ticket
    mentions = linked_memories(store, A, NodeRefs(entities=(("email", "jane@example.com"),)))
    assert mentions == {m.id: GraphLink(1.0, ["mentions jane@example.com"])}  # ... the e-mail
    assert store.session_memories(session.id, NOW) == [m]  # in the session
    assert store.customer_orders(A, "jane") == ["4521"]  # the customer placed the order
    assert tickets.ticket_customers(A, ["T-77"]) == {"T-77": ["jane"]}  # ... raised the ticket
    assert tickets.ticket_orders(A, ["T-77"]) == {"T-77": ["4521"]}  # the ticket concerns the order
    assert [s.id for s in store.list_sessions(A, customer_id="jane")] == [session.id]  # had the session


def test_shared_nodes_are_linked_once(store, linked):
    m, _ = linked
    m2 = make_memory("Follow-up on order #4521 for jane.")
    store.write_memories([rec(m2, customer_ids=("jane",), orders=("4521",))])
    assert store.customer_orders(A, "jane") == ["4521"]  # one order, placed once
    assert {x.id for x in store.orders_memories(A, ["4521"], NOW)["4521"]} == {m.id, m2.id}
    assert sorted(store.customer_memories(A, "jane", NOW), key=lambda x: x.id) == sorted([m, m2], key=lambda x: x.id)
    assert set(linked_memories(store, A, NodeRefs(orders=("4521",)))) == {m.id, m2.id}


def test_two_agents_keep_their_own_nodes(store, linked):
    m, _ = linked
    other = make_memory("Agent b also has an order 4521 for jane.", agent=B)
    store.write_memories([rec(other, customer_ids=("jane",), orders=("4521",))])
    assert store.customer_orders(B, "jane") == ["4521"]
    assert store.orders_memories(A, ["4521"], NOW) == {"4521": [m]}
    assert store.orders_memories(B, ["4521"], NOW) == {"4521": [other]}
    assert store.memory_customers(B, [other.id, m.id]) == {other.id: ["jane"]}
    assert [x.id for x in store.customer_memories(A, "jane", NOW)] == [m.id]
    assert [x.id for x in store.customer_memories(B, "jane", NOW)] == [other.id]


def test_a_batch_is_written_in_one_go(store):
    mems = [make_memory(f"batch memory number {i}", tags=(f"t{i}",)) for i in range(20)]
    store.write_memories([rec(m, vec(i, 1, 0, 0)) for i, m in enumerate(mems)])
    assert store.count_memories(A) == 20
    got = store.get_memories(A, [m.id for m in mems])
    assert all(got[m.id] == m for m in mems)
    emb = store.embeddings(A, [mems[3].id, mems[0].id])
    np.testing.assert_allclose(emb, [[3, 1, 0, 0], [0, 1, 0, 0]])


def test_write_of_nothing_is_a_no_op(store):
    store.write_memories([])
    assert store.count_memories() == 0


def test_a_failing_batch_writes_nothing(store, linked):
    m, session = linked
    good = make_memory("a perfectly fine memory about bob and order 9001")
    dup = make_memory("this memory appears twice in the batch")
    batch = [
        rec(good, customer_ids=("bob",), orders=("9001",), tickets=("T-5",)),
        rec(dup, customer_ids=("carol",)),
        rec(dup),
    ]
    with pytest.raises(StorageError) as info:
        store.write_memories(batch)
    assert info.value.code == "STORAGE_ERROR"
    assert store.get_memories(A, [good.id, dup.id]) == {}
    assert store.get_customer(A, "bob") is None and store.get_customer(A, "carol") is None
    assert store.resolve(A, NodeRefs(orders=("9001",), tickets=("T-5",))) == NodeRefs()
    assert store.count_memories() == 1 and store.get_session(session.id).memory_count == 1
    # The store is still usable afterwards.
    store.write_memories([rec(good, customer_ids=("bob",))])
    assert store.count_memories() == 2


def test_an_id_that_already_exists_fails_the_whole_batch(store, linked):
    m, _ = linked
    fresh = make_memory("brand new memory")
    # Kùzu's primary key or FalkorDB's id claim refuses it with the answer the domain's own
    # check gives (MEMORY_EXISTS): a write that raced that check is the only way here.
    with pytest.raises(MemoryExists):
        store.write_memories([rec(fresh), rec(m)])
    assert store.get_memories(A, [fresh.id]) == {}
    assert store.count_memories() == 1


# -- reading memories back ---------------------------------------------------------------
def test_get_memories_returns_entities_and_metadata_intact(store):
    metadata = {"channel": "chat", "order": {"items": [1, 2], "total": 19.99}, "note": "café ☕", "vip": True, "none": None}
    entities = (
        Entity("order", "#4521", "4521"),
        Entity("person", "Jane Doe", "jane doe"),
        Entity("phone", "+44 20 7946 0958", "+442079460958"),
    )
    expires = NOW + timedelta(days=3)
    m = make_memory(
        "Jane Doe (+44 20 7946 0958) asked about order #4521.", importance=0.75, tags=("b", "a", "customer:jane-doe"),
        memory_type="semantic", metadata=metadata, entities=entities, customer_id="jane-doe", expires_at=expires,
    )
    store.write_memories([rec(m)])
    got = store.get_memories(A, [m.id])[m.id]
    assert got.metadata == metadata
    assert got.entities == entities
    assert got.orders == ("4521",)
    assert got.tags == ("b", "a", "customer:jane-doe")  # order kept
    assert (got.importance, got.memory_type, got.customer_id) == (0.75, "semantic", "jane-doe")
    assert got.expires_at == expires
    assert got.session_id is None and got.access_count == 0
    assert got == m


def test_get_memories_is_agent_scoped_and_ignores_unknown_ids(store, linked):
    m, _ = linked
    assert store.get_memories(B, [m.id]) == {}
    assert set(store.get_memories(A, [m.id, new_id()])) == {m.id}
    assert store.get_memories(A, []) == {}


def test_timestamps_come_back_tz_aware_utc(store, linked):
    m, session = linked
    got = store.get_memories(A, [m.id])[m.id]
    for ts in (got.created_at, got.updated_at):
        assert ts.tzinfo is not None and ts.utcoffset() == timedelta(0)
    assert got.created_at == NOW
    s = store.get_session(session.id)
    assert s.started_at.utcoffset() == timedelta(0) and s.started_at == NOW
    customer = store.get_customer(A, "jane")
    assert customer.created_at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_treated_as_utc(store):
    naive = datetime(2024, 3, 1, 9, 30)
    m = make_memory("naive time", created_at=naive, updated_at=naive)
    store.write_memories([rec(m)])
    got = store.get_memories(A, [m.id])[m.id]
    assert got.created_at == naive.replace(tzinfo=UTC)


# Regression: Kùzu drops the offset of an aware datetime and keeps its wall-clock time, so
# 13:00+05:00 used to come back as 13:00+00:00; the store must convert to UTC first.
def test_non_utc_aware_datetimes_keep_their_instant(store):
    plus5 = timezone(timedelta(hours=5))
    created = NOW.astimezone(plus5)
    m = make_memory("offset time", created_at=created, updated_at=created)
    store.write_memories([rec(m)])
    got = store.get_memories(A, [m.id])[m.id]
    assert got.created_at == NOW


def test_embeddings_come_back_in_the_requested_order(store):
    mems = [make_memory(f"m{i}") for i in range(3)]
    store.write_memories([rec(m, vec(i, i, 0, 1)) for i, m in enumerate(mems)])
    ids = [mems[2].id, mems[0].id, mems[1].id]
    np.testing.assert_allclose(store.embeddings(A, ids), [[2, 2, 0, 1], [0, 0, 0, 1], [1, 1, 0, 1]])
    assert store.embeddings(A, ids).dtype == np.float32


def test_memory_attrs(store):
    expires = NOW + timedelta(days=1)
    m1 = make_memory("one", importance=0.25, created_at=NOW - timedelta(days=2), expires_at=expires)
    m2 = make_memory("two", importance=1.0)
    other = make_memory("b", agent=B)
    store.write_memories([rec(m) for m in (m1, m2, other)])
    attrs = store.memory_attrs(A, [m1.id, m2.id, other.id, new_id()])
    assert attrs == {m1.id: (0.25, NOW - timedelta(days=2), expires, None, None), m2.id: (1.0, NOW, None, None, None)}
    assert attrs[m1.id][1].utcoffset() == timedelta(0)


def test_memory_attrs_are_read_again_after_any_write(store):
    m = make_memory("one", importance=0.25)
    store.write_memories([rec(m)])
    assert store.memory_attrs(A, [m.id])[m.id].importance == 0.25
    assert store.memory_attrs(A, [m.id])[m.id].importance == 0.25  # cached now
    _write_behind_the_store(store, A, "MATCH (m:Memory {id: $id}) SET m.importance = 0.75, m.kind = 'summary'", m.id)
    assert store.memory_attrs(A, [m.id])[m.id][::4] == (0.75, "summary")
    assert store.memory_attrs(B, [m.id]) == {}  # the cache is per agent too
    store.delete_memories(A, [m.id])
    assert store.memory_attrs(A, [m.id]) == {}


def _write_behind_the_store(store, agent_id, query, memory_id):
    """One raw statement, as another process (or a migration) would write it."""
    if falkor():
        store.write(agent_id, query, {"id": memory_id})
    else:
        with store.transaction() as run:
            run(query, {"id": memory_id})


def test_many_ids_read_and_delete_like_a_few(store):
    # Up to some count the store looks ids up one by one, past it with one scan: same answers.
    mems = [make_memory(f"bulk {i}") for i in range(80)]
    store.write_memories([rec(m) for m in mems])
    wanted = [m.id for m in mems[:70]] + [new_id() for _ in range(5)]
    assert set(store.get_memories(A, wanted)) == {m.id for m in mems[:70]}
    assert store.get_memories(B, wanted) == {}
    assert set(store.get_memories(A, wanted[:3])) == {m.id for m in mems[:3]}
    assert store.delete_memories(B, wanted) == []
    assert sorted(store.delete_memories(A, wanted)) == sorted(m.id for m in mems[:70])
    assert store.count_memories(A) == 10
    assert sorted(store.delete_memories(A, [m.id for m in mems[70:73]] * 2)) == sorted(m.id for m in mems[70:73])
    assert store.count_memories(A) == 7


def test_all_memory_ids_groups_by_agent(store):
    a = [make_memory("a1"), make_memory("a2")]
    b = [make_memory("b1", agent=B)]
    store.write_memories([rec(m) for m in a + b])
    assert store.all_memory_ids() == {A: {a[0].id, a[1].id}, B: {b[0].id}}


def test_agent_memories_pages_oldest_first_by_created_at_then_id(store):
    # Three memories share one instant: the id orders them, and a page may end among them.
    at = [NOW - timedelta(days=2), NOW - timedelta(days=1), NOW - timedelta(days=1), NOW - timedelta(days=1), NOW]
    mems = [make_memory(f"page {i}", created_at=t) for i, t in enumerate(at)]
    expired = make_memory("expired", created_at=NOW - timedelta(days=3), expires_at=NOW - timedelta(minutes=1))
    store.write_memories([rec(m) for m in [*mems, expired, make_memory("other agent", agent=B)]])
    want = [m.id for m in sorted(mems, key=lambda m: (m.created_at, m.id))]
    pages, after = [], None
    while page := store.agent_memories(A, NOW, after=after, limit=2):
        pages.append([m.id for m in page])
        after = (page[-1].created_at, page[-1].id)
    assert pages == [want[:2], want[2:4], want[4:]]
    assert store.agent_memories(A, NOW, limit=10)[0] == mems[0]  # whole records
    assert expired.id in {m.id for m in store.agent_memories(A, NOW - timedelta(hours=1), limit=10)}
    assert store.agent_memories("agent-c", NOW) == []


def test_reads_over_ids_and_agents(store):
    low = make_memory("low importance", importance=0.2, tags=("t1",), created_at=NOW - timedelta(days=1))
    high = make_memory("high importance", importance=0.8, tags=("t2", "t3"))
    gone = make_memory("expired", importance=0.9, expires_at=NOW - timedelta(minutes=1))
    other = make_memory("other agent", agent=B, importance=0.9)
    store.write_memories([rec(m) for m in (low, high, gone, other)])
    unknown = new_id()
    # Ids are global keys: any agent's count as existing.
    assert store.existing_memory_ids([low.id, other.id, unknown]) == {low.id, other.id}
    assert store.existing_memory_ids([]) == set()
    assert store.count_memories_by_agent() == {A: 3, B: 1}
    # A deleted memory no longer exists (the others still do).
    scratch = make_memory("deleted at once", agent=B)
    store.write_memories([rec(scratch)])
    assert store.existing_memory_ids([scratch.id, other.id]) == {scratch.id, other.id}
    assert store.delete_memories(B, [scratch.id]) == [scratch.id]
    assert store.existing_memory_ids([scratch.id, other.id]) == {other.id}
    assert store.load_attrs() == {A: {low.id, high.id, gone.id}, B: {other.id}}
    # Priors: live memories at or above the importance asked for.
    assert sorted(store.memory_priors(A, NOW)) == sorted([(low.id, 0.2, low.created_at), (high.id, 0.8, NOW)])
    assert store.memory_priors(A, NOW, min_importance=0.5) == [(high.id, 0.8, NOW)]
    assert sorted(store.memory_texts(A, [high.id, low.id, other.id, unknown, low.id])) == sorted(
        [(low.id, "low importance", ["t1"]), (high.id, "high importance", ["t2", "t3"])]
    )
    # Ranking attributes by vector key, in the order asked; a key the agent lacks is unknown.
    keys = np.asarray([vector_key(i) for i in (high.id, unknown, gone.id, other.id)], dtype=np.uint64)
    cols = store.cached_columns(A, keys)
    assert cols.known.tolist() == [True, False, True, False]
    assert cols.importance[[0, 2]].tolist() == [0.8, 0.9]
    assert cols.created_us[0] == micros(NOW) and cols.expires_us[0] == NO_TIME
    assert cols.expires_us[2] == micros(gone.expires_at) and not cols.superseded[[0, 2]].any()
    assert set(store.cached_attrs(A, [low.id, high.id, other.id])) == {low.id, high.id}  # a write fills a cache


def test_customer_session_memories_include_the_session_summary(store):
    session = Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="jane")
    store.create_session(session)
    said = make_memory("said in the session", session_id=session.id)
    summary = make_memory("summary of the session")
    store.write_memories([rec(said)])
    hygiene = hygiene_of(store)
    store.write_memories([rec(summary)], after=lambda tx: hygiene.write_summary(tx, summary.id, session.id, NOW, "done"))
    assert store.customer_session_memories(A, ["jane", "nobody"]) == {said.id: session.id, summary.id: session.id}
    assert store.customer_session_memories(B, ["jane"]) == {}


def test_customer_session_memories_of_many_sessions_and_customers(store):
    # More sessions than the store's few-keys limit (16), over two customers; a session
    # without memories, and another customer's, are not in the answer.
    want = {}
    for i in range(20):
        session = Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="jane" if i % 2 else "bob")
        store.create_session(session)
        said = make_memory(f"said in session {i}", session_id=session.id)
        store.write_memories([rec(said)])
        want[said.id] = session.id
    store.create_session(Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="jane"))
    store.create_session(Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="carol"))
    store.write_memories([rec(make_memory("carol's", session_id=store.list_sessions(A, customer_id="carol")[0].id))])
    assert store.customer_session_memories(A, ["jane", "bob"]) == want
    assert len(store.customer_session_memories(A, ["jane"])) == 10


def test_customer_and_session_memories(store):
    session = Session(id=new_id(), agent_id=A, started_at=NOW)
    store.create_session(session)
    old = make_memory("old", created_at=NOW - timedelta(days=2), session_id=session.id)
    new = make_memory("new", created_at=NOW - timedelta(days=1), session_id=session.id)
    gone = make_memory("expired", created_at=NOW - timedelta(days=3), session_id=session.id,
                       expires_at=NOW - timedelta(minutes=1))
    store.write_memories([rec(m, customer_ids=("jane",)) for m in (new, gone, old)])
    assert [m.id for m in store.customer_memories(A, "jane", NOW)] == [new.id, old.id]  # newest first
    assert [m.id for m in store.session_memories(session.id, NOW)] == [old.id, new.id]  # oldest first
    assert store.customer_memories(B, "jane", NOW) == []
    # Before the expiry the expired one is still there.
    earlier = NOW - timedelta(hours=1)
    assert gone.id in {m.id for m in store.customer_memories(A, "jane", earlier)}


def test_expired_memory_ids(store):
    soon = make_memory("expires soon", expires_at=NOW + timedelta(minutes=5))
    past = make_memory("already expired", expires_at=NOW - timedelta(minutes=5))
    never = make_memory("never expires")
    other = make_memory("other agent, expired", agent=B, expires_at=NOW - timedelta(days=1))
    store.write_memories([rec(m) for m in (soon, past, never, other)])
    assert sorted(store.expired_memory_ids(NOW)) == sorted([(A, past.id), (B, other.id)])
    later = NOW + timedelta(minutes=10)
    assert sorted(store.expired_memory_ids(later)) == sorted([(A, past.id), (A, soon.id), (B, other.id)])


def test_delete_removes_the_memory_and_its_links(store, tickets, linked):
    m, session = linked
    assert store.delete_memories(A, [m.id]) == [m.id]
    assert store.get_memories(A, [m.id]) == {}
    assert store.count_memories() == 0
    assert store.memory_customers(A, [m.id]) == {}
    assert store.orders_memories(A, ["4521"], NOW) == {}
    assert tickets.tickets_of_memories(A, [m.id]) == {}
    assert store.session_memories(session.id, NOW) == []
    assert linked_memories(store, A, NodeRefs(orders=("4521",), customers=("jane",))) == {}
    assert store.get_session(session.id).memory_count == 0
    # Nodes other memories may share stay.
    assert store.customer_orders(A, "jane") == ["4521"]


def test_delete_is_agent_scoped_and_reports_only_existing_ids(store, linked):
    m, _ = linked
    assert store.delete_memories(B, [m.id]) == []
    assert store.count_memories(A) == 1
    assert store.delete_memories(A, [new_id()]) == []
    other = make_memory("keep me")
    store.write_memories([rec(other)])
    assert store.delete_memories(A, [m.id, new_id()]) == [m.id]
    assert set(store.get_memories(A, [m.id, other.id])) == {other.id}


# -- resolve and linked_memories ---------------------------------------------------------
@pytest.fixture(scope="module")
def world_db(tmp_path_factory):
    """jane: m_order (order 4521 + ticket T-77), m_email (mentions an e-mail), m_plain.
    bob: m_bob. Agent B has its own jane with order 4521. Read-only, shared by the module."""
    store = open_store(tmp_path_factory.mktemp("world"))
    email = Entity("email", "jane@example.com", "jane@example.com")
    ms = {
        "order": make_memory("order 4521 is late; ticket T-77"),
        "email": make_memory("write to jane@example.com"),
        "plain": make_memory("jane prefers mornings"),
        "bob": make_memory("bob likes tea"),
        "loose": make_memory("order 4521 mentioned without a customer"),
        "b": make_memory("agent b jane memory", agent=B),
    }
    store.write_memories([
        rec(ms["order"], customer_ids=("jane",), orders=("4521",), tickets=("T-77",)),
        rec(ms["email"], customer_ids=("jane",), others=(email,)),
        rec(ms["plain"], customer_ids=("jane",)),
        rec(ms["bob"], customer_ids=("bob",)),
        rec(ms["loose"], orders=("4521",)),
        rec(ms["b"], customer_ids=("jane",), orders=("4521",), others=(email,)),
    ])
    yield store, {k: m.id for k, m in ms.items()}
    store.close()


def test_resolve_keeps_only_existing_nodes_of_the_agent(world_db):
    store, world = world_db
    refs = NodeRefs(
        customers=("jane", "nobody"), orders=("4521", "999"), tickets=("T-77", "T-1"),
        entities=(("email", "jane@example.com"), ("email", "no@example.com")),
    )
    got = store.resolve(A, refs)
    assert got == NodeRefs(
        customers=("jane",), orders=("4521",), tickets=("T-77",), entities=(("email", "jane@example.com"),)
    )
    assert bool(got)
    none = store.resolve("agent-c", refs)
    assert none == NodeRefs() and not none


def test_direct_links_score_one_with_readable_reasons(world_db):
    store, world = world_db
    links = linked_memories(store, A, NodeRefs(orders=("4521",)))
    assert links[world["order"]].strength == 1.0
    assert links[world["order"]].reasons == ["linked to order #4521"]
    assert links[world["loose"]].strength == 1.0
    links = linked_memories(store, A, NodeRefs(tickets=("T-77",)))
    assert links[world["order"]].strength == 1.0 and links[world["order"]].reasons == ["linked to ticket T-77"]
    links = linked_memories(store, A, NodeRefs(customers=("jane",)))
    assert {k for k, v in links.items() if v.strength == 1.0} == {world["order"], world["email"], world["plain"]}
    assert links[world["plain"]].reasons == ["about customer jane"]
    links = linked_memories(store, A, NodeRefs(entities=(("email", "jane@example.com"),)))
    assert links[world["email"]].strength == 1.0
    assert links[world["email"]].reasons == ["mentions jane@example.com"]


def _key_map(world):
    """A key map (``VectorIndex.ids_of``) over the world's memories, and the keys it was asked for."""
    by_key = {vector_key(i): i for i in world.values()}
    asked: list[list[int]] = []

    def ids_of(agent_id, keys):
        asked.append(list(keys))
        return {k: by_key[k] for k in keys if k in by_key}

    return by_key, asked, ids_of


@contextlib.contextmanager
def keyed(store, ids_of):
    """The embedded store with a key map, as ``open_embedded`` wires it to the vector store's."""
    store.key_ids = ids_of
    try:
        yield
    finally:
        store.key_ids = None


# Kùzu reads an edge's key ~15x cheaper than the memory's id (005_edge_keys), so the
# embedded store, given the vector store's key map, reads keys; FalkorDB reads ids as
# cheaply and has no key map.
@pytest.mark.embedded_only
def test_links_read_by_edge_keys_equal_links_read_by_ids(world_db):
    store, world = world_db
    by_key, asked, ids_of = _key_map(world)
    for refs in (
        NodeRefs(orders=("4521",)), NodeRefs(tickets=("T-77",)), NodeRefs(customers=("jane",)),
        NodeRefs(entities=(("email", "jane@example.com"),)), NodeRefs(customers=("bob",), orders=("4521",)),
    ):
        for others in (False, True):
            by_ids = linked_memories(store, A, refs, others=others)
            with keyed(store, ids_of):
                assert linked_memories(store, A, refs, others=others) == by_ids
    assert asked and all(k in by_key for keys in asked for k in keys)
    # A key the map lacks (a vector not stored yet): that hop reads the ids instead.
    del by_key[vector_key(world["plain"])]
    with keyed(store, ids_of):
        links = linked_memories(store, A, NodeRefs(customers=("jane",)))
    assert links == linked_memories(store, A, NodeRefs(customers=("jane",)))
    assert world["plain"] in links


@pytest.mark.embedded_only
def test_embedded_hops_read_memory_keys_off_the_edges(world_db):
    store, world = world_db
    by_key, asked, ids_of = _key_map(world)
    with keyed(store, ids_of):
        linked_memories(store, A, NodeRefs(customers=("jane",), orders=("4521",)))
    assert asked and all(k in by_key for keys in asked for k in keys)


def test_links_via_the_customer_score_one_half(world_db):
    store, world = world_db
    links = linked_memories(store, A, NodeRefs(orders=("4521",)))
    for key in ("email", "plain"):
        assert links[world[key]].strength == 0.5
        assert links[world[key]].reasons == ["same customer as order #4521"]
    assert world["bob"] not in links
    links = linked_memories(store, A, NodeRefs(tickets=("T-77",)))
    assert links[world["plain"]].strength == 0.5
    assert links[world["plain"]].reasons == ["same customer as ticket T-77"]
    links = linked_memories(store, A, NodeRefs(entities=(("email", "jane@example.com"),)))
    assert links[world["plain"]].strength == 0.5
    assert links[world["plain"]].reasons == ["same customer (jane) as a mentioned entity"]
    assert links[world["order"]].strength == 0.5


def test_a_limit_skips_only_hops_that_cannot_reach_the_strongest_links(world_db):
    store, world = world_db
    refs = NodeRefs(orders=("4521",))
    full = linked_memories(store, A, refs)
    assert sorted(v.strength for v in full.values()) == [0.5, 0.5, 1.0, 1.0]
    # Two memories linked at 1.0 fill a limit of 2: the 0.5 "same customer" hop is skipped,
    # and what is kept is exactly the strongest two of the full answer, reasons and all.
    capped = linked_memories(store, A, refs, limit=2)
    assert capped == {k: v for k, v in full.items() if v.strength == 1.0}
    # A limit the strong links do not fill runs every hop.
    assert linked_memories(store, A, refs, limit=3) == full
    # "other tickets ..." demotes the named node's own memories afterwards: no skipping then.
    assert linked_memories(store, A, refs, others=True, limit=2) == linked_memories(store, A, refs, others=True)


def test_links_carry_no_attributes_the_cache_holds_them(world_db):
    store, world = world_db
    links = linked_memories(store, A, NodeRefs(orders=("4521",)))
    assert {world["order"], world["plain"], world["loose"]} <= set(links)
    # Hops read memory ids only; ranking attributes come from the attribute cache.
    assert not hasattr(next(iter(links.values())), "attrs")
    assert set(store.cached_attrs(A, list(links))) == set(links)


def test_a_direct_link_beats_and_hides_the_indirect_one(world_db):
    store, world = world_db
    links = linked_memories(store, A, NodeRefs(orders=("4521",)))
    # m_order is linked directly and also via jane: only the direct reason stays.
    assert links[world["order"]].strength == 1.0
    assert not any("same customer" in r for r in links[world["order"]].reasons)


def test_several_direct_reasons_are_all_kept(world_db):
    store, world = world_db
    links = linked_memories(store, A, NodeRefs(customers=("jane",), orders=("4521",), tickets=("T-77",)))
    assert links[world["order"]].strength == 1.0
    assert set(links[world["order"]].reasons) == {
        "about customer jane", "linked to order #4521", "linked to ticket T-77"
    }


def test_linked_memories_never_cross_agents(world_db):
    store, world = world_db
    links = linked_memories(store,
        A, NodeRefs(customers=("jane",), orders=("4521",), entities=(("email", "jane@example.com"),))
    )
    assert world["b"] not in links
    links_b = linked_memories(store, B, NodeRefs(customers=("jane",), orders=("4521",)))
    assert set(links_b) == {world["b"]}
    assert linked_memories(store, A, NodeRefs()) == {}


def test_associated_memories_share_a_customer_order_or_ticket_hop_by_hop(store):
    at = lambda hours: NOW - timedelta(hours=hours)  # noqa: E731
    email = Entity("email", "jane@example.com", "jane@example.com")
    ms = {
        "seed": make_memory("seed", created_at=at(9)),
        "jane_new": make_memory("jane, newest", created_at=at(1)),
        "jane_order": make_memory("jane and order 7", created_at=at(2)),
        "order_only": make_memory("order 7 alone", created_at=at(3)),
        "ticket_only": make_memory("ticket T-9 alone", created_at=at(4)),
        "expired": make_memory("jane, expired", created_at=at(0), expires_at=NOW - timedelta(minutes=1)),
        "entity_only": make_memory("the same e-mail only", created_at=at(0)),
        "other_agent": make_memory("jane at agent b", agent=B, created_at=at(0)),
    }
    store.write_memories([
        rec(ms["seed"], customer_ids=("jane",), others=(email,)),
        rec(ms["jane_new"], customer_ids=("jane",)),
        rec(ms["jane_order"], customer_ids=("jane",), orders=("7",)),
        rec(ms["order_only"], orders=("7",), tickets=("T-9",)),
        rec(ms["ticket_only"], tickets=("T-9",)),
        rec(ms["expired"], customer_ids=("jane",)),
        rec(ms["entity_only"], others=(email,)),
        rec(ms["other_agent"], customer_ids=("jane",)),
    ])
    i = {k: m.id for k, m in ms.items()}
    got = store.associated_memories(A, [i["seed"]], max_depth=3, limit=10, now=NOW)
    assert got == [(i["jane_new"], 1), (i["jane_order"], 1), (i["order_only"], 2), (i["ticket_only"], 3)]
    assert store.associated_memories(A, [i["seed"]], max_depth=3, limit=3, now=NOW) == got[:3]
    assert store.associated_memories(A, [i["seed"]], max_depth=1, limit=10, now=NOW) == got[:2]
    assert store.associated_memories(B, [i["seed"]], max_depth=3, limit=10, now=NOW) == []


def test_settled_memories_mention_only_resolved_or_closed_tickets(store, tickets):
    ms = {name: make_memory(name) for name in ("resolved", "closed", "mixed", "open", "none")}
    store.write_memories([
        rec(ms["resolved"], tickets=("T-1",)),
        rec(ms["closed"], tickets=("T-2",)),
        rec(ms["mixed"], tickets=("T-1", "T-3")),
        rec(ms["open"], tickets=("T-3",)),
        rec(ms["none"]),
    ])
    i = {k: m.id for k, m in ms.items()}
    ids = list(i.values())
    assert store.settled_memories(A, ids) == {}
    tickets.update_ticket(A, "T-1", fields={"status": "resolved"}, event=None)
    tickets.update_ticket(A, "T-2", fields={"status": "closed"}, event=None)
    assert store.settled_memories(A, ids) == {i["resolved"]: "T-1", i["closed"]: "T-2"}
    # The next status change is read at once (another process may make it).
    tickets.update_ticket(A, "T-3", fields={"status": "resolved"}, event=None)
    settled = store.settled_memories(A, ids)
    assert set(settled) == {i["resolved"], i["closed"], i["mixed"], i["open"]}
    assert settled[i["open"]] == "T-3" and settled[i["mixed"]] in ("T-1", "T-3")
    tickets.update_ticket(A, "T-1", fields={"status": "open"}, event=None)
    assert set(store.settled_memories(A, ids)) == {i["closed"], i["open"]}
    assert store.settled_memories(B, ids) == {}
    assert store.settled_memories(A, []) == {}


@pytest.fixture(scope="module")
def filter_db(tmp_path_factory):
    """The filter world in a store of its own (read-only, shared by the module)."""
    store = open_store(tmp_path_factory.mktemp("filters"))
    yield store, filter_world(store)
    store.close()


def _names(ids, got):
    back = {v: k for k, v in ids.items()}
    return {back[i] for i in got}


def _filter(store, ids, now=NOW, **flt):
    return _names(ids, store.filter_ids(A, list(ids.values()), RecallFilter(**flt), now))


def test_filter_ids_without_filters_drops_expired_and_other_agents(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _filter(store, ids) == {"sess_jane", "jane_old", "bob", "plain", "future_exp", "two"}
    # One hour and a bit earlier the expired memory was still live.
    assert "expired" in _filter(store, ids, now=NOW - timedelta(hours=2))
    assert "future_exp" not in _filter(store, ids, now=NOW + timedelta(hours=2))
    assert store.filter_ids(A, [], RecallFilter(), NOW) == set()


def test_filter_by_session(filter_db):
    store, filtered = filter_db
    ids, _, s_jane, s_bob = filtered
    assert _filter(store, ids, session_id=s_jane.id) == {"sess_jane", "two"}
    assert _filter(store, ids, session_id=s_bob.id) == {"bob"}
    assert _filter(store, ids, session_id=new_id()) == set()


def test_filter_by_customer(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _filter(store, ids, customer_id="jane") == {"sess_jane", "jane_old", "future_exp", "two"}
    assert _filter(store, ids, customer_id="bob") == {"bob", "two"}
    assert _filter(store, ids, customer_id="nobody") == set()


def test_filter_by_tags_is_any_of(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _filter(store, ids, tags=("vip",)) == {"sess_jane", "future_exp"}
    assert _filter(store, ids, tags=("vip", "shipping")) == {"sess_jane", "jane_old", "future_exp"}
    assert _filter(store, ids, tags=("billing",)) == {"sess_jane", "bob"}
    assert _filter(store, ids, tags=("nope",)) == set()


def test_filter_by_since_and_until(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    cut = NOW - timedelta(days=4)
    assert _filter(store, ids, since=cut) == {"sess_jane", "future_exp", "two"}
    assert _filter(store, ids, until=cut) == {"jane_old", "bob", "plain"}
    assert _filter(store, ids, since=NOW - timedelta(days=11), until=NOW - timedelta(days=4)) == {"bob", "plain"}
    # Bounds are inclusive.
    assert _filter(store, ids, since=NOW - timedelta(days=5), until=NOW - timedelta(days=5)) == {"bob"}


def test_filter_by_min_importance(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _filter(store, ids, min_importance=0.6) == {"sess_jane", "bob"}  # 0.6 itself passes
    assert _filter(store, ids, min_importance=0.0) == _filter(store, ids)
    assert _filter(store, ids, min_importance=1.0) == set()


def test_filter_by_memory_types(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _filter(store, ids, memory_types=("semantic", "procedural")) == {"jane_old", "bob"}
    assert _filter(store, ids, memory_types=("working",)) == {"plain"}


def test_filters_combine_with_and(filter_db):
    store, filtered = filter_db
    ids, _, s_jane, _ = filtered
    assert _filter(store, ids, customer_id="jane", tags=("vip",), min_importance=0.5) == {"sess_jane"}
    assert _filter(store, ids, session_id=s_jane.id, customer_id="bob") == {"two"}
    assert _filter(store, ids, customer_id="jane", memory_types=("semantic",)) == {"jane_old"}


def _allowed(store, ids, limit=100, **flt):
    got = store.filtered_ids(A, RecallFilter(**flt), NOW, limit)
    return None if got is None else _names(ids, got)


def test_filtered_ids_by_session(filter_db):
    store, filtered = filter_db
    ids, _, s_jane, s_bob = filtered
    assert _allowed(store, ids, session_id=s_jane.id) == {"sess_jane", "two"}
    assert _allowed(store, ids, session_id=s_bob.id) == {"bob"}
    assert _allowed(store, ids, session_id=new_id()) == set()


def test_filtered_ids_by_customer_honours_the_other_filters(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _allowed(store, ids, customer_id="jane") == {"sess_jane", "jane_old", "future_exp", "two"}
    assert _allowed(store, ids, customer_id="jane", tags=("vip", "shipping")) == {"sess_jane", "jane_old", "future_exp"}
    assert _allowed(store, ids, customer_id="jane", since=NOW - timedelta(days=2)) == {"sess_jane", "two"}
    assert _allowed(store, ids, customer_id="jane", until=NOW - timedelta(days=2)) == {"jane_old", "future_exp"}
    assert _allowed(store, ids, customer_id="jane", min_importance=0.6) == {"sess_jane"}
    assert _allowed(store, ids, customer_id="jane", memory_types=("semantic",)) == {"jane_old"}
    assert _allowed(store, ids, customer_id="nobody") == set()


def test_filtered_ids_without_a_node_filter(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _allowed(store, ids) == {"sess_jane", "jane_old", "bob", "plain", "future_exp", "two"}
    assert _allowed(store, ids, tags=("billing",)) == {"sess_jane", "bob"}  # expired + agent b left out
    assert _allowed(store, ids, memory_types=("working",)) == {"plain"}


def test_filtered_ids_gives_up_past_the_limit(filter_db):
    store, filtered = filter_db
    ids, *_ = filtered
    assert _allowed(store, ids, limit=4, customer_id="jane") == {"sess_jane", "jane_old", "future_exp", "two"}
    assert _allowed(store, ids, limit=3, customer_id="jane") is None  # too many: caller uses ANN
    assert _allowed(store, ids, limit=5) is None


def test_filtered_ids_agree_with_filter_ids(filter_db):
    store, filtered = filter_db
    ids, _, s_jane, s_bob = filtered
    for flt in (
        {}, dict(session_id=s_jane.id), dict(session_id=s_bob.id), dict(customer_id="jane"),
        dict(customer_id="bob", tags=("billing",)), dict(session_id=s_jane.id, customer_id="bob"),
        dict(min_importance=0.5, tags=("vip", "billing")), dict(since=NOW - timedelta(days=6)),
        # "two" is in jane's session and about jane as its SECOND customer (bob comes first).
        dict(session_id=s_jane.id, customer_id="jane"),
    ):
        assert _allowed(store, ids, **flt) == _filter(store, ids, **flt), flt
    assert _allowed(store, ids, session_id=s_jane.id, customer_id="jane") == {"sess_jane", "two"}


# -- sessions ----------------------------------------------------------------------------
def test_session_create_get_end(store):
    s = Session(id=new_id(), agent_id=A, started_at=NOW, customer_id="jane", metadata={"channel": "chat", "n": 1})
    store.create_session(s)
    got = store.get_session(s.id)
    assert got == s
    assert got.active and got.memory_count == 0 and got.ended_at is None
    m = make_memory("in session", session_id=s.id)
    store.write_memories([rec(m)])
    assert store.get_session(s.id).memory_count == 1
    ended_at = NOW + timedelta(minutes=30)
    store.end_session(s.id, ended_at, "resolved: refund issued")
    got = store.get_session(s.id)
    assert got.ended_at == ended_at and got.ended_at.utcoffset() == timedelta(0)
    assert got.summary == "resolved: refund issued"
    assert not got.active
    assert got.metadata == {"channel": "chat", "n": 1}
    assert store.get_session(new_id()) is None


def test_session_without_customer_has_none(store):
    s = Session(id=new_id(), agent_id=A, started_at=NOW)
    store.create_session(s)
    assert store.get_session(s.id).customer_id is None
    assert [x.id for x in store.list_sessions(A)] == [s.id]
    assert store.list_sessions(A, customer_id="") == []


def test_list_sessions(store):
    sessions = [
        Session(id=new_id(), agent_id=A, started_at=NOW - timedelta(hours=h), customer_id=c)
        for h, c in ((3, "jane"), (1, "bob"), (2, "jane"), (4, None))
    ]
    for s in sessions:
        store.create_session(s)
    store.create_session(Session(id=new_id(), agent_id=B, started_at=NOW, customer_id="jane"))
    store.end_session(sessions[2].id, NOW, None)
    listed = store.list_sessions(A)
    assert [s.id for s in listed] == [sessions[i].id for i in (1, 2, 0, 3)]  # newest first
    assert {s.id for s in store.list_sessions(A, customer_id="jane")} == {sessions[0].id, sessions[2].id}
    assert sessions[2].id not in {s.id for s in store.list_sessions(A, active_only=True)}
    assert len(store.list_sessions(A, active_only=True)) == 3
    assert [s.id for s in store.list_sessions(A, limit=2, offset=1)] == [sessions[2].id, sessions[0].id]
    assert len(store.list_sessions(B)) == 1
    assert store.list_sessions("agent-c") == []


def _many_customers(store):
    """Six customers of agent A, a memory about two of them, agent B's own cust2; the
    order a query names them in."""
    own = {c: make_memory(f"about {c}") for c in (f"cust{i}" for i in range(6))}
    both = make_memory("about cust4 and cust1")
    store.write_memories([rec(m, customer_ids=(c,)) for c, m in own.items()])
    store.write_memories([rec(both, customer_ids=("cust4", "cust1"))])
    store.write_memories([rec(make_memory("agent b's cust2", agent=B), customer_ids=("cust2",))])
    return own, both, ["cust5", "cust4", "cust0", "cust1", "cust3", "cust2", "nobody"]


def test_links_of_many_named_customers_come_node_by_node(store):
    # A name can match many customers (the embedded engine reads past three with one IN
    # list): every one's memories are linked, reasons in the order the customers were
    # named, other agents' customers of the same ids left out.
    own, both, order = _many_customers(store)
    links = linked_memories(store, A, NodeRefs(customers=tuple(order)))
    assert set(links) == {*(m.id for m in own.values()), both.id}
    assert links[both.id].reasons == ["about customer cust4", "about customer cust1"]
    assert all(links[m.id].reasons == [f"about customer {c}"] and links[m.id].strength == 1.0 for c, m in own.items())
    rows = store.hop_memories(A, "about_customer", order)
    assert [label for _, label in rows] == ["cust5", "cust4", "cust4", "cust0", "cust1", "cust1", "cust3", "cust2"]
    assert sorted(rows) == sorted(r for c in order for r in store.hop_memories(A, "about_customer", [c]))


@pytest.mark.embedded_only
def test_links_of_many_named_customers_by_edge_keys_equal_those_by_ids(store):
    own, both, order = _many_customers(store)
    by_ids = store.hop_memories(A, "about_customer", order)
    by_key, asked, ids_of = _key_map({**{c: m.id for c, m in own.items()}, "both": both.id})
    with keyed(store, ids_of):
        by_keys = store.hop_memories(A, "about_customer", order)
    assert sorted(by_keys) == sorted(by_ids) and [r[1] for r in by_keys] == [r[1] for r in by_ids]
    assert asked
