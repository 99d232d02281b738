"""The three kinds of claim (``delta`` in points or percent, ``value``, ``order``) on constructed evidence whose
per-example correctness is known, checked against independent computations (scipy, statsmodels, hand arithmetic),
and the suite schema's rules for stating them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats
from statsmodels.stats.multitest import multipletests

from harness.stats.claims import (
    AbsoluteResult,
    AbsoluteSpec,
    ClaimResult,
    ClaimSpec,
    OrderResult,
    OrderSpec,
    _absolute_p,
    absolute_verdict,
    corrected_level,
    judge_all,
    order_verdict,
    pair_verdict,
)
from harness.stats.evidence import Evidence, classification_evidence
from harness.stats.intervals import CLUSTER_METHOD, T_METHOD
from harness.suite.schema import ClaimSpec as SuiteClaim

REPLICATES = 2_000
TASK, METRIC = "cls", "top1"


def _seed(correct: int, n: int) -> Evidence:
    """One seed of a classifier on ``n`` test images (each its own cluster): the first ``correct`` are right, so
    top-1 is exactly ``100 * correct / n`` and the right sets of two runs are nested (strongly paired)."""
    ids = np.arange(n)
    return classification_evidence(ids, ids, np.zeros(n, dtype=np.int64), np.where(ids < correct, 0, 1))


def _model(counts: list[int], n: int) -> list[Evidence]:
    return [_seed(c, n) for c in counts]


def _top1(counts: list[int], n: int) -> list[float]:
    """Each seed's top-1 by hand."""
    return [100.0 * c / n for c in counts]


def _t_ci(values: list[float], level: float) -> tuple[float, float]:
    """The t interval over seeds, clipped to [0, 100], computed here with scipy alone."""
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    half = stats.t.ppf((1 + level) / 2, df=len(values) - 1) * sd / math.sqrt(len(values))
    return max(0.0, mean - half), min(100.0, mean + half)


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm's step-down: sort ascending, multiply the i-th smallest (0-based) by m - i, carry the running maximum
    forward, cap at 1, and put the values back in input order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# --- verdict rules -------------------------------------------------------------------------------------------------


def test_absolute_verdict_edges() -> None:
    assert absolute_verdict((98.2, 99.0), 98.2) == "supported"  # lower bound on the threshold: supported
    assert absolute_verdict((98.3, 99.0), 98.2) == "supported"
    assert absolute_verdict((98.1, 99.0), 98.2) == "inconclusive"
    assert absolute_verdict((97.0, 98.2), 98.2) == "inconclusive"  # upper bound on it: not below, so not contradicted
    assert absolute_verdict((97.0, 98.19), 98.2) == "contradicted"
    assert absolute_verdict((98.2, 98.2), 98.2) == "supported"  # a zero-width CI at the threshold


def test_pair_verdict_edges() -> None:
    assert pair_verdict(1.5, 0.049) == "supported"
    assert pair_verdict(-1.5, 0.049) == "contradicted"  # significant the other way
    assert pair_verdict(1.5, 0.05) == "inconclusive"  # p must be below alpha, not equal
    assert pair_verdict(-1.5, 0.5) == "inconclusive"  # reversed but not significant
    assert pair_verdict(1.5, 0.09, alpha=0.1) == "supported"


def test_order_verdict_rules() -> None:
    assert order_verdict(["supported", "supported"]) == "supported"
    assert order_verdict(["supported", "inconclusive"]) == "inconclusive"
    assert order_verdict(["supported", "contradicted"]) == "contradicted"
    assert order_verdict(["inconclusive", "contradicted"]) == "contradicted"  # any reversed pair contradicts
    assert order_verdict(["inconclusive", "inconclusive", "supported"]) == "inconclusive"


