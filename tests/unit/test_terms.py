"""The analyzer both engines' keyword search share (app/storage/terms.py), and the text and
queries the FalkorDB engine gives RediSearch from it (app/storage/falkor/keywords.py)."""

from __future__ import annotations

from casegraph.storage.falkor.keywords import keyword_document, keyword_query, memory_document
from casegraph.storage.search import document_text
from casegraph.storage.terms import terms


# -- terms ----------------------------------------------------------------------
def test_a_handle_is_kept_whole_joined_and_split():
    found = terms("Account firstname_lastname_6699 was locked")
    assert {"firstname_lastname_6699", "firstnamelastname6699", "firstname", "lastname", "6699"} <= set(found)
    assert "account" in found and "locked" in found


def test_an_order_id_loses_its_hash_and_markup_but_keeps_its_digits():
    assert terms("order #W1588712.") == ["order", "w1588712"]
    assert terms("**W1588712**") == ["w1588712"]
    assert terms("'M20IZO'") == ["m20izo"]


def test_an_email_is_whole_and_in_parts():
    found = terms("write to Jane.Doe@x.com, please")
    assert {"jane.doe@x.com", "jane", "doe", "x", "com"} <= set(found)


def test_a_ticket_id_with_a_dash_matches_its_joined_spelling():
    assert {"t-1042", "t1042", "1042"} <= set(terms("ticket T-1042"))


def test_separators_end_tokens():
    assert terms("customer:jane-doe-12 (refund)") == [
        "customer", "jane", "doe", "12", "jane-doe-12", "janedoe12", "refund",
    ]


def test_document_text_holds_content_and_tags():
    assert document_text("Kettle leaks", ["customer:c-7", "support"]) == "Kettle leaks customer:c-7 support"


# -- what RediSearch is given -------------------------------------------------------
def test_the_document_holds_the_terms_escaped_without_stop_words():
    assert keyword_document("The order #W1588712 is late") == "order w1588712 late"
    assert keyword_document("mail Jane.Doe@x.com") == r"mail jane doe x com jane\.doe\@x\.com janedoexcom"
    assert memory_document("kettle", ["customer:c-7"]) == keyword_document("kettle customer:c-7")


def test_a_query_ors_its_escaped_terms_once_each():
    assert keyword_query("T-1042 and t-1042") == r"1042 | t\-1042 | t1042"  # "t" is a stop word
    assert keyword_query("jane_doe_6699") == r"jane | doe | 6699 | jane\_doe\_6699 | janedoe6699"


def test_query_syntax_in_user_text_is_only_text():
    # RediSearch reads - ~ % * @ { } ( ) | " as syntax: what survives the analyzer is escaped.
    assert keyword_query('-foo ~opt %fuzzy% x* @field:val {tag} (a|b) "q"') == (
        "foo | opt | fuzzy | x | field | val | tag | b | q"
    )
    assert keyword_query("a-b*c") == r"b | c | a\-b\*c | abc"


def test_a_query_of_stop_words_or_punctuation_is_none():
    assert keyword_query("what is it") is None
    assert keyword_query("@#$%^&*()") is None
    assert keyword_query("") is None
