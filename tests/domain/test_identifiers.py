"""Identifiers by shape (extractors/identifiers.py): what is an id, its key, its typed kind,
and a recall that names one finds the memories that name it first (real Services)."""

from __future__ import annotations

import re

import pytest
from casegraph.domain import query_text
from casegraph.domain.models import StoreRequest as R
from casegraph.extractors import (
    IDENTIFIER,
    EntityExtractor,
    ExtractedEntity,
    find_rule_entities,
    identifier_key,
    split_handle,
)
from casegraph.storage.search import vector_key
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

HYPO = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def ids(text: str) -> list[tuple[str, str]]:
    """(key, typed kind) of every identifier the rules find in ``text``."""
    return [(e.key, e.id_kind) for e in find_rule_entities(text) if e.kind == IDENTIFIER]


# --- examples from real support chats ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("what happened with order #W1588712?", [("w1588712", "order")]),
        ("Order **W1588712** was delivered.", [("w1588712", "order")]),
        ('I ordered "W1588712".', [("w1588712", IDENTIFIER)]),
        ("_W1588712_ and `M20IZO`", [("w1588712", IDENTIFIER), ("m20izo", IDENTIFIER)]),
        ("status of reservation M20IZO?", [("m20izo", "reservation")]),
        ("my booking reference is: QXKZTB", [("qxkztb", "booking")]),  # letters only, but named
        ("I'm firstname_lastname_6699, hi", [("firstname_lastname_6699", "account")]),
        ("username jane_doe please", [("jane_doe", "account")]),
        ("RMA-12345, INC0012345 and SKU-4431-B", [("rma-12345", "return"), ("inc0012345", "ticket"),
                                                  ("sku-4431-b", "product")]),
        ("flight AA123 is delayed", [("aa123", IDENTIFIER)]),
        ("Amazon order 112-3456789-1234567", [("112-3456789-1234567", "order")]),
        ("device 3fa85f64-5717-4562-b3fc-2c963f66afa6", [("3fa85f64-5717-4562-b3fc-2c963f66afa6", "product")]),
        ("account number 88123456", [("88123456", "account")]),  # digits need a word...
        ("ref 123456789 ok", [("123456789", IDENTIFIER)]),  # ...unless there are 9+
        ("see https://shop.example.com/orders/W1588712 now", [("w1588712", IDENTIFIER)]),
        ("ticket #A12 again", [("a12", "ticket")]),
        ("case x12y.3456 and request 12/AB34", [("x12y.3456", "ticket"), ("12/ab34", "ticket")]),
        ("Invoice INV/2023-24/0012 is paid", [("inv/2023-24/0012", "invoice")]),
    ],
)
def test_identifier_examples(text: str, found: list[tuple[str, str]]) -> None:
    assert ids(text) == found
    for e in find_rule_entities(text):
        assert text[e.start : e.end] == e.value and identifier_key(e.value) == e.key or e.kind != IDENTIFIER


@pytest.mark.parametrize(
    "text",
    [
        "2 items in the box, item #1 and #12",
        "it cost $19.99 or 19.99 EUR, USD100 with tax, 1,234,567 in total",
        "delivered on 2024-01-15 or 15/01/2024 or 15jan2024, Q3-2024, FY2025",
        "call at 10:30, 10am, 5pm or 14h",
        "update to v2, v2.3.1, version 1.2.3 or iOS 17",
        "16GB, 100mg, 1920x1080, 4K, 3rd floor, 24h, 30-day returns, 12months, 2-factor",
        "COVID-19 and mid-2024, the iPhone15, Windows11, MP3, B2B, H2O",
        "plain words, URGENT caps and snake_case_names",
        "report_2024.pdf, v1.2.3-beta4, x@y.example.com, jane_doe_84@example.com",
        "3.5mm jack, 192.168.1.100, 24/7 support, 1/2 price, 12/05/2024, and/or, USD1.10",
        "a 30-day window and 365-day returns; page_2 of step_3",
    ],
)
def test_not_identifiers(text: str) -> None:
    assert ids(text) == []


def test_order_and_ticket_keep_their_nodes() -> None:
    ents = find_rule_entities("order #4521, ORD-88213, T-1042 and order W1588712")
    assert [(e.kind, e.key) for e in ents] == [
        ("order", "4521"), ("order", "88213"), ("ticket", "T-1042"), (IDENTIFIER, "w1588712")
    ]


