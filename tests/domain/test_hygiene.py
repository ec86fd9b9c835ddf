"""Memory hygiene on the real stack (Kùzu, MiniLM, spaCy, USearch): near-duplicates
reinforce, newer states supersede, sessions consolidate, TTLs expire and are swept, and
the wake-up context ranks a customer's memories without a query."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from casegraph.domain.models import RecallFilter, StoreRequest
from casegraph.domain.ranking import PRESETS, total
from casegraph.errors import CustomerNotFound, InvalidInput, MemoryNotFound, SessionEnded
from casegraph.services import Services

from tests.clock import FakeClock
from tests.conftest import make_settings
from tests.storage.backends import falkor, graph_rows

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
BOT = "support-bot"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def open_clocked(embedder, extractor, tmp_path, clock):
    opened: list[Services] = []

    def _open(name: str = "data", **overrides) -> Services:
        s = Services.open(make_settings(tmp_path / name, **overrides), embedder=embedder, extractor=extractor, clock=clock)
        opened.append(s)
        return s

    yield _open
    for s in opened:
        s.close()


@pytest.fixture
def svc(open_clocked) -> Services:
    return open_clocked()


def store(svc: Services, content: str, *, days_ago: float = 0, **fields):
    fields.setdefault("tags", ("customer:jane-doe",))
    return svc.memories.store(
        StoreRequest(agent_id=fields.pop("agent_id", BOT), content=content, created_at=NOW - timedelta(days=days_ago), **fields)
    )


def ids(hits) -> list[str]:
    return [h.memory.id for h in hits]


# -- near-duplicates ----------------------------------------------------------------------
def test_near_duplicate_reinforces_the_existing_memory(svc):
    first = store(svc, "Prefers to be contacted by email.", days_ago=30, importance=0.6)
    again = store(svc, "Prefers being contacted by e-mail.", days_ago=2, importance=0.5)
    assert again.deduplicated is True and again.id == first.id
    assert again.importance == pytest.approx(0.65) and again.reinforce_count == 1
    assert again.last_seen_at == NOW - timedelta(days=2)
    assert svc.graph.count_memories() == 1 and svc.vectors.count(BOT) == 1
    stored = svc.memories.get(BOT, first.id)
    assert (stored.importance, stored.reinforce_count, stored.deduplicated) == (pytest.approx(0.65), 1, False)

    # Not duplicates: another customer, another agent, another fact, another order number.
    assert not store(svc, "Prefers being contacted by e-mail.", tags=("customer:john-doe",)).deduplicated
    assert not store(svc, "Prefers being contacted by e-mail.", agent_id="other-bot").deduplicated
    assert not store(svc, "Prefers to be contacted by phone.").deduplicated
    store(svc, "Refund approved for order #48213.")
    assert not store(svc, "Refund approved for order #48231.").deduplicated
    assert not store(svc, "Promised to call her back on Friday.").deduplicated
    assert not store(svc, "Promised to call her back on Monday.").deduplicated
    assert svc.graph.count_memories(BOT) == 7


def test_two_processes_storing_one_near_duplicate_at_once_make_one_memory(open_clocked, monkeypatch):
    """Two services sharing one FalkorDB namespace, as two ``casegraph serve`` processes do.
    The first pauses between reading its plan (no near-duplicate yet) and committing it;
    the second stores the same fact meanwhile. It must wait for the first's commit and
    merge into it: a plan read before another process's write lands would make two."""
    from tests.conftest import falkor_server

    url = falkor_server().namespace_url()
    first_svc, second_svc = open_clocked("a", store=url), open_clocked("b", store=url)
    planned = threading.Event()
    real = first_svc.memories.hygiene.store.dedup_neighbours

    def slow_plan(*args, **kwargs):
        found = real(*args, **kwargs)
        planned.set()
        time.sleep(1.5)  # the second store runs whole in here unless it waits for this write
        return found

    monkeypatch.setattr(first_svc.memories.hygiene.store, "dedup_neighbours", slow_plan)
    results = []
    worker = threading.Thread(target=lambda: results.append(store(first_svc, "Prefers to be contacted by email.")))
    worker.start()
    assert planned.wait(60)
    second = store(second_svc, "Prefers being contacted by e-mail.")
    worker.join(60)
    (first,) = results
    assert (first.deduplicated, second.deduplicated, second.id) == (False, True, first.id)
    assert first_svc.graph.count_memories(BOT) == 1 and second_svc.graph.count_memories(BOT) == 1
    assert second_svc.memories.get(BOT, first.id).reinforce_count == 1


