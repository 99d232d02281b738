"""Image-text retrieval recall@K with ALBEF/LAVIS ``itm_eval`` semantics and key names.

* image -> text (``txt_r*``): the rank of an image is the rank of its BEST-ranked ground-truth caption; recall@K is
  the percentage of images with rank < K.
* text -> image (``img_r*``): the rank of a text is the rank of its image.
* ``txt_r_mean`` / ``img_r_mean`` are the means of the three recalls, ``r_mean`` is their mean.

Ties: ALBEF ranks with ``np.argsort(score)[::-1]``, whose order among equal scores is implementation-defined. Here the
rank of a ground truth with score ``s`` is the number of NON-ground-truth candidates with score ``>= s``
(``ties="pessimistic"``, default: ties never inflate recall, a constant-score model gets ~0) or ``> s``
(``ties="optimistic"``). Without ties both equal ALBEF exactly.

The score matrix is processed in row blocks: the extra memory is a block of the matrix (a few MB), never an argsort of
the full matrix or a full boolean matrix. This module needs only numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.finite import check_finite
from harness.metrics.topk import to_numpy

__all__ = ["TIES", "recalls_from_ranks", "retrieval_ranks", "retrieval_recall"]

TIES = ("pessimistic", "optimistic")
_KS = (1, 5, 10)
_BLOCK_ELEMENTS = 1 << 21  # elements of one block of rows (8 MB of float32)


def _as_list(mapping_or_seq: Any, n: int, name: str) -> list[Any]:
    """ALBEF stores img2txt/txt2img as dicts keyed 0..n-1; accept those as well as sequences."""
    if isinstance(mapping_or_seq, Mapping):
        try:
            return [mapping_or_seq[i] for i in range(n)]
        except KeyError as exc:
            raise UserError(f"Expected `{name}` to have keys 0..{n - 1}, but key {exc.args[0]} is missing") from None
    if hasattr(mapping_or_seq, "tolist"):
        mapping_or_seq = mapping_or_seq.tolist()
    values = list(mapping_or_seq)
    if len(values) != n:
        raise UserError(f"Expected `{name}` to have {n} entries (one per row of the scores), but got {len(values)}")
    return values


def _length(values: Any, name: str) -> int:
    try:
        n = len(values)
    except TypeError:
        raise UserError(f"Expected `{name}` to be a list or dict, but got {type(values).__name__}") from None
    if n == 0:
        raise UserError(f"Expected `{name}` to have at least one entry, but got 0")
    return n


def _check_scores(scores: Any, name: str, shape: tuple[int, int], what: str) -> np.ndarray:
    arr = to_numpy(scores, name)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.shape != shape:
        raise UserError(f"Expected `{name}` to have shape {what} = {shape}, but got {tuple(arr.shape)}")
    return arr


def _gt_texts(img2txt: Any, n_images: int, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded (n_images, L) array of distinct gt text indices (padding repeats the first) and its validity mask."""
    rows = _as_list(img2txt, n_images, "img2txt")
    distinct: list[list[int]] = []
    for i, texts in enumerate(rows):
        if isinstance(texts, int | np.integer):
            texts = [texts]
        elif hasattr(texts, "tolist"):
            texts = texts.tolist()
        texts = list(texts)
        if not texts:
            raise UserError(f"Expected every image to have at least one caption in `img2txt`, but image {i} has none")
        for t in texts:
            if isinstance(t, bool) or not isinstance(t, int | np.integer) or not 0 <= t < n_texts:
                raise UserError(f"Expected `img2txt[{i}]` to hold text indices in [0, {n_texts}), but got {t!r}")
        distinct.append(list(dict.fromkeys(int(t) for t in texts)))
    width = max(len(d) for d in distinct)
    padded = np.empty((n_images, width), dtype=np.int64)
    valid = np.zeros((n_images, width), dtype=bool)
    for i, d in enumerate(distinct):
        padded[i, : len(d)] = d
        padded[i, len(d) :] = d[0]
        valid[i, : len(d)] = True
    return padded, valid


def _gt_images(txt2img: Any, n_texts: int, n_images: int) -> np.ndarray:
    values = _as_list(txt2img, n_texts, "txt2img")
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        arr = None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iu" and ((arr >= 0) & (arr < n_images)).all():
        return arr.astype(np.int64)
    out = np.empty(n_texts, dtype=np.int64)  # slow path: find and report the first bad entry
    for t, img in enumerate(values):
        if isinstance(img, bool) or not isinstance(img, int | np.integer) or not 0 <= img < n_images:
            raise UserError(f"Expected `txt2img[{t}]` to be an image index in [0, {n_images}), but got {img!r}")
        out[t] = img
    return out