def test_tracking_numbers_are_also_identifiers() -> None:
    ents = find_rule_entities("tracking number is 9400 1118 9922 3817 22; UPS 1Z999AA10123456784")
    assert [(e.kind, e.key, e.id_kind) for e in ents] == [
        ("tracking", "940011189922381722", ""),
        (IDENTIFIER, "940011189922381722", "tracking"),
        ("tracking", "1Z999AA10123456784", ""),
        (IDENTIFIER, "1z999aa10123456784", "tracking"),
    ]
    assert ents[1].value == "9400 1118 9922 3817 22"
    # The bare number meets the same identifier.
    assert ids("where is 1Z999AA10123456784?") == [("1z999aa10123456784", "tracking")]


def test_split_handle() -> None:
    assert split_handle("firstname_lastname_6699") == ["firstname", "lastname"]
    assert split_handle("**Jane-Doe-42**") == ["jane", "doe"]
    assert split_handle("jane.doe") == ["jane", "doe"]
    assert split_handle("jdoe_1984") == [] and split_handle("W1588712") == [] and split_handle("x_9y") == []


def test_extractor_types_the_first_mention_from_a_later_one(extractor: EntityExtractor) -> None:
    ents = extractor.extract("W1588712 is late. Is order W1588712 lost? Jane Doe asked.")
    found = [e for e in ents if e.kind == IDENTIFIER]
    assert [(e.value, e.key, e.id_kind, e.start) for e in found] == [("W1588712", "w1588712", "order", 0)]
    assert ("person", "jane doe") in {(e.kind, e.key) for e in ents}


def test_query_names_the_same_node_whatever_the_words() -> None:
    def entities(q: str) -> set[tuple[str, str]]:
        return set(query_text.rule_refs(q).entities)

    for q in ("what happened with order #W1588712?", "W1588712", "**w1588712** status", "booking W1588712"):
        assert (IDENTIFIER, "w1588712") in entities(q)
    # A digits-only id: an Order node for "order 123456", an identifier for "booking 123456".
    assert query_text.rule_refs("booking 123456").orders == ("123456",)
    assert (IDENTIFIER, "123456") in entities("order 123456")
    # A tracking number stored before identifiers existed has only its tracking node.
    assert ("tracking", "1Z999AA10123456784") in entities("where is 1z999aa10123456784")


# --- properties: formats no rule names --------------------------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Prefixes other rules or shapes own: T-/ORD- numbers, versions, quarters, sizes, and
# currency codes (USD12345 is an amount).
_RESERVED = {"t", "ord", "order", "v", "tkt", "case", "ticket", "q", "fy", "x", "h"}
_RESERVED |= set("usd eur gbp cad aud nzd jpy cny inr chf sek nok dkk rs rp idr brl mxn zar sgd hkd aed sar pln try".split())


def _cased(draw: st.DrawFn, s: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c for c in s)


# The words the extractor reads as "number" between a kind word and an id ("order no. 4521",
# "reservation is M20IZO").
FILLER_WORDS = frozenset("number num no nos nr id ids code ref reference locator name is was".split())


