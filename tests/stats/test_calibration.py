"""A quick guard of the calibration that ``benchmarks/test_stats_calibration.py`` measures in full (see
``docs/statistics.md``): on simulated VQA-like pairs of models with clustered, correlated errors and a seed effect,
:func:`judge` rarely supports a +3 claim when the two models are equally good, and usually supports it when the
gain is real. 200 null simulations and 100 with a gain, 1,000 replicates each; loose bounds (the benchmark has the
precise figures)."""

from __future__ import annotations

from tests.stats.calibration import World, run


def test_null_rarely_supports_a_claim_and_a_real_gain_usually_does() -> None:
    world = World()  # 5,000 questions over 1,500 images, 3 seeds per model
    null = run(world, gain=0.0, claims=(3.0,), simulations=200, replicates=1_000, seed=11)
    assert null.verdicts[3.0]["supported"] <= 0.06  # nominal 2.5% (one-sided); measured 0.2% (benchmark)
    assert null.p_below_05 <= 0.09  # nominal 5%; measured 1.5% (benchmark)
    assert abs(null.mean_delta) < 0.25 and 0.7 < null.mean_se < 1.2

    gain = run(world, gain=3.0, claims=(3.0,), simulations=100, replicates=1_000, seed=12)
    assert gain.verdicts[3.0]["supported"] >= 0.80  # measured 92.4% (benchmark; binomial sd here 2.6%)
    assert abs(gain.mean_delta - 3.0) < 0.4
