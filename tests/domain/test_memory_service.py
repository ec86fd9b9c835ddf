"""MemoryService on the real stack: the real embedding model, real spaCy, real Kùzu and
real USearch (the ``services`` / ``open_services`` fixtures of conftest)."""

from __future__ import annotations

import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from casegraph.domain.models import StoreRequest
from casegraph.domain.ranking import PRESETS
from casegraph.errors import (
    BatchTooLarge,
    CaseGraphError,
    ContentEmpty,
    ContentTooLarge,
    InvalidDate,
    InvalidId,
    InvalidImportance,
    InvalidInput,
    InvalidTag,
    MemoryNotFound,
    SessionEnded,
    SessionNotFound,
)
from casegraph.services import Services

from tests.clock import FakeClock
from tests.conftest import make_settings
from tests.storage.backends import graph_count, graph_rows

A = "support-bot"
B = "other-bot"


def req(content: str = "Customer asked about the delivery date.", agent: str = A, **kw) -> StoreRequest:
    return StoreRequest(agent_id=agent, content=content, **kw)


def snapshot(s: Services) -> tuple[int, ...]:
    """Everything a failed call must leave untouched."""
    return (
        s.graph.count_memories(),
        s.vectors.count(A),
        graph_count(s.graph, "MATCH (n) RETURN count(n)"),
        graph_count(s.graph, "MATCH ()-[r]->() RETURN count(r)"),
    )


@pytest.fixture
def clocked(tmp_path, embedder, extractor):
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    s = Services.open(make_settings(tmp_path / "clocked"), embedder=embedder, extractor=extractor, clock=clock)
    yield s, clock
    s.close()


# -- store: what gets linked -------------------------------------------------------------
def test_store_extracts_the_order_and_links_it(services):
    before = services.vectors.count(A)
    m = services.memories.store(
        req("  The parcel for order #4521 arrived damaged.  ", tags=("customer:jane-doe",), importance=0.8)
    )
    assert uuid.UUID(m.id)
    assert m.content == "The parcel for order #4521 arrived damaged."  # trimmed
    assert m.orders == ("4521",)
    assert any(e.kind == "order" and e.key == "4521" for e in m.entities)
    assert m.customer_id == "jane-doe"
    assert m.importance == 0.8 and m.memory_type == "episodic"
    assert m.created_at.utcoffset() == timedelta(0) and m.created_at == m.updated_at
    # In the graph: an Order node the customer placed, mentioned by the memory.
    assert services.graph.customer_orders(A, "jane-doe") == ["4521"]
    rows = graph_rows(
        services.graph, A, "MATCH (m:Memory {id: $id})-[:MENTIONS]->(o:`Order`) RETURN o.id, o.agent_id", {"id": m.id}
    )
    assert rows == [["4521", A]]
    # Acknowledged means readable and indexed.
    assert services.memories.get(A, m.id) == m
    assert services.vectors.count(A) == before + 1
    assert m.id in services.vectors.keys(A)


def test_link_tags_create_customer_order_and_ticket_nodes(services):
    m = services.memories.store(
        req("Follow-up call scheduled for Thursday.", tags=("customer:Bob Stone", "order:#88213", "ticket:TKT-1042", "vip"))
    )
    assert m.tags == ("customer:Bob Stone", "order:#88213", "ticket:TKT-1042", "vip")
    assert m.customer_id == "bob-stone"
    assert m.orders == ("88213",)
    assert m.tickets == ("T-1042",)
    g = services.graph
    assert g.get_customer(A, "bob-stone") is not None
    assert g.customer_orders(A, "bob-stone") == ["88213"]
    assert g.customer_tickets(A, "bob-stone") == ["T-1042"]
    assert graph_rows(g, A, "MATCH (t:Ticket)-[:CONCERNS]->(o:`Order`) RETURN t.id, o.id") == [["T-1042", "88213"]]
    assert g.memory_customers(A, [m.id]) == {m.id: ["bob-stone"]}


def test_text_and_tag_mentions_of_one_order_share_one_node(services):
    services.memories.store(req("Order #4521 was shipped.", tags=("customer:jane-doe",)))
    services.memories.store(req("Address change requested.", tags=("customer:jane-doe", "order:4521")))
    assert graph_count(services.graph, "MATCH (o:`Order`) RETURN count(o)") == 1
    assert graph_count(services.graph, "MATCH (:Memory)-[r:MENTIONS]->(:`Order`) RETURN count(r)") == 2


