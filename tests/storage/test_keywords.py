"""The keyword index (app/storage/embedded/keywords.py) on real tantivy indexes in tmp_path:
per-agent statistics, deletes, and reconciliation against what the graph holds (the
analyzer: tests/unit/test_terms.py; the same behaviour through the interface on either
engine: test_search_backends.py)."""

from __future__ import annotations

import shutil

import pytest
from casegraph.storage.embedded.keywords import KeywordIndex

# The tantivy engine itself; test_search_backends.py checks its behaviour on either engine.
pytestmark = pytest.mark.embedded_only


@pytest.fixture
def index(tmp_path):
    idx = KeywordIndex(tmp_path / "keywords")
    yield idx
    idx.close()


def ids(hits):
    return [memory_id for memory_id, _ in hits]


# -- search -----------------------------------------------------------------------
def test_a_document_is_found_by_the_next_search(index):
    index.add("bot", [("m1", "The kettle arrived cracked"), ("m2", "Refund issued for the toaster")])
    assert ids(index.search("bot", "cracked kettle", 10)) == ["m1"]
    assert ids(index.search("bot", "refunded", 10)) == ["m2"]  # stemmed


def test_ids_names_and_emails_find_each_other(index):
    index.add("bot", [
        ("handle", "user: my account is firstname_lastname_6699"),
        ("names", "user: this is Firstname Lastname speaking"),
        ("order", "assistant: order #W1588712 was refunded"),
        ("mail", "user: reach me at jane.doe@x.com"),
        ("other", "assistant: order W1588713 shipped to Jane Smith"),
    ])
    assert set(ids(index.search("bot", "Firstname Lastname previous interactions", 10))) == {"handle", "names"}
    assert ids(index.search("bot", "firstname_lastname_6699 history", 10))[0] == "handle"
    assert ids(index.search("bot", "what happened with order W1588712?", 10))[0] == "order"
    assert ids(index.search("bot", "#W1588712", 10)) == ["order"]
    assert ids(index.search("bot", "jane.doe@x.com", 10))[0] == "mail"
    assert "mail" in ids(index.search("bot", "jane doe", 10))


def test_digits_are_searchable(index):
    index.add("bot", [("a", "card ending 4242 declined"), ("b", "card ending 1881 declined")])
    assert ids(index.search("bot", "4242", 10)) == ["a"]


def test_best_first_and_limited(index):
    index.add("bot", [("a", "refund asked about the kettle lid handle"), ("b", "refund refund"), ("c", "nothing")])
    hits = index.search("bot", "refund", 10)
    assert ids(hits) == ["b", "a"]
    assert hits[0][1] > hits[1][1] > 0
    assert ids(index.search("bot", "refund", 1)) == ["b"]


def test_stop_words_and_empty_queries_find_nothing(index):
    index.add("bot", [("a", "the kettle")])
    assert index.search("bot", "the", 10) == []
    assert index.search("bot", "  ?! ", 10) == []
    assert index.search("bot", "xylophone", 10) == []
    assert index.search("nobody", "kettle", 10) == []


def test_adding_an_id_again_replaces_its_text(index):
    index.add("bot", [("a", "old kettle text")])
    index.add("bot", [("a", "new toaster text")])
    assert index.search("bot", "kettle", 10) == []
    assert ids(index.search("bot", "toaster", 10)) == ["a"]
    assert index.count("bot") == 1


# -- tenants ----------------------------------------------------------------------
def test_an_agent_never_sees_another_agents_documents(index):
    index.add("a", [("a1", "refund for the parcel")])
    index.add("b", [("b1", "refund for the parcel"), ("b2", "another refund")])
    assert ids(index.search("a", "refund parcel", 10)) == ["a1"]
    assert set(ids(index.search("b", "refund parcel", 10))) == {"b1", "b2"}


def test_another_agents_documents_do_not_move_scores(tmp_path):
    alone = KeywordIndex(tmp_path / "alone")
    shared = KeywordIndex(tmp_path / "shared")
    try:
        docs = [("a1", "refund for the damaged parcel"), ("a2", "parcel arrived late")]
        alone.add("a", docs)
        shared.add("a", docs)
        # Another tenant where "refund" is everywhere: a shared index would lower its weight.
        shared.add("b", [(f"b{i}", "refund refund refund") for i in range(50)])
        assert shared.search("a", "refund parcel", 10) == alone.search("a", "refund parcel", 10)
    finally:
        alone.close()
        shared.close()


# -- deletes ----------------------------------------------------------------------
def test_delete_counts_what_was_held_and_removes_it(index):
    index.add("bot", [("a", "kettle"), ("b", "kettle lid"), ("c", "toaster")])
    assert index.delete("bot", ["a", "b", "zzz"]) == 2
    assert index.search("bot", "kettle", 10) == []
    assert index.delete("bot", ["a"]) == 0
    assert index.delete("nobody", ["a"]) == 0
    assert index.ids("bot") == {"c"}


