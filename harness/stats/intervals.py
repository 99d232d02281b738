"""Confidence intervals of one model's metric: Student-t over seeds, or, with one seed, a percentile bootstrap over
the test set's image clusters (see ``docs/statistics.md``).

Only numpy and scipy are imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Real

import numpy as np

from harness.stats.evidence import Evidence

__all__ = ["CLUSTER_METHOD", "NO_CI_METHOD", "T_METHOD", "Interval", "metric_interval", "t_interval"]

T_METHOD = "t over seeds"
CLUSTER_METHOD = "bootstrap over image clusters (1 seed)"
NO_CI_METHOD = "none: 1 seed, no per-example evidence"
METRIC_MIN, METRIC_MAX = 0.0, 100.0  # every metric is a percentage


@dataclass(frozen=True)
class Interval:
    """A metric's mean over seeds (``value``) with its confidence interval ``[lo, hi]`` at ``level``.

    ``method`` is :data:`T_METHOD`, :data:`CLUSTER_METHOD` (one seed: the test images resampled) or
    :data:`NO_CI_METHOD` (one seed and no evidence: ``lo`` and ``hi`` are None). ``std`` is the standard deviation
    over seeds (``ddof=1``; None with one seed), ``values`` the per-seed values, ``n_clusters`` the number of image
    clusters of the evidence (None without it), ``replicates`` the bootstrap replicates (None for a t interval).
    """

    value: float
    lo: float | None
    hi: float | None
    level: float
    method: str
    n_seeds: int
    n_clusters: int | None
    std: float | None
    values: tuple[float, ...]
    replicates: int | None = None

    @property
    def half_width(self) -> float | None:
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2


def t_interval(values: Sequence[float], level: float = 0.95, n_clusters: int | None = None) -> Interval:
    """Student-t interval of the mean of per-seed values: ``mean ± t_{(1+level)/2, n-1} · s / sqrt(n)``.

    Needs at least two values; when all are equal the interval is the point itself.
    """
    from scipy import stats

    vals = tuple(float(v) for v in values)
    if len(vals) < 2:
        raise ValueError(f"a t interval over seeds needs at least 2 values, got {len(vals)}")
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"a t interval needs finite values, got {list(vals)}")
    if not 0 < level < 1:
        raise ValueError(f"a confidence level is in (0, 1), got {level}")
    mean = float(np.mean(vals))
    std = float(np.std(vals, ddof=1))
    if std == 0:
        lo = hi = mean
    else:
        lo, hi = stats.t.interval(level, df=len(vals) - 1, loc=mean, scale=std / math.sqrt(len(vals)))
    return Interval(mean, float(lo), float(hi), level, T_METHOD, len(vals), n_clusters, std, vals)


def metric_interval(
    evidences: Sequence[Evidence] | Sequence[float],
    metric: str,
    level: float = 0.95,
    replicates: int = 10_000,
    seed: int = 0,
) -> Interval:
    """The CI of one model's ``metric`` from its seeds.

    ``evidences`` is either each seed's :class:`Evidence` or, for runs without evidence (older runs), each seed's
    value of the metric. Two or more seeds: t interval over the per-seed values (the test set held fixed; each
    value exactly as in ``metrics.json``). One seed with evidence: percentile bootstrap over image clusters
    (:func:`harness.stats.paired.cluster_bootstrap`, ``replicates`` draws; capped for mAP). One value without
    evidence: an interval with ``lo = hi = None`` and method :data:`NO_CI_METHOD`.
    """
    items = list(evidences)
    if not items:
        raise ValueError(f"{metric}: no seeds to make an interval from")
    if all(isinstance(e, Evidence) for e in items):
        evs: list[Evidence] = items  # type: ignore[assignment]
        if len(evs) == 1:
            from harness.stats.paired import cluster_bootstrap

            return cluster_bootstrap(evs, metric, level=level, replicates=replicates, seed=seed)
        values = [_exact(e, metric) for e in evs]
        return _clip(t_interval(values, level, n_clusters=len(evs[0].clusters)))
    if all(isinstance(v, Real) and not isinstance(v, bool) for v in items):
        if len(items) == 1:
            v = float(items[0])  # type: ignore[arg-type]
            return Interval(v, None, None, level, NO_CI_METHOD, 1, None, None, (v,))
        return _clip(t_interval(items, level))  # type: ignore[arg-type]
    kinds = sorted({type(e).__name__ for e in items})
    raise ValueError(f"{metric}: expected every seed's Evidence or every seed's value, got {', '.join(kinds)}")


def _clip(interval: Interval) -> Interval:
    """A metric's t interval clipped to [0, 100], the range of every metric (percent): with 2 seeds
    ``t_{0.975, 1} = 12.71`` and the raw interval easily passes the range."""
    if interval.lo is None or interval.hi is None:
        return interval
    return replace(
        interval, lo=min(max(interval.lo, METRIC_MIN), METRIC_MAX), hi=min(max(interval.hi, METRIC_MIN), METRIC_MAX)
    )


def _exact(evidence: Evidence, metric: str) -> float:
    value = evidence.exact(metric)
    if value is None:
        raise ValueError(
            f"{evidence.task_type} evidence has no metric {metric!r}; it has {sorted(evidence.recompute())}"
        )
    return value