def test_absolute_p_by_hand() -> None:
    # 2+ seeds: the one-sample t test of the seeds against the threshold
    values = [98.6, 98.8, 99.0]
    assert _absolute_p(values, (0.0, 0.0), 98.8, 98.2) == pytest.approx(stats.ttest_1samp(values, 98.2).pvalue)
    t = (98.8 - 98.2) / (0.2 / math.sqrt(3))  # sd 0.2 by hand
    assert _absolute_p(values, (0.0, 0.0), 98.8, 98.2) == pytest.approx(2 * stats.t.sf(t, df=2))
    # seeds that agree exactly: p is 1 on the threshold, else 0 (ttest_1samp would give nan)
    assert _absolute_p([90.0, 90.0], (90.0, 90.0), 90.0, 90.0) == 1.0
    assert _absolute_p([90.0, 90.0], (90.0, 90.0), 90.0, 88.0) == 0.0
    # 1 seed: normal approximation with se from the 95% interval's width: (92 - 88) / (2 * 1.96) = 1.0204, and the
    # mean sits 1.96 se from the threshold: p = 0.05
    assert _absolute_p([90.0], (88.0, 92.0), 90.0, 88.0) == pytest.approx(0.05)
    assert _absolute_p([90.0], (90.0, 90.0), 90.0, 90.0) == 1.0  # zero-width interval on the threshold
    assert _absolute_p([90.0], (90.0, 90.0), 90.0, 80.0) == 0.0


# --- absolute claims -----------------------------------------------------------------------------------------------


def test_absolute_claims_with_seeds() -> None:
    n = 1000
    counts = [986, 988, 990]  # 98.6, 98.8, 99.0: mean 98.8, sd 0.2
    values = _top1(counts, n)
    model = _model(counts, n)
    specs = [
        AbsoluteSpec("xbert", TASK, METRIC, 97.0),  # clearly below the model: supported
        AbsoluteSpec("xbert", TASK, METRIC, 99.9),  # clearly above it: contradicted
        AbsoluteSpec("xbert", TASK, METRIC, 98.7),  # inside the CI: inconclusive
        AbsoluteSpec("xbert", TASK, METRIC, 98.7, tolerance=1.5),  # threshold 97.2: below the CI, supported
    ]
    assert specs[3].threshold == pytest.approx(97.2)
    results = judge_all([(s, model) for s in specs], replicates=REPLICATES)
    assert all(isinstance(r, AbsoluteResult) for r in results)
    assert [r.verdict for r in results] == ["supported", "contradicted", "inconclusive", "supported"]
    level = 1 - 0.05 / 4
    ci, ci95 = _t_ci(values, level), _t_ci(values, 0.95)
    # t_{0.99375, 2} = 8.86; half-width 8.86 * 0.2 / sqrt(3) = 1.02
    assert ci == pytest.approx((98.8 - 1.0231, 98.8 + 1.0231), abs=1e-3)
    raw = [stats.ttest_1samp(values, s.value - s.tolerance).pvalue for s in specs]
    for r, p in zip(results, raw, strict=True):
        assert r.level == pytest.approx(level) and r.method == T_METHOD
        assert r.measured == pytest.approx(98.8)
        assert r.ci == pytest.approx(ci) and r.ci95 == pytest.approx(ci95)
        assert r.p_value == pytest.approx(p)
    assert [r.p_adjusted for r in results] == pytest.approx(_holm_by_hand(raw))
    # the threshold of the tolerance claim is 97.2 (not 98.7): its p-value is the t test against 97.2
    assert results[3].p_value == pytest.approx(stats.ttest_1samp(values, 97.2).pvalue)
    assert results[2].p_value == pytest.approx(stats.ttest_1samp(values, 98.7).pvalue)
    lo = f"{ci[0]:.2f}"
    assert results[3].note == f"The 98.75% CI [{lo}, {ci[1]:.2f}] lies at or above the stated 98.7% - 1.5 points."
    assert results[1].note.startswith("The model falls short: the 98.75% CI [")
    assert results[2].note.startswith("Inconclusive: the 98.75% CI [") and "holds the stated 98.7%;" in results[2].note


def test_tolerance_moves_the_threshold() -> None:
    """One claim at a time (95%): 98.8 ± 4.303 * 0.2 / sqrt(3) = [98.30, 99.30]."""
    n = 1000
    model = _model([986, 988, 990], n)
    (strict,) = judge_all([(AbsoluteSpec("m", TASK, METRIC, 98.7), model)], replicates=REPLICATES)
    (tolerant,) = judge_all([(AbsoluteSpec("m", TASK, METRIC, 98.7, tolerance=0.5), model)], replicates=REPLICATES)
    assert strict.level == tolerant.level == 0.95
    assert strict.ci == pytest.approx((98.8 - 0.4968, 98.8 + 0.4968), abs=1e-3)
    assert strict.verdict == "inconclusive" and tolerant.verdict == "supported"  # 98.30 < 98.7, but >= 98.2
    assert strict.p_adjusted == strict.p_value  # one test: its own adjustment


