"""Top-k classification accuracy (micro, percent), matching timm's ``accuracy`` on untied logits.

Tie policy: the rank of the target class is the number of classes with a strictly higher logit plus the number of
classes with an EQUAL logit and a LOWER class index, i.e. the position of the target in a stable descending sort.
``torch.topk`` (used by timm) does not specify its order among ties, so with tied logits timm's number can depend on
the device and the torch version; with untied logits the two agree exactly. When ``k >= C`` every sample counts as
correct (timm clamps ``k`` to ``C``), so top-k is 100.

This module needs only numpy; torch tensors are accepted and converted (``detach().cpu()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.finite import check_finite

__all__ = ["to_numpy", "topk_accuracy", "topk_correct", "topk_ranks"]

# Bound on the elements of one temporary (rows x classes) comparison block.
_BLOCK_ELEMENTS = 1 << 22


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert an array-like (numpy array, torch tensor, nested list) to a numpy array without importing torch.

    Half-precision floats (numpy float16, torch float16/bfloat16) are widened to float32, which is exact.

    Args:
        x: The value to convert.
        name: The argument name, used in error messages.

    Returns:
        A numpy array (a view when ``x`` already is one).
    """
    if isinstance(x, np.ndarray):
        arr = x
    elif hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):  # torch.Tensor, duck-typed
        t = x.detach().cpu()
        if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        arr = t.numpy()
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise UserError(f"Expected `{name}` to be an array (numpy, torch or nested lists), but got {exc}") from None
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biuf":
        raise UserError(f"Expected `{name}` to hold numbers, but got dtype {arr.dtype}")
    return arr


def _check_topk(topk: Sequence[int] | int) -> tuple[int, ...]:
    if isinstance(topk, int | np.integer):
        topk = (int(topk),)
    ks = tuple(topk)
    if not ks or any(not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1 for k in ks):
        raise UserError(f"Expected `topk` to be positive integers such as (1, 5), but got {topk!r}")
    return tuple(int(k) for k in ks)


def topk_correct(logits: Any, target: Any, topk: Sequence[int] | int = (1, 5)) -> tuple[list[int], int]:
    """Count the samples whose target is within the top k, for each k (the arithmetic behind :func:`topk_accuracy`).

    Args:
        logits: Scores of shape ``(N, C)`` (any monotone transform of the logits gives the same result).
        target: Integer class indices of shape ``(N,)`` in ``[0, C)``.
        topk: The values of k.

    Returns:
        ``(correct, n)``: ``correct[i]`` samples are correct at ``topk[i]``, out of ``n`` samples.

    Raises:
        UserError: On bad shapes, out-of-range targets or bad k.
        NonFiniteError: On NaN or ±inf logits (a ``ValueError``), naming the first one.
    """
    ks = _check_topk(topk)
    rank = topk_ranks(logits, target)
    return [int(np.count_nonzero(rank < k)) for k in ks], len(rank)


def topk_ranks(logits: Any, target: Any) -> np.ndarray:
    """The 0-based rank of each sample's target class (see the module docstring for ties): top-k correct iff < k."""
    scores = to_numpy(logits, "logits")
    labels = to_numpy(target, "target")
    if scores.ndim != 2:
        raise UserError(f"Expected `logits` to have shape (n_samples, n_classes), but got shape {tuple(scores.shape)}")
    n, c = scores.shape
    if labels.ndim != 1 or labels.shape[0] != n:
        raise UserError(f"Expected `target` to have shape ({n},) to match `logits`, but got {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise UserError(f"Expected `target` to hold integer class indices, but got dtype {labels.dtype}")
    if c == 0:
        raise UserError("Expected `logits` to have at least one class column, but got shape (N, 0)")
    if n and (labels.min() < 0 or labels.max() >= c):
        bad = int(labels[(labels < 0) | (labels >= c)][0])
        raise UserError(f"Expected `target` values in [0, {c}), but got {bad}")
    labels = labels.astype(np.int64, copy=False)

    rank = np.empty(n, dtype=np.int64)
    cols = np.arange(c)
    step = max(1, _BLOCK_ELEMENTS // c)
    for r0 in range(0, n, step):
        block = scores[r0 : r0 + step]
        lab = labels[r0 : r0 + step]
        own = block[np.arange(block.shape[0]), lab][:, None]
        check_finite(block, "logits", r0)
        higher = np.count_nonzero(block > own, axis=1)
        tied_before = np.count_nonzero((block == own) & (cols[None, :] < lab[:, None]), axis=1)
        rank[r0 : r0 + step] = higher + tied_before
    return rank


def topk_accuracy(logits: Any, target: Any, topk: Sequence[int] | int = (1, 5)) -> dict[str, float]:
    """Micro top-k accuracy in percent.

    Args:
        logits: Scores of shape ``(N, C)``.
        target: Integer class indices of shape ``(N,)``.
        topk: The values of k.

    Returns:
        ``{"top1": float, "top5": float}`` (one key ``f"top{k}"`` per k), each ``100 * correct / N``.
    """
    ks = _check_topk(topk)
    correct, n = topk_correct(logits, target, ks)
    if n == 0:
        raise UserError("Expected at least one sample, but got 0")
    return {f"top{k}": 100.0 * c / n for k, c in zip(ks, correct)}
