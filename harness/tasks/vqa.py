"""VQA v2: MLP over the answer vocabulary, BCE on soft targets, official VQA accuracy.

Unimodal models are allowed as the standard "blind" baselines (image-only ignores the question, text-only never sees
the image; Antol et al. 2015, Goyal et al. 2017). Splits without annotations (test-dev) produce the official results
file ``[{"question_id", "answer"}]`` instead of scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.vqa import build_answer_vocab, soft_targets, vocab_fingerprint
from harness.errors import UserError
from harness.models.base import XModel
from harness.tasks import register_task
from harness.tasks.base import Batcher, EvalResult, Examples, PrepareContext, Task, TaskData, mlp_head
from harness.tasks.images import split_images

RESULTS_FILE = "vqa_results.json"  # official format: [{"question_id", "answer"}]
ANSWER_TYPE_METRIC = {"yes/no": "vqa_yesno", "number": "vqa_number", "other": "vqa_other"}


@register_task
class VqaTask(Task):
    """MLP over the answer vocabulary, BCE on soft targets; official VQA accuracy."""

    type = "vqa"
    main_metric = "vqa_accuracy"
    metrics = ("vqa_accuracy", "vqa_yesno", "vqa_number", "vqa_other")

    @classmethod
    def pairing_problem(cls, model_kind: str, modalities: frozenset[str], spec=None) -> str | None:
        """A text-only model is the standard language-prior baseline; an image-only model never sees the question,
        so it runs only when the task opts in with ``blind_baselines: true``; a dual encoder has no fusion."""
        if model_kind == "dual_encoder":
            return (
                "a dual encoder has no fusion, so it cannot answer a question about an image; use an xbert model "
                "with fusion: sum or concat as the late-fusion baseline"
            )
        if "text" not in modalities and not getattr(spec, "blind_baselines", False):
            return (
                "an image-only model never sees the question; to include it on purpose as a question-blind "
                "baseline, set blind_baselines: true on this task"
            )
        return None

    def prepare(self, source, splits, ctx: PrepareContext) -> TaskData:
        parts = [split_images(ctx, records, self.name) for records in source.records(self.type, splits)]
        (train_images, train_rec, train_rows), val_part, test_part = parts
        for name, split, (_, rec, _) in zip(("train", "val"), (splits.train, splits.val_label), parts):
            if rec.answers is None:
                raise UserError(
                    f"tasks.{self.name}: the {name} split {split!r} has no annotations; {name} needs an annotated "
                    "split (train2014, or val2014 as the test split)"
                )
        try:
            vocab = build_answer_vocab(train_rec, self.spec.answer_min_count, self.spec.answer_top_k)
        except UserError as exc:
            key = "answer_top_k" if self.spec.answer_top_k else "answer_min_count"
            raise UserError(f"tasks.{self.name}.{key}: {exc}") from exc
        targets = torch.from_numpy(soft_targets(train_rec.answers, vocab))
        train = self._examples(train_rec, ctx, train_images, train_rows, targets)
        scored = []
        for images, rec, rows in (val_part, test_part):
            ev = self._examples(rec, ctx, images, rows, None)
            ev.extra.update(
                answers=rec.answers,
                answer_types=rec.answer_types,
                question_types=rec.question_types,
                image_ids=[rec.image_ids[i] for i in rec.image_index],  # each question's image: its cluster
            )
            scored.append(ev)
        info = {"answers": vocab, "answer_vocab_fingerprint": vocab_fingerprint(vocab)}
        return TaskData(train, scored[0], scored[1], info)

    @staticmethod
    def _examples(rec, ctx: PrepareContext, images, rows: torch.Tensor, targets: torch.Tensor | None) -> Examples:
        ids, mask = ctx.tokenize(rec.questions)
        index = rows[torch.tensor(rec.image_index, dtype=torch.long)]
        return Examples(images, index, ids, mask, targets, list(rec.question_ids))

    def build_head(self, model: XModel, data: TaskData) -> nn.Module:
        return mlp_head(model.feature_dim, len(data.info["answers"]))

    def loss(self, model: XModel, head: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = head(model(batch)["pooled"]).float()  # (B, A)
        targets = batch["targets"]
        # BUTD/ALBEF convention: mean BCE over answers, scaled by the vocabulary size.
        return F.binary_cross_entropy_with_logits(logits, targets) * targets.shape[1]

    @torch.no_grad()
    def evaluate(self, model, head, data, batcher: Batcher, batch_size: int, autocast, split="test") -> EvalResult:
        from harness.metrics import vqa_accuracy, vqa_question_scores

        ex, vocab = data.split(split), data.info["answers"]
        picks = self.predict(model, head, ex, batcher, batch_size, autocast).argmax(-1)
        answers = [vocab[i] for i in picks.tolist()]
        preds = [{"question_id": q, "answer": a} for q, a in zip(ex.ids, answers)]
        files = {"answer_vocab.json": vocab, RESULTS_FILE: [dict(p) for p in preds]}
        if ex.extra.get("answers") is None:
            note = f"the {split} split has no annotations: {RESULTS_FILE} is the official results file for submission"
            return EvalResult({}, preds, {"submission": RESULTS_FILE, "note": note}, files=files)
        from harness.stats.evidence import vqa_evidence

        acc = vqa_accuracy(answers, ex.extra["answers"], ex.extra["answer_types"], ex.extra["question_types"])
        per_q = vqa_question_scores(answers, ex.extra["answers"])
        for p, s, image_id in zip(preds, per_q, ex.extra["image_ids"]):
            p["image_id"] = image_id
            p["accuracy"] = float(s)  # in [0, 1], unrounded: the official per-question value
        metrics = {"vqa_accuracy": acc["overall"]}
        for atype, value in acc["perAnswerType"].items():
            metrics[ANSWER_TYPE_METRIC.get(atype, f"vqa_{atype}")] = value
        evidence = vqa_evidence(ex.ids, ex.extra["image_ids"], per_q, ex.extra["answer_types"])
        return EvalResult(metrics, preds, {"perQuestionType": acc["perQuestionType"]}, files=files, evidence=evidence)