def test_a_delete_holds_for_another_agent_only_by_its_own_ids(index):
    index.add("a", [("x", "kettle")])
    index.add("b", [("y", "kettle")])
    assert index.delete("b", ["x"]) == 0
    assert ids(index.search("a", "kettle", 10)) == ["x"]


# -- persistence and reconciliation -------------------------------------------------
def test_writes_survive_a_close_and_reopen(tmp_path):
    first = KeywordIndex(tmp_path / "kw")
    first.add("bot", [("a", "kettle")])
    first.close()
    again = KeywordIndex(tmp_path / "kw")
    try:
        assert ids(again.search("bot", "kettle", 10)) == ["a"]
    finally:
        again.close()


def texts_from(store: dict[str, dict[str, str]]):
    def load(agent_id, wanted):
        return [(m, store[agent_id][m]) for m in wanted if m in store[agent_id]]

    return load


def test_reconcile_adds_missing_and_deletes_stray_ids(index):
    index.add("bot", [("kept", "kettle"), ("stray", "kettle stray")])
    graph = {"bot": {"kept": "kettle", "missing": "toaster from the graph"}, "new": {"n1": "blender"}}
    report = index.reconcile({a: set(m) for a, m in graph.items()}, texts_from(graph))
    assert (report.agents, report.added, report.removed) == (2, 2, 1)
    assert index.ids("bot") == {"kept", "missing"}
    assert ids(index.search("bot", "toaster", 10)) == ["missing"]
    assert ids(index.search("new", "blender", 10)) == ["n1"]


def test_reconcile_removes_agents_the_graph_no_longer_has(tmp_path):
    kw = KeywordIndex(tmp_path / "kw")
    kw.add("gone", [("g", "kettle")])
    kw.add("bot", [("a", "kettle")])
    kw.close()
    kw = KeywordIndex(tmp_path / "kw")
    try:
        kw.reconcile({"bot": {"a"}}, texts_from({"bot": {"a": "kettle"}}))
        assert kw.search("gone", "kettle", 10) == []
        assert len([p for p in (tmp_path / "kw").iterdir() if p.is_dir()]) == 1
    finally:
        kw.close()


def test_a_deleted_index_directory_is_rebuilt_at_reconcile(tmp_path):
    graph = {"bot": {"a": "kettle", "b": "toaster"}}
    kw = KeywordIndex(tmp_path / "kw")
    kw.add("bot", list(graph["bot"].items()))
    kw.close()
    shutil.rmtree(tmp_path / "kw")
    kw = KeywordIndex(tmp_path / "kw")
    try:
        report = kw.reconcile({"bot": {"a", "b"}}, texts_from(graph))
        assert report.added == 2
        assert ids(kw.search("bot", "toaster", 10)) == ["b"]
    finally:
        kw.close()


def test_a_corrupt_index_directory_is_rebuilt_at_reconcile(tmp_path):
    graph = {"bot": {"a": "kettle"}}
    kw = KeywordIndex(tmp_path / "kw")
    kw.add("bot", [("a", "kettle")])
    kw.close()
    (agent_dir,) = [p for p in (tmp_path / "kw").iterdir() if p.is_dir()]
    (agent_dir / "meta.json").write_text("{ not json")
    kw = KeywordIndex(tmp_path / "kw")
    try:
        assert kw.reconcile({"bot": {"a"}}, texts_from(graph)).added == 1
        assert ids(kw.search("bot", "kettle", 10)) == ["a"]
    finally:
        kw.close()


def test_indexes_of_another_analyzer_version_are_rebuilt(tmp_path):
    graph = {"bot": {"a": "kettle"}}
    kw = KeywordIndex(tmp_path / "kw")
    kw.add("bot", [("a", "kettle"), ("old", "kettle")])
    kw.close()
    (tmp_path / "kw" / "VERSION").write_text("0\n")
    kw = KeywordIndex(tmp_path / "kw")
    try:
        assert kw.ids("bot") == set()
        report = kw.reconcile({"bot": {"a"}}, texts_from(graph))
        assert (report.added, report.removed) == (1, 0)
        assert kw.ids("bot") == {"a"}
    finally:
        kw.close()


def test_writers_beyond_the_limit_are_committed_and_closed(tmp_path):
    kw = KeywordIndex(tmp_path / "kw", max_writers=2)
    try:
        for n in range(5):
            kw.add(f"agent-{n}", [(f"m{n}", f"kettle number{n}")])
        assert kw.open_writers == 2
        for n in range(5):
            assert ids(kw.search(f"agent-{n}", f"number{n}", 10)) == [f"m{n}"]
    finally:
        kw.close()
    again = KeywordIndex(tmp_path / "kw")
    try:
        assert {n: again.count(f"agent-{n}") for n in range(5)} == dict.fromkeys(range(5), 1)
    finally:
        again.close()


def test_concurrent_writes_and_searches(index):
    import threading

    errors = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                index.add("bot", [(f"w{n}-{i}", f"kettle batch{n} item{i}")])
                assert f"w{n}-{i}" in ids(index.search("bot", f"batch{n} item{i}", 5))
                if i == 9:
                    assert index.delete("bot", [f"w{n}-{i}"]) == 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert index.count("bot") == 4 * 9