def test_duplicates_inside_one_batch_and_the_threshold_setting(svc, open_clocked):
    batch = [
        StoreRequest(agent_id=BOT, content="Leave parcels with the neighbour at number 12.", tags=("customer:ann-lee",)),
        StoreRequest(agent_id=BOT, content="Leave parcels with the neighbour at number 12", tags=("customer:ann-lee",)),
    ]
    first, second = svc.memories.store_batch(batch)
    assert (first.deduplicated, second.deduplicated, second.id) == (False, True, first.id)
    assert second.reinforce_count == 1 and svc.graph.count_memories() == 1
    assert svc.memories.get(BOT, first.id).reinforce_count == 1  # stored, not only answered

    # One batch over several customers: each is compared with its own customer's memories only.
    a, b, c = svc.memories.store_batch([
        StoreRequest(agent_id=BOT, content="Leave parcels with the neighbour at number 12!", tags=("customer:ann-lee",)),
        StoreRequest(agent_id=BOT, content="Leave parcels with the neighbour at number 12.", tags=("customer:bo-ng",)),
        StoreRequest(agent_id=BOT, content="Leave parcels with the neighbour at number 12", tags=("customer:bo-ng",)),
    ])
    assert (a.deduplicated, a.id, a.reinforce_count) == (True, first.id, 2)
    assert (b.deduplicated, c.deduplicated, c.id) == (False, True, b.id)

    # A memory the vector index does not hold yet (another thread's write, not indexed)
    # is compared with its embedding from the graph. (FalkorDB: the vector is the node's
    # own property; there is no separate index to lag behind.)
    if not falkor():
        svc.vectors.remove(BOT, [first.id])
    again = svc.memories.store(
        StoreRequest(agent_id=BOT, content="leave parcels with the neighbour at number 12", tags=("customer:ann-lee",))
    )
    assert (again.deduplicated, again.id, again.reinforce_count) == (True, first.id, 3)

    strict = open_clocked("strict", dedup_threshold=1.0)
    a = strict.memories.store(StoreRequest(agent_id=BOT, content="Prefers to be contacted by email.", tags=("customer:x",)))
    b = strict.memories.store(StoreRequest(agent_id=BOT, content="Prefers being contacted by e-mail.", tags=("customer:x",)))
    assert not b.deduplicated and a.id != b.id


def test_random_codes_with_the_same_digits_are_stored_apart(svc):
    # The crash test's writers store texts like these; one CI run saw a batch "half-stored"
    # because its item was answered as a duplicate of another batch's item.
    first = store(svc, "Batch tokbcc1cc09f7 item 2: the parcel for writer 1 was rerouted")
    second = store(svc, "Batch tokfa1ed09b7c item 2: the parcel for writer 1 was rerouted")
    assert not second.deduplicated and second.id != first.id
    assert svc.graph.count_memories(BOT) == 2
    # The same code again is still a duplicate.
    again = store(svc, "batch tokfa1ed09b7c item 2: the parcel for writer 1 was rerouted.")
    assert again.deduplicated and again.id == second.id


