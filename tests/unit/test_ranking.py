"""Pure unit tests of casegraph.domain.ranking: recency decay, signal normalisation, the fusions
(reciprocal ranks, normalised scores, the weighted sum), ordering and tie-breaks, the
readable reasons and the presets."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from casegraph.domain import ranking
from casegraph.domain.models import Signals
from casegraph.domain.ranking import (
    DEFAULT_PRESET,
    PRESETS,
    Candidate,
    RecallConfig,
    approx_scores,
    approx_totals,
    combine,
    explain,
    fuse,
    partial_bounds,
    preset,
    rank,
    recency,
    reciprocal_ranks,
    signals_for,
    source_scores,
    total,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
# Explicit weights of the weighted sum: these tests check its arithmetic, not the defaults
# (the default fuses ranks; see the fusion tests below).
CFG = RecallConfig(
    fusion="weighted", semantic_weight=0.50, keyword_weight=0.15, graph_weight=0.25, importance_weight=0.05,
    recency_weight=0.05,
)
WEIGHTED = [name for name, cfg in PRESETS.items() if cfg.fusion == "weighted"]


def cand(memory_id="m", *, semantic=0.0, bm25=0.0, graph=0.0, importance=0.0, age_days=0.0, reasons=()):
    return Candidate(
        memory_id=memory_id,
        semantic=semantic,
        keyword_bm25=bm25,
        graph=graph,
        importance=importance,
        created_at=NOW - timedelta(days=age_days),
        graph_reasons=tuple(reasons),
    )


# -- recency -----------------------------------------------------------------------------
def test_recency_is_one_for_a_memory_created_now():
    assert recency(NOW, NOW, 30.0) == 1.0


@pytest.mark.parametrize("half_life", [1.0, 7.0, 30.0, 365.0])
def test_recency_is_one_half_after_one_half_life(half_life):
    assert recency(NOW - timedelta(days=half_life), NOW, half_life) == pytest.approx(0.5)


def test_recency_is_one_quarter_after_two_half_lives():
    assert recency(NOW - timedelta(days=60), NOW, 30.0) == pytest.approx(0.25)


def test_recency_counts_fractions_of_a_day():
    got = recency(NOW - timedelta(hours=12), NOW, 1.0)
    assert got == pytest.approx(math.sqrt(0.5))


@pytest.mark.parametrize("ahead", [timedelta(seconds=1), timedelta(hours=5), timedelta(days=400)])
def test_future_dates_count_as_now(ahead):
    assert recency(NOW + ahead, NOW, 30.0) == 1.0


def test_recency_decreases_monotonically_with_age():
    values = [recency(NOW - timedelta(days=d), NOW, 30.0) for d in (0, 1, 5, 30, 90, 1000)]
    assert values == sorted(values, reverse=True)
    assert all(0.0 < v <= 1.0 for v in values)


def test_with_half_life_returns_a_changed_copy():
    cfg = CFG.with_half_life(7.0)
    assert cfg.half_life_days == 7.0
    assert CFG.half_life_days == 30.0  # the original is untouched
    assert cfg.semantic_weight == CFG.semantic_weight and cfg.name == CFG.name


def test_configs_are_frozen():
    with pytest.raises(FrozenInstanceError):
        CFG.semantic_weight = 0.9  # type: ignore[misc]


# -- signals_for -------------------------------------------------------------------------
def test_signals_are_clipped_into_the_unit_interval():
    c = cand(semantic=-0.4, graph=1.7, importance=1.3)
    s = signals_for(c, best_bm25=0.0, now=NOW, config=CFG)
    assert s.semantic == 0.0
    assert s.graph == 1.0
    assert s.importance == 1.0
    c = cand(semantic=1.0000002, graph=-1.0, importance=-0.5)
    s = signals_for(c, best_bm25=0.0, now=NOW, config=CFG)
    assert s.semantic == 1.0 and s.graph == 0.0 and s.importance == 0.0


def test_in_range_signals_pass_through_unchanged():
    c = cand(semantic=0.42, graph=0.5, importance=0.7, age_days=30)
    s = signals_for(c, best_bm25=0.0, now=NOW, config=CFG)
    assert (s.semantic, s.graph, s.importance) == (0.42, 0.5, 0.7)
    assert s.recency == pytest.approx(0.5)


def test_keyword_is_normalised_by_the_best_bm25():
    assert signals_for(cand(bm25=3.0), best_bm25=4.0, now=NOW, config=CFG).keyword == pytest.approx(0.75)
    assert signals_for(cand(bm25=4.0), best_bm25=4.0, now=NOW, config=CFG).keyword == 1.0
    assert signals_for(cand(bm25=0.0), best_bm25=4.0, now=NOW, config=CFG).keyword == 0.0


def test_keyword_is_zero_when_nothing_matched_by_keyword():
    assert signals_for(cand(bm25=0.0), best_bm25=0.0, now=NOW, config=CFG).keyword == 0.0


def test_recency_signal_uses_the_config_half_life():
    c = cand(age_days=7)
    assert signals_for(c, best_bm25=0, now=NOW, config=CFG.with_half_life(7)).recency == pytest.approx(0.5)
    assert signals_for(c, best_bm25=0, now=NOW, config=CFG.with_half_life(14)).recency == pytest.approx(
        math.sqrt(0.5)
    )


# -- combine -----------------------------------------------------------------------------
def test_combine_is_the_weighted_sum():
    s = Signals(semantic=0.8, keyword=0.5, importance=0.4, recency=0.25, graph=1.0)
    expected = (CFG.semantic_weight * 0.8 + CFG.keyword_weight * 0.5 + CFG.graph_weight * 1.0
                + CFG.importance_weight * 0.4 + CFG.recency_weight * 0.25)
    assert combine(s, CFG) == pytest.approx(expected)


@pytest.mark.parametrize("field", ["semantic", "keyword", "importance", "recency", "graph"])
def test_each_signal_contributes_exactly_its_weight(field):
    s = Signals(**{field: 1.0})
    assert combine(s, CFG) == pytest.approx(getattr(CFG, f"{field}_weight"))


def test_custom_weights_are_used():
    cfg = RecallConfig(semantic_weight=0.0, keyword_weight=0.0, graph_weight=2.0, importance_weight=0.0, recency_weight=0.0)
    assert combine(Signals(semantic=1.0, graph=0.5), cfg) == pytest.approx(1.0)


@pytest.mark.parametrize("name", WEIGHTED)
def test_weighted_preset_weights_sum_to_one_so_scores_stay_in_unit_interval(name):
    cfg = PRESETS[name]
    total = cfg.semantic_weight + cfg.keyword_weight + cfg.graph_weight + cfg.importance_weight + cfg.recency_weight
    assert total == pytest.approx(1.0)
    assert combine(Signals(1.0, 1.0, 1.0, 1.0, 1.0), cfg) == pytest.approx(1.0)
    assert combine(Signals(), cfg) == 0.0


@pytest.mark.parametrize("name", sorted(set(PRESETS) - set(WEIGHTED)))
def test_fused_preset_scores_stay_within_one_plus_the_small_priors(name):
    cfg = PRESETS[name]
    first_everywhere = fuse(np.array([0.9, 0.2]), np.array([5.0, 1.0]), np.array([1.0, 0.5]), cfg)
    assert first_everywhere[0] == pytest.approx(1.0) and first_everywhere[1] < 1.0
    # Priors break near-ties: together less than a few ranks of one source.
    assert 0 < cfg.importance_weight + cfg.recency_weight <= 0.05


# -- fusion ------------------------------------------------------------------------------
def test_reciprocal_ranks_share_a_rank_on_equal_values_and_skip_zeros():
    got = reciprocal_ranks(np.array([0.5, 0.9, 0.5, 0.0, -0.2, 0.1]), 60.0)
    assert got[1] == 1.0  # first: (k + 1) / (k + 1)
    assert got[0] == got[2] == pytest.approx(61 / 62)  # tied second
    assert got[5] == pytest.approx(61 / 63)  # dense ranking: next value is third
    assert got[3] == got[4] == 0.0


def test_rrf_is_the_mean_of_the_sources_reciprocal_ranks():
    cfg = RecallConfig(fusion="rrf", rrf_k=10.0, graph_weight=1.0, keyword_weight=1.0)
    semantic, bm25, graph = np.array([0.8, 0.6, 0.1]), np.array([0.0, 7.0, 2.0]), np.array([0.0, 0.0, 1.0])
    got = fuse(semantic, bm25, graph, cfg)
    rr = lambda rank: 11 / (10 + rank)  # noqa: E731
    # Graph strengths count as they are (a calibrated scale), the text signals by rank.
    assert got.tolist() == pytest.approx([rr(1) / 3, (rr(2) + rr(1)) / 3, (rr(3) + rr(2) + 1.0) / 3])
    assert fuse(semantic, bm25, graph, cfg).max() <= 1.0


def test_a_direct_graph_link_beats_one_through_the_customer_whatever_the_pool_size():
    # Two candidates: ranks alone would tie them (each first in one source).
    got = fuse(np.array([0.45, 0.6]), np.array([0.0, 0.0]), np.array([1.0, 0.5]), PRESETS["hybrid_graph"])
    assert got[0] > got[1]


def test_rrf_needs_no_weights_for_the_scale_of_a_source():
    """Cosines of one model, BM25 of one corpus: any monotone rescaling gives the same fusion."""
    rng = np.random.default_rng(3)
    semantic, bm25, graph = rng.uniform(0.1, 0.6, 40), rng.uniform(0, 9, 40), rng.choice([0.0, 0.5, 1.0], 40)
    cfg = PRESETS["hybrid_graph"]
    assert cfg.fusion == "rrf"
    base = fuse(semantic, bm25, graph, cfg)
    assert np.array_equal(base, fuse(semantic * 1.5, bm25 * 30, graph, cfg))
    assert np.array_equal(base, fuse(semantic**2, np.sqrt(bm25), graph, cfg))


def test_score_fusion_divides_each_source_by_its_best():
    cfg = RecallConfig(fusion="score", graph_weight=1.0, keyword_weight=1.0)
    got = fuse(np.array([0.4, 0.2]), np.array([0.0, 3.0]), np.array([0.5, 0.0]), cfg)
    assert got.tolist() == pytest.approx([(1.0 + 0.0 + 0.5) / 3, (0.5 + 1.0 + 0.0) / 3])


def test_a_source_with_no_weight_or_nothing_found_does_not_count():
    cfg = RecallConfig(rrf_k=60.0, graph_weight=1.0, keyword_weight=0.0)
    got = fuse(np.array([0.4, 0.2]), np.array([0.0, 3.0]), np.array([0.0, 1.0]), cfg)
    assert got.tolist() == pytest.approx([1.0 / 2, (61 / 62 + 1.0) / 2])
    # Nothing named in the query: the semantic ranks alone, on the full scale.
    alone = fuse(np.array([0.4, 0.2]), np.array([0.0, 0.0]), np.array([0.0, 0.0]), replace(cfg, keyword_weight=1.0))
    assert alone.tolist() == pytest.approx([1.0, 61 / 62])


def test_unknown_fusion_is_refused():
    with pytest.raises(ValueError, match="fusion"):
        RecallConfig(fusion="borda")


def test_rrf_rank_scores_are_the_source_score_plus_the_priors():
    cfg = PRESETS["hybrid_graph"]
    pool = [cand("a", semantic=0.7, bm25=2.0, importance=0.9, age_days=3), cand("b", semantic=0.3, graph=1.0),
            cand("c", bm25=4.0, age_days=40)]
    sources = source_scores(pool, cfg)
    for r in rank(pool, now=NOW, config=cfg, top_k=3):
        assert r.score == pytest.approx(total(sources[r.memory_id], r.signals, cfg))


def test_a_pruned_pool_ranks_like_the_whole_pool_given_its_source_scores():
    cfg = PRESETS["hybrid_graph"]
    pool = [cand(f"m{i}", semantic=(i * 37 % 11) / 11, bm25=float(i % 5), graph=(0.0, 1.0)[i % 7 == 0],
                 importance=(i % 3) / 3, age_days=i) for i in range(40)]
    whole = rank(pool, now=NOW, config=cfg, top_k=5)
    kept = {r.memory_id for r in whole}
    pruned = [c for c in pool if c.memory_id in kept]
    best = max(c.keyword_bm25 for c in pool)
    again = rank(pruned, now=NOW, config=cfg, top_k=5, best_bm25=best, sources=source_scores(pool, cfg))
    assert again == whole
    # Without the pool's source scores the ranks - and so the scores - would differ.
    assert [r.score for r in rank(pruned, now=NOW, config=cfg, top_k=5, best_bm25=best)] != [r.score for r in whole]


def test_approx_totals_equal_total_up_to_rounding():
    cfg = PRESETS["hybrid_graph"]
    pool = [cand(f"m{i}", semantic=i / 50, bm25=float(i % 4), importance=(i % 5) / 4, age_days=i * 3.3 - 2)
            for i in range(50)]
    sources = source_scores(pool, cfg)
    got = approx_totals(np.array([sources[c.memory_id] for c in pool]), np.array([c.importance for c in pool]),
                        np.array([(NOW - c.created_at).total_seconds() for c in pool]), cfg)
    want = [total(sources[c.memory_id], signals_for(c, best_bm25=3.0, now=NOW, config=cfg), cfg) for c in pool]
    assert np.max(np.abs(got - np.array(want))) < 1e-12


# -- rank --------------------------------------------------------------------------------
def test_rank_orders_by_score_descending():
    cands = [
        cand("low", semantic=0.1),
        cand("high", semantic=0.9),
        cand("mid", semantic=0.5),
    ]
    ranked = rank(cands, now=NOW, config=CFG, top_k=10)
    assert [r.memory_id for r in ranked] == ["high", "mid", "low"]
    assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:], strict=False))


def test_rank_scores_equal_combine_of_the_signals():
    cands = [cand("a", semantic=0.7, bm25=2.0, graph=0.5, importance=0.9, age_days=3), cand("b", bm25=4.0)]
    for r in rank(cands, now=NOW, config=CFG, top_k=10):
        assert r.score == pytest.approx(combine(r.signals, CFG))
    by_id = {r.memory_id: r for r in rank(cands, now=NOW, config=CFG, top_k=10)}
    assert by_id["a"].signals.keyword == pytest.approx(0.5)  # normalised across the pool
    assert by_id["b"].signals.keyword == 1.0


def test_graph_link_can_outrank_a_better_text_match():
    cands = [cand("text", semantic=0.4), cand("linked", semantic=0.1, graph=1.0)]
    assert rank(cands, now=NOW, config=CFG, top_k=2)[0].memory_id == "linked"
    dense = rank(cands, now=NOW, config=PRESETS["dense"], top_k=2)
    assert dense[0].memory_id == "text"


def test_equal_scores_are_broken_by_recency_then_id():
    # Zero recency weight: equal scores even though ages differ.
    cfg = RecallConfig(recency_weight=0.0)
    cands = [
        cand("c-old", semantic=0.5, age_days=10),
        cand("b-new", semantic=0.5, age_days=1),
        cand("a-old", semantic=0.5, age_days=10),
    ]
    ranked = rank(cands, now=NOW, config=cfg, top_k=10)
    assert len({r.score for r in ranked}) == 1
    assert [r.memory_id for r in ranked] == ["b-new", "a-old", "c-old"]


def test_rank_is_deterministic_whatever_the_input_order():
    cands = [cand(f"m{i}", semantic=0.5) for i in range(6)]
    one = [r.memory_id for r in rank(cands, now=NOW, config=CFG, top_k=6)]
    two = [r.memory_id for r in rank(list(reversed(cands)), now=NOW, config=CFG, top_k=6)]
    assert one == two == sorted(one)


def test_top_k_cuts_after_sorting():
    cands = [cand(f"m{i}", semantic=i / 10) for i in range(10)]
    ranked = rank(cands, now=NOW, config=CFG, top_k=3)
    assert [r.memory_id for r in ranked] == ["m9", "m8", "m7"]


def test_rank_of_nothing_is_empty():
    assert rank([], now=NOW, config=CFG, top_k=5) == []


def test_rank_accepts_any_iterable():
    ranked = rank((cand(f"m{i}", semantic=i / 3) for i in range(3)), now=NOW, config=CFG, top_k=5)
    assert [r.memory_id for r in ranked] == ["m2", "m1", "m0"]


# -- explain -----------------------------------------------------------------------------
def _why(c, best_bm25=None, config=CFG):
    best = c.keyword_bm25 if best_bm25 is None else best_bm25
    s = signals_for(c, best_bm25=best, now=NOW, config=config)
    return explain(c, s, config)


def test_explain_puts_graph_reasons_first():
    c = cand(semantic=0.8, bm25=1.0, graph=1.0, importance=0.9, reasons=("linked to order #4521",))
    why = _why(c)
    assert why[0] == "linked to order #4521"
    assert why == (
        "linked to order #4521",
        "best keyword match",
        "semantically similar (0.80)",
        "marked important",
        "recent",
    )


def test_explain_distinguishes_best_and_partial_keyword_matches():
    assert "best keyword match" in _why(cand(bm25=2.0, age_days=100), best_bm25=2.0)
    why = _why(cand(bm25=1.0, age_days=100), best_bm25=2.0)
    assert "keyword match" in why and "best keyword match" not in why
    assert not any("keyword" in w for w in _why(cand(bm25=0.0, age_days=100), best_bm25=2.0))


def test_explain_thresholds():
    old = 100  # recency < 0.9
    assert _why(cand(semantic=0.49, age_days=old)) == ()
    assert _why(cand(semantic=0.5, age_days=old)) == ("semantically similar (0.50)",)
    assert _why(cand(importance=0.79, age_days=old)) == ()
    assert _why(cand(importance=0.8, age_days=old)) == ("marked important",)
    assert _why(cand(age_days=1)) == ("recent",)  # 0.5 ** (1/30) ~ 0.977
    assert _why(cand(age_days=10)) == ()  # 0.5 ** (10/30) ~ 0.79


def test_explain_skips_reasons_whose_signal_has_no_weight():
    c = cand(semantic=0.9, bm25=1.0, graph=1.0, importance=1.0, reasons=("about customer jane-doe",))
    assert _why(c, config=PRESETS["dense"]) == ("semantically similar (0.90)",)
    assert _why(c, config=PRESETS["keyword"]) == ("best keyword match",)
    why_hybrid = _why(c, config=PRESETS["hybrid"])
    assert "about customer jane-doe" not in why_hybrid
    assert "best keyword match" in why_hybrid


def test_rank_attaches_the_reasons():
    ranked = rank([cand("x", graph=1.0, reasons=("linked to ticket T-1",))], now=NOW, config=CFG, top_k=1)
    assert ranked[0].why[0] == "linked to ticket T-1"


# -- presets -----------------------------------------------------------------------------
def test_preset_names():
    assert set(PRESETS) == {"dense", "keyword", "hybrid", "hybrid_graph", "weighted"}
    for name, cfg in PRESETS.items():
        assert cfg.name == name


def test_dense_preset_uses_only_vectors():
    cfg = PRESETS["dense"]
    assert cfg.semantic_weight == 1.0
    assert cfg.keyword_weight == cfg.graph_weight == cfg.importance_weight == cfg.recency_weight == 0.0
    assert cfg.use_vectors and not cfg.use_keywords and not cfg.use_graph


def test_keyword_preset_uses_only_keywords():
    cfg = PRESETS["keyword"]
    assert cfg.keyword_weight == 1.0 and cfg.semantic_weight == 0.0 and cfg.graph_weight == 0.0
    assert cfg.use_keywords and not cfg.use_vectors and not cfg.use_graph


def test_hybrid_preset_has_no_graph():
    cfg = PRESETS["hybrid"]
    assert cfg.graph_weight == 0.0 and not cfg.use_graph
    assert cfg.use_vectors and cfg.use_keywords
    # The default's fusion without the graph: ranks fused, no per-source weights.
    assert cfg.fusion == PRESETS["hybrid_graph"].fusion and cfg.semantic_weight == cfg.keyword_weight > 0


def test_hybrid_graph_is_the_default():
    cfg = PRESETS["hybrid_graph"]
    assert DEFAULT_PRESET == "hybrid_graph"
    assert cfg == RecallConfig()
    # Reciprocal-rank fusion: the text sources count by rank; the graph's weight and the
    # priors were chosen by leave-one-world-out (BENCHMARKS.md). Keywords are searched and
    # count less than the semantic source (app/domain/ranking.py).
    assert cfg.fusion == "rrf" and 0 < cfg.keyword_weight < cfg.semantic_weight
    assert cfg.graph_weight > 0 and cfg.use_vectors and cfg.use_graph and cfg.use_keywords


def test_preset_lookup():
    assert preset("dense") is PRESETS["dense"]
    assert preset(None) is PRESETS["hybrid_graph"]
    assert preset("") is PRESETS["hybrid_graph"]


def test_unknown_preset_raises_a_key_error_listing_the_choices():
    with pytest.raises(KeyError) as info:
        preset("semantic-only")
    text = str(info.value)
    assert "semantic-only" in text
    for name in PRESETS:
        assert name in text


# -- partial bounds ----------------------------------------------------------------------
def test_partial_bounds_bracket_every_possible_final_score():
    lo, hi = partial_bounds(0.6, 0.5, 1.0, CFG)
    assert lo == pytest.approx(0.50 * 0.6 + 0.15 * 0.5 + 0.25 * 1.0)
    assert hi == pytest.approx(lo + CFG.importance_weight + CFG.recency_weight)
    for importance in (0.0, 0.3, 1.0):
        for recency_value in (0.0, 0.7, 1.0):
            s = Signals(semantic=0.6, keyword=0.5, graph=1.0, importance=importance, recency=recency_value)
            assert lo - 1e-12 <= combine(s, CFG) <= hi + 1e-12


def test_partial_bounds_clip_the_semantic_signal_like_signals_for():
    assert partial_bounds(-0.3, 0.0, 0.0, CFG)[0] == 0.0
    assert partial_bounds(1.5, 0.0, 0.0, CFG)[0] == pytest.approx(CFG.semantic_weight)
    lo, hi = partial_bounds(0.9, 0.0, 0.0, PRESETS["dense"])
    assert lo == hi == pytest.approx(0.9)  # dense: nothing left to add


def test_rank_normalises_keywords_by_a_given_best_bm25():
    # A pruned candidate list must be scored against the best BM25 of the whole pool.
    ranked = rank([cand("a", bm25=2.0)], now=NOW, config=CFG, top_k=1, best_bm25=8.0)
    assert ranked[0].signals.keyword == pytest.approx(0.25)
    assert rank([cand("a", bm25=2.0)], now=NOW, config=CFG, top_k=1)[0].signals.keyword == 1.0
    assert ranking.rank([cand("a", bm25=0.0)], now=NOW, config=CFG, top_k=1, best_bm25=0.0)[0].signals.keyword == 0.0


def _rank_every_candidate(pool, *, now, config, top_k, best_bm25):
    """What rank() answers, the long way: full signals, score and reasons for all."""
    sources = source_scores(pool, config) if config.fusion != "weighted" else None
    scored = []
    for c in pool:
        s = signals_for(c, best_bm25=best_bm25, now=now, config=config)
        score = combine(s, config) if sources is None else total(sources[c.memory_id], s, config)
        scored.append((c.memory_id, score, s, explain(c, s, config)))
    scored.sort(key=lambda r: (-r[1], -r[2].recency, r[0]))
    return scored[:top_k]


@pytest.mark.parametrize("seed", range(20))
def test_rank_builds_reasons_for_the_top_k_only_and_answers_the_same(seed):
    import random

    rng = random.Random(seed)
    coarse = lambda: rng.choice([0.0, 0.25, 0.5, 1.0, rng.random(), -0.1, 1.3])  # noqa: E731 - ties and clamps
    pool = [
        cand(f"m{rng.randrange(60)}", semantic=coarse(), bm25=rng.choice([0.0, rng.random() * 9]), graph=coarse(),
             importance=coarse(), age_days=rng.choice([0.0, 1.0, rng.random() * 400, -2.0]),
             reasons=("about customer jane",) if rng.random() < 0.3 else ())
        for _ in range(rng.randrange(1, 300))
    ]
    for config in (CFG, PRESETS["hybrid_graph"], PRESETS["hybrid"]):
        for top_k in (1, 5, 50, 1000):
            best = max(c.keyword_bm25 for c in pool)
            got = [(r.memory_id, r.score, r.signals, r.why) for r in rank(pool, now=NOW, config=config, top_k=top_k)]
            assert got == _rank_every_candidate(pool, now=NOW, config=config, top_k=top_k, best_bm25=best)


# -- approx_scores (recall's vectorised pre-filter) -------------------------------------------
@pytest.mark.parametrize("config", [CFG, PRESETS["weighted"], PRESETS["dense"], replace(CFG, half_life_days=0.5)])
def test_approx_scores_equal_combine_of_the_signals_up_to_rounding(config):
    import random

    import numpy as np

    rnd = random.Random(5)
    cands = [
        cand(f"m{i}", semantic=rnd.uniform(-0.3, 1.2), bm25=rnd.choice([0.0, rnd.uniform(0, 9)]),
             graph=rnd.choice([0.0, 0.25, 0.5, 0.75, 1.0]), importance=rnd.uniform(-0.1, 1.1),
             age_days=rnd.uniform(-2, 400))
        for i in range(500)
    ]
    best = max(c.keyword_bm25 for c in cands)
    got = approx_scores(
        np.array([c.semantic for c in cands]),
        np.array([c.keyword_bm25 / best for c in cands]),
        np.array([c.graph for c in cands]),
        np.array([c.importance for c in cands]),
        np.array([(NOW - c.created_at).total_seconds() for c in cands]),
        config,
    )
    want = [combine(signals_for(c, best_bm25=best, now=NOW, config=config), config) for c in cands]
    assert np.max(np.abs(got - np.array(want))) < 1e-12
