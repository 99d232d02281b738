"""Claims judged against the evidence, with a correction for the number of claims (see ``docs/statistics.md``).

Three kinds, judged together as one family of ``m`` tests (delta and value claims count one each, an ordering of
``k`` models counts ``k - 1``); every CI is at the Bonferroni-corrected level ``1 - 0.05 / m`` and every p-value is
Holm-adjusted (statsmodels) over the ``m``:

- **delta** ("model beats baseline by +3.2 points", or ``15%`` relative: ``100 * (mean_a / mean_b - 1)``), on the
  paired bootstrap:
  - *supported*: the corrected CI's lower bound is above 0 and the claimed delta is at most its upper bound (a gain
    at least as large as claimed is plausible and no gain is not);
  - *contradicted*: the corrected CI's upper bound is below the claimed delta (the gain, if any, is smaller);
  - *inconclusive*: otherwise; the result then says how many seeds per model (or test examples) would likely
    settle it, from the observed variance components.
- **value** ("reaches 98.7% top-1", optionally with a tolerance in points), on the model's own interval (t over
  seeds, or a cluster bootstrap with one seed): supported when the corrected CI lies at or above ``value -
  tolerance``, contradicted when it lies below, inconclusive when it holds it.
- **smaller** ("the INT8 copy is 75% smaller"): the size reduction on disk is exact (no test): contradicted when it
  falls short; with ``max_drop`` ("and loses at most 0.5 points"), the paired INT8 - fp32 change (matched seeds)
  must also have its corrected CI at or above ``-max_drop`` (one test of the family, non-inferiority p-value);
- **order** ("a > b > c"): each adjacent pair is a paired comparison; a pair holds when its Holm-adjusted p-value
  is below 0.05 and the difference has the stated sign. The ordering is supported only when every pair holds, and
  contradicted when any pair is significant the other way.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.stats.evidence import Evidence
from harness.stats.paired import Comparison, compare

__all__ = [
    "ALPHA",
    "POWER",
    "AbsoluteResult",
    "AbsoluteSpec",
    "ClaimResult",
    "ClaimSpec",
    "Int8Result",
    "Int8Spec",
    "OrderResult",
    "OrderSpec",
    "PairResult",
    "Projection",
    "compare_all",
    "holm",
    "judge",
    "judge_all",
    "parse_delta",
    "project",
]

ALPHA = 0.05  # family-wise error rate of a set of claims
POWER = 0.8  # for the minimum detectable effect
VERDICTS = ("supported", "contradicted", "inconclusive")


@dataclass(frozen=True)
class ClaimSpec:
    """``model`` beats ``baseline`` on ``task`` by ``delta`` of ``metric``: percentage points, or percent of the
    baseline's mean when ``relative`` (``delta: 15%`` -> ``delta=15.0, relative=True``)."""

    model: str
    baseline: str
    task: str
    metric: str
    delta: float
    relative: bool = False
    source: str = ""

    def describe(self) -> str:
        amount = f"{self.delta:+g}% (relative)" if self.relative else f"{self.delta:+g} points"
        return f"{self.model} beats {self.baseline} on {self.task} by {amount} of {self.metric}"


@dataclass(frozen=True)
class ClaimResult:
    """The verdict on one claim.

    ``measured`` is the observed delta (points, or percent when the claim is relative); ``ci`` the corrected
    (Bonferroni, ``level``) percentile CI on which the verdict rests, ``ci95`` the uncorrected 95% CI; ``p_value``
    the paired bootstrap p-value of "no difference", ``p_adjusted`` its Holm adjustment over the claims judged
    together; ``mde`` the minimum detectable effect at 80% power at the corrected level; ``seeds_needed`` /
    ``examples_needed`` (inconclusive claims only) the seeds per model / test clusters that would likely settle it.
    """

    claim: ClaimSpec
    measured: float
    ci: tuple[float, float]
    level: float
    ci95: tuple[float, float]
    p_value: float
    p_adjusted: float
    verdict: str
    mde: float
    seeds_needed: int | None
    examples_needed: int | None
    note: str
    comparison: Comparison


@dataclass(frozen=True)
class Projection:
    """What would likely settle an inconclusive claim (see :func:`project`)."""

    seeds_needed: int | None
    examples_needed: int | None
    note: str