def test_absolute_claim_with_one_seed() -> None:
    """One seed: the CI is the cluster bootstrap, the p-value its normal approximation."""
    n = 1000
    model = _model([900], n)  # 90%: binomial se = sqrt(0.9 * 0.1 / 1000) = 0.949 points
    se = 100 * math.sqrt(0.9 * 0.1 / n)
    near, far_below, far_above = judge_all(
        [
            (AbsoluteSpec("m", TASK, METRIC, 88.0), model),
            (AbsoluteSpec("m", TASK, METRIC, 80.0), model),
            (AbsoluteSpec("m", TASK, METRIC, 95.0), model),
        ],
        replicates=REPLICATES,
    )
    for r in (near, far_below, far_above):
        assert r.method == CLUSTER_METHOD and r.measured == pytest.approx(90.0)
        z = stats.norm.ppf(1 - 0.05 / 6)
        assert r.ci == pytest.approx((90 - z * se, 90 + z * se), abs=0.25)  # percentile CI ~ normal CI
        assert r.ci95 == pytest.approx((90 - 1.96 * se, 90 + 1.96 * se), abs=0.2)
        # exactly the documented approximation on the reported 95% interval
        se_hat = (r.ci95[1] - r.ci95[0]) / (2 * stats.norm.ppf(0.975))
        threshold = r.claim.threshold
        assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(90.0 - threshold) / se_hat))
    # sane: the near threshold is ~2.1 se away (p ~ 0.035), the far ones > 5 se (p tiny)
    assert near.p_value == pytest.approx(2 * stats.norm.sf(2.0 / se), rel=0.3)
    assert far_below.p_value < 1e-6 and far_above.p_value < 1e-6
    assert near.verdict == "inconclusive"  # 88 lies inside the 98.33% CI ~ [87.7, 92.3]
    assert far_below.verdict == "supported" and far_above.verdict == "contradicted"


# --- relative and point deltas ---------------------------------------------------------------------------------------


def test_relative_and_point_deltas() -> None:
    n = 2000
    base_counts, model_counts = [990, 1000, 1010], [1190, 1200, 1210]  # 49.5/50/50.5 and 59.5/60/60.5
    base, model = _model(base_counts, n), _model(model_counts, n)
    mean_b, mean_a = float(np.mean(_top1(base_counts, n))), float(np.mean(_top1(model_counts, n)))
    assert (mean_a, mean_b) == (60.0, 50.0)
    specs = [
        ClaimSpec("xbert", "vit", TASK, METRIC, 15.0, relative=True),
        ClaimSpec("xbert", "vit", TASK, METRIC, 30.0, relative=True),
        ClaimSpec("xbert", "vit", TASK, METRIC, 5.0),
        ClaimSpec("xbert", "vit", TASK, METRIC, 15.0),
    ]
    results = judge_all([(s, (model, base)) for s in specs], replicates=REPLICATES)
    assert all(isinstance(r, ClaimResult) for r in results)
    rel15, rel30, pts5, pts15 = results
    assert [r.verdict for r in results] == ["supported", "contradicted", "supported", "contradicted"]
    # measured: the relative gain of the means by hand, and the difference of the means in points
    assert rel15.measured == pytest.approx(100 * (mean_a / mean_b - 1)) == pytest.approx(20.0)
    assert pts5.measured == pytest.approx(mean_a - mean_b) == pytest.approx(10.0)
    level = 1 - 0.05 / 4
    for r in results:
        assert r.level == pytest.approx(level) and r.ci == r.comparison.ci[level]
    assert 15.0 < rel15.ci[0] < 20.0 < rel15.ci[1] < 30.0  # percent of the baseline, not points
    assert 5.0 < pts5.ci[0] < 10.0 < pts5.ci[1] < 15.0
    assert pts15.measured == pts5.measured and pts15.ci[1] < 15.0 and "the claimed +15 points" in pts15.note
    assert "%" in rel15.note and "the claimed +15%" in rel15.note and "points" not in rel15.note
    assert "The gain is real but smaller than claimed" in rel30.note and "the claimed +30%" in rel30.note
    # seed variances by the delta method: s2_a (100 / b)^2 and s2_b (100 a / b^2)^2, with s2 = 0.25 for both
    assert rel15.comparison.seed_var_a == pytest.approx(0.25 * (100 / 50) ** 2)
    assert rel15.comparison.seed_var_b == pytest.approx(0.25 * (100 * 60 / 50**2) ** 2)
    assert pts5.comparison.seed_var_a == pytest.approx(0.25) and pts5.comparison.seed_var_b == pytest.approx(0.25)
    assert [r.p_adjusted for r in results] == pytest.approx(_holm_by_hand([r.p_value for r in results]))


