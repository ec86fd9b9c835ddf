"""The ranking-attribute cache (app/storage/embedded/attrs_cache.py): exact round trips, forgetting, lookups
that race a write, and - on the real stack - that every kind of write leaves it equal to
what Kùzu holds, so recall ranks from it without point lookups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from casegraph.domain.models import StoreRequest
from casegraph.domain.ranking import rank
from casegraph.services import Services
from casegraph.storage.embedded.attrs_cache import AttrsCache
from casegraph.storage.memories import Attrs
from casegraph.storage.rows import ATTR_COLUMNS, attrs_from_row

from tests.conftest import make_settings

# The embedded engine's cache (the FalkorDB engine keeps none: it reads the server).
pytestmark = pytest.mark.embedded_only

T0 = datetime(2025, 6, 30, 12, 0, 0, 123456, tzinfo=UTC)
BOT = "support-bot"


def _id() -> str:
    return str(uuid.uuid4())


# -- the cache on its own -----------------------------------------------------------------
def test_attributes_round_trip_exactly():
    cache = AttrsCache()
    a, b, c = _id(), _id(), "custom-id-7"
    held = {
        a: Attrs(0.7, T0, None),
        b: Attrs(0.123456789, T0 - timedelta(days=400, microseconds=1), T0 + timedelta(hours=2), _id(), "summary"),
        c: Attrs(1.0, datetime(1999, 1, 1, tzinfo=UTC), None, None, None),
    }
    cache.record(BOT, held)
    found, missing = cache.get(BOT, [a, b, c, "nope"])
    assert found == held and missing == ["nope"]
    assert len(cache) == 3
    # Another agent's memories are not this agent's.
    assert cache.get("other-bot", [a]) == ({}, [a])


def test_columns_hold_what_get_gives_as_arrays():
    import numpy as np
    from casegraph.storage.memories import NO_TIME, micros
    from casegraph.storage.search import vector_key

    cache = AttrsCache()
    assert not cache.columns(BOT, np.array([vector_key(_id())], dtype=np.uint64)).known.any()
    a, b, c, gone, never = _id(), _id(), "custom-id-9", _id(), _id()
    cache.record(BOT, {
        a: Attrs(0.7, T0, None),
        b: Attrs(0.2, T0 - timedelta(days=3), T0 + timedelta(hours=1), _id()),
        c: Attrs(1.0, T0 - timedelta(microseconds=1), None, None, "summary"),
        gone: Attrs(0.5, T0, None),
    })
    cache.forget([gone])
    ids = [never, c, gone, b, a]
    cols = cache.columns(BOT, np.array([vector_key(i) for i in ids], dtype=np.uint64))
    assert cols.known.tolist() == [False, True, False, True, True]
    found, _ = cache.get(BOT, ids)
    for j, i in enumerate(ids):
        if i not in found:
            continue
        assert cols.importance[j] == found[i].importance
        assert cols.created_us[j] == micros(found[i].created_at)
        expires = found[i].expires_at
        assert cols.expires_us[j] == (NO_TIME if expires is None else micros(expires))
        assert cols.superseded[j] == (found[i].superseded_by is not None)
    assert not cache.columns("other-bot", np.array([vector_key(a)], dtype=np.uint64)).known.any()


def test_recording_again_overwrites_and_forgetting_drops():
    cache = AttrsCache()
    a, b = _id(), _id()
    cache.record(BOT, {a: Attrs(0.5, T0, None, _id()), b: Attrs(0.5, T0, None)})
    cache.record(BOT, {a: Attrs(0.9, T0, None)})
    assert cache.get(BOT, [a])[0] == {a: Attrs(0.9, T0, None)}  # superseded_by cleared too
    cache.forget([b])
    assert cache.get(BOT, [a, b]) == ({a: Attrs(0.9, T0, None)}, [b])
    assert len(cache) == 1
    cache.clear()
    assert cache.get(BOT, [a]) == ({}, [a]) and len(cache) == 0


def test_a_lookup_that_raced_a_write_keeps_nothing_the_write_touched():
    cache = AttrsCache()
    a, b = _id(), _id()
    with cache.reading() as reading:
        read = {a: Attrs(0.5, T0, None), b: Attrs(0.5, T0, None)}  # read before the write...
        cache.forget([a])  # ...which then committed a change to a
        cache.put(reading, BOT, read)
    assert cache.get(BOT, [a, b]) == ({b: Attrs(0.5, T0, None)}, [a])

    with cache.reading() as reading:
        cache.clear()
        cache.put(reading, BOT, {b: Attrs(0.1, T0, None)})
    assert cache.get(BOT, [b]) == ({}, [b])


def test_past_its_limit_it_holds_no_more():
    cache = AttrsCache(limit=3)
    ids = [_id() for _ in range(5)]
    cache.record(BOT, {i: Attrs(0.5, T0, None) for i in ids[:2]})
    cache.record(BOT, {i: Attrs(0.5, T0, None) for i in ids[2:]})  # would make 5
    assert len(cache) == 2
    cache.record(BOT, {ids[0]: Attrs(0.6, T0, None)})  # an overwrite still fits
    assert cache.get(BOT, [ids[0]])[0][ids[0]].importance == 0.6
    # A write the cache cannot take in full leaves nothing stale behind.
    cache.record(BOT, {ids[0]: Attrs(0.9, T0, None), ids[3]: Attrs(0.5, T0, None), ids[4]: Attrs(0.5, T0, None)})
    assert cache.get(BOT, ids[:2]) == ({ids[1]: Attrs(0.5, T0, None)}, [ids[0]])
    assert len(cache) == 1


# -- on the real stack ----------------------------------------------------------------------
@pytest.fixture
def svc(embedder, extractor, tmp_path):
    s = Services.open(make_settings(tmp_path / "data"), embedder=embedder, extractor=extractor)
    yield s
    s.close()


def graph_attrs(s: Services) -> dict[tuple[str, str], Attrs]:
    rows = s.graph.read(f"MATCH (m:Memory) RETURN m.agent_id, m.id, {ATTR_COLUMNS}")
    return {(r[0], r[1]): attrs_from_row(r[2:]) for r in rows}


def assert_cache_is_exact(s: Services, *, complete: bool = True) -> None:
    """Everything the cache holds is what Kùzu holds (and, if ``complete``, it holds all)."""
    stored = graph_attrs(s)
    for agent in {a for a, _ in stored}:
        ids = [i for a, i in stored if a == agent]
        found = s.graph.cached_attrs(agent, ids)
        assert {i: stored[(agent, i)] for i in found} == found
        if complete:
            assert set(found) == set(ids)


def cached(s: Services) -> int:
    """How many stored memories the attribute cache holds."""
    stored = graph_attrs(s)
    return sum(len(s.graph.cached_attrs(a, [i for b, i in stored if b == a])) for a in {a for a, _ in stored})


def store(s: Services, content: str, days_ago: float = 0, **fields):
    return s.memories.store(StoreRequest(
        agent_id=fields.pop("agent_id", BOT), content=content,
        created_at=datetime.now(UTC) - timedelta(days=days_ago), **fields,
    ))


def test_every_write_leaves_the_cache_equal_to_the_graph(svc):
    pending = store(svc, "Refund pending for order #48213 while the warehouse checks the kettle.", 10,
                    tags=("customer:jane-doe",))
    assert_cache_is_exact(svc)
    # Supersession (hygiene inside the store transaction) changes the older memory.
    approved = store(svc, "Refund approved for order #48213; money back in 3-5 days.", 5, tags=("customer:jane-doe",))
    assert svc.memories.get(BOT, pending.id).superseded_by == approved.id
    assert_cache_is_exact(svc)
    # Reinforcement raises the existing memory's importance.
    first = store(svc, "Prefers to be contacted by email.", 30, importance=0.6, tags=("customer:jane-doe",))
    again = store(svc, "Prefers being contacted by e-mail.", 2, importance=0.5, tags=("customer:jane-doe",))
    assert again.deduplicated and again.id == first.id
    assert_cache_is_exact(svc)
    # A batch, another agent, an expiring memory.
    svc.memories.store_batch([
        StoreRequest(agent_id=BOT, content=f"Asked about delivery slot {n} for order #6100{n}.") for n in range(5)
    ])
    store(svc, "Temporary note", agent_id="other-bot", expires_at=datetime.now(UTC) + timedelta(days=1))
    assert_cache_is_exact(svc)
    # An update rewrites the memory.
    svc.memories.update(BOT, first.id, importance=0.95)
    assert_cache_is_exact(svc)
    # Deleting the newer state makes the older one current again.
    svc.memories.forget(BOT, approved.id)
    assert svc.memories.get(BOT, pending.id).superseded_by is None
    assert_cache_is_exact(svc)
    # Consolidation marks the summary memory.
    session = svc.memories.session_start(BOT, "jane-doe")
    for text in ("The kettle lid arrived cracked.", "Refund approved for order #48213."):
        svc.memories.store(StoreRequest(agent_id=BOT, content=text, session_id=session.id))
    svc.memories.session_end(session.id)
    assert "summary" in {a.kind for a in graph_attrs(svc).values()}
    assert_cache_is_exact(svc)
    # Erasing a customer.
    svc.customer_data.forget_customer(BOT, "jane-doe")
    assert_cache_is_exact(svc)
    # A write that does not report what it changed clears the cache; lookups refill it.
    with svc.graph.transaction() as run:
        run("MATCH (m:Memory) SET m.importance = 0.25")
    assert cached(svc) == 0
    svc.recall.recall(BOT, "delivery slot", 5)
    assert cached(svc) > 0
    assert_cache_is_exact(svc, complete=False)


def test_recall_ranks_from_the_cache_without_lookups_and_it_is_rebuilt_on_open(embedder, extractor, tmp_path):
    now = datetime.now(UTC)
    svc = Services.open(make_settings(tmp_path / "data"), embedder=embedder, extractor=extractor, clock=lambda: now)
    try:
        svc.memories.store_batch([
            StoreRequest(agent_id=BOT, content=f"Customer {n} asked about the refund for order #7{n:04d}.",
                         importance=0.1 + n / 100, created_at=now - timedelta(hours=n))
            for n in range(40)
        ])
        looked_up: list[str] = []

        def counting(query, params):
            if query.endswith(f"RETURN m.id, {ATTR_COLUMNS}"):  # not the answers' full rows
                looked_up.append(query)

        svc.graph.tracer = counting
        hits = svc.recall.recall(BOT, "refund question", 5)
        svc.graph.tracer = None
        assert len(hits) == 5 and looked_up == []
        # The same answer as ranking every candidate from its full row.
        candidates, _, now = svc.recall.gather(BOT, "refund question", 5)
        ranked = rank(candidates, now=now, config=svc.recall.default_config(), top_k=5)
        assert [(h.memory.id, h.score) for h in hits] == [(r.memory_id, r.score) for r in ranked]
    finally:
        svc.close()
    reopened = Services.open(make_settings(tmp_path / "data"), embedder=embedder, extractor=extractor)
    try:
        assert cached(reopened) == 40
        assert_cache_is_exact(reopened)
    finally:
        reopened.close()