@st.composite
def id_tokens(draw: st.DrawFn) -> str:
    """An identifier in one of many shapes, with random prefixes, separators, lengths, case."""
    letters = st.text(_LETTERS, min_size=1, max_size=5)
    digits = lambda lo, hi: st.text("0123456789", min_size=lo, max_size=hi)  # noqa: E731
    shape = draw(st.sampled_from(
        ["prefix_digits", "caps_mix", "hash_mix", "handle", "caps_dash", "hex", "long", "dotted", "slashed"]
    ))
    if shape == "dotted":  # x12y.3456, AB.004411, k9.77.1234
        head = draw(st.text(_LETTERS + "0123456789", min_size=2, max_size=6))
        # Not a word that introduces an id after a kind word ("account is.00000" reads as
        # "account is 00000", like "account no.00000").
        assume(any(c.isalpha() for c in head) and head.casefold() not in FILLER_WORDS)
        assume(not re.fullmatch(r"v?[0-9]+", head) and head not in _RESERVED)
        tok = _cased(draw, head) + "." + draw(digits(3, 8))
        assume(sum(c.isdigit() for c in tok) >= 5)  # like a - join: fewer need a kind word
        return tok
    if shape == "slashed":  # INV/2023/0012, 12/AB34, DE/2024-25/0042
        caps = st.text("ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=2, max_size=4)
        parts = draw(st.lists(st.one_of(caps, digits(2, 6), caps.map(lambda c: c + draw(digits(1, 4)))),
                              min_size=2, max_size=4))
        tok = "/".join(parts)
        assume(any(c.isalpha() for c in tok) and sum(c.isdigit() for c in tok) >= 3)
        return tok
    if shape == "prefix_digits":  # W1588712, inc_0012345, ab-99887, x9876543z
        prefix = draw(letters)
        assume(prefix not in _RESERVED)
        sep = draw(st.sampled_from(["", "", "-", "_"]))
        tail = draw(st.sampled_from(["", draw(letters)]))
        return _cased(draw, prefix) + sep + draw(digits(5, 12)) + tail
    if shape == "caps_mix":  # M20IZO, 4ZK9QW, AB12CD34: 6+ upper-case letters and digits
        tok = draw(st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=6, max_size=10))
        assume(any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok))
        # Not a size (1920X1080), nor a UPS number (its own rule), nor 1-4 digits and a unit (2000MG).
        assume(not re.fullmatch(r"[0-9]{2,5}X[0-9]{2,5}|1Z.*|[0-9]{1,5}[A-Z]{1,3}", tok))
        return tok
    if shape == "hash_mix":  # #A12, #x9k2
        tok = draw(st.text(_LETTERS + "0123456789", min_size=3, max_size=10))
        assume(any(c.isdigit() for c in tok) and tok[0].isalpha())
        return "#" + _cased(draw, tok)
    if shape == "handle":  # firstname_lastname_6699, jdoe_1984
        words = draw(st.lists(st.text(_LETTERS, min_size=2, max_size=9), min_size=1, max_size=3))
        return "_".join(words) + "_" + draw(digits(3 if len(words) < 2 else 1, 6))
    if shape == "caps_dash":  # RMA-12345, ZX-004411-B
        prefix = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=5))
        assume(prefix.lower() not in _RESERVED)
        suffix = draw(st.sampled_from(["", "-" + draw(st.text("ABCDEFGH0123456789", min_size=1, max_size=3))]))
        return prefix + draw(st.sampled_from(["-", "_"])) + draw(digits(3, 10)) + suffix
    if shape == "hex":  # UUIDs and hashes
        groups = draw(st.lists(st.text("0123456789abcdef", min_size=4, max_size=12), min_size=1, max_size=5))
        tok = "-".join(groups)
        assume(sum(c.isdigit() for c in tok) >= 5 and any(c.isalpha() for c in tok))
        return tok
    tok = draw(digits(9, 20))
    assume(not tok.startswith("0"))
    return tok


WRAPS = ["{}", "**{}**", '"{}"', "'{}'", "`{}`", "({})", "[{}]", "_{}_", "*{}*", "<{}>"]
AFTER = ["", ".", ",", "?", "!", ":", ";", "...", "'s"]
SENTENCES = [
    "what happened with {}",
    "Hi, {} never arrived",
    "Re: {} - please check",
    "the code {} does not work",
    "{} was refunded yesterday",
    "I have a question about {} and the refund",
    "user: hello\nassistant: I found {}",
]
KIND_WORDS = {
    "order": "order", "reservation": "reservation", "booking": "booking", "account": "account",
    "tracking": "tracking number", "ticket": "incident", "invoice": "invoice", "return": "RMA",
}


def _sentence(draw: st.DrawFn, token: str, kind_word: str = "", hash_ok: bool = True) -> tuple[str, str]:
    written = draw(st.sampled_from(WRAPS)).format(token) + draw(st.sampled_from(AFTER))
    if kind_word:
        fillers = ["", "no. ", ": ", "is "] + (["#"] if hash_ok and not token.startswith("#") else [])
        written = f"{kind_word} {draw(st.sampled_from(fillers))}{written}"
    return draw(st.sampled_from(SENTENCES)).format(written), written


def _key_of(token: str) -> str:
    return token.lstrip("#").casefold()


@given(data=st.data(), token=id_tokens())
@HYPO
def test_any_shaped_id_is_extracted_with_its_key(data: st.DataObject, token: str) -> None:
    text, _ = _sentence(data.draw, token)
    found = [e for e in find_rule_entities(text) if e.kind == IDENTIFIER]
    assert [e.key for e in found] == [_key_of(token)], text
    assert text[found[0].start : found[0].end] == found[0].value
    assert identifier_key(found[0].value) == _key_of(token)


