"""Multi-label average precision (per class and macro mAP, in percent).

Modes (see ``docs/metrics.md``):

* ``"nonint"`` (default): non-interpolated AP, the mean of the precision at each positive, with tied scores grouped as
  ``sklearn.metrics.average_precision_score`` does (the PR curve has one point per DISTINCT score, so the order of
  tied samples never matters). Classes without positives are excluded from the mean and reported.
* ``"voc"``: PASCAL VOC2010+ all-point interpolated AP (monotone precision envelope, area under it), ranking as the
  devkit's MATLAB ``sort(-out)``: a stable sort, ties in sample order.
* ``"voc11"``: PASCAL VOC2007 11-point interpolated AP, thresholds ``np.arange(0., 1.1, 0.1)`` as in the Python ports
  (py-faster-rcnn, Detectron, mmdet), same ranking as ``"voc"``.
* ``"asl"``: the ASL / ML-Decoder ``mAP`` helper reproduced operation by operation: ranking by
  ``scores.argsort()[::-1]`` (numpy's default, unstable, sort: the order among ties is implementation-defined), AP
  divided by ``n_positives + 1e-8``, and classes without positives counted as AP 0 in the mean.

This module needs only numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.finite import check_finite
from harness.metrics.topk import to_numpy

__all__ = ["AP_MODES", "average_precision"]

AP_MODES = ("nonint", "voc", "voc11", "asl")
_BLOCK_ELEMENTS = 1 << 22
_ASL_EPSILON = 1e-8
# VOC2007 11-point thresholds exactly as the Python ports compute them: np.arange accumulates 0.1 in floating point,
# so e.g. the 4th threshold is 0.30000000000000004 and a recall of exactly 3/10 does NOT reach it.
VOC11_THRESHOLDS = np.arange(0.0, 1.1, 0.1)


def _check_inputs(scores: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    s = to_numpy(scores, "scores")
    t = to_numpy(targets, "targets")
    if s.ndim == 1:
        s = s[:, None]
    if t.ndim == 1:
        t = t[:, None]
    if s.ndim != 2:
        raise UserError(f"Expected `scores` to have shape (n_samples, n_classes), but got {tuple(s.shape)}")
    if t.shape != s.shape:
        raise UserError(f"Expected `targets` to have the shape of `scores` {tuple(s.shape)}, but got {tuple(t.shape)}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise UserError(f"Expected at least one sample and one class, but got shape {tuple(s.shape)}")
    check_finite(s, "scores")
    bad = (t != 0) & (t != 1)
    if bad.any():
        raise UserError(f"Expected `targets` to contain only 0 and 1, but got {t[bad][0].item()!r}")
    return s, t.astype(np.int64)


def _column_sums(values: np.ndarray) -> np.ndarray:
    """Sum each column as a contiguous 1-D array (numpy's pairwise sum, like sklearn's ``np.sum`` on one class), so
    that a class's AP does not depend on how many other classes share its block."""
    return np.ascontiguousarray(values.T).sum(axis=1)


