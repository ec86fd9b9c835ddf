"""Pure logic of hygiene and ranking: state statements, supersession rule, extractive
summaries, near-duplicate identity, superseded ordering and query masking (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from casegraph.domain.consolidation import summarise
from casegraph.domain.hygiene import identity
from casegraph.domain.models import Entity, Memory
from casegraph.domain.query_text import Mention, masked
from casegraph.domain.ranking import Candidate, RecallConfig, rank
from casegraph.domain.states import extract_states, supersedes
from casegraph.storage.search import NodeRefs

NOW = datetime(2025, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "states"),
    [
        ("Refund pending for order #48213.", ("refund:pending",)),
        ("Refund of £294.49 pending approval from Priya.", ("refund:pending",)),
        ("The refund was pending and is now approved.", ("refund:approved",)),
        ("Refund approved; it will be credited within 5 days.", ("refund:approved",)),
        ("Order #48213 was refunded in full.", ("refund:issued",)),
        ("Replacement kettle shipped with tracking 1Z999AA10123456784.", ("replacement:shipped",)),
        ("Courier says the parcel is delayed at the Leeds depot.", ("delivery:delayed",)),
        ("Ticket T-1042 resolved: new jar delivered.", ("ticket:resolved",)),
        ("Refund approved and ticket closed.", ("refund:approved", "ticket:closed")),
        # Negated, doubted, future, conditional, policy: not statements of a state.
        ("Refund not approved yet.", ()),
        ("Has the refund been approved?", ()),
        ("Refund will be issued once the return arrives.", ()),
        ("Explained that refunds are usually approved within 5 days.", ()),
        ("Customer asks whether the refund was sent.", ()),
        ("Prefers to be contacted by email.", ()),
    ],
)
def test_state_statements(text, states):
    assert extract_states(text) == states


def test_supersession_rule():
    assert supersedes(["refund:approved"], ["refund:pending"])
    assert not supersedes(["refund:approved"], ["refund:approved"])  # a restatement
    assert not supersedes(["refund:approved"], ["replacement:shipped"])  # another topic
    # The older memory also states something the newer one does not: still current.
    assert not supersedes(["refund:approved"], ["refund:pending", "replacement:shipped"])
    assert supersedes(["refund:approved", "replacement:delivered"], ["refund:pending", "replacement:shipped"])
    assert not supersedes(["refund:approved"], [])


def memory(i: int, content: str, importance: float = 0.5, entities: tuple[Entity, ...] = ()) -> Memory:
    t = NOW - timedelta(minutes=10 - i)
    return Memory(f"m{i}", "bot", content, importance, (), "episodic", {}, t, t, entities=entities)


def test_extractive_summary_picks_key_sentences_outcome_and_identifiers():
    order = Entity("order", "order #48213", "48213")
    memories = [
        memory(0, "Jane says the kettle from order #48213 arrived with a cracked lid.", 0.8, (order,)),
        memory(1, "Lovely chat about the weather. She sent two photos.", 0.2),
        memory(2, "Checked the courier notes.", 0.4),
        memory(3, "Refund approved for order #48213; money back within 5 days.", 0.8, (order,)),
    ]
    found = summarise(memories, np.eye(4, dtype=np.float32))
    assert found.outcome == "Refund approved for order #48213; money back within 5 days."
    assert found.key_sentences[0] == "Jane says the kettle from order #48213 arrived with a cracked lid."
    assert "weather" not in found.text and found.text.endswith("Mentioned: order #48213.")
    assert found.orders == ("48213",) and found.importance == 0.8
    assert found.source_ids == ("m0", "m1", "m2", "m3")
    assert summarise(memories[:1]) is None


def test_near_duplicate_identity_keeps_ids_numbers_and_negation_apart():
    o1, o2 = Entity("order", "#48213", "48213"), Entity("order", "#48231", "48231")
    assert identity("Refund approved for #48213.", (o1,)) == identity("Refund approved, #48213", (o1,))
    assert identity("Refund approved for #48213.", (o1,)) != identity("Refund approved for #48231.", (o2,))
    assert identity("Neighbour at number 12", ()) != identity("Neighbour at number 14", ())
    # A number elsewhere in the text does not stand in for a changed one (sets would collide).
    assert identity("Batch 3f0 item 0 for writer 0", ()) != identity("Batch 3f0 item 3 for writer 0", ())
    assert identity("2 boxes, 5 left", ()) == identity("5 left, 2 boxes", ())
    assert identity("Wants a refund", ()) != identity("Does not want a refund", ())


def test_codes_that_differ_only_in_letters_are_not_the_same_fact():
    # Random codes whose digits happen to agree (1, 09, 7 in both): numbers alone would
    # call these duplicates, and their embeddings are ~0.98 alike.
    a = "Batch tokbcc1cc09f7 item 2: the parcel for writer 1 was rerouted"
    b = "Batch tokfa1ed09b7c item 2: the parcel for writer 1 was rerouted"
    assert identity(a, ()) != identity(b, ())
    assert identity(a, ()) == identity(a.replace("Batch", "batch"), ())
    assert identity("Code AB12 sent", ()) == identity("code ab12 sent", ())
    w1, w2 = Entity("identifier", "W1588712", "w1588712"), Entity("identifier", "W1588713", "w1588713")
    assert identity("Parcel W1588712 left the depot", (w1,)) != identity("Parcel W1588713 left the depot", (w2,))


def cand(i: str, semantic: float, superseded_by: str | None = None, age_days: float = 1) -> Candidate:
    return Candidate(i, semantic, 0.0, 0.0, 0.5, NOW - timedelta(days=age_days), superseded_by=superseded_by)


def test_superseded_memories_rank_below_their_successor():
    config = RecallConfig(superseded_penalty=0.9)
    ranked = rank([cand("old", 0.95, superseded_by="new"), cand("new", 0.5), cand("other", 0.6)],
                  now=NOW, config=config, top_k=3)
    ids = [r.memory_id for r in ranked]
    assert ids.index("new") < ids.index("old")
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    assert "superseded by a newer memory" in ranked[ids.index("old")].why


def test_masking_removes_what_the_graph_resolved():
    query = "Which language should we use with Jane Doe? See order #4521 and T-77."
    o, t = query.index("order #4521"), query.index("T-77")
    mentions = [Mention("order", "4521", o, o + len("order #4521")), Mention("ticket", "T-77", t, t + 4)]
    resolved = NodeRefs(customers=("jane-doe",), orders=("4521",))
    assert masked(query, resolved, mentions) == "Which language should we use with ? See and T-77."
    assert masked("Jane Doe's orders", NodeRefs(customers=("jane-doe",)), []) == "orders"
    assert masked("Jane Doe", NodeRefs(customers=("jane-doe",)), []) == ""
    assert masked("Jane Doe", NodeRefs(), []) == "Jane Doe"


@pytest.mark.parametrize(
    ("query", "asks"),
    [
        ("other tickets about the same order as T-1042", True),
        ("what else has the customer on T-1042 contacted us about?", True),
        ("besides T-1042, any complaints?", True),
        ("any other news on order 4521?", False),
        ("did we send another kettle for order 4521?", False),
    ],
)
def test_questions_asking_past_the_named_ticket(query, asks):
    from casegraph.domain.recall_sources import asks_for_others

    assert asks_for_others(query) is asks
