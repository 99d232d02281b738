"""Quantisation claims (``smaller: 75%``, optionally ``max_drop``) on constructed results: the exact size part, the
non-inferiority accuracy part against a hand computation, their place in the Holm family, and the schema's rules."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from harness.stats.claims import (
    AbsoluteSpec,
    Int8Result,
    Int8Spec,
    corrected_level,
    int8_verdict,
    judge_all,
)
from harness.stats.evidence import Evidence, classification_evidence
from harness.suite.schema import ClaimSpec as SuiteClaim

REPLICATES = 2_000
N = 400


def _seed(right: np.ndarray) -> Evidence:
    ids = np.arange(len(right))
    return classification_evidence(ids, ids, np.zeros(len(right), dtype=np.int64), np.where(right, 0, 1))


def _fp32_int8(flips: list[int], base: int = 300) -> tuple[list[Evidence], list[Evidence]]:
    """Per seed: fp32 gets the first ``base + seed`` examples right; its INT8 copy loses the first ``flip`` of them
    (so int8 - fp32 is exactly ``-100 * flip / N`` points on that seed)."""
    fp32, int8 = [], []
    for s, flip in enumerate(flips):
        right = np.arange(N) < base + 10 * s
        fp32.append(_seed(right))
        q = right.copy()
        q[:flip] = False
        int8.append(_seed(q))
    return fp32, int8


def test_size_part_is_exact_and_adds_no_test():
    spec = Int8Spec("clip", "ret", "r_mean", 75.0)
    [short] = judge_all([(spec, (56.6, None, None))], replicates=REPLICATES)
    [enough] = judge_all([(spec, (75.0, None, None))], replicates=REPLICATES)
    assert isinstance(short, Int8Result)
    assert (short.verdict, short.measured, short.p_value, short.ci) == ("contradicted", 56.6, None, None)
    assert enough.verdict == "supported"
    assert "56.6% smaller on disk (claimed 75%)" in short.note
    # A size claim beside one absolute claim: m = 1, so the absolute claim's CI is at 95%, not 97.5%.
    ev = [_seed(np.arange(N) < 300)]
    results = judge_all([(spec, (80.0, None, None)), (AbsoluteSpec("m", "t", "top1", 70.0), ev)], REPLICATES)
    assert results[1].level == pytest.approx(0.95)


def test_accuracy_part_matches_matched_seed_hand_computation():
    fp32, int8 = _fp32_int8([4, 6, 8])  # -1.0, -1.5, -2.0 points: mean change -1.5
    spec = Int8Spec("clip", "ret", "top1", 50.0, max_drop=5.0)
    [res] = judge_all([(spec, (60.0, int8, fp32))], replicates=REPLICATES)
    assert res.change == pytest.approx(-1.5)
    # Non-inferiority p-value by hand: one-sided normal with the bootstrap se.
    se = res.comparison.se
    assert res.p_value == pytest.approx(stats.norm.sf((-1.5 + 5.0) / se))
    assert res.level == pytest.approx(0.95)  # one test in the family
    assert res.ci[0] >= -5.0 and res.verdict == "supported"
    # The same data against a 0.25-point allowance: the whole CI lies below it (every seed lost >= 1 point).
    [strict] = judge_all([(Int8Spec("clip", "ret", "top1", 50.0, max_drop=0.25), (60.0, int8, fp32))], REPLICATES)
    assert strict.ci[1] < -0.25 and strict.verdict == "contradicted"


def test_size_shortfall_decides_even_when_accuracy_holds():
    fp32, int8 = _fp32_int8([0, 0, 0])
    [res] = judge_all([(Int8Spec("m", "t", "top1", 75.0, max_drop=1.0), (48.2, int8, fp32))], REPLICATES)
    assert res.change == 0.0 and res.verdict == "contradicted"


def test_int8_test_joins_the_holm_family():
    fp32, int8 = _fp32_int8([4, 6, 8])
    ev = [_seed(np.arange(N) < 300)]
    family = [
        (Int8Spec("m", "t", "top1", 50.0, max_drop=5.0), (60.0, int8, fp32)),
        (AbsoluteSpec("m", "t", "top1", 70.0), ev),
    ]
    a, b = judge_all(family, replicates=REPLICATES)
    assert a.level == pytest.approx(corrected_level(2)) == pytest.approx(0.975)
    raw = sorted([a.p_value, b.p_value])
    # Holm by hand for two tests: min(1, 2 p_(1)), max(that, p_(2)).
    first = min(1.0, 2 * raw[0])
    expected = {raw[0]: first, raw[1]: max(first, raw[1])}
    assert a.p_adjusted == pytest.approx(expected[a.p_value])
    assert b.p_adjusted == pytest.approx(expected[b.p_value])


@pytest.mark.parametrize(
    ("measured", "ci", "max_drop", "verdict"),
    [
        (76.0, None, None, "supported"),
        (74.9, None, None, "contradicted"),
        (76.0, (-0.4, 0.3), 0.5, "supported"),
        (76.0, (-0.9, 0.3), 0.5, "inconclusive"),
        (76.0, (-2.0, -0.6), 0.5, "contradicted"),
        (70.0, (-0.1, 0.1), 0.5, "contradicted"),
    ],
)
def test_int8_verdict_rules(measured, ci, max_drop, verdict):
    assert int8_verdict(measured, 75.0, ci, max_drop) == verdict


def test_schema_states_smaller_claims():
    c = SuiteClaim(model="clip", task="ret", smaller="75%", max_drop=0.5)
    assert (c.kind, c.amount, c.max_drop) == ("smaller", 75.0, 0.5)
    assert SuiteClaim(model="clip", task="ret", smaller=75).amount == 75.0
    assert c.describe("r_mean") == (
        "clip's dynamic-INT8 copy is 75% smaller on disk (ret), losing at most 0.5 points of r_mean"
    )
    with pytest.raises(ValidationError, match="between 0 and 100"):
        SuiteClaim(model="clip", task="ret", smaller="175%")
    with pytest.raises(ValidationError, match="expected a percentage"):
        SuiteClaim(model="clip", task="ret", smaller="lots")
    with pytest.raises(ValidationError, match="names a 'model' and no 'baseline'"):
        SuiteClaim(model="clip", baseline="vit", task="ret", smaller="75%")
    with pytest.raises(ValidationError, match="'max_drop' belongs to a quantisation claim"):
        SuiteClaim(model="clip", task="ret", value=90, max_drop=1)
    with pytest.raises(ValidationError, match="exactly one of"):
        SuiteClaim(model="clip", task="ret", value=90, smaller="75%")
