"""The keyword index on the real stack: written with each memory, found by the next
recall, rebuilt and corrected from the graph when a data directory opens."""

from __future__ import annotations

import shutil

import pytest
from casegraph.domain.models import StoreRequest
from casegraph.domain.ranking import PRESETS

BOT = "bot"
HANDLE_TEXT = "user: hi, I need to move my booking to next week, my username is mia_garcia_4417"
DISTRACTORS = (
    "assistant: I can see the previous interactions on your account, what would you like to check?",
    "user: can you show me my previous interactions and account history please",
    "assistant: your account history shows two earlier orders",
    "user: I want the history of my last booking",
    "assistant: the account was created last year, here is its history",
    "user: hi, this is Laura Chen, anything new on my refund?",
    "user: my name is Peter Novak and I am asking about my parcel",
    "assistant: thanks Sarah Wilson, I found your account",
    "user: it's Maria Gomez again, anything on my exchange?",
)


def store(services, *texts: str, **kw) -> list[str]:
    out = services.memories.store_batch([StoreRequest(agent_id=BOT, content=t, **kw) for t in texts])
    return [m.id for m in out]


def keyword_ids(services, query: str) -> list[str]:
    return [i for i, _ in services.keywords.search(BOT, query, 10)]


def test_a_name_inside_a_handle_that_embeddings_miss_is_found_by_its_keywords(services):
    (handle,) = store(services, HANDLE_TEXT)
    store(services, *DISTRACTORS)
    # The customer's name is said only inside the handle; no customer node knows it.
    query = "Mia Garcia"
    dense = services.recall.recall(BOT, query, top_k=1, config=PRESETS["dense"])
    assert dense[0].memory.id != handle
    hits = services.recall.recall(BOT, query, top_k=3)
    assert hits[0].memory.id == handle
    assert hits[0].signals.keyword == 1.0
    assert keyword_ids(services, "Mia Garcia")[0] == handle
    # The handle itself finds it too (by its keywords, or the graph when an identifier).
    assert services.recall.recall(BOT, "mia_garcia_4417 history", top_k=1)[0].memory.id == handle


def test_an_update_replaces_the_indexed_text(services):
    (m,) = store(services, "the kettle leaks")
    services.memories.update(BOT, m, content="the toaster sparks")
    assert keyword_ids(services, "kettle") == []
    assert keyword_ids(services, "toaster") == [m]


def test_tags_are_indexed(services):
    (m,) = store(services, "asked about a refund", tags=("customer:jane-doe-77",))
    assert keyword_ids(services, "jane-doe-77") == [m]


@pytest.mark.embedded_only  # the tantivy directory (FalkorDB: the text is on the memory's node)
def test_a_deleted_keyword_directory_is_rebuilt_when_the_data_opens(open_services, tmp_path):
    services = open_services(tmp_path / "data")
    ids = store(services, "the kettle leaks", "order #W1588712 was refunded")
    services.close()
    shutil.rmtree(tmp_path / "data" / "keywords")
    reopened = open_services(tmp_path / "data")
    assert keyword_ids(reopened, "W1588712") == [ids[1]]
    assert reopened.keywords.ids(BOT) == set(ids)


@pytest.mark.embedded_only  # the tantivy directory (FalkorDB: the text is on the memory's node)
def test_a_stale_keyword_directory_is_corrected_when_the_data_opens(open_services, tmp_path):
    services = open_services(tmp_path / "data")
    ids = store(services, "the kettle leaks", "the kettle whistles")
    services.close()
    shutil.copytree(tmp_path / "data" / "keywords", tmp_path / "old-keywords")
    services = open_services(tmp_path / "data")
    services.memories.forget(BOT, ids[0])
    (later,) = store(services, "a later kettle")
    services.close()
    # As if the index had been left behind by a crash: it holds the forgotten memory and
    # lacks the later one.
    shutil.rmtree(tmp_path / "data" / "keywords")
    shutil.copytree(tmp_path / "old-keywords", tmp_path / "data" / "keywords")
    reopened = open_services(tmp_path / "data")
    assert reopened.keywords.ids(BOT) == {ids[1], later}
    assert set(keyword_ids(reopened, "kettle")) == {ids[1], later}


@pytest.mark.embedded_only  # the tantivy directory (FalkorDB: the text is on the memory's node)
def test_a_crash_image_taken_before_the_keyword_commit_opens_with_every_memory(open_services, tmp_path):
    services = open_services(tmp_path / "data")
    services.keywords.flush_delay = 3600  # the flusher will not commit before the image
    ids = store(services, "the kettle leaks", "order #W1588712 was refunded")
    crash = tmp_path / "crash-image"
    # tantivy's temporary files (".tmp...") come and go while the image is copied; none is
    # part of a commit, so an image may or may not hold one: leave them out.
    shutil.copytree(tmp_path / "data", crash, ignore=shutil.ignore_patterns(".casegraph.lock", ".tmp*"))
    recovered = open_services(crash)
    assert recovered.keywords.ids(BOT) == set(ids)
    assert keyword_ids(recovered, "#W1588712") == [ids[1]]
