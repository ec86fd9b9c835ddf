"""The quality benchmark runs end to end on its smallest profile (a smoke test, not a
threshold test: the figures are in BENCHMARKS.md; `python -m benchmarks.quality` makes them)."""

from __future__ import annotations

import pytest
from casegraph.domain.ranking import PRESETS

from benchmarks import lowo
from benchmarks.histories import generate
from benchmarks.metrics import (
    METRICS,
    WORLD_METRICS,
    customer_precision,
    hit_at,
    ndcg,
    recall_at,
    reciprocal_rank,
    session_recall,
)
from benchmarks.quality import MODE_LABELS, MODES, TOP_K, format_summary, ranked_ids, run
from benchmarks.queries import CHAT_KINDS, KINDS, build_chat_queries, build_queries
from benchmarks.worlds import WORLDS, generate_world


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


@pytest.mark.parametrize("name", [w for w in WORLDS if w != "shop"])
def test_chat_worlds_are_deterministic_and_vary_what_they_assume(name):
    world = WORLDS[name]
    a, b = generate_world(world, 3, "smoke"), generate_world(world, 3, "smoke")
    assert [(m.content, m.customer_link, m.tags) for m in a.memories.values()] == [
        (m.content, m.customer_link, m.tags) for m in b.memories.values()
    ]
    memories = list(a.memories.values())
    links = {m.customer_link for m in memories}
    if world.identity == "never":
        assert links == {"none"} and not any(s.start_customer for s in a.sessions.values())
    elif world.identity == "midchat":
        # The bot passes the customer only from its look-up on: every chat starts without one.
        assert links == {"none", "field"}
        for s in a.sessions.values():
            assert a.memories[s.memory_keys[0]].customer_link == "none" and not s.start_customer
    else:
        assert "none" not in links
    assert all(bool(m.tags) == (world.names_in == "tags" and m.customer_link == "tag") for m in memories)
    prefixes = {"user": ("user: ", "assistant: "), "customer": ("Customer: ", "Agent: ")}.get(world.prefix)
    if prefixes:
        assert all(m.content.startswith(prefixes[m.role == "agent"]) for m in memories)
    assert all(s.ended_at is not None for s in a.sessions.values()) == world.ended
    queries = build_chat_queries(a, 3, 3)
    assert {q.kind for q in queries} == set(CHAT_KINDS)
    for q in queries:
        if q.kind == "outcome":
            # The answer is the agent's last message of a chat naming the id.
            (outcome,) = q.outcomes
            session = a.sessions[a.memories[outcome].session]
            assert [k for k in session.memory_keys if a.memories[k].role == "agent"][-1] == outcome
            ident = a.memories[outcome].thread
            assert ident and ident in q.text and q.labels[outcome] == 2
            assert any(ident in a.memories[k].content for k in session.memory_keys)
        else:
            assert q.customer and set(q.labels) == {m.key for m in a.of_customer(q.customer)}


def test_novel_world_ids_match_no_format_rule(extractor):
    history = generate_world(WORLDS["novel"], 3, "smoke")
    ids = {m.thread for m in history.memories.values() if m.thread}
    assert ids
    for ident in ids:
        found = extractor.extract(f"what happened with {ident}?")
        assert not any(e.kind in ("order", "ticket", "tracking") for e in found), (ident, found)


def test_metrics():
    labels = {"a": 2, "b": 1, "c": 1}
    assert recall_at(["x", "a", "y", "b", "z"], labels, 5) == 2 / 3
    assert recall_at(["a"], {"a": 1}, 5) == 1.0
    assert reciprocal_rank(["x", "y", "b"], labels) == 1 / 3
    assert ndcg(["a", "b", "c"], labels) == 1.0
    assert 0 < ndcg(["c", "b", "a"], labels) < 1
    owner = {"a": "x", "b": "x", "c": "y"}
    assert customer_precision(["a", "c", "b"], owner, "x", available=2) == 1.0
    assert customer_precision(["a", "c", "z"], owner, "x", available=20) == 0.1
    session = {"a": "s1", "b": "s2", "c": "s3"}
    assert session_recall(["a", "c"], session, {"s1", "s2"}) == 0.5
    assert hit_at(["x", "y", "z", "w", "v", "a"], {"a"}, 5) == 0.0 and hit_at(["a"], {"a"}, 5) == 1.0


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


def test_chat_world_smoke_run_scores_every_world_metric(embedder, extractor, one_torch_thread):
    checked = []

    def lowo_ranks_like_recall(p):
        # Leave-one-world-out re-ranks gathered pools: it must answer what recall answers.
        config = PRESETS["hybrid_graph"]
        pools = lowo.gather(p, config, TOP_K)
        for item, pool in zip(p.labelled, pools.pools, strict=True):
            assert lowo.ranked(pool, config, TOP_K) == ranked_ids(p.services, item.query, p.ingested, config)
            checked.append(item.query.kind)

    result = run("smoke", seed=5, world="novel", embedder=embedder, extractor=extractor, keep=lowo_ranks_like_recall)
    assert set(checked) == set(CHAT_KINDS)
    for mode in MODES:
        assert set(WORLD_METRICS) <= set(result.scores[mode]["overall"])
        for metric, value in result.scores[mode]["overall"].items():
            assert 0.0 <= value <= 1.0, metric
    assert result.counts["outcome"] > 0
    summary = format_summary([result])
    assert "| novel | never |" in summary
