"""Threads and outcomes (app/domain/threads.py): who speaks, which message is a conversation's
outcome, where outcomes are placed, and recall on the real stack returning, for a query
about an order, a ticket or an identifier, the messages that name it and the outcome of
each conversation that discussed it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from casegraph.domain import query_text, threads
from casegraph.domain.models import RecallFilter, Signals, StoreRequest
from casegraph.domain.ranking import Ranked
from casegraph.domain.threads import (
    AGENT,
    USER,
    Message,
    Thread,
    last_agent_message,
    place,
    speaker,
)

A = "support-bot"


# -- pure: speakers, outcomes, placement -----------------------------------------------
@pytest.mark.parametrize(
    ("text", "who"),
    [
        ("assistant: I refunded it", AGENT),
        ("Agent: I refunded it", AGENT),
        ("agent:I refunded it", AGENT),
        ("bot: I refunded it", AGENT),
        ("Support: I refunded it", AGENT),
        ("**Agent:** I refunded it", AGENT),
        ("[Support agent]: I refunded it", AGENT),
        ("Customer Service: I refunded it", AGENT),
        ("user: where is it?", USER),
        ("Customer: where is it?", USER),
        ("client: where is it?", USER),
        ("where is it? my order: 4521", None),
        ("Order 4521: refunded", None),
        ("I refunded it", None),
    ],
)
def test_speaker_from_the_prefix(text, who):
    assert speaker(text) == who


def test_speaker_from_the_metadata_wins():
    assert speaker("I refunded it", {"role": "assistant"}) == AGENT
    assert speaker("where is it?", {"speaker": "customer"}) == USER
    assert speaker("user: where is it?", {"role": "nonsense"}) == USER


def msgs(*texts: str) -> list[Message]:
    return [Message(f"m{i}", i, t) for i, t in enumerate(texts, start=1)]


def test_the_outcome_is_the_agents_last_message():
    tail = msgs("user: a", "assistant: refunded", "user: thanks", "user: bye")
    assert last_agent_message(tail).id == "m2"


def test_when_only_the_customer_is_marked_the_last_unmarked_message_is_the_agents():
    tail = msgs("Customer: a", "We refunded it", "Customer: thanks")
    assert last_agent_message(tail).id == "m2"


def test_when_nobody_is_marked_the_last_message_is_the_outcome():
    assert last_agent_message(msgs("a parcel went missing", "refund issued")).id == "m2"
    assert last_agent_message([]) is None
    assert last_agent_message(msgs("user: only the customer spoke")) is None


def ranked(*ids_scores: tuple[str, float]) -> list[Ranked]:
    return [Ranked(i, s, Signals(), ()) for i, s in ids_scores]


def test_place_moves_each_outcome_just_below_its_threads_best_message():
    r = ranked(("a1", 0.9), ("a2", 0.88), ("b1", 0.87), ("x", 0.8), ("oa", 0.5), ("ob", 0.4))
    ts = [
        Thread("s1", "order #1", {"a1", "a2"}, outcomes=[("oa", "outcome")]),
        Thread("s2", "order #1", {"b1"}, outcomes=[("ob", "outcome")]),
    ]
    out = place(r, ts, 5)
    assert [x.memory_id for x in out] == ["a1", "oa", "a2", "b1", "ob"]
    assert [x.score for x in out] == sorted((x.score for x in out), reverse=True)


def test_place_never_moves_an_outcome_down_nor_repeats_it():
    r = ranked(("oa", 0.95), ("a1", 0.9), ("x", 0.5))
    out = place(r, [Thread("s1", "t", {"a1"}, outcomes=[("oa", "outcome"), ("gone", "summary")])], 5)
    assert [x.memory_id for x in out] == ["oa", "a1", "x"]


# -- real stack ---------------------------------------------------------------------------
def chat(s, lines, *, customer=None, known_from=2, end=False):
    """One chat as a bot stores it: a session, each message a memory, the customer
    passed only after a lookup (from message ``known_from``), never ended by default."""
    session = s.memories.session_start(A)
    stored = [
        s.memories.store(StoreRequest(
            agent_id=A, content=line, session_id=session.id, customer_id=customer if i >= known_from else None,
        ))
        for i, line in enumerate(lines)
    ]
    if end:
        s.memories.session_end(session.id)
    return session, stored


LOST = [
    "user: hi, my order 4521 has not arrived yet",
    "assistant: I am sorry about that, let me look up order 4521",
    "user: it was supposed to come last Monday",
    "assistant: the courier says the parcel was lost in transit",
    "user: so what happens now?",
    "assistant: I have sent you a replacement, it ships tomorrow morning. Anything else?",
    "user: no, that is all, thanks",
]
RETURN = [
    "user: I want to return the kettle from order 4521",
    "assistant: sure, I can help you with that return",
    "user: it leaks from the bottom",
    "assistant: a return label is in your inbox; the refund follows once it is back with us",
]
OTHER = [
    "user: my order 7788 came damaged",
    "assistant: please send a photo of the damage",
    "user: done, photo sent",
    "assistant: thanks, a refund of 40 dollars is on its way for order 7788",
]
NOISE = [
    "user: do you ship to Norway?",
    "assistant: yes, we ship to every country in Europe within a week",
    "user: and what does shipping cost there?",
    "assistant: shipping to Norway is 12 euros, free over 100",
]


@pytest.fixture
def world(services):
    _, lost = chat(services, LOST, customer="jane-doe")
    _, ret = chat(services, RETURN, customer="jane-doe")
    _, other = chat(services, OTHER, customer="bob-stone")
    chat(services, NOISE)
    return services, lost, ret, other


def top(s, query, k=5, **flt):
    return s.recall.recall(A, query, k, RecallFilter(**flt) if flt else None)


def test_what_happened_with_an_order_brings_each_conversations_outcome(world):
    s, lost, ret, _ = world
    hits = top(s, "what happened with order 4521?")
    ids = [h.memory.id for h in hits]
    # The agent's last message of both chats about the order, though neither names it.
    assert lost[5].id in ids and ret[3].id in ids
    # ...below a message of their own chat that names the order, which stays in.
    assert ids.index(lost[5].id) > min(ids.index(m.id) for m in (lost[0], lost[1]) if m.id in ids)
    assert ids[0] in {lost[0].id, lost[1].id, ret[0].id}
    why = {h.memory.id: h.why for h in hits}
    assert "outcome of the conversation that mentions order #4521" in why[lost[5].id]
    assert "outcome of the conversation that mentions order #4521" in why[ret[3].id]
    # The customer's later "no, that is all" is not the outcome.
    assert lost[6].id not in ids
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_an_outcome_that_names_the_order_itself_is_labelled_as_both(world):
    s, _, _, other = world
    hits = top(s, "status of order 7788")
    why = {h.memory.id: h.why for h in hits}
    assert other[3].id in why
    assert "linked to order #7788" in why[other[3].id]
    assert "outcome of the conversation that mentions order #7788" in why[other[3].id]


def test_a_ticket_thread_with_other_prefixes_and_a_top_k_of_two(services):
    lines = [
        "Customer: ticket T-1042 is still not solved",
        "Agent: let me check T-1042 for you",
        "Customer: the router keeps dropping the connection",
        "Agent: I have booked an engineer visit for Thursday between 9 and 12",
        "Customer: ok",
    ]
    _, stored = chat(services, lines, customer="sam-lee")
    chat(services, NOISE)
    hits = top(services, "what happened with ticket T-1042", k=2)
    assert [h.memory.id for h in hits][1] == stored[3].id
    assert hits[0].memory.id in {stored[0].id, stored[1].id}
    assert "outcome of the conversation that mentions ticket T-1042" in hits[1].why


def test_without_prefixes_the_sessions_last_message_is_the_outcome(services):
    lines = [
        "hello, order 9911 arrived with a cracked screen",
        "sorry to hear it, could you describe the crack?",
        "a long line across the middle",
        "a replacement screen is on its way by courier",
    ]
    _, stored = chat(services, lines)
    chat(services, NOISE)
    hits = top(services, "what happened with order 9911?")
    assert stored[3].id in [h.memory.id for h in hits]
    assert "outcome of the conversation that mentions order #9911" in {w for h in hits for w in h.why}


def test_an_ended_session_brings_its_summary_as_its_outcome(services):
    session, stored = chat(services, LOST, customer="jane-doe", end=True)
    chat(services, NOISE)
    summary = services.graph.session_summary_memory(session.id)
    assert summary is not None
    hits = top(services, "what happened with order 4521?")
    ids = [h.memory.id for h in hits]
    why = {h.memory.id: h.why for h in hits}
    # Placed below the best message that names the order; the agent's last message is
    # still labelled, and comes in on its own merit.
    assert summary in ids[:2] and {stored[0].id, stored[1].id} & set(ids[:2])
    assert "summary of the conversation that mentions order #4521" in why[summary]
    assert stored[5].id in why
    assert "outcome of the conversation that mentions order #4521" in why[stored[5].id]


def test_outcomes_pass_the_filter_like_every_candidate(world):
    s, lost, ret, _ = world
    hits = top(s, "what happened with order 4521?", session_id=lost[0].session_id)
    ids = [h.memory.id for h in hits]
    assert lost[5].id in ids and ret[3].id not in ids
    assert all(h.memory.session_id == lost[0].session_id for h in hits)


def test_a_customer_query_places_no_outcomes(world):
    s, *_ = world
    hits = top(s, "Jane Doe previous interactions", k=10)
    assert not any(w.startswith("outcome of the conversation") for h in hits for w in h.why)


def test_asking_for_other_orders_walks_no_thread(world):
    s, *_ = world
    hits = top(s, "other orders besides order 4521", k=10)
    assert not any(w.startswith("outcome of the conversation") for h in hits for w in h.why)


def test_thread_order_survives_the_walk_of_a_batch(services):
    session = services.memories.session_start(A)
    at = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # one time for the whole chat
    stored = services.memories.store_batch(
        [StoreRequest(agent_id=A, content=line, session_id=session.id, created_at=at) for line in LOST]
    )
    walked = threads.find_threads(services.graph, A, query_text.read("order 4521", services.extractor)[0], services.memories.clock())
    assert [t.outcomes[0][0] for t in walked] == [stored[5].id]


# -- open tickets above settled ones ------------------------------------------------------
def test_on_an_equal_match_an_open_tickets_memory_ranks_above_a_resolved_ones(services):
    def store(text):
        return services.memories.store(StoreRequest(agent_id=A, content=text, tags=("customer:jane-doe",)))

    older = store("Ticket T-2001: the printer jams on every duplex job.")
    newer = store("Ticket T-2002: the printer jams on every duplex job.")
    store("Ticket T-2003: the invoice for March shows the wrong address.")

    def order(query):
        return [h.memory.id for h in top(services, query, k=3) if h.memory.id in (older.id, newer.id)]

    # Equal but for recency: the newer first.
    assert order("printer jams on duplex jobs") == [newer.id, older.id]
    services.tickets.update(A, "T-2002", status="resolved")
    assert order("printer jams on duplex jobs") == [older.id, newer.id]
    assert order("Jane Doe printer jams") == [older.id, newer.id]
    hit = next(h for h in top(services, "printer jams on duplex jobs") if h.memory.id == newer.id)
    assert "ticket T-2002 is settled" in hit.why
    services.tickets.update(A, "T-2001", status="closed")
    assert order("printer jams on duplex jobs") == [newer.id, older.id]
    services.tickets.update(A, "T-2002", status="open")
    assert order("printer jams on duplex jobs") == [newer.id, older.id]
    assert not any("settled" in w for h in top(services, "printer jams") if h.memory.id == newer.id for w in h.why)


def test_open_first_moves_a_settled_memory_below_equal_matches_only():
    def r(i, score, semantic, graph=1.0):
        return Ranked(i, score, Signals(semantic=semantic, graph=graph), ())

    ranked_ = [r("a", 0.9, 0.80), r("b", 0.8, 0.79), r("c", 0.7, 0.795), r("d", 0.6, 0.50)]
    out = threads.open_first(ranked_, {"a": "T-1"})
    assert [x.memory_id for x in out] == ["b", "c", "a", "d"]
    assert [x.score for x in out] == [0.9, 0.8, 0.7, 0.6]
    assert out[2].why == ("ticket T-1 is settled",)
    # Not past a weaker match, nor past another graph link, nor past a settled one.
    assert [x.memory_id for x in threads.open_first([r("a", 0.9, 0.8), r("b", 0.8, 0.7)], {"a": "T-1"})] == ["a", "b"]
    assert [x.memory_id for x in threads.open_first([r("a", 0.9, 0.8), r("b", 0.8, 0.8, 0.5)], {"a": "T-1"})] == ["a", "b"]
    assert [x.memory_id for x in threads.open_first(ranked_[:2], {"a": "T-1", "b": "T-2"})] == ["a", "b"]
    assert threads.open_first(ranked_, {}) == ranked_
# -- identifiers of other shapes (extractors' identifiers by shape) -------------------------
def test_odd_id_shapes_bring_their_conversations_outcomes(services):
    order_chat = [
        "user: hi, I need help with #W1588712",
        "assistant: I see order #W1588712, the desk lamp",
        "user: it came without the bulb",
        "assistant: I have shipped the missing bulb separately, it arrives Friday",
        "user: great, thanks",
    ]
    booking_chat = [
        "Customer: my reservation M20IZO shows the wrong date",
        "Agent: let me open M20IZO",
        "Customer: it should be the 14th, not the 4th",
        "Agent: done, the booking now starts on the 14th and a new confirmation is in your inbox",
    ]
    _, order = chat(services, order_chat)
    _, booking = chat(services, booking_chat)
    chat(services, NOISE)
    for query, outcome, mentions, label in (
        ("what happened with order #W1588712?", order[3], order[:2], "W1588712"),
        ("status of reservation M20IZO", booking[3], booking[:2], "M20IZO"),
    ):
        hits = top(services, query)
        ids = [h.memory.id for h in hits]
        assert outcome.id in ids, (query, [h.memory.content for h in hits])
        assert {m.id for m in mentions} & set(ids[: ids.index(outcome.id)])
        why = next(h.why for h in hits if h.memory.id == outcome.id)
        assert any(w.startswith("outcome of the conversation that mentions") and label.lower() in w.lower() for w in why)


def test_the_same_mention_in_a_second_chat_is_not_merged_into_the_first(services):
    # "it's order 4521" said in two chats of one customer would be a near-duplicate; the
    # second chat keeps its own, so its outcome is found from it.
    first = ["user: it's order 4521", "assistant: the parcel left our depot today"]
    second = ["user: it's order 4521", "assistant: I have refunded order 4521's delivery fee, sorry for the wait"]
    _, one = chat(services, first, customer="jane-doe", known_from=0)
    _, two = chat(services, second, customer="jane-doe", known_from=0)
    assert not two[0].deduplicated and two[0].id != one[0].id
    assert two[0].session_id != one[0].session_id
    hits = top(services, "what happened with order 4521?")
    assert {one[1].id, two[1].id} <= {h.memory.id for h in hits}
    # Within one chat, a repeat still reinforces.
    session = two[0].session_id
    again = services.memories.store(
        StoreRequest(agent_id=A, content="user: it's order 4521", session_id=session, customer_id="jane-doe")
    )
    assert again.deduplicated and again.id == two[0].id
