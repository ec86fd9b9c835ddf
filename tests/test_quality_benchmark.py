"""The quality benchmark runs end to end on its smallest profile (a smoke test, not a
threshold test: the figures are in BENCHMARKS.md; `python -m benchmarks.quality` makes them)."""

from __future__ import annotations

import pytest

from benchmarks.histories import generate
from benchmarks.metrics import METRICS, ndcg, recall_at, reciprocal_rank
from benchmarks.quality import MODE_LABELS, MODES, run
from benchmarks.queries import KINDS, build_queries


def test_generator_and_queries_are_deterministic_and_labelled():
    a, b = generate(3, "smoke"), generate(3, "smoke")
    assert [m.content for m in a.memories.values()] == [m.content for m in b.memories.values()]
    qa, qb = build_queries(a, 3, 3), build_queries(b, 3, 3)
    assert [(q.text, q.labels) for q in qa] == [(q.text, q.labels) for q in qb]
    assert {q.kind for q in qa} == set(KINDS)
    for q in qa:
        assert q.labels and all(g in (1, 2) for g in q.labels.values())
        # No leakage: a query never repeats the text of a memory it is labelled with.
        assert all(a.memories[k].content not in q.text for k in q.labels)


def test_metrics():
    labels = {"a": 2, "b": 1, "c": 1}
    assert recall_at(["x", "a", "y", "b", "z"], labels, 5) == 2 / 3
    assert recall_at(["a"], {"a": 1}, 5) == 1.0
    assert reciprocal_rank(["x", "y", "b"], labels) == 1 / 3
    assert ndcg(["a", "b", "c"], labels) == 1.0
    assert 0 < ndcg(["c", "b", "a"], labels) < 1


@pytest.fixture
def one_torch_thread():
    """Quality does not depend on threads, and on a busy 2-core machine one is much faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_quality_benchmark_smoke_run(embedder, extractor, one_torch_thread):
    result = run("smoke", seed=5, embedder=embedder, extractor=extractor)
    assert set(result.scores) == set(MODES)
    assert result.memories_stored > result.memories_generated // 2 and result.queries >= len(KINDS)
    for mode in MODES:
        for kind in (*KINDS, "overall"):
            assert result.counts[kind] > 0
            for metric in METRICS:
                assert 0.0 <= result.scores[mode][kind][metric] <= 1.0
    table = result.table()
    for label in MODE_LABELS.values():
        assert f" {label} |" in table
    for kind in (*KINDS, "**overall**"):
        assert f"| {kind} |" in table
    assert result.hygiene["session_summaries"] > 0
