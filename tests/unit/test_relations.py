"""Pure relation scoring and strongest-path search (no database)."""

from __future__ import annotations

import pytest
from casegraph.domain.explore import parse_node_ref
from casegraph.domain.relations import Evidence, noisy_or, relate, strongest_paths
from casegraph.domain.ticket_models import NodeRef, Reason, Relation
from casegraph.errors import InvalidInput


def test_reason_weights_add_up_as_a_noisy_or():
    assert noisy_or([]) == 0.0
    assert noisy_or([0.8]) == 0.8
    assert noisy_or([0.8, 0.5]) == 0.9
    assert noisy_or([1.0, 0.3]) == 1.0
    assert noisy_or([0.4, 0.4]) == 0.64


def test_relate_lists_every_reason_with_its_weight():
    ev = Evidence(orders={"4521"}, customers={"jane-doe"}, similarity=0.7)
    ev.entities[("product", "aquapure 300")] = "AquaPure 300"
    ev.entities[("money", "$20")] = "$20"  # never a reason
    rel = relate("T-1", "T-2", ev, similarity_threshold=0.55)
    assert [r.text for r in rel.reasons] == [
        "shared order #4521", "same customer jane-doe", "shared product AquaPure 300", "similar wording (0.70)",
    ]
    assert [r.weight for r in rel.reasons] == [0.8, 0.5, 0.4, 0.35]
    assert rel.weight == noisy_or([0.8, 0.5, 0.4, 0.35]) == 0.961


def test_relate_needs_a_reason():
    assert relate("T-1", "T-2", Evidence(similarity=0.5), similarity_threshold=0.55) is None
    assert relate("T-1", "T-2", Evidence(), similarity_threshold=0.55) is None
    rel = relate("T-1", "T-2", Evidence(mentioned_together=True), similarity_threshold=0.55)
    assert rel.weight == 0.9 and rel.reasons[0].kind == "mention"


def _edges(*triples):
    rels = [Relation(a, b, w, (Reason("order", f"{a}-{b}", w),)) for a, b, w in triples]

    def load(frontier):
        out = {}
        for r in rels:
            for end in (r.a, r.b):
                if end in frontier:
                    out.setdefault(end, []).append(r)
        return out

    return load


def test_strongest_paths_prefers_the_strongest_route_and_counts_round_trips():
    calls = []
    load = _edges(("A", "B", 0.9), ("B", "C", 0.9), ("A", "C", 0.3), ("C", "D", 0.5), ("X", "Y", 1.0))

    def counted(frontier):
        calls.append(set(frontier))
        return load(frontier)

    found = strongest_paths(["A", "X"], depth=2, min_weight=0.0, load=counted)
    a = {r.ticket_id: r for r in found["A"]}
    assert [r.ticket_id for r in found["A"]] == ["B", "C", "D"]
    assert a["C"].weight == 0.81 and a["C"].hops == 2 and a["C"].via == ("B",)  # beats the direct 0.3
    assert [r.text for r in a["C"].reasons] == ["via B", "B-C"]
    assert a["D"].weight == 0.15 and a["D"].via == ("C",)  # found at hop 2 through the direct edge
    assert [(r.ticket_id, r.hops, r.via) for r in found["X"]] == [("Y", 1, ())]
    assert len(calls) == 2  # one load per hop for both sources together


def test_strongest_paths_respects_min_weight_and_depth():
    load = _edges(("A", "B", 0.9), ("B", "C", 0.5), ("C", "D", 0.9))
    assert [r.ticket_id for r in strongest_paths(["A"], 1, 0.0, load)["A"]] == ["B"]
    assert [r.ticket_id for r in strongest_paths(["A"], 3, 0.0, load)["A"]] == ["B", "C", "D"]
    # 0.9 * 0.5 = 0.45 < 0.5: C is not reached, so neither is D.
    assert [r.ticket_id for r in strongest_paths(["A"], 3, 0.5, load)["A"]] == ["B"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T-1042", NodeRef("ticket", "T-1042")),
        ("ticket:1042", NodeRef("ticket", "T-1042")),
        ("customer:Jane Doe", NodeRef("customer", "jane-doe")),
        ("order:#4521", NodeRef("order", "4521")),
        ("entity:Product:AquaPure  300", NodeRef("entity", "product:aquapure 300")),
        ("entity:tracking:1z999 aa1", NodeRef("entity", "tracking:1Z999AA1")),
        ("memory:0b7c4c3e-1d5b-4f7e-9a51-4c0f3b8c2a11", NodeRef("memory", "0b7c4c3e-1d5b-4f7e-9a51-4c0f3b8c2a11")),
    ],
)
def test_node_references_are_normalised(text, expected):
    assert parse_node_ref(text) == expected


@pytest.mark.parametrize("text", ["", "jane", "order:abc", "entity:product", "memory:not a uuid", "planet:mars"])
def test_bad_node_references_are_refused(text):
    with pytest.raises(InvalidInput) as err:
        parse_node_ref(text)
    assert err.value.code == "INVALID_NODE_REF"