@given(data=st.data(), token=id_tokens(), kind=st.sampled_from(sorted(KIND_WORDS)))
@HYPO
def test_the_word_before_gives_the_kind_not_the_key(data: st.DataObject, token: str, kind: str) -> None:
    assume(not (kind == "order" and token.isdigit()))  # "order 123456789" is an Order node
    text, written = _sentence(data.draw, token, KIND_WORDS[kind])
    found = [(e.key, e.id_kind) for e in find_rule_entities(text) if e.kind == IDENTIFIER]
    if token.isdigit() and f"#{token}" in written:  # "#123456789" is an order number
        assert query_text.rule_refs(text).orders == (token,)
    else:
        assert found == [(_key_of(token), kind)], text
    # Named or not, the query meets the same identifier node.
    bare = query_text.rule_refs(f"what about {token}?").entities
    assert (IDENTIFIER, _key_of(token)) in set(query_text.rule_refs(text).entities) & set(bare)


@st.composite
def not_ids(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["word", "number", "hash", "price", "date", "time", "version", "unit", "caps"]))
    n = lambda lo, hi: str(draw(st.integers(lo, hi)))  # noqa: E731
    if kind == "word":
        return draw(st.sampled_from(["", "-", "_"])).join(
            draw(st.lists(st.text(_LETTERS, min_size=1, max_size=12), min_size=1, max_size=3))
        )
    if kind == "number":
        return n(0, 99_999_999)
    if kind == "hash":
        return "#" + n(0, 99)
    if kind == "price":
        cents = draw(st.sampled_from(["", "." + n(10, 99)]))
        return draw(st.sampled_from(["${}", "£{}", "€{}", "{} USD", "USD{}", "{}eur", "{}"])).format(
            f"{draw(st.integers(1, 99_999)):,}" + cents
        )
    if kind == "date":
        y, m, d = n(1990, 2030), f"{draw(st.integers(1, 12)):02}", f"{draw(st.integers(1, 28)):02}"
        mon = draw(st.sampled_from(["jan", "Feb", "MAR", "april", "Sept", "december"]))
        return draw(st.sampled_from([f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}", f"{d}{mon}{y}",
                                     f"{mon}{d}", f"{mon}-{y}", f"Q{n(1, 4)}-{y}", f"FY{y}", f"{m}-{d}"]))
    if kind == "time":
        return draw(st.sampled_from([f"{n(1, 12)}am", f"{n(1, 12)}PM", f"{n(0, 23)}:{n(10, 59)}", f"{n(1, 48)}h"]))
    if kind == "version":
        return draw(st.sampled_from([f"v{n(0, 99)}", f"V{n(0, 20)}.{n(0, 9)}", f"{n(0, 9)}.{n(0, 20)}.{n(0, 9)}"]))
    if kind == "unit":
        unit = draw(st.sampled_from(["GB", "mb", "mg", "kg", "ml", "p", "th", "st", "x", "days", "months"]))
        return draw(st.sampled_from([f"{n(1, 2000)}{unit}", f"{n(1, 365)}-day", f"{n(2, 4096)}x{n(2, 4096)}"]))
    return draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12))  # shouting, no kind word


@given(data=st.data(), token=not_ids())
@HYPO
def test_plain_words_numbers_prices_dates_are_not_ids(data: st.DataObject, token: str) -> None:
    text, _ = _sentence(data.draw, token)
    assert ids(text) == [], text


@given(data=st.data(), token=not_ids())
@HYPO
def test_short_and_dated_tokens_stay_plain_after_a_kind_word(data: st.DataObject, token: str) -> None:
    # A kind word lets all-caps words, 5+ digits and short mixes through, nothing else.
    assume(not token.isupper() and not (token.isdigit() and len(token) >= 5) and not token.isalpha())
    assume("_" not in token)
    text, _ = _sentence(data.draw, token, "reservation", hash_ok=False)  # "#v10" is an id
    assert ids(text) == [], text


@given(text=st.lists(st.sampled_from([*"aZ9#_-*. \"'@$", "W1588712", "order ", "\n"]), max_size=200).map("".join))
@HYPO
def test_identifier_soup_keeps_offsets_and_keys(text: str) -> None:
    for e in find_rule_entities(text):
        assert 0 <= e.start < e.end <= len(text) and text[e.start : e.end] == e.value
        if e.kind == IDENTIFIER:
            assert e.key == identifier_key(e.value) or e.id_kind == "tracking"
            assert e.key == e.key.casefold() and not e.key.startswith("#")