def _nonint_ap(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """sklearn-style AP for every column: sum over distinct thresholds of (recall step) x (precision at threshold)."""
    n = s.shape[0]
    order = np.argsort(s, axis=0, kind="stable")[::-1]  # descending; order inside a tie group is irrelevant here
    s_sorted = np.take_along_axis(s, order, axis=0)
    t_sorted = np.take_along_axis(t, order, axis=0)
    tp = np.cumsum(t_sorted, axis=0)
    # A position closes a threshold if it is the last of its group of equal scores.
    closes = np.ones(s.shape, dtype=bool)
    closes[:-1] = s_sorted[1:] != s_sorted[:-1]
    tp_closed = np.where(closes, tp, 0)
    # tp at the previous closing position (tp is non-decreasing, so a running max of the closed values works).
    prev = np.zeros_like(tp)
    prev[1:] = np.maximum.accumulate(tp_closed, axis=0)[:-1]
    precision = tp / np.arange(1, n + 1, dtype=np.float64)[:, None]
    n_pos = tp[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _column_sums(np.where(closes, (tp - prev) / n_pos * precision, 0.0))


def _voc_ap(s: np.ndarray, t: np.ndarray, eleven_point: bool) -> np.ndarray:
    """VOC devkit AP for every column, stable ranking (ties in sample order)."""
    n = s.shape[0]
    # Stable descending order with ties kept in sample order (MATLAB `sort(-out)`): negate, then stable ascending sort.
    neg = -s.astype(np.float64) if s.dtype.kind != "f" else -s
    order = np.argsort(neg, axis=0, kind="stable")
    t_sorted = np.take_along_axis(t, order, axis=0)
    tp = np.cumsum(t_sorted, axis=0)
    n_pos = tp[-1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / n_pos
        precision = tp / np.arange(1, n + 1, dtype=np.float64)[:, None]  # tp / (tp + fp)
        if eleven_point:
            ap = np.zeros(s.shape[1])
            for thr in VOC11_THRESHOLDS:
                reached = recall >= thr
                p = np.where(reached, precision, 0.0).max(axis=0)  # 0 when no recall reaches thr
                ap = ap + p / 11.0
            return ap
        # Precision envelope: max precision at any later rank (the trailing sentinel precision is 0).
        envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
        prev_recall = np.zeros_like(recall)
        prev_recall[1:] = recall[:-1]
        # Recall changes exactly at the positives (and reaches 1 at the last one, so the sentinel recall 1 adds 0).
        return _column_sums(np.where(t_sorted == 1, (recall - prev_recall) * envelope, 0.0))


def _asl_ap(output: np.ndarray, target: np.ndarray) -> float:
    """One class of the ASL/ML-Decoder ``average_precision`` helper, same operations in the same order."""
    indices = output.argsort()[::-1]
    total_count = np.cumsum(np.ones((len(output), 1)))
    ind = target[indices] == 1
    pos_count = np.cumsum(ind)
    total = pos_count[-1]
    pos_count[np.logical_not(ind)] = 0
    return float(np.sum(pos_count / total_count) / (total + _ASL_EPSILON))


def average_precision(scores: Any, targets: Any, mode: str = "nonint") -> dict[str, Any]:
    """Per-class AP and macro mAP, in percent.

    Args:
        scores: Scores of shape ``(N, C)`` (higher = more likely positive); a 1-D array is one class.
        targets: Binary labels of shape ``(N, C)`` in {0, 1}.
        mode: ``"nonint"`` (default, sklearn), ``"voc"`` (VOC2010+), ``"voc11"`` (VOC2007) or ``"asl"``.

    Returns:
        ``{"mAP": float, "per_class": {class_index: float}, "num_classes_excluded": int, "excluded_classes": [int]}``.
        Classes without any positive are left out of ``per_class`` and of the mean, and listed in
        ``excluded_classes`` -- except in ``"asl"`` mode, which (like the ASL code) scores them as 0 and averages over
        all classes.

    Raises:
        UserError: On bad shapes or labels, an unknown mode, or (outside ``"asl"``) when no class has a positive.
        NonFiniteError: On NaN or ±inf scores (a ``ValueError``), naming the first one.
    """
    if mode not in AP_MODES:
        raise UserError(f"Expected `mode` to be one of {', '.join(map(repr, AP_MODES))}, but got {mode!r}")
    s, t = _check_inputs(scores, targets)
    n, c = s.shape

    if mode == "asl":
        ap = np.zeros(c)
        for k in range(c):
            ap[k] = _asl_ap(s[:, k], t[:, k])
        return {
            "mAP": float(100 * ap.mean()),
            "per_class": {k: float(100 * ap[k]) for k in range(c)},
            "num_classes_excluded": 0,
            "excluded_classes": [],
        }

    n_pos = t.sum(axis=0)
    included = np.flatnonzero(n_pos > 0)
    excluded = [int(k) for k in np.flatnonzero(n_pos == 0)]
    if included.size == 0:
        raise UserError(f"Expected at least one class with a positive target, but all {c} classes have none")
    ap = np.empty(included.size)
    step = max(1, _BLOCK_ELEMENTS // n)
    for j0 in range(0, included.size, step):
        cols = included[j0 : j0 + step]
        sb, tb = s[:, cols], t[:, cols]
        if mode == "nonint":
            ap[j0 : j0 + step] = _nonint_ap(sb, tb)
        else:
            ap[j0 : j0 + step] = _voc_ap(sb, tb, eleven_point=mode == "voc11")
    return {
        "mAP": float(100 * ap.mean()),
        "per_class": {int(k): float(100 * a) for k, a in zip(included, ap)},
        "num_classes_excluded": len(excluded),
        "excluded_classes": excluded,
    }
