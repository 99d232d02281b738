"""Single-label classification (image folders) and multi-label classification (COCO instances)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import UserError
from harness.models.base import XModel
from harness.tasks import register_task
from harness.tasks.base import Batcher, EvalResult, Examples, PrepareContext, Task, TaskData
from harness.tasks.images import split_images


def _prompt_tokens(ctx: PrepareContext, prompt: str, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    ids, mask = ctx.tokenize([prompt])
    if ids is None:
        return None, None
    return ids.expand(n, -1).contiguous(), mask.expand(n, -1).contiguous()


class _ImageLabelTask(Task):
    """Shared by single- and multi-label classification: image examples, a linear head, the prompt as text."""

    def _targets(self, rec) -> torch.Tensor:
        raise NotImplementedError

    def _label_space(self, rec) -> dict[str, Any]:
        raise NotImplementedError

    def prepare(self, source, splits, ctx: PrepareContext) -> TaskData:
        recs, parts = [], []
        for records in source.records(self.type, splits):
            images, rec, rows = split_images(ctx, records, self.name)
            ids, mask = _prompt_tokens(ctx, self.spec.prompt, len(rec.paths))
            recs.append(rec)
            parts.append(Examples(images, rows, ids, mask, self._targets(rec), rec.ids))
        train_space = self._label_space(recs[0])
        for name, rec in zip(("val", "test"), recs[1:]):
            if self._label_space(rec) != train_space:
                raise UserError(
                    f"tasks.{self.name}: {name} split labels {self._label_space(rec)} differ from train {train_space}"
                )
        return TaskData(parts[0], parts[1], parts[2], train_space)

    def build_head(self, model: XModel, data: TaskData) -> nn.Module:
        return nn.Linear(model.feature_dim, len(data.info["classes"]))


@register_task
class ClassificationTask(_ImageLabelTask):
    """Linear head + cross-entropy; top-1/top-5 accuracy. Models that read text get ``prompt`` as their text."""

    type = "classification"
    main_metric = "top1"
    metrics = ("top1", "top5")
    requires = frozenset({"image"})

    def _targets(self, rec) -> torch.Tensor:
        return torch.tensor(rec.labels, dtype=torch.long)

    def _label_space(self, rec) -> dict[str, Any]:
        return {"classes": rec.classes}

    def loss(self, model: XModel, head: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(head(model(batch)["pooled"]).float(), batch["targets"])

    @torch.no_grad()
    def evaluate(self, model, head, data, batcher: Batcher, batch_size: int, autocast, split="test") -> EvalResult:
        from harness.metrics import topk_accuracy
        from harness.metrics.topk import topk_ranks
        from harness.stats.evidence import classification_evidence

        ex = data.split(split)
        scores = self.predict(model, head, ex, batcher, batch_size, autocast)  # (N, C)
        metrics = topk_accuracy(scores, ex.targets, topk=(1, 5))
        ranks = topk_ranks(scores, ex.targets)
        probs = scores.softmax(-1)
        top5 = probs.topk(min(5, probs.shape[1]), dim=1)
        classes = data.info["classes"]
        preds: list[dict[str, Any]] = [
            {
                "id": i,
                "target": classes[int(t)],
                "top5": [classes[int(c)] for c in top],
                "confidence": round(float(conf[0]), 6),
                "correct_top1": bool(r < 1),
                "correct_top5": bool(r < 5),
            }
            for i, t, top, conf, r in zip(ex.ids, ex.targets, top5.indices, top5.values, ranks.tolist())
        ]
        # Each example is one image: its cluster is itself.
        evidence = classification_evidence(ex.ids, ex.ids, ex.targets.numpy(), ranks)
        files = {"label_map.json": {"classes": classes}}
        return EvalResult(metrics, preds, {"classes": classes}, files=files, evidence=evidence)


@register_task
class MultilabelTask(_ImageLabelTask):
    """Linear head + BCE; macro mAP over classes with positives (see docs/metrics.md)."""

    type = "multilabel"
    main_metric = "mAP"
    metrics = ("mAP",)
    requires = frozenset({"image"})

    def _targets(self, rec) -> torch.Tensor:
        return torch.from_numpy(rec.targets.astype(np.float32))

    def _label_space(self, rec) -> dict[str, Any]:
        return {"classes": rec.category_names, "category_ids": rec.category_ids}

    def loss(self, model: XModel, head: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(head(model(batch)["pooled"]).float(), batch["targets"])

    @torch.no_grad()
    def evaluate(self, model, head, data, batcher: Batcher, batch_size: int, autocast, split="test") -> EvalResult:
        from harness.metrics import average_precision
        from harness.stats.evidence import multilabel_evidence

        ex = data.split(split)
        scores = self.predict(model, head, ex, batcher, batch_size, autocast).sigmoid().numpy()
        ap = average_precision(scores, ex.targets.numpy())
        evidence = multilabel_evidence(ex.ids, ex.ids, scores, ex.targets.numpy())  # one example per image
        preds = [{"id": i, "scores": [round(float(s), 6) for s in row]} for i, row in zip(ex.ids, scores)]
        notes = {"classes_without_positives": ap["num_classes_excluded"], "excluded_classes": ap["excluded_classes"]}
        label_map = {
            "column_of_category_id": {str(c): i for i, c in enumerate(data.info["category_ids"])},
            "category_names": data.info["classes"],
        }
        return EvalResult({"mAP": ap["mAP"]}, preds, notes, files={"label_map.json": label_map}, evidence=evidence)
