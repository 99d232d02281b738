"""Zero-shot classification by text prompts, for two-tower models (CLIP's protocol).

The towers are not trained on the target classes: each seed's zero-shot run loads the state that the run of the
suite's ``trained_by`` task (retrieval on image-text pairs, same model, same seed) selected and scored, with that
task's projection head. For every class, each template (``"a photo of a {}."``) is filled with the class name,
encoded by the text tower, projected and L2-normalised; the class embedding is the mean over templates,
L2-normalised again (Radford et al., 2021). An image is classified by the cosine similarity of its normalised
projected embedding to every class embedding; top-1/top-5 follow the classification conventions (ties broken
against the model, docs/metrics.md).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import UserError
from harness.models.base import XModel
from harness.tasks import register_task
from harness.tasks.base import Batcher, EvalResult, Examples, PrepareContext, Task, TaskData
from harness.tasks.images import split_images


def class_names(folders: list[str], classes: Any, where: str) -> list[str]:
    """The readable class names: the folder names, or the suite's ``classes`` (a list in sorted folder order, or a
    mapping folder -> name that covers every folder)."""
    if classes is None:
        return list(folders)
    if isinstance(classes, dict):
        missing = [f for f in folders if f not in classes]
        if missing:
            raise UserError(
                f"{where}.classes: no name for the class folder(s) {missing[:5]}; map every folder of the dataset "
                f"({len(folders)} classes) to a name"
            )
        return [classes[f] for f in folders]
    if len(classes) != len(folders):
        raise UserError(
            f"{where}.classes: {len(classes)} names for {len(folders)} class folders; list one name per folder, in "
            "sorted folder order, or map folder names to class names"
        )
    return list(classes)


@register_task
class ZeroShotTask(Task):
    """Top-1/top-5 of prompt-ensemble zero-shot classification; the towers come from the ``trained_by`` task."""

    type = "zero_shot"
    main_metric = "top1"
    metrics = ("top1", "top5")
    requires = frozenset({"image", "text"})
    trains = False  # the run loads its towers from the trained_by task's run of the same model and seed

    @classmethod
    def pairing_problem(cls, model_kind: str, modalities: frozenset[str], spec=None) -> str | None:
        if cls.requires <= modalities:
            return None
        return (
            "zero-shot classification scores images against class-name prompts, so it needs an image tower and a "
            f"text tower; a {model_kind} model reads only {', '.join(sorted(modalities))}"
        )

    def prepare(self, source, splits, ctx: PrepareContext) -> TaskData:
        records = source.load(self.type, splits.test)  # train and val are not read: nothing is trained here
        images, rec, rows = split_images(ctx, records, self.name)
        names = class_names(rec.classes, self.spec.classes, f"tasks.{self.name}")
        prompts = [t.format(name) for name in names for t in self.spec.templates]
        ids, mask = ctx.tokenize(prompts)
        test = Examples(images, rows, None, None, torch.tensor(rec.labels, dtype=torch.long), rec.ids)
        test.extra.update(prompt_ids=ids, prompt_mask=mask)
        empty = Examples(None, None, None, None, None, [])
        info = {"classes": names, "folders": list(rec.classes), "templates": list(self.spec.templates)}
        return TaskData(empty, empty, test, info)

    def build_head(self, model: XModel, data: TaskData) -> nn.Module:
        raise UserError(f"tasks.{self.name}: a zero-shot task trains no head; its runs load the trained_by task's head")

    @torch.no_grad()
    def class_embeddings(self, model: XModel, head: nn.Module, ex: Examples, batch_size: int, autocast) -> torch.Tensor:
        """(C, E) L2-normalised class embeddings: the normalised mean of each class's normalised template
        embeddings."""
        ids, mask = ex.extra["prompt_ids"], ex.extra["prompt_mask"]
        from harness.dist import map_batches

        device = next(head.parameters()).device

        def embed(idx: torch.Tensor) -> torch.Tensor:
            with autocast():
                return head.embed_text(model.encode_text(ids[idx].to(device), mask[idx].to(device))).float()

        per_prompt = map_batches(ids.shape[0], batch_size, embed)  # (C * T, E), normalised
        t = len(self.spec.templates)
        return F.normalize(per_prompt.view(-1, t, per_prompt.shape[-1]).mean(1), dim=-1)

    @torch.no_grad()
    def evaluate(self, model, head, data, batcher: Batcher, batch_size: int, autocast, split="test") -> EvalResult:
        from harness.metrics import topk_accuracy
        from harness.metrics.topk import topk_ranks
        from harness.stats.evidence import classification_evidence

        if split != "test":
            raise ValueError("a zero-shot task has only a test split")
        ex = data.test
        from harness.dist import map_batches

        classes = self.class_embeddings(model, head, ex, batch_size, autocast)  # (C, E)

        def score(idx: torch.Tensor) -> torch.Tensor:
            b = batcher(ex, idx, with_targets=False)
            with autocast():
                z = head.embed_image(model.encode_image(b["image"]))
            return (z.float() @ classes.t()).cpu()

        scores = map_batches(len(ex), batch_size, score)  # (N, C) cosine similarity
        metrics = topk_accuracy(scores, ex.targets, topk=(1, 5))
        ranks = topk_ranks(scores, ex.targets)
        names = data.info["classes"]
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices
        preds = [
            {"id": i, "target": names[int(t)], "top5": [names[int(c)] for c in row], "correct_top1": bool(r < 1)}
            for i, t, row, r in zip(ex.ids, ex.targets, top, ranks.tolist())
        ]
        evidence = classification_evidence(ex.ids, ex.ids, ex.targets.numpy(), ranks)
        notes = {
            "classes": names,
            "templates": data.info["templates"],
            "chance_top1": round(100.0 / len(names), 4),
        }
        files = {"label_map.json": {"classes": names, "folders": data.info["folders"]}}
        return EvalResult(metrics, preds, notes, files=files, evidence=evidence)
