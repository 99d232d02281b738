"""Simulated pairs of VQA-like models for the calibration of :func:`harness.stats.claims.judge` (used by
``tests/stats/test_calibration.py`` and ``benchmarks/test_stats_calibration.py``).

One simulated test set: ``n_questions`` questions over ``n_images`` images (every image has at least one question).
Question ``q`` about image ``i`` is answered correctly by seed ``k`` of model ``m`` when

    mu_m + u_i + v_q + s_mk + e_mkq + xi_mkq > 0,

with ``u_i ~ N(0, image_sd)`` the image's difficulty and ``v_q ~ N(0, question_sd)`` the question's (both shared by
the two models: correlated errors within an image and between the models), ``s_mk ~ N(0, seed_sd)`` the seed's
effect on the whole test set, ``e_mkq ~ N(0, noise_sd)`` the seed's per-question noise, ``xi ~ N(0, 1)``. The true
accuracy of a model, over test sets and seeds, is ``Phi(mu_m / sqrt(1 + image_sd² + question_sd² + seed_sd² +
noise_sd²))``, so ``mu_m`` is set from the accuracy asked for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from harness.stats.claims import ClaimSpec, judge
from harness.stats.evidence import Evidence, vqa_evidence


@dataclass(frozen=True)
class World:
    n_questions: int = 5_000
    n_images: int = 1_500
    n_seeds: int = 3
    image_sd: float = 1.0
    question_sd: float = 0.8
    seed_sd: float = 0.03  # about 0.65 points of accuracy
    noise_sd: float = 0.7
    accuracy_b: float = 0.60

    def mu(self, accuracy: float) -> float:
        total = 1 + self.image_sd**2 + self.question_sd**2 + self.seed_sd**2 + self.noise_sd**2
        return float(norm.ppf(accuracy) * np.sqrt(total))


def simulate(world: World, gain: float, rng: np.random.Generator) -> tuple[list[Evidence], list[Evidence]]:
    """Evidence of model a (true accuracy ``accuracy_b + gain / 100``) and model b over ``n_seeds`` seeds each."""
    n_q, n_i = world.n_questions, world.n_images
    image = np.concatenate([np.arange(n_i), rng.integers(0, n_i, n_q - n_i)])
    base = rng.normal(0, world.image_sd, n_i)[image] + rng.normal(0, world.question_sd, n_q)
    template = vqa_evidence(np.arange(n_q), image, np.zeros(n_q), ["other"] * n_q)

    def model(accuracy: float) -> list[Evidence]:
        out = []
        for _ in range(world.n_seeds):
            latent = world.mu(accuracy) + base + rng.normal(0, world.seed_sd)
            latent = latent + rng.normal(0, world.noise_sd, n_q) + rng.normal(0, 1, n_q)
            # the template's label arrays, this seed's per-question accuracy (what vqa_evidence would build, faster)
            out.append(Evidence("vqa", {**template.arrays, "accuracy": (latent > 0).astype(np.float64)}))
        return out

    return model(world.accuracy_b + gain / 100), model(world.accuracy_b)


@dataclass(frozen=True)
class Rates:
    simulations: int
    verdicts: dict[float, dict[str, float]]  # claimed delta -> verdict -> share of simulations
    p_below_05: float  # share of simulations with p < 0.05 (the first claim's comparison)
    mean_delta: float
    mean_se: float


def run(
    world: World, gain: float, claims: tuple[float, ...], simulations: int, replicates: int, seed: int = 0
) -> Rates:
    """Simulate ``simulations`` test sets with a true gain of ``gain`` points and judge each claimed delta on its own
    (one claim at a time: the 95% level) with the real :func:`judge`."""
    rng = np.random.default_rng(seed)
    counts: dict[float, Counter] = {c: Counter() for c in claims}
    significant = 0
    deltas, ses = [], []
    for i in range(simulations):
        a, b = simulate(world, gain, rng)
        for k, claimed in enumerate(claims):
            spec = ClaimSpec("a", "b", "vqa", "vqa_accuracy", claimed)
            result = judge([(spec, a, b)], replicates=replicates, seed=1000 * i + k)[0]
            counts[claimed][result.verdict] += 1
            if k == 0:
                significant += result.p_value < 0.05
                deltas.append(result.measured)
                ses.append(result.comparison.se)
    return Rates(
        simulations,
        {c: {v: counts[c][v] / simulations for v in ("supported", "contradicted", "inconclusive")} for c in claims},
        significant / simulations,
        float(np.mean(deltas)),
        float(np.mean(ses)),
    )
