"""The query-vector cache of the embedding runtimes (app/embedding/query_cache.py)."""

from __future__ import annotations

import numpy as np
import pytest
from casegraph.embedding.query_cache import QueryVectorCache


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> np.ndarray:
        self.calls.append(text)
        return np.full(3, float(len(self.calls)), dtype=np.float32)


def test_a_repeat_is_answered_from_the_cache_with_the_same_read_only_vector():
    cache, embed = QueryVectorCache(4), Counting()
    first = cache.get("where is my parcel?", embed)
    assert cache.get("where is my parcel?", embed) is first
    assert embed.calls == ["where is my parcel?"]
    with pytest.raises(ValueError):
        first[0] = 9.0  # shared by every caller


def test_the_least_recently_used_text_is_dropped_first():
    cache, embed = QueryVectorCache(2), Counting()
    cache.get("a", embed)
    cache.get("b", embed)
    cache.get("a", embed)  # "b" is now the oldest
    cache.get("c", embed)
    assert len(cache) == 2
    cache.get("a", embed)
    cache.get("b", embed)
    assert embed.calls == ["a", "b", "c", "b"]


def test_clear_forgets_every_vector():
    cache, embed = QueryVectorCache(), Counting()
    cache.get("a", embed)
    cache.clear()
    assert len(cache) == 0
    cache.get("a", embed)
    assert embed.calls == ["a", "a"]