def test_hostile_input_is_linear() -> None:
    # Each would take seconds (or forever) with a backtracking token pattern; this only
    # checks that they finish and find what they should.
    assert len(ids("a_" * 20_000 + "1")) == 0  # longer than any id
    assert len(ids(("W1588712 " * 5_000).strip())) == 5_000
    assert ids("order " + " " * 10_000 + "W1588712") == [("w1588712", IDENTIFIER)]
    assert ids("-" * 10_000 + "é" + "9" * 50) == []


def test_public_entity_shape() -> None:
    e = ExtractedEntity("order", "#1", "1", 0, 2)
    assert e.id_kind == ""


# --- recall: the memories that name the id come first -----------------------------------------

A = "shop-bot"


def test_recall_by_identifier_ranks_its_memories_first(services) -> None:
    named = {
        "hash": "user: what happened with my order #W1588712? It has not arrived.",
        "bold": "assistant: I can see **W1588712** left our warehouse on Monday.",
        "quoted": 'assistant: The refund for "W1588712". has been issued to your card.',
    }
    booking = {
        "pnr": "user: I need to change reservation M20IZO to Friday.",
        "pnr_done": "assistant: Done, M20IZO now departs on Friday at 9:40.",
    }
    handle = {
        "handle": "user: my account is firstname_lastname_6699",
        "handle_later": "assistant: firstname_lastname_6699 has two open orders.",
    }
    others = {
        "other_order": "user: what happened with my order #W1588713? It has not arrived.",
        "other_order2": "assistant: Order W9921001 left our warehouse on Monday; refund issued to your card.",
        "vague": "user: my order has not arrived and I want a refund",
        "other_pnr": "user: I need to change reservation K7QX2P to Friday.",
        "other_handle": "user: my account is jane_doe_1177",
    }
    stored = {
        name: services.memories.store(R(A, text))
        for name, text in {**named, **booking, **handle, **others}.items()
    }
    names = {m.id: name for name, m in stored.items()}

    def top(query: str, k: int) -> list[str]:
        return [names[h.memory.id] for h in services.recall.recall(A, query, k)]

    assert set(top("what happened with order W1588712?", 3)) == set(named)
    assert set(top("what happened with order #w1588712", 3)) == set(named)
    assert set(top("status of reservation M20IZO", 2)) == set(booking)
    assert set(top("M20IZO", 2)) == set(booking)
    assert set(top("firstname_lastname_6699 history", 2)) == set(handle)
    hit = services.recall.recall(A, "W1588712", 1)[0]
    assert any("W1588712" in why for why in hit.why), hit.why


@pytest.mark.embedded_only  # a Kùzu migration
def test_migration_011_links_memories_stored_before_it(open_services, tmp_path) -> None:
    s = open_services(tmp_path / "d")
    # More mentions than STAGE_MIN_EDGES: the edges are joined in through EdgeStage.
    texts = [f"user: what happened with order #W{1588700 + i}?" for i in range(70)]
    texts += ["assistant: reservation M20IZO is on Friday.", "user: nothing to see here"]
    stored = s.memories.store_batch([R(A, t) for t in texts])
    # As a directory written before 011: no identifier nodes, 011 not recorded.
    with s.graph.transaction() as run:
        run("MATCH (n:Entity) WHERE n.kind = 'identifier' DETACH DELETE n")
        run("MATCH (x:Migration {name: '011_identifiers'}) DELETE x")
    assert s.recall.recall(A, "M20IZO", 1)[0].signals.graph == 0
    s.close()
    s = open_services(tmp_path / "d")
    assert "011_identifiers" in s.graph.applied_migrations
    hit = s.recall.recall(A, "status of reservation M20IZO", 1)[0]
    assert hit.memory.id == stored[70].id and hit.signals.graph == 1.0
    for i in (0, 17, 69):
        assert s.recall.recall(A, f"order W{1588700 + i}", 1)[0].memory.id == stored[i].id
    # Every edge carries its memory's key (005_edge_keys), as a store writes them.
    keys = s.graph.read("MATCH (m:Memory)-[e:MENTIONS]->(n:Entity) WHERE n.kind = 'identifier' RETURN m.id, e.k")
    assert sorted(keys) == sorted([m.id, vector_key(m.id)] for m in stored[:71])


def test_an_order_tag_in_another_format_meets_the_id_in_text(services) -> None:
    tagged = services.memories.store(R(A, "assistant: refund issued, 5-7 days", tags=("order:W1588712",)))
    said = services.memories.store(R(A, "user: where is W1588712?"))
    services.memories.store(R(A, "user: where is my refund for the other order?"))
    hits = services.recall.recall(A, "what happened with order #W1588712", 2)
    assert {h.memory.id for h in hits} == {tagged.id, said.id}
    assert all(h.signals.graph == 1.0 for h in hits)


