"""Intervals of one model's metric: Student-t over seeds (against scipy's quantiles), the one-seed cluster bootstrap
(against the binomial normal approximation, and wider than an example-level bootstrap by about the square root of
the design effect on clustered data), and runs without evidence."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from harness.stats.evidence import classification_evidence, vqa_evidence
from harness.stats.intervals import CLUSTER_METHOD, NO_CI_METHOD, T_METHOD, metric_interval, t_interval
from harness.stats.paired import cluster_bootstrap

ROOT = Path(__file__).resolve().parents[2]


def test_t_interval_is_the_student_t_interval() -> None:
    values = [70.1, 71.3, 69.8]
    mean, s = sum(values) / 3, float(np.std(values, ddof=1))
    for level in (0.95, 0.9):
        half = stats.t.ppf((1 + level) / 2, df=2) * s / math.sqrt(3)
        iv = t_interval(values, level)
        assert iv.value == pytest.approx(70.4)
        assert (iv.lo, iv.hi) == pytest.approx((mean - half, mean + half), abs=1e-12)
        assert iv.std == pytest.approx(0.7937253933193772)  # sqrt(((-.3)^2 + .9^2 + (-.6)^2) / 2)
        assert (iv.method, iv.n_seeds, iv.level, iv.values) == (T_METHOD, 3, level, tuple(values))
    assert t_interval([70.1, 71.3, 69.8]).hi == pytest.approx(70.4 + 4.302652729911275 * 0.7937253933193772 / 3**0.5)


def test_t_interval_edge_cases() -> None:
    same = t_interval([50.0, 50.0])
    assert (same.lo, same.value, same.hi, same.std) == (50.0, 50.0, 50.0, 0.0)
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        t_interval([50.0])
    with pytest.raises(ValueError, match="finite"):
        t_interval([50.0, float("nan")])


def test_plain_values_of_older_runs() -> None:
    two = metric_interval([60.0, 62.0], "top1")
    assert (two.method, two.value, two.n_clusters) == (T_METHOD, 61.0, None)
    assert two.hi == pytest.approx(61 + stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2))
    one = metric_interval([60.0], "top1")
    assert (one.value, one.lo, one.hi, one.method, one.n_seeds, one.half_width) == (
        60.0,
        None,
        None,
        NO_CI_METHOD,
        1,
        None,
    )
    with pytest.raises(ValueError, match="every seed's Evidence or every seed's value"):
        metric_interval([60.0, "x"], "top1")  # type: ignore[list-item]


def _classification(correct: np.ndarray, clusters: np.ndarray | None = None):
    n = len(correct)
    ids = np.arange(n)
    return classification_evidence(ids, ids if clusters is None else clusters, np.zeros(n), np.where(correct, 0, 3))


def test_seeds_with_evidence_give_the_t_interval_of_their_exact_metrics() -> None:
    rng = np.random.default_rng(0)
    evs = [_classification(rng.random(400) < p) for p in (0.6, 0.65, 0.7)]
    values = [e.recompute()["top1"] for e in evs]
    iv = metric_interval(evs, "top1")
    ref = t_interval(values)
    assert (iv.lo, iv.hi, iv.values, iv.n_clusters, iv.method) == (ref.lo, ref.hi, ref.values, 400, T_METHOD)
    with pytest.raises(ValueError, match="no metric 'mAP'"):
        metric_interval(evs, "mAP")


def test_one_seed_bootstrap_matches_the_binomial_interval() -> None:
    # Every example its own cluster, 2,000 examples, 70% correct: the CI is 70 ± 1.96 * sqrt(.7 * .3 / 2000) points.
    correct = np.zeros(2000, dtype=bool)
    correct[:1400] = True
    iv = metric_interval([_classification(correct)], "top1", replicates=20_000)
    half = 100 * 1.959964 * math.sqrt(0.7 * 0.3 / 2000)  # 2.008 points
    assert iv.method == CLUSTER_METHOD and (iv.n_seeds, iv.n_clusters, iv.replicates) == (1, 2000, 20_000)
    assert iv.value == 70.0 and iv.std is None
    assert iv.lo == pytest.approx(70 - half, abs=0.12) and iv.hi == pytest.approx(70 + half, abs=0.12)
    again = metric_interval([_classification(correct)], "top1", replicates=20_000)
    assert (again.lo, again.hi) == (iv.lo, iv.hi)  # seeded: reproducible


def test_cluster_bootstrap_is_wider_than_an_example_bootstrap_by_sqrt_design_effect() -> None:
    # 600 images x 8 questions; each question copies its image's outcome with probability 0.6: strongly correlated
    # within an image. For equal-size clusters the design effect is m * var(cluster means) / var(answers).
    rng = np.random.default_rng(1)
    images, per = 600, 8
    image = np.repeat(np.arange(images), per)
    shared = rng.random(images) < 0.55
    own = rng.random(images * per) < 0.55
    correct = np.where(rng.random(images * per) < 0.6, shared[image], own)
    acc = correct.astype(float)
    means = acc.reshape(images, per).mean(axis=1)
    deff = per * means.var() / acc.var()
    assert 3.0 < deff < 4.5  # 1 + (m - 1) * rho with rho = 0.6^2: 3.52 in expectation

    by_image = cluster_bootstrap([vqa_evidence(np.arange(len(acc)), image, acc, ["other"] * len(acc))], "vqa_accuracy")
    by_example = cluster_bootstrap(
        [vqa_evidence(np.arange(len(acc)), np.arange(len(acc)), acc, ["other"] * len(acc))], "vqa_accuracy"
    )
    assert (by_image.n_clusters, by_example.n_clusters) == (600, 4800)
    ratio = (by_image.hi - by_image.lo) / (by_example.hi - by_example.lo)
    assert ratio == pytest.approx(math.sqrt(deff), rel=0.08)
    assert ratio > 1.7  # an example-level bootstrap would be far too narrow here


def test_several_seeds_in_the_cluster_bootstrap_average_them() -> None:
    rng = np.random.default_rng(2)
    evs = [_classification(rng.random(500) < 0.6) for _ in range(2)]
    iv = cluster_bootstrap(evs, "top1", replicates=2_000)
    assert iv.method == "bootstrap over image clusters (2 seeds, not resampled)"
    assert iv.value == pytest.approx(np.mean([e.recompute()["top1"] for e in evs]))
    assert iv.lo < iv.value < iv.hi


def test_no_stats_module_imports_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "import harness.stats, harness.stats.evidence, harness.stats.intervals, harness.stats.paired\n"
        "import harness.stats.claims\n"
        "from harness.stats.evidence import classification_evidence as ce\n"
        "a = ce(range(20), range(20), np.zeros(20), np.arange(20) % 3)\n"
        "b = ce(range(20), range(20), np.zeros(20), np.arange(20) % 2)\n"
        "from harness.stats.claims import ClaimSpec, judge\n"
        "s = ClaimSpec('a', 'b', 't', 'top1', 1.0)\n"
        "judge([(s, [a], [b]), (s, [a], [b])], replicates=50)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