# -- supersession -------------------------------------------------------------------------
def test_newer_state_supersedes_older_memory_about_the_same_order(svc):
    pending = store(svc, "Refund pending for order #48213 while the warehouse checks the kettle.", days_ago=10)
    other = store(svc, "Refund pending for order #55555.", days_ago=9)
    approved = store(svc, "Refund approved for order #48213; money back in 3-5 days.", days_ago=5)
    assert pending.states == ("refund:pending",) and approved.states == ("refund:approved",)
    assert svc.memories.get(BOT, pending.id).superseded_by == approved.id
    assert svc.memories.get(BOT, other.id).superseded_by is None  # another order

    hits = svc.recall.recall(BOT, "refund for order 48213", 5)
    assert pending.id not in ids(hits) and ids(hits)[0] == approved.id

    hits = svc.recall.recall(BOT, "refund for order 48213", 5, RecallFilter(include_superseded=True))
    order = ids(hits)
    assert order.index(approved.id) < order.index(pending.id)
    old = hits[order.index(pending.id)]
    assert "superseded by a newer memory" in old.why
    # Penalised (and capped below its successor when that would not already hold).
    assert old.score <= total(1.0, old.signals, PRESETS["hybrid_graph"], superseded=True) + 1e-9
    assert old.score <= hits[order.index(approved.id)].score
    edges = graph_rows(svc.graph, BOT, "MATCH (n:Memory)-[:SUPERSEDES]->(o:Memory) RETURN n.id, o.id")
    assert edges == [[approved.id, pending.id]]

    # Forgetting the newer statement makes the older one the current state again.
    svc.memories.forget(BOT, approved.id)
    assert svc.memories.get(BOT, pending.id).superseded_by is None
    assert ids(svc.recall.recall(BOT, "refund for order 48213", 5))[0] == pending.id


def test_history_imported_out_of_order_and_partial_restatements(svc):
    approved = store(svc, "Refund approved for order #70001.", days_ago=3)
    requested = store(svc, "Customer requests a refund for order #70001.", days_ago=8)  # older, arrives later
    assert requested.superseded_by == approved.id
    # The older memory also states the replacement; a refund-only update leaves it current.
    both = store(svc, "Refund pending and replacement shipped for order #70002.", days_ago=6)
    store(svc, "Refund approved for order #70002.", days_ago=1)
    assert svc.memories.get(BOT, both.id).superseded_by is None
    # A negated or questioned state is not a state.
    assert store(svc, "Refund for order #70003 not approved yet.").states == ()
    assert store(svc, "Has the refund for order #70003 been approved?").states == ()


# -- consolidation ------------------------------------------------------------------------
def test_session_end_stores_an_extractive_summary_memory(svc, clock):
    clock.now = NOW - timedelta(hours=1)
    session = svc.memories.session_start(BOT, "jane-doe")
    said = [
        "Jane says the kettle from order #48213 arrived with a cracked lid.",
        "She sent two photos of the damage. Nice chat about the weather.",
        "Refund approved for order #48213; promised the money back within 5 days.",
    ]
    for text in said:
        clock.advance(minutes=5)
        svc.memories.store(StoreRequest(agent_id=BOT, content=text, session_id=session.id, importance=0.7))
    clock.advance(minutes=5)
    ended = svc.memories.session_end(session.id)

    summary_id = svc.graph.session_summary_memory(session.id)
    summary = svc.memories.get(BOT, summary_id)
    assert summary.kind == "summary" and summary.customer_id == "jane-doe" and ended.summary == summary.content
    assert "Jane says the kettle from order #48213 arrived with a cracked lid." in summary.content
    assert "Outcome: Refund approved for order #48213; promised the money back within 5 days." in summary.content
    assert "order #48213" in summary.content.split("Mentioned:")[1]
    assert "weather" not in summary.content  # small talk is not a key sentence
    assert summary.orders == ("48213",) and summary.created_at == NOW - timedelta(minutes=45)
    assert summary.metadata["summaryOf"] == session.id and len(summary.metadata["sources"]) == 3
    assert [m.content for m in svc.memories.session_memories(session.id)] == said  # the session itself is unchanged
    assert summary.id in {m.id for m in svc.graph.customer_memories(BOT, "jane-doe", NOW)}
    hits = svc.recall.recall(BOT, "order 48213", 10)
    assert "session summary" in hits[ids(hits).index(summary.id)].why
    with pytest.raises(SessionEnded):
        svc.memories.session_end(session.id)
    assert svc.graph.count_memories() == 4