def test_a_letters_only_code_named_once_is_found_by_its_bare_mention(services) -> None:
    named = services.memories.store(R(A, "user: I need to change reservation HKTGHH to Friday."))
    services.memories.store(R(A, "user: I need to change reservation QWERTZ to Friday."))
    services.memories.store(R(A, "assistant: URGENT: the Friday flights are full."))
    # No kind word in the query: the bare code is looked up, and the node exists.
    hit = services.recall.recall(A, "HKTGHH?", 1)[0]
    assert hit.memory.id == named.id and hit.signals.graph == 1.0
    # A capitalised word no memory named as an id resolves to nothing.
    assert query_text.rule_refs("URGENT: status?").entities == ((IDENTIFIER, "urgent"),)
    assert all(h.signals.graph == 0 for h in services.recall.recall(A, "URGENT: status?", 3))


def test_a_code_repeated_bare_after_it_was_named_links_the_same_node(services) -> None:
    first = services.memories.store(R(A, "user: my reservation is FCFXPE, can I move it?"))
    batch = services.memories.store_batch([
        R(A, 'assistant: The change for "FCFXPE". is confirmed.'),  # named in an earlier store
        R(A, "user: and my booking QWKZTB too"),
        R(A, "assistant: Done, QWKZTB now departs on Friday at 9:40."),  # named in this batch
        R(A, "assistant: PLEASE note the FRIDAY flights are full."),  # caps words no one named
    ])
    assert ("identifier", "fcfxpe") in {(e.kind, e.key) for e in batch[0].entities}
    assert ("identifier", "qwkztb") in {(e.kind, e.key) for e in batch[2].entities}
    assert not any(e.kind == "identifier" for e in batch[3].entities)
    # Both first, though "user: my reservation is FCFXPE..." has cosine <= 0 to the masked
    # query ("what happened with") and so no semantic rank at all.
    hits = services.recall.recall(A, "what happened with FCFXPE", 2)
    assert {h.memory.id for h in hits} == {first.id, batch[0].id}
    assert all(h.signals.graph == 1.0 for h in hits)
    # An update re-extracts the same way.
    updated = services.memories.update(A, batch[3].id, content="assistant: FCFXPE is now on the 9:40.")
    assert ("identifier", "fcfxpe") in {(e.kind, e.key) for e in updated.entities}


def test_tickets_that_share_an_identifier_are_related(services) -> None:
    services.memories.store(R(A, "user: reservation M20IZO was charged twice", ticket_id="T-501"))
    services.memories.store(R(A, "assistant: the refund for M20IZO is on its way", ticket_id="T-502"))
    services.memories.store(R(A, "user: my lamp flickers", ticket_id="T-503"))
    related = services.tickets.related(A, ["T-501"])["T-501"]
    assert [r.ticket_id for r in related] == ["T-502"]
    assert [(x.kind, x.weight) for x in related[0].reasons if x.kind == "identifier"] == [("identifier", 0.7)]


def test_a_session_summary_lists_its_identifiers_and_is_found_by_them(services) -> None:
    session = services.memories.session_start(A)
    for text in (
        "user: my order #W1588712 came without the charger",
        "assistant: sorry! UPS 1Z999AA10123456784 brings the charger tomorrow.",
        "assistant: I also refunded the shipping for W1588712.",
    ):
        services.memories.store(R(A, text, session_id=session.id))
    ended = services.memories.session_end(session.id)
    mentioned = ended.summary.split("Mentioned:")[1]
    assert "#W1588712" in mentioned and mentioned.count("1Z999AA10123456784") == 1
    hits = services.recall.recall(A, "what happened with order W1588712", 5)
    assert any(h.memory.kind == "summary" and h.signals.graph == 1.0 for h in hits)


@given(data=st.data(), token=id_tokens())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_statistical_model_never_takes_an_identifier(
    extractor: EntityExtractor, data: st.DataObject, token: str
) -> None:
    # en_core_web_sm calls codes ORG, MONEY, DATE or PRODUCT; the rules' id wins its span.
    text, _ = _sentence(data.draw, token)
    ents = extractor.extract(text)
    found = [e for e in ents if e.kind == IDENTIFIER]
    assert [e.key for e in found] == [_key_of(token)], text
    assert not any(e.start < found[0].end and found[0].start < e.end for e in ents if e.kind != IDENTIFIER)
