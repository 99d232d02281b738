"""Stateful twins: accumulating in several updates equals one functional call; the package import stays torch-free."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys

import numpy as np
import pytest

from harness.errors import UserError
from harness.metrics import average_precision, retrieval_recall, topk_accuracy, vqa_accuracy

torch = pytest.importorskip("torch")
stateful = pytest.importorskip("harness.metrics.stateful")


def test_package_import_does_not_import_torch() -> None:
    code = "import sys, harness.metrics; assert not {'torch', 'torchmetrics'} & set(sys.modules), 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    # The stateful classes are reachable from the package (loaded lazily on first access).
    import harness.metrics

    assert harness.metrics.TopKAccuracy is stateful.TopKAccuracy
    assert harness.metrics.MultilabelAP is stateful.MultilabelAP


def _batches(n: int, sizes: list[int]) -> list[slice]:
    edges = np.cumsum([0, *sizes])
    assert edges[-1] == n
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def test_topk_accumulates() -> None:
    gen = torch.Generator().manual_seed(0)
    logits, target = torch.randn(100, 10, generator=gen), torch.randint(0, 10, (100,), generator=gen)
    metric = stateful.TopKAccuracy(topk=(1, 3, 5))
    assert metric.higher_is_better is True
    for sl in _batches(100, [30, 1, 69]):
        metric.update(logits[sl], target[sl])
    assert metric.compute() == topk_accuracy(logits, target, (1, 3, 5))
    metric.reset()
    metric.update(logits[:10], target[:10])
    assert metric.compute() == topk_accuracy(logits[:10], target[:10], (1, 3, 5))


def test_vqa_accumulates_with_types() -> None:
    rng = random.Random(0)
    pool = ["yes", "no", "Yes", "2", "two", "a dog", "dog", "red", "t-shirt", "t shirt"]
    answers = [[rng.choice(pool[:4] if i % 2 else pool) for _ in range(10)] for i in range(200)]
    preds = [rng.choice(pool) for _ in range(200)]
    a_types = [rng.choice(["yes/no", "number", "other"]) for _ in range(200)]
    q_types = [rng.choice(["how many", "is the", "what color is the"]) for _ in range(200)]
    for mode in ("official", "legacy"):
        metric = stateful.VQAAccuracy(mode=mode)
        for sl in _batches(200, [64, 64, 72]):
            metric.update(preds[sl], answers[sl], a_types[sl], q_types[sl])
        want = vqa_accuracy(preds, answers, a_types, q_types, mode=mode)
        got = metric.compute()
        assert got == want and list(got["perQuestionType"]) == list(want["perQuestionType"])
    untyped = stateful.VQAAccuracy()
    untyped.update(preds[:50], answers[:50])
    untyped.update(preds[50:], answers[50:])
    assert untyped.compute() == vqa_accuracy(preds, answers)


def test_vqa_unknown_type_code_needs_vocabulary() -> None:
    metric = stateful.VQAAccuracy()
    metric.update(["yes"], [["yes"] * 10], ["yes/no"])
    # Simulate a code gathered from another rank that this rank never saw.
    metric.answer_type_codes.append(torch.tensor([stateful.type_code("number")]))
    metric.scores.append(torch.tensor([1.0], dtype=torch.float64))
    metric.question_type_codes.append(torch.tensor([stateful._NO_TYPE]))
    with pytest.raises(UserError, match="pass the full vocabulary"):
        metric.compute()
    named = stateful.VQAAccuracy(answer_types=["yes/no", "number", "other"])
    named.update(["yes"], [["yes"] * 10], ["yes/no"])
    named.answer_type_codes.append(torch.tensor([stateful.type_code("number")]))
    named.scores.append(torch.tensor([0.0], dtype=torch.float64))
    named.question_type_codes.append(torch.tensor([stateful._NO_TYPE]))
    assert named.compute()["perAnswerType"] == {"yes/no": 100.0, "number": 0.0}


def test_retrieval_accumulates_rows_in_any_order() -> None:
    rng = np.random.default_rng(0)
    n_images, n_texts = 30, 150
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(n_images)]
    txt2img = [t // 5 for t in range(n_texts)]
    scores = rng.standard_normal((n_images, n_texts)).astype(np.float32)
    scores_t2i = rng.standard_normal((n_texts, n_images)).astype(np.float32)
    order = rng.permutation(n_images)
    metric = stateful.RetrievalRecall(img2txt, txt2img)
    for sl in _batches(n_images, [7, 13, 10]):
        metric.update(torch.from_numpy(scores[order[sl]]), torch.from_numpy(order[sl]))
    assert metric.compute() == retrieval_recall(scores, img2txt, txt2img)
    both = stateful.RetrievalRecall(img2txt, txt2img, ties="optimistic")
    text_order = rng.permutation(n_texts)
    both.update(scores[order[:15]], order[:15], scores_t2i[text_order[:100]], text_order[:100])
    both.update(scores[order[15:]], order[15:], scores_t2i[text_order[100:]], text_order[100:])
    assert both.compute() == retrieval_recall(scores, img2txt, txt2img, scores_t2i=scores_t2i, ties="optimistic")
    missing = stateful.RetrievalRecall(img2txt, txt2img)
    missing.update(scores[:10], np.arange(10))
    missing.update(scores[:10], np.arange(10))
    with pytest.raises(UserError, match="exactly once across updates"):
        missing.compute()


@pytest.mark.parametrize("mode", ["nonint", "voc", "voc11", "asl"])
def test_multilabel_ap_accumulates(mode: str) -> None:
    rng = np.random.default_rng(1)
    targets = (rng.random((120, 6)) < 0.3).astype(np.int64)
    targets[:, 2] = 0
    scores = np.round(rng.random((120, 6)), 2).astype(np.float32)
    metric = stateful.MultilabelAP(mode=mode)
    for sl in _batches(120, [50, 50, 20]):
        metric.update(torch.from_numpy(scores[sl]), torch.from_numpy(targets[sl]))
    assert metric.compute() == average_precision(scores, targets, mode=mode)


def test_compute_before_update_is_a_user_error() -> None:
    with pytest.warns(UserWarning), pytest.raises(UserError, match="at least one call to update"):
        stateful.MultilabelAP().compute()