# --- orderings -----------------------------------------------------------------------------------------------------

N_ORDER = 1000
A, B, B2, C = [695, 700, 705], [595, 600, 605], [596, 601, 606], [495, 500, 505]  # 70, 60, 60.1, 50


def _mean(counts: list[int]) -> float:
    return float(np.mean(_top1(counts, N_ORDER)))


def test_orderings() -> None:
    a, b, b2, c = (_model(x, N_ORDER) for x in (A, B, B2, C))
    separated = OrderSpec(("a", "b", "c"), TASK, METRIC)
    swapped = OrderSpec(("a", "c", "b"), TASK, METRIC)
    close = OrderSpec(("a", "b2", "b"), TASK, METRIC)
    results = judge_all([(separated, [a, b, c]), (swapped, [a, c, b]), (close, [a, b2, b])], replicates=REPLICATES)
    assert all(isinstance(r, OrderResult) for r in results)
    level = 1 - 0.05 / 6  # 3 orderings of 3 models: 6 adjacent pairs
    ok, reversed_, tie = results
    assert [r.verdict for r in results] == ["supported", "contradicted", "inconclusive"]
    assert all(len(r.pairs) == 2 and r.level == pytest.approx(level) for r in results)

    assert [(p.better, p.worse) for p in ok.pairs] == [("a", "b"), ("b", "c")]
    assert ok.pairs[0].measured == pytest.approx(_mean(A) - _mean(B)) == pytest.approx(10.0)
    assert ok.pairs[1].measured == pytest.approx(_mean(B) - _mean(C)) == pytest.approx(10.0)
    assert all(p.verdict == "supported" and p.p_adjusted < 0.05 for p in ok.pairs)
    assert ok.note == "Every adjacent pair holds (2 of 2, Holm-adjusted p < 0.05)."
    for p in ok.pairs:
        assert p.ci == p.comparison.ci[level] and p.ci95 == p.comparison.ci[0.95] and p.ci[0] > 0

    assert [p.verdict for p in reversed_.pairs] == ["supported", "contradicted"]
    assert reversed_.pairs[1].measured == pytest.approx(_mean(C) - _mean(B)) == pytest.approx(-10.0)
    assert reversed_.note == "1 of 2 pairs hold; c > b contradicted."

    assert [p.verdict for p in tie.pairs] == ["supported", "inconclusive"]
    assert tie.pairs[1].measured == pytest.approx(_mean(B2) - _mean(B)) == pytest.approx(0.1)
    assert tie.pairs[1].p_adjusted >= 0.05
    assert tie.note == "1 of 2 pairs hold; b2 > b inconclusive."

    raw = [p.p_value for r in results for p in r.pairs]
    assert [p.p_adjusted for r in results for p in r.pairs] == pytest.approx(_holm_by_hand(raw))