def parse_delta(text: str | float) -> tuple[float, bool]:
    """``"3.2"`` / ``"+3.2"`` -> ``(3.2, False)`` (points); ``"15%"`` -> ``(15.0, True)`` (relative).

    Raises ``ValueError`` on anything else."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value, relative = float(text), False
    else:
        m = re.fullmatch(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(%?)\s*", str(text))
        if m is None:
            raise ValueError(f"expected points (3.2) or a relative gain with a percent sign (15%), got {text!r}")
        value, relative = float(m.group(1)), m.group(2) == "%"
    if not math.isfinite(value):
        raise ValueError(f"expected a finite delta, got {text!r}")
    return value, relative


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (statsmodels ``multipletests(method="holm")``), in the input order."""
    from statsmodels.stats.multitest import multipletests

    if len(p_values) <= 1:  # one p-value is its own adjustment (and multipletests runs gc.collect() every call)
        return [min(1.0, float(p)) for p in p_values]
    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def corrected_level(m: int, alpha: float = ALPHA) -> float:
    """The Bonferroni-corrected confidence level for ``m`` claims: ``1 - alpha / m``."""
    if m < 1:
        raise ValueError(f"the number of claims is at least 1, got {m}")
    return 1 - alpha / m


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - (1 - level) / 2))


def minimum_detectable_effect(se: float, level: float, power: float = POWER) -> float:
    """``(z_{1 - alpha'/2} + z_power) * se`` with ``alpha' = 1 - level``: the true delta a two-sided test at
    ``alpha'`` detects with probability ``power`` when the delta's standard error is ``se``."""
    from scipy.stats import norm

    return (_z(level) + float(norm.ppf(power))) * se


def project(
    delta: float,
    claimed: float,
    *,
    level: float,
    se_clusters: float,
    seed_var_a: float | None,
    seed_var_b: float | None,
    n_seeds: int,
    n_clusters: int,
) -> Projection:
    """Seeds per model, or test clusters, at which the corrected CI around the observed ``delta`` would likely leave
    out a boundary it now holds (0 or ``claimed``), settling an inconclusive claim.

    The projected standard error with ``n`` seeds per model and ``C'`` clusters is
    ``se(n, C')^2 = (s2_a + s2_b) / n + se_clusters^2 * C / C'`` (``s2`` the between-seed variances; with
    ``n_a = n_b = n_now`` the seed part is ``se_seeds^2 * n_now / n``; the cluster part is assumed to shrink as
    ``1 / clusters``); the CI ``delta ± z * se`` settles the claim once ``z * se < h``, ``h`` the distance from
    ``delta`` to the farther of the two boundaries on its side (``max(delta, claimed - delta)``), because the CI
    leaves out that boundary first. ``seeds_needed`` is the smallest ``n`` (above ``n_seeds``) with
    ``se(n, C) * z < h``; when the cluster part alone is too wide (``z * se_clusters >= h``) more seeds cannot settle
    it and ``examples_needed`` is the number of clusters that would (with the current seeds; when the seed part is
    too wide as well, half of the budget goes to each and both counts are given). With one seed the seed variance
    is unknown: at least 2 seeds per model are needed to estimate it.
    """
    z = _z(level)
    h = max(delta, 0.0, claimed - delta)
    budget = (h / z) ** 2
    cluster_var = se_clusters**2
    seeds_known = seed_var_a is not None and seed_var_b is not None
    if h <= 0:
        return Projection(None, None, "the observed delta sits on the boundary: no sample size would settle it")

    def clusters_for(var: float) -> int:
        return max(n_clusters + 1, math.floor(n_clusters * cluster_var / var) + 1)

    if not seeds_known:
        if cluster_var >= budget:
            c = clusters_for(budget)
            return Projection(
                None,
                c,
                f"more seeds cannot settle it (the test set alone is too small): at least {c} test clusters (now "
                f"{n_clusters}) would be needed, and at least 2 seeds per model to estimate the seed variance",
            )
        return Projection(
            None, None, "at least 2 seeds per model are needed to estimate the seed variance and project the seeds"
        )
    seed_var = seed_var_a + seed_var_b  # type: ignore[operator]
    if cluster_var < budget:
        n = max(n_seeds + 1, math.floor(seed_var / (budget - cluster_var)) + 1) if seed_var > 0 else n_seeds + 1
        return Projection(
            n, None, f"about {n} seeds per model (now {n_seeds}) would likely settle it, from the observed variances"
        )
    if seed_var / n_seeds < budget:
        c = clusters_for(budget - seed_var / n_seeds)
        return Projection(
            None,
            c,
            f"more seeds cannot settle it (the test set alone is too small): about {c} test clusters (now "
            f"{n_clusters}) with {n_seeds} seeds per model would settle it",
        )
    c = clusters_for(budget / 2)
    n = max(n_seeds + 1, math.floor(seed_var / (budget / 2)) + 1)
    return Projection(
        n,
        c,
        f"more seeds alone cannot settle it (the test set is too small): about {c} test clusters (now {n_clusters}) "
        f"and {n} seeds per model would settle it",
    )


