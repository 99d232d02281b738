"""Paired comparison of two models on the same test examples: a hierarchical paired bootstrap over image clusters
and seeds, McNemar's exact test for one seed, and the cluster bootstrap of one model's metric.

The bootstrap (see ``docs/statistics.md``):

- every replicate draws the test clusters (images) with replacement: multinomial counts ``w`` over the ``C``
  clusters, the SAME counts for both models (the pairing: both are scored on the same resampled test set);
- a model with two or more seeds also has its seeds drawn with replacement, independently for the two models (seed
  ``i`` of one model has nothing to do with seed ``i`` of the other), and the drawn mean's deviation from the mean
  over all seeds is scaled by ``sqrt(n / (n - 1))`` (rescaled bootstrap: unbiased seed variance with 2-3 seeds);
- the replicate statistic is (mean over the drawn seeds of model a's metric on the drawn clusters) minus the same for
  model b, in percentage points, or ``100 * (mean_a / mean_b - 1)`` percent with ``relative=True``.

A metric that is a mean over examples is ``100 * (w @ num) / (w @ den)`` from the per-cluster sums of
:meth:`Evidence.ratios`, so a chunk of replicates is one matrix product; metrics derived from those (``r_mean``) are
functions of the same products; mAP is recomputed on each resample (as :meth:`Evidence.resampled` would on the
repeated rows, but from the full sample's sort order: :class:`_WeightedMAP`), which is still the slowest, so its
replicates are capped at :data:`ROW_REPLICATES` and the count used is reported.

Only numpy, scipy and statsmodels are imported (statsmodels lazily, for McNemar).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.stats.evidence import Evidence
from harness.stats.intervals import CLUSTER_METHOD, Interval

__all__ = [
    "MATRIX_BYTES",
    "ROW_REPLICATES",
    "Comparison",
    "McNemar",
    "cluster_bootstrap",
    "compare",
    "correct",
    "mcnemar",
]

MATRIX_BYTES = 48_000_000  # the largest replicates x clusters matrix built at once (counts, then their float copy)
ROW_REPLICATES = 2_000  # cap on the replicates of a metric recomputed from rows (mAP)
CORRECT_METRICS = {"top1": "rank == 0 (the top prediction is the label)", "vqa_accuracy": "per-question accuracy == 1"}


# -- McNemar ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired correctness: ``b`` = examples only model a gets right, ``c`` = only model b;
    ``p_value`` is the two-sided exact binomial p-value of ``b`` among the ``b + c`` discordant examples at 1/2."""

    b: int
    c: int
    p_value: float
    n: int  # examples


def mcnemar(correct_a: Any, correct_b: Any) -> McNemar:
    """McNemar's exact test (statsmodels) of two boolean correctness vectors over the same examples.

    The test treats examples as independent: it ignores that the questions about one image are correlated, so it is
    reported beside the cluster bootstrap, never instead of it.
    """
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"McNemar needs two correctness vectors of one length, got shapes {a.shape} and {b.shape}")
    table = np.array(
        [
            [np.count_nonzero(a & b), np.count_nonzero(a & ~b)],
            [np.count_nonzero(~a & b), np.count_nonzero(~a & ~b)],
        ]
    )
    only_a, only_b = int(table[0, 1]), int(table[1, 0])
    p = 1.0 if only_a + only_b == 0 else float(sm_mcnemar(table, exact=True).pvalue)
    return McNemar(only_a, only_b, min(1.0, p), len(a))


def correct(evidence: Evidence, metric: str | None = None) -> np.ndarray:
    """Per-example correctness for McNemar: classification ``rank == 0`` (top-1); VQA per-question accuracy == 1,
    which in the official formula (mean over the 10 leave-one-out sets of ``min(1, matches / 3)``) means that at
    least 4 of the 10 human answers match the prediction (3 matches give 0.9)."""
    if evidence.task_type == "classification" and metric in (None, "top1"):
        return evidence.arrays["rank"] == 0
    if evidence.task_type == "vqa" and metric in (None, "vqa_accuracy"):
        return evidence.arrays["accuracy"] >= 1.0
    raise ValueError(
        f"no per-example correctness for {evidence.task_type} {metric or ''}: McNemar applies to top1 and vqa_accuracy"
    )