def test_caller_summary_wins_and_a_single_memory_session_has_no_summary(svc):
    s1 = svc.memories.session_start(BOT, "bob-stone")
    svc.memories.store(StoreRequest(agent_id=BOT, content="Asked how to reset the router.", session_id=s1.id))
    svc.memories.store(StoreRequest(agent_id=BOT, content="Sent the setup guide.", session_id=s1.id))
    svc.memories.session_end(s1.id, "Router reset explained; guide sent.")
    summary = svc.memories.get(BOT, svc.graph.session_summary_memory(s1.id))
    assert summary.content == "Router reset explained; guide sent." and summary.kind == "summary"

    s2 = svc.memories.session_start(BOT, "bob-stone")
    svc.memories.store(StoreRequest(agent_id=BOT, content="Only one thing said.", session_id=s2.id))
    svc.memories.session_end(s2.id)
    assert svc.graph.session_summary_memory(s2.id) is None
    assert svc.graph.count_memories() == 4


# -- TTL ------------------------------------------------------------------------------------
def test_expired_memories_are_never_returned_and_the_sweep_removes_them_everywhere(svc, clock):
    keep = store(svc, "Customer likes the blue espresso machine.")
    temp = store(svc, "Temporary note: espresso machine voucher code ESPRESSO10 valid today.", ttl_seconds=60)
    assert temp.id in ids(svc.recall.recall(BOT, "espresso machine voucher", 5))
    clock.advance(seconds=61)
    assert temp.id not in ids(svc.recall.recall(BOT, "espresso machine voucher", 5))
    assert temp.id not in ids(svc.recall.recall(BOT, "Jane Doe espresso", 5, RecallFilter(customer_id="jane-doe")))
    with pytest.raises(MemoryNotFound):
        svc.memories.get(BOT, temp.id)
    assert temp.id not in ids(svc.customer_context.customer_context(BOT, "jane-doe").memories)

    assert svc.memories.sweep_expired() == 1
    assert svc.graph.count_memories() == 1 and svc.vectors.count(BOT) == 1
    assert svc.vectors.keys(BOT) == {keep.id}
    assert svc.keywords.search(BOT, "voucher", 10) == []
    assert svc.memories.sweep_expired() == 0


# -- wake-up context ------------------------------------------------------------------------
def test_customer_context_ranks_important_and_recent_memories_and_lists_open_tickets(svc):
    store(svc, "Small talk about the weather.", days_ago=200, importance=0.1)
    vip = store(svc, "VIP customer: always offer express shipping.", days_ago=60, importance=0.95)
    recent = store(svc, "Asked about the opening hours of the Leeds store.", days_ago=1, importance=0.4)
    store(svc, "Kettle from order #48213 arrived cracked.", days_ago=20, importance=0.7, tags=("customer:jane-doe", "ticket:T-1"))
    store(svc, "Blender jar leaks.", days_ago=40, importance=0.7, tags=("customer:jane-doe", "ticket:T-2"))
    store(svc, "Ticket T-2 resolved: new jar delivered.", days_ago=30, importance=0.6, tags=("customer:jane-doe", "ticket:T-2"))
    store(svc, "Someone else entirely.", tags=("customer:john-doe",), importance=1.0)

    ctx = svc.customer_context.customer_context(BOT, "Jane Doe", limit=3, now=NOW)
    assert ctx.customer.id == "jane-doe"
    assert [t.id for t in ctx.open_tickets] == ["T-1"] and ctx.open_tickets[0].status == "open"
    assert ctx.open_tickets[0].latest.content == "Kettle from order #48213 arrived cracked."
    top = ids(ctx.memories)
    assert len(top) == 3 and vip.id in top and recent.id in top
    assert all(h.memory.customer_id == "jane-doe" for h in ctx.memories)
    first = ctx.memories[0]
    assert first.signals.semantic == 0 and first.score == pytest.approx(0.5 * first.signals.importance + 0.5 * first.signals.recency)
    kettle = svc.customer_context.customer_context(BOT, "jane-doe", limit=10, now=NOW).memories
    assert any("about open ticket T-1" in h.why for h in kettle)
    with pytest.raises(CustomerNotFound):
        svc.customer_context.customer_context(BOT, "nobody", now=NOW)
    with pytest.raises(InvalidInput) as bad:
        svc.customer_context.customer_context(BOT, "jane-doe", limit=0, now=NOW)
    assert bad.value.code == "INVALID_LIMIT"