def test_explicit_customer_id_is_normalised_and_linked(services):
    m = services.memories.store(req("Prefers phone calls in the morning.", customer_id="  Carol White "))
    assert m.customer_id == "carol-white"
    customer = services.graph.get_customer(A, "carol-white")
    assert customer is not None and customer.agent_id == A
    assert [x.id for x in services.graph.customer_memories(A, "carol-white", services.memories.clock())] == [m.id]


def test_session_customer_is_inherited(services):
    session = services.memories.session_start(A, customer_id="Dan Ng", metadata={"channel": "chat"})
    assert session.customer_id == "dan-ng" and session.active
    m = services.memories.store(req("Asked whether the replacement has shipped.", session_id=session.id))
    assert m.session_id == session.id
    assert m.customer_id == "dan-ng"
    assert services.graph.memory_customers(A, [m.id]) == {m.id: ["dan-ng"]}
    assert [x.id for x in services.memories.session_memories(session.id)] == [m.id]
    assert services.memories.session_get(session.id).memory_count == 1


def test_explicit_customer_comes_first_and_the_session_customer_is_still_linked(services):
    session = services.memories.session_start(A, customer_id="dan-ng")
    m = services.memories.store(req("Dan's neighbour Eve wants the same deal.", session_id=session.id, customer_id="eve-king"))
    assert m.customer_id == "eve-king"
    assert services.graph.memory_customers(A, [m.id]) == {m.id: ["dan-ng", "eve-king"]}


def test_metadata_and_memory_type_round_trip(services):
    meta = {"source": "zendesk", "nested": {"n": [1, 2.5, None]}, "ok": True}
    m = services.memories.store(req("Refund policy is 30 days.", memory_type="semantic", metadata=meta))
    got = services.memories.get(A, m.id)
    assert got.metadata == meta and got.memory_type == "semantic"


def test_past_created_at_and_expiry_are_kept(services):
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    m = services.memories.store(req("Old note imported from the CRM.", created_at=created, expires_at=expires))
    got = services.memories.get(A, m.id)
    assert got.created_at == created and got.expires_at == expires
    assert got.created_at.utcoffset() == timedelta(0)


def test_ttl_sets_the_expiry(clocked):
    s, clock = clocked
    m = s.memories.store(req("Temporary hold on the account.", ttl_seconds=3600))
    assert m.expires_at == clock.now + timedelta(hours=1)


# -- validation --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vsvc(tmp_path_factory, embedder, extractor):
    """A shared stack for the validation table (failing calls never write anything)."""
    s = Services.open(
        make_settings(tmp_path_factory.mktemp("validation"), max_content_chars=200, max_batch_size=5),
        embedder=embedder, extractor=extractor,
    )
    s.memories.store(req("A memory that is there before the failing calls."))
    open_session = s.memories.session_start(A, customer_id="jane-doe")
    ended = s.memories.session_start(A)
    s.memories.session_end(ended.id, "done")
    s.ctx = {"open": open_session.id, "ended": ended.id}  # type: ignore[attr-defined]
    yield s
    s.close()


FUTURE = datetime.now(UTC) + timedelta(days=3)
PAST = datetime.now(UTC) - timedelta(minutes=5)

