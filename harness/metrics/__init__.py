"""Metrics of xmbench: functional (numpy only) and stateful (torchmetrics) versions of the same arithmetic.

Every function returns plain Python floats in PERCENT (0..100). The conventions (ties, classes without positives,
rounding, official vs legacy VQA, ...) are written down in ``docs/metrics.md``.

Importing this package does not import torch: the torchmetrics-based classes (``TopKAccuracy``, ``VQAAccuracy``,
``RetrievalRecall``, ``MultilabelAP``) are loaded from :mod:`harness.metrics.stateful` on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.metrics.average_precision import average_precision
from harness.metrics.detection import coco_detection_stats
from harness.metrics.retrieval import retrieval_recall
from harness.metrics.topk import topk_accuracy
from harness.metrics.vqa import normalize_answer, vqa_accuracy, vqa_question_scores

if TYPE_CHECKING:
    from harness.metrics.stateful import MultilabelAP, RetrievalRecall, TopKAccuracy, VQAAccuracy

_STATEFUL = ("MultilabelAP", "RetrievalRecall", "TopKAccuracy", "VQAAccuracy")

__all__ = [
    "MultilabelAP",
    "RetrievalRecall",
    "TopKAccuracy",
    "VQAAccuracy",
    "average_precision",
    "coco_detection_stats",
    "normalize_answer",
    "retrieval_recall",
    "topk_accuracy",
    "vqa_accuracy",
    "vqa_question_scores",
]


def __getattr__(name: str) -> Any:
    """Load the torchmetrics-based classes lazily, so that ``import harness.metrics`` stays torch-free."""
    if name in _STATEFUL:
        from harness.metrics import stateful

        return getattr(stateful, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