# -- signals and why ------------------------------------------------------------------------
def test_signals_and_why_explain_each_hit(svc):
    report = store(svc, "The kettle from order #48213 arrived with a cracked lid.", tags=("customer:jane-doe", "ticket:T-10423"), days_ago=12)
    follow = store(svc, "Refund still not received for the kettle.", tags=("customer:jane-doe", "ticket:T-10587", "order:48213"), days_ago=3)
    pref = store(svc, "Prefers to be contacted by email.", days_ago=60, importance=0.9)
    store(svc, "Headphones from order #48231 stopped charging.", tags=("customer:john-doe",), days_ago=5)

    hits = svc.recall.recall(BOT, "cracked kettle, order 48213", 4)
    top = hits[0]
    assert top.memory.id == report.id
    assert top.signals.graph == 1.0 and top.signals.keyword == 1.0  # "cracked kettle": the order is masked
    assert top.why[0] == "linked to order #48213"
    assert "best keyword match" in top.why
    hybrid = svc.recall.recall(BOT, "cracked kettle, order 48213", 4, config=PRESETS["hybrid"])
    assert "best keyword match" in hybrid[0].why and hybrid[0].signals.graph == 0
    assert hybrid[0].memory.id == report.id and hybrid[0].signals.keyword == 1.0
    for h in hits:
        # The default fuses the sources (a source score of at most 1) and adds the priors.
        cfg = PRESETS["hybrid_graph"]
        source = h.score - cfg.importance_weight * h.signals.importance - cfg.recency_weight * h.signals.recency
        assert 0.0 < source <= 1.0 + 1e-12
        assert all(0.0 <= v <= 1.0 for v in (h.signals.semantic, h.signals.keyword, h.signals.graph, h.signals.importance, h.signals.recency))
    by_id = {h.memory.id: h for h in hits}
    assert by_id[pref.id].signals.graph == 0.5 and by_id[pref.id].why[0] == "same customer as order #48213"
    assert by_id[pref.id].signals.recency == pytest.approx(0.5 ** (60 / 30))

    # One ticket<->order hop: the other ticket on the same order.
    hop = {h.memory.id: h for h in svc.recall.recall(BOT, "other tickets about the same order as T-10423", 5)}
    assert hop[follow.id].signals.graph == 0.75
    assert "linked to ticket T-10587 (same order #48213)" in hop[follow.id].why
    # Asked for *other* tickets: the named ticket's own memory drops below the hop.
    assert hop[report.id].signals.graph == 0.25
    assert hop[report.id].why[0] == "linked to ticket T-10423 itself (asked for others)"
    assert list(hop).index(follow.id) < list(hop).index(report.id)

    dense = svc.recall.recall(BOT, "order 48213", 4, config=PRESETS["dense"])
    assert all(h.signals.graph == 0 and h.signals.keyword == 0 for h in dense)
    assert all(not any(w.startswith(("linked", "same customer", "keyword", "best keyword")) for w in h.why) for h in dense)
    assert all(h.score == pytest.approx(h.signals.semantic) for h in dense)
