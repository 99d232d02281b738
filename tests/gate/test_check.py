"""The CI gate's arithmetic on constructed baselines, against scipy; each tolerance kind; too few seeds."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from harness.gate.baseline import MetricBaseline, Tolerance
from harness.gate.check import _row

NOISE = Tolerance("noise")


def _metric(values, se=None, tol=NOISE, gate=True, hib=True) -> MetricBaseline:
    return MetricBaseline("t/m/acc", dict(enumerate(values)), gate, hib, tol, se, 100)


def test_noise_threshold_and_p_value_against_scipy() -> None:
    b = _metric([50.0, 52.0, 54.0], se=1.0)  # s^2 = 4, sampling se 1: sigma^2 = 5
    level = 0.01 / 4  # the check's false-alarm rate over 4 noise-gated metrics
    row = _row(b, [49.0, 50.0], level)
    se = math.sqrt(5 * (1 / 3 + 1 / 2))
    assert row.se == pytest.approx(se)
    assert row.threshold == pytest.approx(stats.norm.ppf(1 - level) * se)
    assert row.drop == pytest.approx(52.0 - 49.5)
    assert row.p_value == pytest.approx(stats.norm.sf(2.5 / se))
    assert row.ci95 == pytest.approx((-2.5 - 1.959964 * se, -2.5 + 1.959964 * se))
    assert row.status == "ok"  # 2.5 points is within 3.8 (the threshold)
    # a drop this size would be told apart with n seeds per side: 2.5 >= z * sqrt(5 * 2 / n)
    n = row.seeds_to_tell
    assert n == math.ceil(2 * 5 * (stats.norm.ppf(1 - level) / 2.5) ** 2)
    assert (
        stats.norm.ppf(1 - level) * math.sqrt(10 / n) <= 2.5
        and stats.norm.ppf(1 - level) * math.sqrt(10 / (n - 1)) > 2.5
    )


def test_a_real_drop_is_flagged() -> None:
    row = _row(_metric([50.0, 52.0, 54.0], se=1.0), [40.0, 41.0], 0.0025)
    assert row.status == "regressed" and row.drop == pytest.approx(11.5) and row.p_value < 1e-6


def test_seeds_that_agree_do_not_give_a_zero_tolerance() -> None:
    row = _row(_metric([61.97, 61.97], se=2.0), [61.0, 60.0], 0.002)
    assert row.se == pytest.approx(math.sqrt(4 * (1 / 2 + 1 / 2)))
    assert row.threshold == pytest.approx(stats.norm.ppf(0.998) * 2.0)
    assert row.status == "ok"  # a drop of 1.47 points, within 5.76


def test_lower_is_better_metrics_drop_the_other_way() -> None:
    row = _row(_metric([10.0, 10.0], se=0.5, hib=False), [14.0, 14.0], 0.01)
    assert row.drop == pytest.approx(4.0) and row.status == "regressed"


def test_abs_and_rel_tolerances() -> None:
    assert _row(_metric([50.0, 50.0], tol=Tolerance("abs", 0.5)), [49.4, 49.4], 0.01).status == "regressed"
    assert _row(_metric([50.0, 50.0], tol=Tolerance("abs", 0.5)), [49.6, 49.6], 0.01).status == "ok"
    rel = _row(_metric([50.0], tol=Tolerance("rel", 2.0)), [48.9], 0.01)  # 2% of 50 = 1 point; 1 seed is enough
    assert rel.threshold == pytest.approx(1.0) and rel.status == "regressed"


def test_one_baseline_seed_cannot_tell() -> None:
    row = _row(_metric([50.0], se=1.0), [40.0, 41.0], 0.01)
    assert row.status == "cannot tell" and "at least 2 are needed" in row.note
    assert _row(_metric([50.0], se=1.0, gate=False), [40.0], 0.01).status == "info"


def test_sub_metrics_are_reported_not_gated() -> None:
    row = _row(_metric([50.0, 52.0, 54.0], se=1.0, gate=False), [10.0, 11.0], 0.01)
    assert row.status == "info" and row.drop > row.threshold