def verdict(ci: tuple[float, float], claimed: float) -> str:
    """supported / contradicted / inconclusive from the corrected CI (see the module docstring)."""
    lo, hi = ci
    if lo > 0 and claimed <= hi:
        return "supported"
    if hi < claimed:
        return "contradicted"
    return "inconclusive"


def _span(ci: tuple[float, float], level: float, relative: bool) -> str:
    if relative:
        return f"{100 * level:.4g}% CI [{ci[0]:+.2f}%, {ci[1]:+.2f}%]"
    return f"{100 * level:.4g}% CI [{ci[0]:+.2f}, {ci[1]:+.2f}] points"


def _claimed(claimed: float, relative: bool) -> str:
    return f"the claimed {claimed:+g}%" if relative else f"the claimed {claimed:+g} points"


def _note(v: str, ci: tuple[float, float], level: float, claimed: float, relative: bool) -> str:
    span, what = _span(ci, level, relative), _claimed(claimed, relative)
    if v == "supported":
        if claimed >= ci[0]:
            return f"The {span} excludes 0 and holds {what}."
        return f"The {span} excludes 0 and lies above {what}: the gain is at least as large as claimed."
    if ci[0] > 0:
        return f"The gain is real but smaller than claimed: the {span} lies below {what}."
    return f"No gain as large as claimed: the {span} lies below {what}."


def judge(
    claims: Sequence[tuple[ClaimSpec, Sequence[Evidence], Sequence[Evidence]]],
    replicates: int = 10_000,
    seed: int = 0,
) -> list[ClaimResult]:
    """Judge ``m`` claims together: each ``(spec, evidences of spec.model over seeds, evidences of spec.baseline)``
    is compared (:func:`harness.stats.paired.compare`, seed ``seed + i`` for claim ``i``) at the corrected level
    ``1 - 0.05 / m`` and at 95%; p-values are Holm-adjusted over the ``m`` claims."""
    m = len(claims)
    if m == 0:
        return []
    level = corrected_level(m)
    levels = tuple(dict.fromkeys((level, 0.95)))
    comparisons = [
        compare(a, b, spec.metric, relative=spec.relative, replicates=replicates, levels=levels, seed=seed + i)
        for i, (spec, a, b) in enumerate(claims)
    ]
    adjusted = holm([c.p_value for c in comparisons])
    return [_delta_result(spec, c, p_adj, level) for (spec, _, _), c, p_adj in zip(claims, comparisons, adjusted)]


def _delta_result(spec: ClaimSpec, c: Comparison, p_adj: float, level: float) -> ClaimResult:
    ci = c.ci[level]
    v = verdict(ci, spec.delta)
    seeds_needed = examples_needed = None
    if v == "inconclusive":
        proj = project(
            c.delta,
            spec.delta,
            level=level,
            se_clusters=c.se_clusters,
            seed_var_a=c.seed_var_a,
            seed_var_b=c.seed_var_b,
            n_seeds=max(c.n_seeds_a, c.n_seeds_b),
            n_clusters=c.n_clusters,
        )
        seeds_needed, examples_needed = proj.seeds_needed, proj.examples_needed
        note = f"Inconclusive: {proj.note}."
    else:
        note = _note(v, ci, level, spec.delta, spec.relative)
    return ClaimResult(
        claim=spec,
        measured=c.delta,
        ci=ci,
        level=level,
        ci95=c.ci[0.95],
        p_value=c.p_value,
        p_adjusted=p_adj,
        verdict=v,
        mde=minimum_detectable_effect(c.se, level),
        seeds_needed=seeds_needed,
        examples_needed=examples_needed,
        note=note,
        comparison=c,
    )