INVALID = [
    ("empty", lambda c: req(""), ContentEmpty, "CONTENT_EMPTY"),
    ("whitespace", lambda c: req("  \n\t "), ContentEmpty, "CONTENT_EMPTY"),
    ("oversized", lambda c: req("x" * 201), ContentTooLarge, "CONTENT_TOO_LARGE"),
    ("nul", lambda c: req("a\x00b"), InvalidInput, "INVALID_TEXT"),
    ("lone surrogate", lambda c: req("a\ud800b"), InvalidInput, "INVALID_TEXT"),
    ("importance -0.1", lambda c: req(importance=-0.1), InvalidImportance, "INVALID_IMPORTANCE"),
    ("importance 1.1", lambda c: req(importance=1.1), InvalidImportance, "INVALID_IMPORTANCE"),
    ("importance NaN", lambda c: req(importance=math.nan), InvalidImportance, "INVALID_IMPORTANCE"),
    ("importance inf", lambda c: req(importance=math.inf), InvalidImportance, "INVALID_IMPORTANCE"),
    ("importance text", lambda c: req(importance="high"), InvalidImportance, "INVALID_IMPORTANCE"),
    ("agent with space", lambda c: req(agent="bad agent"), InvalidId, "INVALID_AGENT_ID"),
    ("agent empty", lambda c: req(agent=""), InvalidId, "INVALID_AGENT_ID"),
    ("agent with pipe", lambda c: req(agent="a|b"), InvalidId, "INVALID_AGENT_ID"),
    ("agent too long", lambda c: req(agent="a" * 129), InvalidId, "INVALID_AGENT_ID"),
    ("empty tag", lambda c: req(tags=("ok", "")), InvalidTag, "INVALID_TAG"),
    ("order tag without digits", lambda c: req(tags=("order:abc",)), InvalidTag, "INVALID_TAG"),
    ("bad customer tag", lambda c: req(tags=("customer:a/b",)), InvalidTag, "INVALID_TAG"),
    ("tag too long", lambda c: req(tags=("t" * 101,)), InvalidTag, "INVALID_TAG"),
    ("control char tag", lambda c: req(tags=("bad\ntag",)), InvalidTag, "INVALID_TAG"),
    ("too many tags", lambda c: req(tags=tuple(f"t{i}" for i in range(51))), InvalidTag, "INVALID_TAG"),
    ("memory type", lambda c: req(memory_type="dream"), InvalidInput, "INVALID_MEMORY_TYPE"),
    ("unknown session", lambda c: req(session_id=str(uuid.uuid4())), SessionNotFound, "SESSION_NOT_FOUND"),
    ("malformed session", lambda c: req(session_id="not a session"), InvalidId, "INVALID_ID"),
    ("other agent's session", lambda c: req(agent=B, session_id=c["open"]), SessionNotFound, "SESSION_NOT_FOUND"),
    ("ended session", lambda c: req(session_id=c["ended"]), SessionEnded, "SESSION_ENDED"),
    ("bad customer id", lambda c: req(customer_id="jane/doe"), InvalidId, "INVALID_CUSTOMER_ID"),
    ("empty customer id", lambda c: req(customer_id="  "), InvalidId, "INVALID_CUSTOMER_ID"),
    ("createdAt in the future", lambda c: req(created_at=FUTURE), InvalidDate, "INVALID_DATE"),
    ("createdAt not a date", lambda c: req(created_at="yesterday"), InvalidDate, "INVALID_DATE"),
    ("ttl zero", lambda c: req(ttl_seconds=0), InvalidInput, "INVALID_TTL"),
    ("ttl negative", lambda c: req(ttl_seconds=-60), InvalidInput, "INVALID_TTL"),
    ("ttl over ten years", lambda c: req(ttl_seconds=11 * 365 * 86_400), InvalidInput, "INVALID_TTL"),
    ("ttl fractional", lambda c: req(ttl_seconds=1.5), InvalidInput, "INVALID_TTL"),
    ("expiresAt in the past", lambda c: req(expires_at=PAST), InvalidDate, "INVALID_DATE"),
    ("metadata NaN", lambda c: req(metadata={"x": math.nan}), InvalidInput, "INVALID_METADATA"),
    ("metadata not a dict", lambda c: req(metadata=["a"]), InvalidInput, "INVALID_METADATA"),
    ("metadata too large", lambda c: req(metadata={"x": "y" * 20_000}), InvalidInput, "INVALID_METADATA"),
]


@pytest.mark.parametrize(("make", "exc", "code"), [x[1:] for x in INVALID], ids=[x[0] for x in INVALID])
def test_invalid_store_raises_and_changes_nothing(vsvc, make, exc, code):
    before = snapshot(vsvc)
    with pytest.raises(CaseGraphError) as info:
        vsvc.memories.store(make(vsvc.ctx))
    assert type(info.value) is exc, info.value
    assert info.value.code == code
    assert info.value.message
    assert snapshot(vsvc) == before


def test_createdat_up_to_a_day_ahead_is_tolerated(vsvc):
    # Clock skew between the bot and the server is not an error.
    m = vsvc.memories.store(req("Clock skew tolerated.", created_at=datetime.now(UTC) + timedelta(hours=2)))
    assert vsvc.memories.forget(A, m.id)