def test_one_family_of_every_kind() -> None:
    """1 delta + 1 absolute + 1 ordering of 3 models: m = 4 tests, CIs at 1 - 0.05 / 4, Holm over all 4."""
    a, b, b2 = (_model(x, N_ORDER) for x in (A, B, B2))
    family = [
        (ClaimSpec("a", "b", TASK, METRIC, 5.0), (a, b)),
        (AbsoluteSpec("a", TASK, METRIC, 70.0, tolerance=0.2), a),  # seeds 69.5, 70, 70.5 against 69.8
        (OrderSpec(("a", "b2", "b"), TASK, METRIC), [a, b2, b]),
    ]
    delta, absolute, order = judge_all(family, replicates=REPLICATES)
    level = 1 - 0.05 / 4
    assert corrected_level(4) == pytest.approx(level) == pytest.approx(0.9875)
    assert delta.level == absolute.level == order.level == pytest.approx(level)
    assert delta.ci == delta.comparison.ci[level]
    assert absolute.ci == pytest.approx(_t_ci(_top1(A, N_ORDER), level))
    assert absolute.p_value == pytest.approx(stats.ttest_1samp(_top1(A, N_ORDER), 69.8).pvalue)
    raw = [delta.p_value, absolute.p_value, *(p.p_value for p in order.pairs)]
    adjusted = [delta.p_adjusted, absolute.p_adjusted, *(p.p_adjusted for p in order.pairs)]
    assert adjusted == pytest.approx(_holm_by_hand(raw))
    assert adjusted == pytest.approx(list(multipletests(raw, method="holm")[1]))
    # the step-down does something here: the smallest raw p is multiplied by 4, not 1
    smallest = min(range(4), key=lambda i: raw[i])
    assert adjusted[smallest] == pytest.approx(min(1.0, 4 * raw[smallest]))
    assert delta.verdict == "supported" and absolute.verdict == "inconclusive" and order.verdict == "inconclusive"


def test_empty_family() -> None:
    assert judge_all([]) == []


# --- schema --------------------------------------------------------------------------------------------------------


def _claim(**fields: object) -> SuiteClaim:
    return SuiteClaim.model_validate({"task": "cls", **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"model": "a", "baseline": "b", "delta": 3, "value": 90},
            "state the claim with exactly one of 'delta' (model beats baseline by delta), 'value' (model reaches "
            "value), 'order' (a > b > ...) or 'smaller' (its INT8 copy is smaller by), got ['delta', 'value']",
        ),
        ({"model": "a"}, "exactly one of 'delta'"),
        ({"order": ["a"]}, "'order' lists at least two different models, best first, got ['a']"),
        ({"order": ["a", "b", "a"]}, "'order' lists at least two different models, best first, got ['a', 'b', 'a']"),
        ({"model": "a", "baseline": "b", "value": 90}, "an absolute claim (value) names a 'model' and no 'baseline'"),
        ({"value": 90}, "an absolute claim (value) names a 'model' and no 'baseline'"),
        ({"model": "a", "baseline": "b", "delta": 3, "tolerance": 0.5}, "'tolerance' belongs to an absolute claim"),
        ({"order": ["a", "b"], "tolerance": 0.5}, "'tolerance' belongs to an absolute claim (value)"),
        (
            {"order": ["a", "b"], "model": "a"},
            "an ordering claim lists its models in 'order' and names no 'model' or 'baseline'",
        ),
        ({"order": ["a", "b"], "baseline": "b"}, "names no 'model' or 'baseline'"),
        ({"model": "a", "delta": 3}, "a delta claim names a 'model' and the 'baseline' it beats"),
        ({"model": "a", "baseline": "b", "delta": "15"}, "a relative gain with a percent sign (delta: 15%)"),
    ],
)
def test_schema_refuses(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        _claim(**fields)
    assert message in str(info.value)


def test_schema_accepts_each_kind() -> None:
    points = _claim(model="a", baseline="b", delta=3.2)
    relative = _claim(model="a", baseline="b", delta="15%")
    absolute = _claim(model="a", value=98.7, tolerance=0.5)
    order = _claim(order=["a", "b", "c"])
    assert [c.kind for c in (points, relative, absolute, order)] == ["delta", "delta", "value", "order"]
    assert (points.relative, points.amount) == (False, 3.2)
    assert (relative.relative, relative.amount) == (True, 15.0)
    assert (absolute.amount, absolute.tolerance, absolute.models) == (98.7, 0.5, ("a",))
    assert order.models == ("a", "b", "c") and order.amount == 0.0
    assert points.describe("top1") == "a beats b on cls by +3.2 points of top1"
    assert relative.describe("top1") == "a beats b on cls by +15% (relative) of top1"
    assert absolute.describe("top1") == "a reaches 98.7% top1 on cls (within 0.5 points)"
    assert order.describe("top1") == "a > b > c on cls in top1"