# --- absolute and ordering claims ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsoluteSpec:
    """``model`` reaches ``value`` percent of ``metric`` on ``task``, up to ``tolerance`` points: the claim holds
    when the model's metric is at least ``value - tolerance``."""

    model: str
    task: str
    metric: str
    value: float
    tolerance: float = 0.0
    source: str = ""

    @property
    def threshold(self) -> float:
        return self.value - self.tolerance


@dataclass(frozen=True)
class OrderSpec:
    """``models[0] > models[1] > ...`` on ``metric`` of ``task``: every adjacent pair must hold."""

    models: tuple[str, ...]
    task: str
    metric: str
    source: str = ""


@dataclass(frozen=True)
class Int8Spec:
    """``model``'s dynamic-INT8 copy is ``smaller`` percent smaller on disk, and (with ``max_drop``) loses at most
    ``max_drop`` points of ``metric`` on ``task``."""

    model: str
    task: str
    metric: str
    smaller: float
    max_drop: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Int8Result:
    """``measured``: the measured size reduction in percent (deterministic: one architecture, the same bytes for
    every seed). ``change`` (int8 - fp32, points) with its corrected CI ``ci`` and 95% CI, and the one-sided
    non-inferiority p-value of "the change is at most -max_drop", only when the claim has ``max_drop``."""

    claim: Int8Spec
    measured: float
    verdict: str
    note: str
    level: float
    change: float | None = None
    ci: tuple[float, float] | None = None
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    comparison: Comparison | None = None


@dataclass(frozen=True)
class AbsoluteResult:
    """The verdict on an absolute claim: the model's mean ``measured`` with its corrected CI (``level``) and 95% CI
    (:func:`harness.stats.intervals.metric_interval`: t over seeds, or a cluster bootstrap with one seed)."""

    claim: AbsoluteSpec
    measured: float
    ci: tuple[float, float]
    level: float
    ci95: tuple[float, float]
    p_value: float
    p_adjusted: float
    verdict: str
    note: str
    method: str


@dataclass(frozen=True)
class PairResult:
    """One adjacent pair of an ordering: ``better`` against ``worse`` (paired, ``measured = better - worse``)."""

    better: str
    worse: str
    measured: float
    ci: tuple[float, float]
    ci95: tuple[float, float]
    p_value: float
    p_adjusted: float
    verdict: str
    comparison: Comparison


@dataclass(frozen=True)
class OrderResult:
    claim: OrderSpec
    pairs: tuple[PairResult, ...]
    level: float
    verdict: str
    note: str


def absolute_verdict(ci: tuple[float, float], threshold: float) -> str:
    """supported when the corrected CI lies at or above ``value - tolerance``, contradicted when it lies below,
    inconclusive when it holds it."""
    lo, hi = ci
    if lo >= threshold:
        return "supported"
    if hi < threshold:
        return "contradicted"
    return "inconclusive"