def test_content_limit_comes_from_the_settings(open_services, tmp_path):
    s = open_services(tmp_path / "small", max_content_chars=40)
    s.memories.store(req("x" * 40))  # exactly the limit is fine
    before = snapshot(s)
    with pytest.raises(ContentTooLarge) as info:
        s.memories.store(req("x" * 41))
    assert info.value.code == "CONTENT_TOO_LARGE"
    assert "40" in info.value.message
    assert snapshot(s) == before


# Regression: check_tags() used to call list(tags) first, turning 'vip' into 'v', 'i', 'p'.
def test_a_bare_string_as_tags_is_refused(vsvc):
    before = snapshot(vsvc)
    with pytest.raises(InvalidTag) as info:
        vsvc.memories.store(req(tags="vip"))
    assert info.value.code == "INVALID_TAG"
    assert snapshot(vsvc) == before


# -- batches -----------------------------------------------------------------------------
def test_store_batch_returns_memories_in_request_order(services):
    texts = ["First: order #1001 shipped.", "Second: customer called.", "Third: refund issued."]
    out = services.memories.store_batch([req(t, tags=("customer:jane-doe",)) for t in texts])
    assert [m.content for m in out] == texts
    assert len({m.id for m in out}) == 3
    assert services.graph.count_memories(A) == 3
    assert services.vectors.keys(A) == {m.id for m in out}
    assert out[0].orders == ("1001",)


@pytest.mark.parametrize(
    ("bad", "exc", "code"),
    [
        (lambda c: req("", tags=("customer:x",)), ContentEmpty, "CONTENT_EMPTY"),
        (lambda c: req(importance=2.0), InvalidImportance, "INVALID_IMPORTANCE"),
        (lambda c: req(tags=("order:none",)), InvalidTag, "INVALID_TAG"),
        (lambda c: req(session_id=c["ended"]), SessionEnded, "SESSION_ENDED"),
        (lambda c: req(session_id=str(uuid.uuid4())), SessionNotFound, "SESSION_NOT_FOUND"),
    ],
    ids=["empty", "importance", "tag", "ended-session", "unknown-session"],
)
def test_store_batch_is_all_or_nothing(vsvc, bad, exc, code):
    batch = [
        req("Batch item zero about order #7001.", tags=("customer:batch-customer",)),
        req("Batch item one.", session_id=vsvc.ctx["open"]),
        bad(vsvc.ctx),
        req("Batch item three."),
    ]
    before = snapshot(vsvc)
    with pytest.raises(CaseGraphError) as info:
        vsvc.memories.store_batch(batch)
    assert type(info.value) is exc
    assert info.value.code == code
    assert "inputs[2]" in info.value.message
    assert snapshot(vsvc) == before
    assert vsvc.graph.get_customer(A, "batch-customer") is None


def test_store_batch_over_the_limit_is_refused(vsvc):
    before = snapshot(vsvc)
    with pytest.raises(BatchTooLarge) as info:
        vsvc.memories.store_batch([req(f"item {i}") for i in range(6)])  # max_batch_size=5
    assert info.value.code == "BATCH_TOO_LARGE"
    assert "5" in info.value.message and "6" in info.value.message
    assert snapshot(vsvc) == before


def test_an_empty_batch_is_refused(vsvc):
    with pytest.raises(InvalidInput) as info:
        vsvc.memories.store_batch([])
    assert info.value.code == "EMPTY_BATCH"


def test_a_batch_at_the_limit_is_accepted(vsvc):
    out = vsvc.memories.store_batch([req(f"Limit item {i}.") for i in range(5)])
    assert len(out) == 5
    for m in out:
        vsvc.memories.forget(A, m.id)


# Regression: see test_graph_store.test_batch_writes_index_every_memorys_own_words.
def test_store_batch_keeps_each_memory_findable_by_its_own_words(services):
    out = services.memories.store_batch([
        req("The parcel arrived damaged and was refunded."),
        req("The router keeps rebooting after the firmware update."),
    ])
    assert [i for i, _ in services.keywords.search(A, "router firmware", 10)] == [out[1].id]
    assert [i for i, _ in services.keywords.search(A, "refunded parcel", 10)] == [out[0].id]


FRUITS = ["apple", "banana", "cherry", "damson", "elderberry", "fig", "grape", "hazelnut",
          "kiwi", "lemon", "mango", "nectarine", "olive", "papaya", "quince", "raspberry"]


def _store_concurrently(s: Services) -> list:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda w: s.memories.store(req(f"The customer ordered a {w} smoothie.")), FRUITS))


