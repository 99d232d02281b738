"""Claims: each verdict on constructed evidence, the Bonferroni level and Holm's p-values, relative claims, and the
seeds or examples that would settle an inconclusive claim on cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from harness.stats.claims import (
    ClaimSpec,
    compare_all,
    corrected_level,
    holm,
    judge,
    minimum_detectable_effect,
    parse_delta,
    project,
    verdict,
)
from harness.stats.evidence import classification_evidence, vqa_evidence

Z95 = norm.ppf(0.975)


def _spec(delta: float, relative: bool = False, metric: str = "vqa_accuracy") -> ClaimSpec:
    return ClaimSpec("xbert", "resnet", "vqa", metric, delta, relative=relative, source="paper, table 2")


def _vqa(acc: np.ndarray, images: np.ndarray) -> object:
    return vqa_evidence(np.arange(len(acc)), images, acc, ["other"] * len(acc))


def _pair(n: int, gain: float, seed: int, independent: bool = False) -> tuple[list, list]:
    """One seed each: b right 55% of the time, a fixes a share of b's mistakes so that a gains ``gain`` points (or,
    ``independent``, is right ``55 + gain`` % of the time independently of b: a much noisier difference)."""
    rng = np.random.default_rng(seed)
    images = np.concatenate([np.arange(n // 3), rng.integers(0, n // 3, n - n // 3)])
    b = (rng.random(n) < 0.55).astype(float)
    a = (rng.random(n) < 0.55 + gain / 100) if independent else np.where(rng.random(n) < gain / 45, 1.0, b)
    return [_vqa(a.astype(float), images)], [_vqa(b, images)]


def test_verdict_rules() -> None:
    assert verdict((1.0, 5.0), 3.0) == "supported"  # 0 excluded, claim inside
    assert verdict((1.0, 5.0), 0.5) == "supported"  # claim below the CI: at least as large as claimed
    assert verdict((0.5, 2.0), 3.0) == "contradicted"  # a real gain, smaller than claimed
    assert verdict((-1.0, 2.0), 3.0) == "contradicted"
    assert verdict((-1.0, 5.0), 3.0) == "inconclusive"
    assert verdict((0.0, 5.0), 3.0) == "inconclusive"  # the lower bound must be above 0
    assert verdict((1.0, 3.0), 3.0) == "supported"


def test_each_verdict_on_constructed_evidence() -> None:
    big_gain = _pair(6000, 6.0, 0)  # se ~ 0.4 points
    small_gain = _pair(6000, 1.0, 1)
    noisy = _pair(450, 3.0, 2, independent=True)  # se ~ 3.5 points: holds both 0 and +3
    claims = [(_spec(3.0), *big_gain), (_spec(6.0), *big_gain), (_spec(3.0), *small_gain), (_spec(3.0), *noisy)]
    results = judge(claims, replicates=4_000, seed=7)
    assert [r.verdict for r in results] == ["supported", "supported", "contradicted", "inconclusive"]
    level = 1 - 0.05 / 4
    for r in results:
        c = r.comparison
        assert r.level == pytest.approx(level) and r.ci == c.ci[level] and r.ci95 == c.ci[0.95]
        assert r.ci[0] < r.ci95[0] and r.ci[1] > r.ci95[1]  # the corrected CI is the wider one
        assert r.measured == c.delta and r.p_value == c.p_value
        assert r.mde == pytest.approx((norm.ppf(1 - 0.05 / 8) + norm.ppf(0.8)) * c.se)
    below, inside, short, noisy_ = results
    assert below.ci[0] > 3.0 and "excludes 0 and lies above the claimed +3 points" in below.note
    assert below.note.startswith("The 98.75% CI [")
    assert 0 < inside.ci[0] <= 6.0 <= inside.ci[1] and "excludes 0 and holds the claimed +6 points" in inside.note
    assert short.ci[1] < 3.0 and "lies below the claimed +3 points" in short.note
    assert noisy_.ci[0] <= 0 and noisy_.ci[1] >= 3
    # One seed: no seed variance; the test-set part alone is too wide, so only more test images can settle it.
    c = noisy_.comparison
    budget = (max(c.delta, 3.0 - c.delta) / norm.ppf(1 - 0.05 / 8)) ** 2
    assert c.se_clusters**2 > budget and noisy_.seeds_needed is None
    assert noisy_.examples_needed == math.floor(150 * c.se_clusters**2 / budget) + 1
    assert noisy_.note == (
        f"Inconclusive: more seeds cannot settle it (the test set alone is too small): at least "
        f"{noisy_.examples_needed} test clusters (now 150) would be needed, and at least 2 seeds per model to estimate "
        "the seed variance."
    )
    assert all(r.seeds_needed is None and r.examples_needed is None for r in results[:3])
    adjusted = multipletests([r.p_value for r in results], method="holm")[1]
    assert [r.p_adjusted for r in results] == pytest.approx(list(adjusted))


def test_holm_against_statsmodels_and_by_hand() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 * .01, max(2 * .03, 1 * .04)
    p = [0.2, 0.001, 0.04, 0.03, 0.5]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert holm([0.3]) == [0.3] and holm([]) == []
    assert holm([0.6, 0.7]) == [1.0, 1.0]


def test_levels_and_parsing() -> None:
    assert corrected_level(1) == 0.95 and corrected_level(4) == pytest.approx(0.9875)
    assert parse_delta("3.2") == (3.2, False) and parse_delta("+3.2") == (3.2, False)
    assert (
        parse_delta("15%") == (15.0, True) and parse_delta(" 2.5 % ") == (2.5, True) and parse_delta(1) == (1.0, False)
    )
    for bad in ("abc", "3.2pts", "%", "inf", ""):
        with pytest.raises(ValueError, match="expected"):
            parse_delta(bad)
    assert minimum_detectable_effect(1.0, 0.95) == pytest.approx(1.959964 + 0.841621, abs=1e-5)


def test_relative_claims_are_judged_on_the_relative_scale() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    images = rng.integers(0, 1000, n)
    base = rng.random(n) * 0.8
    a, b = [_vqa(base * 1.2, images)], [_vqa(base, images)]  # exactly +20% on every resample
    ok, too_much, points = judge([(_spec(15, True), a, b), (_spec(25, True), a, b), (_spec(15), a, b)], replicates=500)
    assert ok.verdict == "supported" and ok.measured == pytest.approx(20.0, abs=0.05)
    assert ok.ci == pytest.approx((20.0, 20.0), abs=1e-9) and "the claimed +15%" in ok.note
    assert too_much.verdict == "contradicted" and "[+20.00%, +20.00%] lies below the claimed +25%" in too_much.note
    # the same data in points: 20% of a ~40% accuracy is ~8 points, well short of a 15-point claim
    assert points.verdict == "contradicted"
    assert points.measured == pytest.approx(0.2 * b[0].recompute()["vqa_accuracy"], abs=0.011)  # rounded figures


def _constant_seed(correct_per_10: int, n_clusters: int = 300) -> object:
    """Every cluster of 10 examples has the same count right: the metric ignores which clusters are drawn."""
    clusters = np.repeat(np.arange(n_clusters), 10)
    ids = np.arange(len(clusters))
    right = np.tile(np.arange(10) < correct_per_10, n_clusters)
    return classification_evidence(ids, clusters, np.zeros(len(ids)), np.where(right, 0, 5))


def test_seeds_needed_on_a_case_worked_out_by_hand() -> None:
    # a: 60% and 70% (s2 = 50), b: 60% twice (s2 = 0); no test-set variance at all. Observed +5; a's drawn seed mean
    # (60, 65 or 70) is rescaled by sqrt(2) around 65, so the CI is [5 - 5 sqrt(2), 5 + 5 sqrt(2)]: it holds 0
    # and the claimed +3. The CI 5 ± 1.96 * sqrt(50 / n) leaves out 0 once 50 / n < (5 / 1.96)^2 = 6.508: n = 8.
    a = [_constant_seed(6), _constant_seed(7)]
    b = [_constant_seed(6), _constant_seed(6)]
    (r,) = judge([(ClaimSpec("a", "b", "cls", "top1", 3.0), a, b)], replicates=4_000)
    assert (r.verdict, r.measured) == ("inconclusive", 5.0)
    assert r.ci == pytest.approx((5 - 5 * np.sqrt(2), 5 + 5 * np.sqrt(2)))
    assert r.comparison.se_clusters == 0.0 and r.comparison.se_seeds == pytest.approx(5.0)
    assert 50 / 7 > (5 / Z95) ** 2 > 50 / 8
    assert (r.seeds_needed, r.examples_needed) == (8, None)
    assert (
        r.note == "Inconclusive: about 8 seeds per model (now 2) would likely settle it, from the observed variances."
    )


def test_project_by_hand() -> None:
    common = {"level": 0.95, "n_seeds": 3, "n_clusters": 1000}
    # Cluster part too wide (1.96 * 1.5 > 2 = claimed - delta): more seeds cannot settle it. With the current seed
    # part 1/3: 1000 * 2.25 / ((2 / 1.96)^2 - 1/3) = 3178.4 -> 3179 clusters.
    p = project(1.0, 3.0, se_clusters=1.5, seed_var_a=0.5, seed_var_b=0.5, **common)
    expected = math.floor(1000 * 2.25 / ((2 / Z95) ** 2 - 1 / 3)) + 1
    assert expected == 3179 and (p.seeds_needed, p.examples_needed) == (None, 3179)
    assert (
        p.note.startswith("more seeds cannot settle it")
        and "about 3179 test clusters (now 1000) with 3 seeds" in p.note
    )
    # Seed part too wide as well (6 / 3 = 2 > 1.04): half of the budget each.
    both = project(1.0, 3.0, se_clusters=1.5, seed_var_a=3.0, seed_var_b=3.0, **common)
    half = (2 / Z95) ** 2 / 2
    assert (both.seeds_needed, both.examples_needed) == (math.floor(6 / half) + 1, math.floor(2250 / half) + 1)
    # Seeds settle it: (1.0 / n) < (2 / 1.96)^2 - 0.5^2 = 0.7912 -> n > 1.264; at least one more seed than now.
    seeds = project(1.0, 3.0, se_clusters=0.5, seed_var_a=0.5, seed_var_b=0.5, **common)
    assert (seeds.seeds_needed, seeds.examples_needed) == (4, None)
    many = project(2.9, 3.0, se_clusters=0.5, seed_var_a=20.0, seed_var_b=20.0, **common)
    assert many.seeds_needed == math.floor(40 / ((2.9 / Z95) ** 2 - 0.25)) + 1  # the farther boundary is 0
    # One seed: the seed variance is unknown.
    one = project(1.0, 3.0, se_clusters=0.5, seed_var_a=None, seed_var_b=None, **common)
    assert (one.seeds_needed, one.examples_needed) == (None, None) and "at least 2 seeds" in one.note
    wide = project(1.0, 3.0, se_clusters=1.5, seed_var_a=None, seed_var_b=None, **common)
    assert wide.examples_needed == math.floor(2250 / (2 / Z95) ** 2) + 1 and "at least 2 seeds" in wide.note


def test_compare_all_against_the_baseline() -> None:
    a, b = _pair(900, 3.0, 4)
    c, _ = _pair(900, 1.0, 4)
    out = compare_all({"xbert": a, "resnet": b, "vit": c}, "resnet", "vqa_accuracy", replicates=300)
    assert list(out) == ["xbert", "vit"]
    assert list(out["xbert"].ci) == [0.95] and out["xbert"].delta == pytest.approx(
        a[0].recompute()["vqa_accuracy"] - b[0].recompute()["vqa_accuracy"]
    )
    with pytest.raises(ValueError, match="baseline 'clip' has no evidence"):
        compare_all({"xbert": a}, "clip", "vqa_accuracy")


def test_judge_of_nothing_and_describe() -> None:
    assert judge([]) == []
    assert _spec(3.2).describe() == "xbert beats resnet on vqa by +3.2 points of vqa_accuracy"
    assert _spec(15, True).describe() == "xbert beats resnet on vqa by +15% (relative) of vqa_accuracy"