# -- metric of each seed on cluster resamples ---------------------------------------------------------------------


class _Recorder(dict):
    """A mapping that remembers which keys a derived-metric function reads."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return super().__getitem__(key)


class _WeightedMAP:
    """mAP of one multi-label run (``average_precision``'s default non-interpolated mode) on many cluster resamples
    at once, without sorting again: a resample repeats rows, and a repeated row ties with itself, so the order of the
    distinct scores of each class is the full sample's.

    For each class, the sorted rows are cut into segments, each ending at a group of tied scores that holds a
    positive (AP changes only there). With row weights ``w`` (the draws of each row's cluster), segment ``g`` adds
    ``tp_g / n_pos * TP_g / N_g`` to the class's AP, where ``tp_g`` is the weight of its positives and ``TP_g``,
    ``N_g`` the weight of the positives and of all rows up to its end: one sparse product per chunk of replicates.
    A class without positives in a resample is left out of the mean, as ``average_precision`` does.
    """

    def __init__(self, evidence: Evidence) -> None:
        from scipy import sparse

        scores, targets = evidence.arrays["scores"], evidence.arrays["targets"]
        cluster = evidence.cluster_index()
        rows_all, rows_pos, cols_all, cols_pos, starts = [], [], [], [], []
        n_segments = 0
        for k in np.flatnonzero(targets.any(axis=0)):
            order = np.argsort(scores[:, k], kind="stable")[::-1]
            s_sorted, t_sorted = scores[order, k], targets[order, k].astype(bool)
            group = np.concatenate([[0], np.cumsum(s_sorted[1:] != s_sorted[:-1])])  # tie group of each position
            has_pos = np.zeros(group[-1] + 1, dtype=bool)
            has_pos[group[t_sorted]] = True
            # segment of each position: the first group with a positive at or after its own group
            seg_of_group = np.cumsum(has_pos) - has_pos  # positive-holding groups strictly before
            last = np.flatnonzero(group <= np.flatnonzero(has_pos)[-1])[-1]  # positions up to the last such group
            seg = seg_of_group[group[: last + 1]] + n_segments
            rows_all.append(cluster[order[: last + 1]])
            cols_all.append(seg)
            rows_pos.append(cluster[order[: last + 1]][t_sorted[: last + 1]])
            cols_pos.append(seg[t_sorted[: last + 1]])
            starts.append(n_segments)
            n_segments += int(has_pos.sum())
        n_clusters = len(evidence.clusters)

        def matrix(rows: list[np.ndarray], cols: list[np.ndarray]) -> Any:
            r, c = np.concatenate(rows), np.concatenate(cols)
            return sparse.csr_matrix((np.ones(len(r)), (c, r)), shape=(n_segments, n_clusters))  # duplicates add up

        self.all, self.pos = matrix(rows_all, cols_all), matrix(rows_pos, cols_pos)
        self.starts = np.array(starts, dtype=np.int64)
        self.rows_per_chunk = max(1, MATRIX_BYTES // (8 * 4 * max(n_segments, 1)))

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """(R,) mAP in percent for (R, C) cluster draws."""
        out = [self._chunk(counts[i : i + self.rows_per_chunk].T) for i in range(0, len(counts), self.rows_per_chunk)]
        return np.concatenate(out) if out else np.zeros(0)

    def _chunk(self, w: np.ndarray) -> np.ndarray:
        w = np.ascontiguousarray(w, dtype=np.float64)  # (C, R)
        seg_all, seg_pos = self.all @ w, self.pos @ w  # (segments, R)
        # running sums within each class: a cumsum over all segments minus the total before the class's first one
        total_all, total_pos = np.cumsum(seg_all, axis=0), np.cumsum(seg_pos, axis=0)
        lengths = np.diff(np.append(self.starts, len(seg_all)))
        before_all = np.repeat(np.vstack([np.zeros((1, w.shape[1])), total_all[:-1]])[self.starts], lengths, axis=0)
        before_pos = np.repeat(np.vstack([np.zeros((1, w.shape[1])), total_pos[:-1]])[self.starts], lengths, axis=0)
        tp, n = total_pos - before_pos, total_all - before_all
        with np.errstate(invalid="ignore", divide="ignore"):
            gain = np.where(n > 0, seg_pos * tp / np.where(n > 0, n, 1), 0.0)
            n_pos = np.add.reduceat(seg_pos, self.starts, axis=0)  # (classes, R)
            ap = np.add.reduceat(gain, self.starts, axis=0) / n_pos
            present = n_pos > 0
            return 100 * np.where(present, ap, 0.0).sum(axis=0) / present.sum(axis=0)


class _Seeds:
    """One model's metric, for each of its seeds, on any resample of the clusters (the rows of a counts matrix)."""

    def __init__(self, evidences: Sequence[Evidence], metric: str, who: str) -> None:
        self.evidences = list(evidences)
        self.metric = metric
        first = self.evidences[0]
        self.rows = first.needs_rows
        self.derived: Callable[[Mapping[str, Any]], Any] | None = None
        if self.rows:
            exact = [e.exact(metric) for e in self.evidences]
            if exact[0] is None:
                known = sorted(first.recompute())
                raise ValueError(f"{who}: {first.task_type} evidence has no metric {metric!r}; it has {known}")
            self.plugin = np.array(exact, dtype=np.float64)
            self.maps = [_WeightedMAP(e) for e in self.evidences]
        else:
            ratios = [e.ratios() for e in self.evidences]
            derived = first.derived
            if metric in ratios[0]:
                names = [metric]
            elif metric in derived:
                self.derived = derived[metric]
                full = {k: 100 * float(r.num.sum() / r.den.sum()) for k, r in ratios[0].items()}
                recorder = _Recorder(full)
                self.derived(recorder)
                names = list(dict.fromkeys(recorder.read))
            else:
                known = sorted({*ratios[0], *derived})
                raise ValueError(f"{who}: {first.task_type} evidence has no metric {metric!r}; it has {known}")
            self.names = names
            # (C, S * K): column s * K + k is ratio k of seed s.
            self.num = np.stack([r[n].num for r in ratios for n in names], axis=1)
            self.den = np.stack([r[n].den for r in ratios for n in names], axis=1)
            self.plugin = self(np.ones((1, len(first.clusters))))[0]
            exact = [e.exact(metric) for e in self.evidences]
        # The observed values: exactly as metrics.json (VQA rounded as the official tool), else (a metric that the
        # run does not report, e.g. the ITC-stage recalls) the plug-in value.
        self.observed = np.array(
            [p if x is None else x for x, p in zip(exact, self.plugin, strict=True)], dtype=np.float64
        )

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """(R, S): each seed's metric on each of the R resamples (``counts[r, c]`` = draws of cluster c)."""
        n_seeds = len(self.evidences)
        if self.rows:
            return np.stack([m(counts) for m in self.maps], axis=1)
        w = counts.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = 100.0 * (w @ self.num) / (w @ self.den)
        values = values.reshape(len(counts), n_seeds, len(self.names))
        if self.derived is None:
            return values[:, :, 0]
        return np.asarray(self.derived({n: values[:, :, k] for k, n in enumerate(self.names)}), dtype=np.float64)


def _cluster_counts(rng: np.random.Generator, n_clusters: int, rows: int) -> np.ndarray:
    """(rows, C) multinomial counts: each row draws C clusters uniformly with replacement (int64)."""
    dtype = np.int32 if n_clusters < 2**31 // max(rows, 1) else np.int64
    idx = rng.integers(0, n_clusters, size=(rows, n_clusters), dtype=dtype)
    idx += (np.arange(rows, dtype=dtype) * n_clusters)[:, None]
    return np.bincount(idx.ravel(), minlength=rows * n_clusters).reshape(rows, n_clusters)


def _chunk_rows(n_clusters: int, replicates: int) -> int:
    return max(1, min(replicates, MATRIX_BYTES // (8 * n_clusters)))


def _seed_means(rng: np.random.Generator, values: np.ndarray, resample: bool) -> np.ndarray:
    """(R,) mean over seeds of (R, S) values; with ``resample`` the S seeds are drawn with replacement per row.

    The drawn mean's deviation from the row's mean over all seeds is scaled by ``sqrt(S / (S - 1))`` (the rescaled
    bootstrap): a plain bootstrap of ``S`` values has variance ``(S - 1) / S`` of the unbiased ``s^2 / S``, which
    with 2 or 3 seeds makes the interval too narrow when the seed effect dominates.
    """
    n_seeds = values.shape[1]
    full = values.mean(axis=1)
    if not resample or n_seeds == 1:
        return full
    draws = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=len(values))
    drawn = (draws * values).sum(axis=1) / n_seeds
    return full + math.sqrt(n_seeds / (n_seeds - 1)) * (drawn - full)


def _matched_seed_means(rng: np.random.Generator, va: np.ndarray, vb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_seed_means` of two (R, S) arrays whose seed ``i`` is one trained state (a model and its quantised
    copy): the same seeds are drawn for both, so the seed effect cancels in the difference."""
    n_seeds = va.shape[1]
    full_a, full_b = va.mean(axis=1), vb.mean(axis=1)
    if n_seeds == 1:
        return full_a, full_b
    draws = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=len(va))
    scale = math.sqrt(n_seeds / (n_seeds - 1))
    drawn_a, drawn_b = (draws * va).sum(axis=1) / n_seeds, (draws * vb).sum(axis=1) / n_seeds
    return full_a + scale * (drawn_a - full_a), full_b + scale * (drawn_b - full_b)


def _check_group(evidences: Sequence[Evidence], who: str) -> list[Evidence]:
    evs = list(evidences)
    if not evs:
        raise ValueError(f"{who}: no evidence (at least one seed's evidence.npz is needed)")
    for i, e in enumerate(evs):
        if not isinstance(e, Evidence):
            raise ValueError(f"{who}: item {i} is a {type(e).__name__}, not an Evidence")
    return evs


def _check_same(reference: Evidence, evidences: Sequence[Evidence], who: str) -> None:
    for i, e in enumerate(evidences):
        if not reference.same_examples(e):
            raise ValueError(
                f"{who}: seed {i} was scored on other test examples than the first evidence "
                f"({e.task_type}, {len(e.clusters)} clusters vs {reference.task_type}, {len(reference.clusters)}): "
                "a paired comparison needs the same examples in the same order"
            )


def _replicate_count(rows: bool, replicates: int) -> int:
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, got {replicates}")
    return min(replicates, ROW_REPLICATES) if rows else replicates


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"a confidence level is in (0, 1), got {level}")
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


# -- one model ----------------------------------------------------------------------------------------------------


def _cluster_replicates(
    evidences: Sequence[Evidence], metric: str, replicates: int, seed: int
) -> tuple[_Seeds, np.ndarray]:
    """One model's metric on ``replicates`` bootstrap resamples of its image clusters: (the model, an array of
    shape (replicates, seeds)); a replicate can be NaN (an empty subset of the examples)."""
    evs = _check_group(evidences, "model")
    _check_same(evs[0], evs, "model")
    model = _Seeds(evs, metric, "model")
    n_clusters = len(evs[0].clusters)
    total = _replicate_count(model.rows, replicates)
    rng = np.random.default_rng(seed)
    step = _chunk_rows(n_clusters, total)
    chunks = [model(_cluster_counts(rng, n_clusters, min(step, total - start))) for start in range(0, total, step)]
    return model, np.concatenate(chunks)


def cluster_bootstrap(
    evidences: Sequence[Evidence],
    metric: str,
    level: float = 0.95,
    replicates: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap CI of one model's metric over its image clusters (seeds are not resampled: with several
    seeds the statistic is the mean over all of them on each resample).

    This is the CI of a model with one seed (:func:`harness.stats.intervals.metric_interval`); it covers the
    sampling of the test images only, not the training randomness.
    """
    model, per_seed = _cluster_replicates(evidences, metric, replicates, seed)
    evs, n_clusters = model.evidences, len(model.evidences[0].clusters)
    values = per_seed.mean(axis=1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(f"{metric}: no bootstrap replicate has a finite value (an empty subset of the examples?)")
    lo, hi = _percentile_ci(values, level)
    n = len(evs)
    observed = tuple(float(v) for v in model.observed)
    return Interval(
        value=float(np.mean(observed)),
        lo=lo,
        hi=hi,
        level=level,
        method=CLUSTER_METHOD if n == 1 else f"bootstrap over image clusters ({n} seeds, not resampled)",
        n_seeds=n,
        n_clusters=n_clusters,
        std=float(np.std(observed, ddof=1)) if n > 1 else None,
        values=observed,
        replicates=int(values.size),
    )


def cluster_se(evidences: Sequence[Evidence], metric: str, replicates: int = 2_000, seed: int = 0) -> float:
    """The sampling error of ONE seed's metric over the test images: the standard deviation of the metric over
    bootstrap resamples of the image clusters, for each seed, combined as the root mean square over seeds (points).

    The CI gate uses it as the floor of its noise estimate, so that seeds that happen to agree do not give a zero
    tolerance (``docs/ci.md``).
    """
    _, values = _cluster_replicates(evidences, metric, replicates, seed)
    variances = []
    for column in values.T:
        finite = column[np.isfinite(column)]
        if finite.size < 2:
            raise ValueError(f"{metric}: no bootstrap replicate has a finite value (an empty subset of the examples?)")
        variances.append(float(np.var(finite, ddof=1)))
    return math.sqrt(sum(variances) / len(variances))


# -- two models ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Model a against model b on one metric (see the module docstring and ``docs/statistics.md``).

    ``delta`` is ``a - b`` in percentage points, or ``100 * (a / b - 1)`` percent when ``relative``; ``a`` and ``b``
    are the observed means over seeds (each seed's metric exactly as its ``metrics.json``). ``ci`` maps each level
    (e.g. ``0.95``) to its percentile interval of the replicate deltas; ``se`` is the standard deviation of the
    replicate deltas, ``se_clusters`` the same with the seeds held fixed (test-set sampling only) and ``se_seeds``
    ``sqrt(s2_a / n_a + s2_b / n_b)`` from the between-seed variances on the full test set (None when a model has one
    seed); ``seed_var_a``/``seed_var_b`` are those variances ``s2`` (on the scale of ``delta``: for a relative
    comparison, through the delta method). ``p_value`` is two-sided, from the bootstrap distribution shifted to the
    null: ``(1 + #{|d* - d| >= |d|}) / (B + 1)`` with ``d`` the full-sample delta and ``B`` the replicates.
    """

    metric: str
    a: float
    b: float
    delta: float
    ci: dict[float, tuple[float, float]]
    p_value: float
    n_clusters: int
    n_seeds_a: int
    n_seeds_b: int
    replicates: int
    se: float
    se_clusters: float
    se_seeds: float | None
    method: str
    relative: bool = False
    values_a: tuple[float, ...] = ()
    values_b: tuple[float, ...] = ()
    seed_var_a: float | None = None
    seed_var_b: float | None = None
    mcnemar: McNemar | None = None
    replicate_deltas: np.ndarray | None = field(default=None, repr=False, compare=False)


def _statistic(mean_a: Any, mean_b: Any, relative: bool) -> Any:
    if relative:
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * (np.asarray(mean_a) / np.asarray(mean_b) - 1.0)
    return np.asarray(mean_a) - np.asarray(mean_b)


def compare(
    a: Sequence[Evidence],
    b: Sequence[Evidence],
    metric: str,
    *,
    relative: bool = False,
    replicates: int = 10_000,
    levels: Sequence[float] = (0.95,),
    seed: int = 0,
    keep_replicates: bool = False,
    matched_seeds: bool = False,
) -> Comparison:
    """Hierarchical paired bootstrap of model a (its seeds' evidence) against model b on ``metric``.

    Raises ``ValueError`` when the evidences were not scored on the same examples, or lack ``metric``.
    ``keep_replicates`` keeps the replicate deltas in :attr:`Comparison.replicate_deltas`. ``matched_seeds``: seed
    ``i`` of a and of b are one trained state (a model and its INT8 copy): the seeds are drawn together.
    """
    evs_a = _check_group(a, "model a")
    evs_b = _check_group(b, "model b")
    if matched_seeds and len(evs_a) != len(evs_b):
        raise ValueError(f"matched seeds need as many seeds on both sides, got {len(evs_a)} and {len(evs_b)}")
    ref = evs_a[0]
    _check_same(ref, evs_a, "model a")
    _check_same(ref, evs_b, "model b")
    model_a, model_b = _Seeds(evs_a, metric, "model a"), _Seeds(evs_b, metric, "model b")
    n_clusters = len(ref.clusters)
    total = _replicate_count(model_a.rows, replicates)
    rng = np.random.default_rng(seed)
    deltas, fixed = [], []
    step = _chunk_rows(n_clusters, total)
    for start in range(0, total, step):
        counts = _cluster_counts(rng, n_clusters, min(step, total - start))
        counts = counts.astype(np.float64)  # once for both models' matrix products
        va, vb = model_a(counts), model_b(counts)
        if matched_seeds:
            deltas.append(_statistic(*_matched_seed_means(rng, va, vb), relative))
        else:
            deltas.append(_statistic(_seed_means(rng, va, True), _seed_means(rng, vb, True), relative))
        fixed.append(_statistic(va.mean(axis=1), vb.mean(axis=1), relative))
    d_all, f_all = np.concatenate(deltas), np.concatenate(fixed)
    keep = np.isfinite(d_all) & np.isfinite(f_all)
    d_star, f_star = d_all[keep], f_all[keep]
    if d_star.size < 2:
        raise ValueError(f"{metric}: fewer than 2 bootstrap replicates have a finite value (an empty subset?)")

    mean_a, mean_b = float(model_a.observed.mean()), float(model_b.observed.mean())
    delta = float(_statistic(mean_a, mean_b, relative))
    center = float(_statistic(model_a.plugin.mean(), model_b.plugin.mean(), relative))  # what the replicates center on
    p_value = (1 + int(np.count_nonzero(np.abs(d_star - center) >= abs(center)))) / (d_star.size + 1)

    n_a, n_b = len(evs_a), len(evs_b)
    var_a = float(np.var(model_a.observed, ddof=1)) if n_a > 1 else None
    var_b = float(np.var(model_b.observed, ddof=1)) if n_b > 1 else None
    if relative and var_a is not None and var_b is not None:  # delta method for 100 * (A / B - 1)
        var_a, var_b = var_a * (100 / mean_b) ** 2, var_b * (100 * mean_a / mean_b**2) ** 2
    se_seeds = None if var_a is None or var_b is None else float(np.sqrt(var_a / n_a + var_b / n_b))
    if matched_seeds and n_a > 1:
        diff = _statistic(model_a.observed, model_b.observed, relative)
        se_seeds = float(np.std(diff, ddof=1) / np.sqrt(n_a))

    test = None
    if n_a == n_b == 1 and metric in CORRECT_METRICS and ref.task_type in ("classification", "vqa"):
        test = mcnemar(correct(evs_a[0], metric), correct(evs_b[0], metric))

    if matched_seeds and n_a > 1:
        seeds = f"{n_a} seeds drawn together for both (seed i of each is one trained state), rescaled by sqrt(n/(n-1))"
    elif max(n_a, n_b) > 1:
        seeds = f"seeds resampled within each model ({n_a} and {n_b}, rescaled by sqrt(n/(n-1)))"
    else:
        seeds = "1 seed each (training randomness not included)"
    capped = f" (capped at {ROW_REPLICATES}: {metric} is recomputed from rows)" if total < replicates else ""
    method = (
        f"paired bootstrap over {n_clusters} clusters (same draws for both models), {seeds}; "
        f"{d_star.size} replicates{capped}, percentile CI"
    )
    return Comparison(
        metric=metric,
        a=mean_a,
        b=mean_b,
        delta=delta,
        ci={float(level): _percentile_ci(d_star, level) for level in levels},
        p_value=float(p_value),
        n_clusters=n_clusters,
        n_seeds_a=n_a,
        n_seeds_b=n_b,
        replicates=int(d_star.size),
        se=float(np.std(d_star, ddof=1)),
        se_clusters=float(np.std(f_star, ddof=1)),
        se_seeds=se_seeds,
        method=method,
        relative=relative,
        values_a=tuple(float(v) for v in model_a.observed),
        values_b=tuple(float(v) for v in model_b.observed),
        seed_var_a=var_a,
        seed_var_b=var_b,
        mcnemar=test,
        replicate_deltas=d_star if keep_replicates else None,
    )
