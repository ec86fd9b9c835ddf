"""Regression: every memory of a storeBatch gets its own full-text entry, and any of them
can be forgotten. (Kùzu 0.11.3 gave all rows of one UNWIND ... CREATE the first row's
text in its FTS index, and deleting such a row crashed the process.)"""

from __future__ import annotations

from casegraph.domain.models import StoreRequest


def test_each_batch_member_is_keyword_searchable_and_forgettable(services):
    words = ("aubergine", "bergamot", "cardamom", "dragonfruit")
    stored = services.memories.store_batch(
        [StoreRequest(agent_id="bot", content=f"The customer asked about {w} delivery") for w in words]
    )
    for word, memory in zip(words, stored, strict=True):
        assert [i for i, _ in services.keywords.search("bot", word, 10)] == [memory.id]
    assert services.memories.forget("bot", stored[1].id)
    assert services.memories.forget("bot", stored[3].id)
    assert services.keywords.search("bot", "bergamot", 10) == []
    assert [i for i, _ in services.keywords.search("bot", "cardamom", 10)] == [stored[2].id]
    assert services.graph.count_memories("bot") == 2