def pair_verdict(delta: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """A pair of an ordering holds when the Holm-adjusted p-value of "no difference" is below ``alpha`` and the
    better model's mean is higher; it is contradicted when the difference is significant the other way."""
    if p_adjusted < alpha:
        return "supported" if delta > 0 else "contradicted"
    return "inconclusive"


def order_verdict(pairs: Sequence[str]) -> str:
    """An ordering is supported only when every pair is, contradicted when any pair is."""
    if all(v == "supported" for v in pairs):
        return "supported"
    if any(v == "contradicted" for v in pairs):
        return "contradicted"
    return "inconclusive"


def int8_verdict(measured: float, claimed: float, ci: tuple[float, float] | None, max_drop: float | None) -> str:
    """The size part is exact: contradicted when the copy is less smaller than claimed. The accuracy part (with
    ``max_drop``) is supported when the corrected CI of the change lies at or above ``-max_drop``, contradicted when
    it lies below, inconclusive when it holds it. Supported only when both parts are."""
    size = "supported" if measured >= claimed else "contradicted"
    if max_drop is None or size == "contradicted":
        return size
    assert ci is not None
    return absolute_verdict(ci, -max_drop)


def _int8_result(
    spec: Int8Spec, measured: float, c: Comparison | None, p: float | None, p_adj: float | None, level: float
) -> Int8Result:
    ci = None if c is None else c.ci[level]
    v = int8_verdict(measured, spec.smaller, ci, spec.max_drop)
    size = f"the INT8 copy is {measured:.1f}% smaller on disk (claimed {spec.smaller:g}%)"
    if c is None:
        note = size[0].upper() + size[1:] + "."
    else:
        span = f"{100 * level:.4g}% CI [{ci[0]:+.2f}, {ci[1]:+.2f}]"
        note = (
            f"{size[0].upper() + size[1:]}; the {spec.metric} change int8 - fp32 is {c.delta:+.2f} points, {span} "
            f"(matched seeds), against the allowed -{spec.max_drop:g}."
        )
    return Int8Result(
        claim=spec,
        measured=measured,
        verdict=v,
        note=note,
        level=level,
        change=None if c is None else c.delta,
        ci=ci,
        ci95=None if c is None else c.ci[0.95],
        p_value=p,
        p_adjusted=p_adj,
        comparison=c,
    )


def _noninferiority_p(c: Comparison, max_drop: float) -> float:
    """One-sided p-value of "change <= -max_drop", normal approximation with the bootstrap standard error."""
    from scipy import stats

    if c.se <= 0:
        return 0.0 if c.delta > -max_drop else 1.0
    return float(stats.norm.sf((c.delta + max_drop) / c.se))


def _absolute_p(values: Sequence[float], interval95: tuple[float, float], mean: float, threshold: float) -> float:
    """Two-sided p-value of "the metric equals the threshold": a one-sample t test over seeds (2+ seeds), else the
    normal approximation of the one-seed cluster bootstrap (se from the 95% interval's width)."""
    from scipy import stats

    if len(values) >= 2:
        if np.ptp(values) == 0:
            return 1.0 if values[0] == threshold else 0.0
        return float(stats.ttest_1samp(list(values), threshold).pvalue)
    se = (interval95[1] - interval95[0]) / (2 * _z(0.95))
    if se <= 0:
        return 1.0 if mean == threshold else 0.0
    return float(2 * stats.norm.sf(abs(mean - threshold) / se))


Family = Sequence[tuple[Any, Any]]


def judge_all(claims: Family, replicates: int = 10_000, seed: int = 0) -> list[Any]:
    """Judge a suite's claims of every kind together, in order. Each item is ``(spec, data)``:

    - :class:`ClaimSpec` with ``(evidences of model, evidences of baseline)``;
    - :class:`AbsoluteSpec` with the model's evidences;
    - :class:`OrderSpec` with one evidence list per model, in order;
    - :class:`Int8Spec` with ``(measured size reduction in percent, int8 evidences, fp32 evidences)`` (the
      evidences may be None when the claim has no ``max_drop``).

    The family has ``m`` = (delta claims) + (absolute claims) + (adjacent pairs of the orderings) + (quantisation
    claims with ``max_drop``) tests: CIs are at the Bonferroni level ``1 - 0.05 / m`` and p-values are
    Holm-adjusted over all ``m``. A size reduction alone is exact, not a test.
    """
    from harness.stats.intervals import metric_interval

    def size(spec: Any) -> int:
        if isinstance(spec, OrderSpec):
            return len(spec.models) - 1
        if isinstance(spec, Int8Spec):
            return 0 if spec.max_drop is None else 1
        return 1

    if not claims:
        return []
    m = sum(size(spec) for spec, _ in claims)
    level = corrected_level(max(m, 1))
    levels = tuple(dict.fromkeys((level, 0.95)))
    tests: list[tuple[int, Any]] = []  # (claim index, Comparison | (Interval corrected, Interval 95, p))
    k = 0
    for i, (spec, data) in enumerate(claims):
        if isinstance(spec, Int8Spec):
            if spec.max_drop is not None:
                _, int8, fp32 = data
                c = compare(
                    int8, fp32, spec.metric, replicates=replicates, levels=levels, seed=seed + k, matched_seeds=True
                )
                tests.append((i, (c, _noninferiority_p(c, spec.max_drop))))
                k += 1
        elif isinstance(spec, AbsoluteSpec):
            iv = metric_interval(data, spec.metric, level=level, replicates=replicates, seed=seed + k)
            iv95 = metric_interval(data, spec.metric, level=0.95, replicates=replicates, seed=seed + k)
            if iv.lo is None or iv.hi is None or iv95.lo is None or iv95.hi is None:
                raise ValueError(f"{spec.model}: one seed without per-example evidence has no interval")
            p = _absolute_p(iv.values, (iv95.lo, iv95.hi), iv.value, spec.threshold)
            tests.append((i, (iv, iv95, p)))
            k += 1
        elif isinstance(spec, OrderSpec):
            for a, b in itertools.pairwise(data):
                c = compare(a, b, spec.metric, replicates=replicates, levels=levels, seed=seed + k)
                tests.append((i, c))
                k += 1
        else:
            a, b = data
            c = compare(a, b, spec.metric, relative=spec.relative, replicates=replicates, levels=levels, seed=seed + k)
            tests.append((i, c))
            k += 1
    pvals = [t[-1] if isinstance(t, tuple) else t.p_value for _, t in tests]
    adjusted = holm(pvals)
    by_claim: dict[int, list[tuple[Any, float]]] = {}
    for (i, t), p_adj in zip(tests, adjusted):
        by_claim.setdefault(i, []).append((t, p_adj))
    out: list[Any] = []
    for i, (spec, data) in enumerate(claims):
        parts = by_claim.get(i, [])
        if isinstance(spec, Int8Spec):
            if parts:
                (c, p), p_adj = parts[0]
                out.append(_int8_result(spec, float(data[0]), c, p, p_adj, level))
            else:
                out.append(_int8_result(spec, float(data[0]), None, None, None, level))
        elif isinstance(spec, AbsoluteSpec):
            (iv, iv95, p), p_adj = parts[0]
            out.append(_absolute_result(spec, iv, iv95, p, p_adj, level))
        elif isinstance(spec, OrderSpec):
            out.append(_order_result(spec, parts, level))
        else:
            c, p_adj = parts[0]
            out.append(_delta_result(spec, c, p_adj, level))
    return out


def _absolute_result(spec: AbsoluteSpec, iv, iv95, p: float, p_adj: float, level: float) -> AbsoluteResult:
    ci, ci95 = (float(iv.lo), float(iv.hi)), (float(iv95.lo), float(iv95.hi))
    v = absolute_verdict(ci, spec.threshold)
    span = f"{100 * level:.4g}% CI [{ci[0]:.2f}, {ci[1]:.2f}]"
    stated = f"the stated {spec.value:g}%" + (
        f" - {spec.tolerance:g} point{'' if spec.tolerance == 1 else 's'}" if spec.tolerance else ""
    )
    if v == "supported":
        note = f"The {span} lies at or above {stated}."
    elif v == "contradicted":
        note = f"The model falls short: the {span} lies below {stated}."
    else:
        note = f"Inconclusive: the {span} holds {stated}; more seeds or test examples would narrow it."
    return AbsoluteResult(spec, float(iv.value), ci, level, ci95, p, p_adj, v, note, iv.method)


def _order_result(spec: OrderSpec, parts: list[tuple[Comparison, float]], level: float) -> OrderResult:
    pairs = []
    for (a, b), (c, p_adj) in zip(itertools.pairwise(spec.models), parts):
        v = pair_verdict(c.delta, p_adj)
        pairs.append(PairResult(a, b, c.delta, c.ci[level], c.ci[0.95], c.p_value, p_adj, v, c))
    v = order_verdict([p.verdict for p in pairs])
    held = sum(p.verdict == "supported" for p in pairs)
    if v == "supported":
        note = f"Every adjacent pair holds ({held} of {len(pairs)}, Holm-adjusted p < {ALPHA:g})."
    else:
        broken = [f"{p.better} > {p.worse} {p.verdict}" for p in pairs if p.verdict != "supported"]
        note = f"{held} of {len(pairs)} pairs hold; " + "; ".join(broken) + "."
    return OrderResult(spec, tuple(pairs), level, v, note)


def compare_all(
    evidences: Mapping[str, Sequence[Evidence]],
    baseline: str,
    metric: str,
    *,
    relative: bool = False,
    replicates: int = 10_000,
    seed: int = 0,
) -> dict[str, Comparison]:
    """Every model of a task against the task's baseline, each at the uncorrected 95% level (exploratory: these are
    not claims, so no correction for their number)."""
    if baseline not in evidences:
        raise ValueError(f"baseline {baseline!r} has no evidence; models: {sorted(evidences)}")
    return {
        name: compare(evs, evidences[baseline], metric, relative=relative, replicates=replicates, seed=seed + i)
        for i, (name, evs) in enumerate(evidences.items())
        if name != baseline
    }