def test_concurrent_stores_are_all_acknowledged(services):
    out = _store_concurrently(services)
    assert len({m.id for m in out}) == len(FRUITS)
    assert [m.content for m in out] == [f"The customer ordered a {w} smoothie." for w in FRUITS]
    assert services.graph.count_memories(A) == len(FRUITS)
    assert services.vectors.keys(A) == {m.id for m in out}
    for m in out:
        assert services.memories.get(A, m.id) == m
    # Each memory's vector is its own text's: a dense recall of one finds that one.
    hit = services.recall.recall(A, "The customer ordered a quince smoothie.", 1, config=PRESETS["dense"])[0]
    assert hit.memory.content == "The customer ordered a quince smoothie."


# Regression: concurrent stores are group-committed into one batch write, which used to hit
# the fts batch bug (every memory indexed under the first one's words).
def test_concurrent_stores_are_each_findable_by_their_own_words(services):
    out = _store_concurrently(services)
    wrong = [
        w for w, m in zip(FRUITS, out, strict=True)
        if [i for i, _ in services.keywords.search(A, w, 5)] != [m.id]
    ]
    assert wrong == []


# -- forget ------------------------------------------------------------------------------
def test_forget_removes_the_memory_everywhere(services):
    keep = services.memories.store(req("The blender was replaced under warranty.", tags=("customer:frank-li",)))
    m = services.memories.store(req("The parcel for order #4521 arrived damaged; refund issued.", tags=("customer:jane-doe",)))
    assert [i for i, _ in services.keywords.search(A, "damaged parcel", 10)] == [m.id]
    assert services.recall.recall(A, "damaged parcel refund", 1)[0].memory.id == m.id

    assert services.memories.forget(A, m.id) is True
    with pytest.raises(MemoryNotFound):
        services.memories.get(A, m.id)
    assert services.graph.count_memories(A) == 1
    assert services.vectors.keys(A) == {keep.id}
    assert services.vectors.count(A) == 1
    assert services.keywords.search(A, "damaged parcel", 10) == []
    hits = services.recall.recall(A, "damaged parcel refund order 4521 jane doe", 10)
    assert m.id not in {h.memory.id for h in hits}

    with pytest.raises(MemoryNotFound) as info:
        services.memories.forget(A, m.id)
    assert info.value.code == "MEMORY_NOT_FOUND"


def test_forget_is_agent_scoped(services):
    m = services.memories.store(req("Only agent A may forget this."))
    with pytest.raises(MemoryNotFound):
        services.memories.forget(B, m.id)
    with pytest.raises(MemoryNotFound):
        services.memories.get(B, m.id)
    assert services.memories.get(A, m.id) == m
    assert services.vectors.count(A) == 1


def test_forget_with_a_malformed_id(services):
    with pytest.raises(InvalidId) as info:
        services.memories.forget(A, "'; DROP TABLE Memory; --")
    assert info.value.code == "INVALID_ID"
    with pytest.raises(MemoryNotFound):
        services.memories.forget(A, str(uuid.uuid4()))


# -- expiry ------------------------------------------------------------------------------
def test_sweep_expired_removes_memories_whose_ttl_passed(clocked):
    s, clock = clocked
    short = s.memories.store(req("Temporary note: callback at 3pm.", ttl_seconds=60))
    long = s.memories.store(req("Temporary note: holiday closure.", ttl_seconds=86_400))
    forever = s.memories.store(req("Permanent note: prefers email."))
    assert s.memories.sweep_expired() == 0

    clock.advance(seconds=61)
    # Expired memories are invisible at once, before any sweep...
    with pytest.raises(MemoryNotFound):
        s.memories.get(A, short.id)
    hits = s.recall.recall(A, "temporary note callback at 3pm", 10)
    assert short.id not in {h.memory.id for h in hits}
    assert s.graph.count_memories() == 3  # ...and still stored until swept.

    assert s.memories.sweep_expired() == 1
    assert s.graph.count_memories() == 2
    assert short.id not in s.vectors.keys(A)
    assert s.keywords.search(A, "callback", 10) == []
    assert s.memories.get(A, long.id) == long
    assert s.memories.sweep_expired() == 0

    clock.advance(days=2)
    assert s.memories.sweep_expired() == 1
    assert s.vectors.keys(A) == {forever.id}


