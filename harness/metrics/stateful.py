"""Stateful (``torchmetrics.Metric``) twins of the functional metrics, for batch-wise accumulation and DDP.

Every class keeps its state as tensors (``dist_reduce_fx="cat"`` or ``"sum"``) so torchmetrics can gather it across
ranks, and ``compute()`` calls the SAME functional code as the one-shot functions: accumulating a dataset in several
updates gives exactly the number of one functional call on the concatenated inputs (in update order, then rank order
after a DDP gather).

VQA answer/question types are stored as int64 codes: the first 8 bytes of the BLAKE2b hash of the type string, which
is the same on every rank (unlike Python's salted ``hash``). Names are resolved from the types this rank has seen plus
the optional vocabularies passed to the constructor; pass the vocabularies when a rank may not see every type.

This module imports torch and torchmetrics; ``harness.metrics`` imports it lazily.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from harness.errors import UserError
from harness.metrics.average_precision import AP_MODES, average_precision
from harness.metrics.retrieval import TIES, retrieval_recall
from harness.metrics.topk import _check_topk, to_numpy, topk_correct
from harness.metrics.vqa import MODES, aggregate_vqa_scores, vqa_question_scores

__all__ = ["MultilabelAP", "RetrievalRecall", "TopKAccuracy", "VQAAccuracy", "type_code"]

_NO_TYPE = -(2**63)  # code stored when an update carries no type labels


def type_code(name: str) -> int:
    """Deterministic signed 64-bit code of a type label (identical on every process)."""
    code = int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
    return code if code != _NO_TYPE else _NO_TYPE + 1


def _as_tensor(x: Any, name: str, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device)
    return torch.as_tensor(to_numpy(x, name), device=device)


def _cat(state: Any, what: str) -> torch.Tensor:
    if isinstance(state, list) and not state:
        raise UserError(f"Expected at least one call to update() with {what} before compute(), but got none")
    return dim_zero_cat(state)


class TopKAccuracy(Metric):
    """Micro top-k accuracy in percent; the twin of :func:`harness.metrics.topk_accuracy` (same tie policy)."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, topk: Sequence[int] | int = (1, 5), **kwargs: Any) -> None:
        """Args:
        topk: The values of k.
        **kwargs: Passed to ``torchmetrics.Metric`` (e.g. ``sync_on_compute``).
        """
        super().__init__(**kwargs)
        self.topk = _check_topk(topk)
        self.add_state("correct", default=torch.zeros(len(self.topk), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Any, target: Any) -> None:
        """Add a batch: ``logits`` ``(B, C)``, ``target`` ``(B,)`` integer class indices."""
        correct, n = topk_correct(logits, target, self.topk)
        self.correct += torch.tensor(correct, dtype=torch.long, device=self.correct.device)
        self.total += n

    def compute(self) -> dict[str, float]:
        """Return ``{"top1": pct, "top5": pct, ...}`` over everything accumulated."""
        n = int(self.total)
        if n == 0:
            raise UserError("Expected at least one sample before compute(), but got 0")
        return {f"top{k}": 100.0 * int(c) / n for k, c in zip(self.topk, self.correct.tolist())}


class VQAAccuracy(Metric):
    """VQA accuracy (official or legacy); the twin of :func:`harness.metrics.vqa_accuracy`.

    Per-question scores are computed at ``update`` time (strings never enter the state) and stored as float64 with
    int64 type codes.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        mode: str = "official",
        answer_types: Sequence[str] | None = None,
        question_types: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Args:
        mode: ``"official"`` or ``"legacy"``.
        answer_types: Optional vocabulary of answer types, to name types another rank saw but this one did not.
        question_types: Optional vocabulary of question types, same purpose.
        **kwargs: Passed to ``torchmetrics.Metric``.
        """
        super().__init__(**kwargs)
        if mode not in MODES:
            raise UserError(f"Expected `mode` to be one of {', '.join(map(repr, MODES))}, but got {mode!r}")
        self.mode = mode
        self._names: dict[int, str] = {}
        for vocab in (answer_types or (), question_types or ()):
            self._codes(list(vocab), "type vocabulary")
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("answer_type_codes", default=[], dist_reduce_fx="cat")
        self.add_state("question_type_codes", default=[], dist_reduce_fx="cat")

    def _codes(self, types: Sequence[str] | None, name: str, n: int | None = None) -> list[int]:
        if types is None:
            return [_NO_TYPE] * (n or 0)
        if isinstance(types, str) or (n is not None and len(types) != n):
            got = "a str" if isinstance(types, str) else f"{len(types)} entries"
            raise UserError(f"Expected `{name}` to have one entry per question ({n}), but got {got}")
        cache: dict[str, int] = {}
        out = []
        for t in types:
            if not isinstance(t, str):
                raise UserError(f"Expected `{name}` to hold str labels, but got {type(t).__name__} {t!r}")
            code = cache.get(t)
            if code is None:
                code = cache[t] = type_code(t)
                self._names[code] = t
            out.append(code)
        return out

    def update(
        self,
        predictions: Sequence[str],
        answers: Sequence[Sequence[str]],
        answer_types: Sequence[str] | None = None,
        question_types: Sequence[str] | None = None,
    ) -> None:
        """Add a batch of questions (same arguments as :func:`harness.metrics.vqa_accuracy`)."""
        scores = vqa_question_scores(predictions, answers, mode=self.mode)
        n = len(scores)
        a_codes = self._codes(answer_types, "answer_types", n)
        q_codes = self._codes(question_types, "question_types", n)
        device = self.device
        self.scores.append(torch.from_numpy(scores).to(device))
        self.answer_type_codes.append(torch.tensor(a_codes, dtype=torch.long, device=device))
        self.question_type_codes.append(torch.tensor(q_codes, dtype=torch.long, device=device))

    def _labels(self, codes: torch.Tensor, name: str) -> list[str] | None:
        values = codes.cpu().tolist()
        if not values:
            return None
        missing_types = [v == _NO_TYPE for v in values]
        if all(missing_types):
            return None
        if any(missing_types):
            raise UserError(f"Expected `{name}` in every update() or in none, but some updates had none")
        unknown = sorted({v for v in values if v not in self._names})
        if unknown:
            raise UserError(
                f"Expected every {name} code to be known on this rank, but {len(unknown)} are not; "
                f"pass the full vocabulary as VQAAccuracy({name}=[...])"
            )
        return [self._names[v] for v in values]

    def compute(self) -> dict[str, object]:
        """Return ``{"overall", "perAnswerType", "perQuestionType"}`` exactly as :func:`vqa_accuracy` would."""
        scores = _cat(self.scores, "questions").cpu().numpy()
        a_codes = dim_zero_cat(self.answer_type_codes)
        q_codes = dim_zero_cat(self.question_type_codes)
        return aggregate_vqa_scores(
            scores, self._labels(a_codes, "answer_types"), self._labels(q_codes, "question_types")
        )


class RetrievalRecall(Metric):
    """Image-text recall@1/5/10 (ALBEF keys); the twin of :func:`harness.metrics.retrieval_recall`.

    ``update`` takes blocks of ROWS of the score matrix with their global row indices (text->image needs every image's
    score for a text, so the matrix is assembled at ``compute``); every image must be given exactly once.
    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        img2txt: Sequence[Sequence[int]] | Mapping[int, Sequence[int]],
        txt2img: Sequence[int] | Mapping[int, int],
        ties: str = "pessimistic",
        **kwargs: Any,
    ) -> None:
        """Args:
        img2txt: For each image, the indices of its texts.
        txt2img: For each text, the index of its image.
        ties: ``"pessimistic"`` or ``"optimistic"``.
        **kwargs: Passed to ``torchmetrics.Metric``.
        """
        super().__init__(**kwargs)
        if ties not in TIES:
            raise UserError(f"Expected `ties` to be one of {', '.join(map(repr, TIES))}, but got {ties!r}")
        self.img2txt = img2txt
        self.txt2img = txt2img
        self.n_images = len(img2txt)
        self.n_texts = len(txt2img)
        self.ties = ties
        self.add_state("i2t_rows", default=[], dist_reduce_fx="cat")
        self.add_state("i2t_index", default=[], dist_reduce_fx="cat")
        self.add_state("t2i_rows", default=[], dist_reduce_fx="cat")
        self.add_state("t2i_index", default=[], dist_reduce_fx="cat")

    def _rows(self, scores: Any, index: Any, name: str, index_name: str, width: int) -> tuple[torch.Tensor, ...]:
        rows = _as_tensor(scores, name, self.device)
        idx = _as_tensor(index, index_name, self.device).long().reshape(-1)
        if rows.ndim != 2 or rows.shape[1] != width or rows.shape[0] != idx.shape[0]:
            raise UserError(
                f"Expected `{name}` to have shape ({idx.shape[0]}, {width}) for the given `{index_name}`, "
                f"but got {tuple(rows.shape)}"
            )
        return rows, idx

    def update(
        self,
        scores_i2t: Any,
        image_indices: Any,
        scores_t2i: Any | None = None,
        text_indices: Any | None = None,
    ) -> None:
        """Add rows of the score matrices.

        Args:
            scores_i2t: ``(B, n_texts)`` scores of images ``image_indices`` against all texts.
            image_indices: ``(B,)`` global image indices of those rows.
            scores_t2i: Optional ``(B2, n_images)`` rows of a separate text->image matrix (as in ALBEF).
            text_indices: ``(B2,)`` global text indices of those rows; required with ``scores_t2i``.
        """
        rows, idx = self._rows(scores_i2t, image_indices, "scores_i2t", "image_indices", self.n_texts)
        self.i2t_rows.append(rows)
        self.i2t_index.append(idx)
        if scores_t2i is not None:
            if text_indices is None:
                raise UserError("Expected `text_indices` together with `scores_t2i`, but got None")
            rows, idx = self._rows(scores_t2i, text_indices, "scores_t2i", "text_indices", self.n_images)
            self.t2i_rows.append(rows)
            self.t2i_index.append(idx)

    @staticmethod
    def _assemble(rows: torch.Tensor, index: torch.Tensor, n: int, what: str) -> np.ndarray:
        idx = index.cpu().numpy()
        counts = np.bincount(idx[(idx >= 0) & (idx < n)], minlength=n)
        if idx.shape[0] != n or (counts != 1).any():
            bad = int(np.flatnonzero(counts != 1)[0]) if (counts != 1).any() else -1
            raise UserError(
                f"Expected every {what} index 0..{n - 1} exactly once across updates, but got {idx.shape[0]} rows"
                + (f" ({what} {bad} appears {int(counts[bad])} times)" if bad >= 0 else " (some out of range)")
            )
        out = np.empty((n, rows.shape[1]), dtype=rows.cpu().numpy().dtype)
        out[idx] = rows.cpu().numpy()
        return out

    def compute(self) -> dict[str, float]:
        """Return the nine ALBEF recall keys, exactly as :func:`retrieval_recall` on the assembled matrices."""
        i2t = self._assemble(_cat(self.i2t_rows, "image rows"), dim_zero_cat(self.i2t_index), self.n_images, "image")
        t2i = None
        if not (isinstance(self.t2i_rows, list) and not self.t2i_rows):
            t2i = self._assemble(dim_zero_cat(self.t2i_rows), dim_zero_cat(self.t2i_index), self.n_texts, "text")
        return retrieval_recall(i2t, self.img2txt, self.txt2img, scores_t2i=t2i, ties=self.ties)


class MultilabelAP(Metric):
    """Multi-label per-class AP and mAP in percent; the twin of :func:`harness.metrics.average_precision`."""

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, mode: str = "nonint", **kwargs: Any) -> None:
        """Args:
        mode: ``"nonint"``, ``"voc"``, ``"voc11"`` or ``"asl"``.
        **kwargs: Passed to ``torchmetrics.Metric``.
        """
        super().__init__(**kwargs)
        if mode not in AP_MODES:
            raise UserError(f"Expected `mode` to be one of {', '.join(map(repr, AP_MODES))}, but got {mode!r}")
        self.mode = mode
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores: Any, targets: Any) -> None:
        """Add a batch: ``scores`` and ``targets`` of shape ``(B, C)``."""
        s = _as_tensor(scores, "scores", self.device)
        t = _as_tensor(targets, "targets", self.device)
        if s.ndim != 2 or t.shape != s.shape:
            raise UserError(
                f"Expected `scores` and `targets` to have the same shape (B, C), but got {tuple(s.shape)} "
                f"and {tuple(t.shape)}"
            )
        self.preds.append(s)
        self.targets.append(t)

    def compute(self) -> dict[str, Any]:
        """Return the same dict as :func:`average_precision` on everything accumulated."""
        preds = _cat(self.preds, "scores")
        targets = dim_zero_cat(self.targets)
        return average_precision(preds, targets, mode=self.mode)