# -- writes a search finds before they are committed ---------------------------------
@pytest.fixture
def unflushed(tmp_path):
    idx = KeywordIndex(tmp_path / "kw", flush_delay=3600)  # only a search or flush commits
    yield idx
    idx.close()


def test_a_search_scores_uncommitted_writes_without_committing_them(unflushed):
    unflushed.add("bot", [("old1", "printer jams daily"), ("old2", "router reboots")])
    unflushed.flush()
    unflushed.add("bot", [("new1", "printer jams again and again"), ("new2", "the printer is fine")])
    before_commit = unflushed.search("bot", "printer jams", 10)
    assert unflushed.uncommitted("bot")  # the search did not commit
    unflushed.flush()
    after_commit = unflushed.search("bot", "printer jams", 10)
    assert set(ids(before_commit)) == {"old1", "new1", "new2"}
    assert ids(before_commit)[-1] == "new2"  # one word of two
    # Every document, committed or not, is scored as the commit scores it.
    assert before_commit == after_commit


# The memories of tests/domain/test_hygiene.py's recall, a rewrite and a forget.
HISTORY = [
    ("add", "report", "The kettle from order #48213 arrived with a cracked lid."),
    ("add", "follow", "Refund still not received for the kettle."),
    ("add", "pref", "Prefers to be contacted by email."),
    ("add", "phones", "Headphones from order #48231 stopped charging."),
    ("add", "spare", "A spare kettle lid was sent for order #48213."),
    ("add", "follow", "Refund still not received for the kettle; she asked twice."),
    ("delete", "spare", ""),
    ("add", "late", "The cracked kettle was collected by the courier."),
]
QUERIES = ("cracked kettle", "order 48213", "kettle refund email", "headphones charging", "lid")


def answers(idx):
    return {q: idx.search("bot", q, 10) for q in QUERIES}


def replay(idx, history, *, commit_after: int | None = None):
    for n, (op, memory_id, text) in enumerate(history):
        if op == "add":
            idx.add("bot", [(memory_id, text)])
        else:
            idx.delete("bot", [memory_id])
        if n == commit_after:
            idx.flush()


def test_a_search_does_not_depend_on_when_the_flusher_ran(tmp_path):
    """Whichever writes the flusher committed (none, some, all), every search answers the
    same hits with the same scores, and so does an index built afresh from what is left."""
    seen = []
    for commit_after in (None, *range(len(HISTORY))):
        idx = KeywordIndex(tmp_path / f"kw{commit_after}", flush_delay=3600)
        try:
            replay(idx, HISTORY, commit_after=commit_after)
            seen.append(answers(idx))
            idx.flush()
            assert answers(idx) == seen[-1], commit_after
        finally:
            idx.close()
    assert all(found == seen[0] for found in seen)
    left = {memory_id: text for op, memory_id, text in HISTORY if op == "add"}
    del left["spare"]
    fresh = KeywordIndex(tmp_path / "fresh", flush_delay=3600)
    try:
        fresh.add("bot", sorted(left.items()))
        fresh.flush()
        assert answers(fresh) == seen[0]
    finally:
        fresh.close()
    assert set(ids(seen[0]["cracked kettle"])[:2]) == {"report", "late"}


def test_a_memory_committed_alone_is_not_outscored_by_weaker_uncommitted_ones(unflushed):
    # The flake of test_signals_and_why_explain_each_hit: with the report committed alone,
    # tantivy scored it with the idf of a one-document index, lower than the "kettle" of a
    # memory stored a moment later, which the scan scored with four documents' statistics.
    replay(unflushed, HISTORY[:1])
    unflushed.flush()
    replay(unflushed, HISTORY[1:4])
    hits = unflushed.search("bot", "cracked kettle", 10)
    assert ids(hits) == ["report", "follow"] and hits[0][1] > hits[1][1]


def test_an_uncommitted_rewrite_hides_the_committed_text(unflushed):
    unflushed.add("bot", [("a", "old kettle text")])
    unflushed.flush()
    unflushed.add("bot", [("a", "new toaster text")])
    assert unflushed.search("bot", "kettle", 10) == []
    assert ids(unflushed.search("bot", "toaster", 10)) == ["a"]


def test_a_bulk_load_past_the_scan_limit_is_committed_by_the_search(unflushed, monkeypatch):
    import casegraph.storage.embedded.keywords

    monkeypatch.setattr(casegraph.storage.embedded.keywords, "_PENDING_SCAN_LIMIT", 3)
    unflushed.add("bot", [(f"m{i}", f"kettle number{i}") for i in range(5)])
    assert len(unflushed.search("bot", "kettle", 10)) == 5
    assert not unflushed.uncommitted("bot")


def test_a_rewritten_memory_on_the_first_page_makes_room_for_the_next(unflushed):
    unflushed.add("bot", [("a", "kettle kettle kettle"), ("b", "kettle lid")])
    unflushed.flush()
    unflushed.add("bot", [("a", "toaster")])
    assert ids(unflushed.search("bot", "kettle", 1)) == ["b"]