def _single_gt_ranks(scores: np.ndarray, gt: np.ndarray, pessimistic: bool, name: str) -> np.ndarray:
    """Rank of one ground-truth column per row: candidates (other than the gt) scoring >= (or >) the gt score."""
    n_rows, n_cols = scores.shape
    ranks = np.empty(n_rows, dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // n_cols)
    for r0 in range(0, n_rows, step):
        block = scores[r0 : r0 + step]
        check_finite(block, name, r0)
        thr = block[np.arange(block.shape[0]), gt[r0 : r0 + step]][:, None]
        if pessimistic:
            ranks[r0 : r0 + step] = np.count_nonzero(block >= thr, axis=1) - 1  # the gt itself is >= its own score
        else:
            ranks[r0 : r0 + step] = np.count_nonzero(block > thr, axis=1)
    return ranks


def _recalls(ranks: np.ndarray) -> list[float]:
    # ALBEF: 100.0 * len(np.where(ranks < K)[0]) / len(ranks)
    return [100.0 * int(np.count_nonzero(ranks < k)) / len(ranks) for k in _KS]


def retrieval_recall(
    scores_i2t: Any,
    img2txt: Sequence[Sequence[int]] | Mapping[int, Sequence[int]],
    txt2img: Sequence[int] | Mapping[int, int],
    scores_t2i: Any | None = None,
    ties: str = "pessimistic",
) -> dict[str, float]:
    """Recall@1/5/10 in both directions (percent, ALBEF key names): :func:`retrieval_ranks`, then
    :func:`recalls_from_ranks`. See :func:`retrieval_ranks` for the arguments."""
    return recalls_from_ranks(*retrieval_ranks(scores_i2t, img2txt, txt2img, scores_t2i, ties))


def retrieval_ranks(
    scores_i2t: Any,
    img2txt: Sequence[Sequence[int]] | Mapping[int, Sequence[int]],
    txt2img: Sequence[int] | Mapping[int, int],
    scores_t2i: Any | None = None,
    ties: str = "pessimistic",
) -> tuple[np.ndarray, np.ndarray]:
    """Recall@1/5/10 for image->text and text->image retrieval, in percent, with ALBEF's key names.

    Args:
        scores_i2t: Similarity scores of shape ``(n_images, n_texts)`` (numpy, torch or nested lists).
        img2txt: For each image, the indices of its ground-truth texts (a list of lists, or ALBEF's dict).
        txt2img: For each text, the index of its image (a list, or ALBEF's dict).
        scores_t2i: Optional scores of shape ``(n_texts, n_images)`` for text->image (ALBEF re-ranks the two directions
            separately); defaults to ``scores_i2t.T``.
        ties: ``"pessimistic"`` (a ground truth is outranked by every other candidate with an equal or higher score)
            or ``"optimistic"`` (only by strictly higher scores).

    Returns:
        ``(txt_ranks, img_ranks)``: the 0-based rank of each image's best ground-truth caption among the texts, and
        of each text's image among the images; recall@K is the share of ranks below K.

    Raises:
        UserError: On bad shapes, out-of-range indices or an unknown tie policy.
        NonFiniteError: On NaN or ±inf scores (a ``ValueError``), naming the first one.
    """
    if ties not in TIES:
        raise UserError(f"Expected `ties` to be one of {', '.join(map(repr, TIES))}, but got {ties!r}")
    pessimistic = ties == "pessimistic"
    # The sizes come from the index structures (len(img2txt) images, len(txt2img) texts); the scores must agree.
    n_images, n_texts = _length(img2txt, "img2txt"), _length(txt2img, "txt2img")
    scores = _check_scores(scores_i2t, "scores_i2t", (n_images, n_texts), "(n_images, n_texts)")
    gt_txt, gt_valid = _gt_texts(img2txt, n_images, n_texts)
    gt_img = _gt_images(txt2img, n_texts, n_images)
    t2i = None
    if scores_t2i is not None:
        t2i = _check_scores(scores_t2i, "scores_t2i", (n_texts, n_images), "(n_texts, n_images)")

    # Image -> text: threshold = best gt caption score; rank = non-gt captions scoring >= (or >) it.
    # Text -> image from scores_i2t (no transpose): for text t, count images whose score in column t is >= (or >)
    # the score of its own image, accumulated over row blocks.
    txt_ranks = np.empty(n_images, dtype=np.int64)
    col_counts = np.zeros(n_texts, dtype=np.int64) if t2i is None else None
    col_thr = scores[gt_img, np.arange(n_texts)][None, :] if t2i is None else None
    step = max(1, min(_BLOCK_ELEMENTS // n_texts, 65535))
    for r0 in range(0, n_images, step):
        block = scores[r0 : r0 + step]
        check_finite(block, "scores_i2t", r0)
        gt_scores = np.take_along_axis(block, gt_txt[r0 : r0 + step], axis=1)
        thr = gt_scores.max(axis=1)[:, None]
        if pessimistic:
            n_all = np.count_nonzero(block >= thr, axis=1)
            n_gt = np.count_nonzero((gt_scores >= thr) & gt_valid[r0 : r0 + step], axis=1)
            txt_ranks[r0 : r0 + step] = n_all - n_gt
        else:
            txt_ranks[r0 : r0 + step] = np.count_nonzero(block > thr, axis=1)  # no gt scores above the best gt
        if col_counts is not None:
            hits = (block >= col_thr) if pessimistic else (block > col_thr)
            col_counts += hits.view(np.uint8).sum(axis=0, dtype=np.uint16)
    if col_counts is not None:
        img_ranks = col_counts - 1 if pessimistic else col_counts  # pessimistic counted the gt image itself
    else:
        img_ranks = _single_gt_ranks(t2i, gt_img, pessimistic, "scores_t2i")

    return txt_ranks, img_ranks


def recalls_from_ranks(txt_ranks: np.ndarray, img_ranks: np.ndarray) -> dict[str, float]:
    """ALBEF's recalls from the 0-based rank of each image query (``txt_r*``) and each text query (``img_r*``)."""
    tr1, tr5, tr10 = _recalls(np.asarray(txt_ranks))
    ir1, ir5, ir10 = _recalls(np.asarray(img_ranks))
    tr_mean = (tr1 + tr5 + tr10) / 3
    ir_mean = (ir1 + ir5 + ir10) / 3
    return {
        "txt_r1": tr1,
        "txt_r5": tr5,
        "txt_r10": tr10,
        "txt_r_mean": tr_mean,
        "img_r1": ir1,
        "img_r5": ir5,
        "img_r10": ir10,
        "img_r_mean": ir_mean,
        "r_mean": (tr_mean + ir_mean) / 2,
    }
