"""Calibration and speed of the claim verdicts (``harness.stats``), measured.

Run: ``.venv/bin/python -m pytest benchmarks/test_stats_calibration.py --benchmark-only -q -s``

Calibration: simulated VQA-like pairs of models (``tests/stats/calibration.py``: 5,000 questions over 1,500 images,
image and question difficulty shared by both models, a seed effect and per-question seed noise), judged by the real
:func:`harness.stats.claims.judge` with 2,000 replicates per simulation (``XMBENCH_CALIBRATION_SIMS`` simulations per
scenario, default 1,000):

* the null (same true accuracy, 3 seeds and 2 seeds per model): the share of "supported" verdicts for a +3 claim
  must be at most 5% (nominal: 2.5%, the CI's lower tail), and the share of p < 0.05 is reported (nominal 5%);
* a true gain of 3 points: the share of "supported" for claims of +3 and +1 (the power);
* a stress case, reported and not asserted: the null with a seed effect that dominates the test-set noise (a seed
  standard deviation of about 2 points of accuracy) and 3 seeds, where the bootstrap over 3 seeds is known to be too
  narrow (see ``docs/statistics.md``).

Speed: one paired comparison of VQA v2 size (214,354 questions over 40,504 images, 3 seeds per model, 10,000
replicates) and one of COCO multi-label size (40,504 images x 80 classes, mAP, 1 seed each, 2,000 replicates).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from scipy.stats import binomtest

from harness.stats.evidence import Evidence, multilabel_evidence, vqa_evidence
from harness.stats.paired import compare
from tests.stats.calibration import Rates, World, run

SIMULATIONS = int(os.environ.get("XMBENCH_CALIBRATION_SIMS", "1000"))
REPLICATES = 2_000


def _share(rate: float, n: int) -> str:
    k = round(rate * n)
    ci = binomtest(k, n).proportion_ci(0.95)
    return f"{100 * rate:5.1f}% [{100 * ci.low:.1f}, {100 * ci.high:.1f}]"


def _line(name: str, rates: Rates, claim: float) -> str:
    v = rates.verdicts[claim]
    return (
        f"{name:<44} claim {claim:+g}: supported {_share(v['supported'], rates.simulations)}  "
        f"contradicted {100 * v['contradicted']:5.1f}%  inconclusive {100 * v['inconclusive']:5.1f}%  "
        f"p<0.05 {_share(rates.p_below_05, rates.simulations)}  mean delta {rates.mean_delta:+.2f}  "
        f"mean se {rates.mean_se:.2f}"
    )


def test_calibration_of_the_verdicts(benchmark) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    results: dict[str, tuple[Rates, tuple[float, ...]]] = {}

    def measure() -> None:
        n = SIMULATIONS
        results["null, 3 seeds"] = (run(World(), 0.0, (3.0,), n, REPLICATES, seed=1), (3.0,))
        results["null, 2 seeds"] = (run(World(n_seeds=2), 0.0, (3.0,), n, REPLICATES, seed=2), (3.0,))
        results["gain +3, 3 seeds"] = (run(World(), 3.0, (3.0, 1.0), n, REPLICATES, seed=3), (3.0, 1.0))
        stress = World(seed_sd=0.1)
        results["stress: null, seed sd ~2 points, 3 seeds"] = (run(stress, 0.0, (3.0,), n // 2, REPLICATES, 4), (3.0,))

    start = time.perf_counter()
    benchmark.pedantic(measure, rounds=1, iterations=1, warmup_rounds=0)
    seconds = time.perf_counter() - start
    print(f"\n{SIMULATIONS} simulations per scenario (stress: {SIMULATIONS // 2}), {REPLICATES} replicates each")
    for name, (rates, claims) in results.items():
        for claim in claims:
            print(_line(name, rates, claim))
    print(f"({seconds:.0f} s)")
    benchmark.extra_info.update(
        {
            name: {"simulations": r.simulations, "verdicts": r.verdicts, "p_below_05": r.p_below_05}
            for name, (r, _) in results.items()
        }
    )
    for name in ("null, 3 seeds", "null, 2 seeds"):
        assert results[name][0].verdicts[3.0]["supported"] <= 0.05, name
    power = results["gain +3, 3 seeds"][0]
    assert power.verdicts[3.0]["supported"] >= 0.8 and power.verdicts[1.0]["supported"] >= 0.8


def _vqa_seeds(template: Evidence, accuracy: float, rng: np.random.Generator, n: int) -> list[Evidence]:
    size = len(template.arrays["accuracy"])
    return [
        Evidence("vqa", {**template.arrays, "accuracy": (rng.random(size) < accuracy).astype(np.float64)})
        for _ in range(n)
    ]


def test_compare_speed(benchmark) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    rng = np.random.default_rng(0)
    n_q, n_img = 214_354, 40_504
    image = np.concatenate([np.arange(n_img), rng.integers(0, n_img, n_q - n_img)])
    types = rng.choice(["yes/no", "number", "other"], n_q).tolist()
    template = vqa_evidence(np.arange(n_q), image, np.zeros(n_q), types)
    a, b = _vqa_seeds(template, 0.70, rng, 3), _vqa_seeds(template, 0.69, rng, 3)

    targets = (rng.random((n_img, 80)) < 0.036).astype(np.uint8)
    ids = np.arange(n_img)
    ml_a = multilabel_evidence(ids, ids, (rng.random((n_img, 80)) + 0.3 * targets).astype(np.float32), targets)
    ml_b = multilabel_evidence(ids, ids, (rng.random((n_img, 80)) + 0.2 * targets).astype(np.float32), targets)
    times: dict[str, float] = {}

    def measure() -> None:
        start = time.perf_counter()
        vqa = compare(a, b, "vqa_accuracy", replicates=10_000)
        times["vqa"] = time.perf_counter() - start
        start = time.perf_counter()
        ml = compare([ml_a], [ml_b], "mAP", replicates=10_000)
        times["map"] = time.perf_counter() - start
        assert vqa.replicates == 10_000 and ml.replicates == 2_000

    benchmark.pedantic(measure, rounds=1, iterations=1, warmup_rounds=0)
    print(
        f"\nVQA v2 size, 3 seeds per model, 10,000 replicates: {times['vqa']:.1f} s; "
        f"COCO multi-label size mAP, 1 seed each, 2,000 replicates: {times['map']:.1f} s"
    )
    benchmark.extra_info.update({"vqa_v2_compare_s": times["vqa"], "coco_map_compare_s": times["map"]})
    assert times["vqa"] < 60 and times["map"] < 120  # 2 shared cores; typically about 8 s and 30 s
