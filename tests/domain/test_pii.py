"""PII at ingest: Luhn-valid card numbers (and configured patterns) are redacted before
anything is extracted, embedded or written."""

from __future__ import annotations

import numpy as np
import pytest
from casegraph.domain.models import StoreRequest
from casegraph.domain.pii import CARD_MARK, PATTERN_MARK, Redactor, luhn_valid

from tests.storage.backends import falkor, graph_rows

VISA = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"paid with {VISA} exp 12/27", f"paid with {CARD_MARK} exp 12/27"),
        ("card 4111-1111-1111-1111.", f"card {CARD_MARK}."),
        ("amex 378282246310005 and mc 5500 0000 0000 0004", f"amex {CARD_MARK} and mc {CARD_MARK}"),
        ("ref 12 4111111111111111", f"ref 12 {CARD_MARK}"),
        ("not Luhn: 4111 1111 1111 1112", "not Luhn: 4111 1111 1111 1112"),
        ("order #4521, phone +1 555 123 4567", "order #4521, phone +1 555 123 4567"),
        ("tracking 1Z999AA10123456784", "tracking 1Z999AA10123456784"),  # glued to letters
        ("twenty digits 12345678901234567890", "twenty digits 12345678901234567890"),
    ],
)
def test_card_numbers_are_redacted_and_nothing_else(text, expected):
    assert Redactor().text(text) == expected


def test_luhn_and_patterns_and_json():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    r = Redactor(patterns=[r"\b\d{3}-\d{2}-\d{4}\b"])
    assert r.text(f"SSN 123-45-6789, card {VISA}") == f"SSN {PATTERN_MARK}, card {CARD_MARK}"
    assert r.json({"note": VISA, "nested": [{"k": "123-45-6789"}], "n": 4111111111111111}) == {
        "note": CARD_MARK, "nested": [{"k": PATTERN_MARK}], "n": 4111111111111111}
    assert Redactor(cards=False).text(VISA) == VISA
    # Linear in the input: a long run of digit groups is not a quadratic trap.
    assert Redactor().text("1 " * 20_000).count("1") == 20_000


def test_a_card_never_reaches_the_graph_the_model_or_the_index(services, embedder):
    s = services.memories.session_start("bot", "jane-doe", {"card": VISA})
    m = services.memories.store(StoreRequest(
        agent_id="bot", content=f"Jane paid order #4521 with card {VISA}; refund pending",
        metadata={"payment": {"card": "4111-1111-1111-1111", "last4": "1111"}}, session_id=s.id,
    ))
    expected = f"Jane paid order #4521 with card {CARD_MARK}; refund pending"
    assert m.content == expected
    stored = services.graph.get_memories("bot", [m.id])[m.id]
    assert stored.content == expected and stored.metadata == {"payment": {"card": CARD_MARK, "last4": "1111"}}
    assert services.graph.get_session(s.id).metadata == {"card": CARD_MARK}
    assert not any("4111" in e.value for e in stored.entities)  # extraction saw the redacted text
    assert ("order", "4521") in {(e.kind, e.key) for e in stored.entities}
    vector = services.graph.embeddings("bot", [m.id])[0]
    assert np.allclose(vector, embedder.embed([expected])[0], atol=1e-5)  # embedded after redaction
    assert services.keywords.search("bot", "4111", 10) == []
    ended = services.memories.session_end(s.id, f"refunded to {VISA}")
    assert ended.summary == f"refunded to {CARD_MARK}"
    # Every property of every node (a FalkorDB node prints without its properties).
    everything = "MATCH (n) RETURN properties(n)" if falkor() else "MATCH (n) RETURN n"
    raw = "\n".join(str(r) for r in graph_rows(services.graph, "bot", everything))
    assert "4111" not in raw


def test_redaction_is_configurable(open_services, tmp_path):
    off = open_services(tmp_path / "off", pii_redaction=False)
    assert off.memories.store(StoreRequest(agent_id="bot", content=f"card {VISA}")).content == f"card {VISA}"
    extra = open_services(tmp_path / "extra", pii_patterns=(r"\bIBAN [A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b",))
    m = extra.memories.store(StoreRequest(agent_id="bot", content=f"IBAN DE44 5001 0517 5407 3249 31 and {VISA}"))
    assert m.content == f"{PATTERN_MARK} and {CARD_MARK}"