def test_get_of_a_memory_at_its_expiry_instant_is_not_found(clocked):
    s, clock = clocked
    m = s.memories.store(req("Expires in ten seconds.", ttl_seconds=10))
    clock.advance(seconds=9)
    assert s.memories.get(A, m.id).id == m.id
    clock.advance(seconds=1)
    with pytest.raises(MemoryNotFound):
        s.memories.get(A, m.id)


# -- sessions ----------------------------------------------------------------------------
def test_session_end_and_errors(services):
    session = services.memories.session_start(A, customer_id="jane-doe")
    ended = services.memories.session_end(session.id, "  Refund issued.  ", agent_id=A)
    assert not ended.active and ended.summary == "Refund issued."
    with pytest.raises(SessionEnded) as info:
        services.memories.session_end(session.id)
    assert info.value.code == "SESSION_ENDED"
    with pytest.raises(SessionNotFound):
        services.memories.session_get(session.id, agent_id=B)
    with pytest.raises(SessionNotFound):
        services.memories.session_get(str(uuid.uuid4()))
    with pytest.raises(InvalidId):
        services.memories.session_start("bad agent")
    with pytest.raises(InvalidId):
        services.memories.session_start(A, customer_id="not/valid")


# -- restart -----------------------------------------------------------------------------
def _fill(s: Services) -> dict:
    session = s.memories.session_start(A, customer_id="jane-doe")
    refund = s.memories.store(req("The parcel for order #4521 arrived damaged; a refund was issued.",
                                  session_id=session.id, importance=0.9))
    router = s.memories.store(req("The router was reset remotely and works again.", tags=("customer:bob-stone",)))
    other = s.memories.store(req("Agent B keeps its own notes about blenders.", agent=B))
    return {"session": session, "refund": refund, "router": router, "other": other}


def test_restart_keeps_everything(open_services, tmp_path):
    data = tmp_path / "data"
    s1 = open_services(data)
    made = _fill(s1)
    s1.close()

    s2 = open_services(data)
    assert s2.graph.count_memories() == 3
    assert s2.memories.get(A, made["refund"].id) == made["refund"]
    assert s2.memories.get(B, made["other"].id) == made["other"]
    assert s2.memories.session_get(made["session"].id).memory_count == 1
    assert s2.graph.customer_orders(A, "jane-doe") == ["4521"]
    assert s2.vectors.count(A) == 2 and s2.vectors.count(B) == 1
    # The reloaded vector index finds the memory on its own...
    qvec = s2.embedder.embed_query("was the damaged parcel refunded?")
    assert s2.vectors.search(A, qvec, 1)[0].memory_id == made["refund"].id
    # ...and recall, keyword search and new writes all work.
    assert s2.recall.recall(A, "was the damaged parcel refunded?", 1)[0].memory.id == made["refund"].id
    assert [i for i, _ in s2.keywords.search(A, "router", 5)] == [made["router"].id]
    new = s2.memories.store(req("Stored after the restart."))
    assert s2.memories.get(A, new.id) == new


@pytest.mark.embedded_only  # the USearch files of the embedded engine
def test_missing_vector_files_are_rebuilt_on_open(open_services, tmp_path):
    data = tmp_path / "data"
    s1 = open_services(data)
    made = _fill(s1)
    s1.close()
    files = list((data / "vectors").glob("*.usearch"))
    assert len(files) == 2  # one per agent
    for f in files:
        f.unlink()

    s2 = open_services(data)
    assert s2.vectors.count(A) == 2 and s2.vectors.count(B) == 1
    assert len(list((data / "vectors").glob("*.usearch"))) == 2  # saved again by reconcile
    hits = s2.recall.recall(A, "was the damaged parcel refunded?", 2, config=PRESETS["dense"])
    assert hits[0].memory.id == made["refund"].id
    assert made["other"].id not in {h.memory.id for h in hits}


@pytest.mark.embedded_only  # the USearch files of the embedded engine
def test_a_stale_vector_of_a_forgotten_memory_is_dropped_on_open(open_services, tmp_path):
    data = tmp_path / "data"
    s1 = open_services(data)
    made = _fill(s1)
    s1.vectors.save()  # the index file still holds the refund memory...
    s1.graph.delete_memories(A, [made["refund"].id])  # ...which the graph no longer has (crash)
    s1.graph.close()
    s1.keywords.close()  # a crash lets go of the keyword index's writers too

    s2 = open_services(data)
    assert s2.vectors.keys(A) == {made["router"].id}
    assert s2.vectors.count(A) == 1
