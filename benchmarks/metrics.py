"""Ranking metrics over graded labels (pure functions).

- ``recall@k``: relevant memories (grade >= 1) in the top k, divided by min(k, number
  relevant) - "capped" recall, so a query with 14 relevant memories can still score 1.0
  when its top 5 are all relevant;
- ``MRR``: 1 / rank of the first relevant memory within the top 10 (0 if none);
- ``nDCG@10``: gains 2^grade - 1, log2 discount, normalised by the ideal ordering.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

METRICS = ("recall@5", "MRR", "nDCG@10")


def recall_at(ranked: Sequence[str], labels: Mapping[str, int], k: int = 5) -> float:
    relevant = {i for i, g in labels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / min(k, len(relevant))


def reciprocal_rank(ranked: Sequence[str], labels: Mapping[str, int], k: int = 10) -> float:
    for position, memory_id in enumerate(ranked[:k], start=1):
        if labels.get(memory_id, 0) > 0:
            return 1.0 / position
    return 0.0


def ndcg(ranked: Sequence[str], labels: Mapping[str, int], k: int = 10) -> float:
    def dcg(grades: Sequence[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:k]))

    ideal = dcg(sorted((g for g in labels.values() if g > 0), reverse=True))
    if ideal == 0:
        return 0.0
    return dcg([labels.get(i, 0) for i in ranked]) / ideal


def score(ranked: Sequence[str], labels: Mapping[str, int]) -> dict[str, float]:
    """All three metrics for one ranked list."""
    return {
        "recall@5": recall_at(ranked, labels, 5),
        "MRR": reciprocal_rank(ranked, labels, 10),
        "nDCG@10": ndcg(ranked, labels, 10),
    }


# Measures of the chat worlds (worlds.py), as the held-out set defines them.
WORLD_METRICS = ("precision@10", "session_recall@10", "outcome@5")


def customer_precision(ranked: Sequence[str], owner: Mapping[str, str], customer: str, available: int, k: int = 10) -> float:
    """Share of the top ``k`` that belongs to ``customer`` (of at most ``available`` such memories)."""
    if available <= 0:
        return 0.0
    return sum(1 for i in ranked[:k] if owner.get(i) == customer) / min(k, available)


def session_recall(ranked: Sequence[str], session_of: Mapping[str, str], sessions: set[str], k: int = 10) -> float:
    """Share of ``sessions`` (the customer's chats, at most ``k``) with a memory in the top ``k``."""
    if not sessions:
        return 0.0
    found = {session_of[i] for i in ranked[:k] if session_of.get(i) in sessions}
    return len(found) / min(k, len(sessions))


def hit_at(ranked: Sequence[str], targets: set[str], k: int = 5) -> float:
    """1.0 when any of ``targets`` is in the top ``k``."""
    return 1.0 if targets.intersection(ranked[:k]) else 0.0
