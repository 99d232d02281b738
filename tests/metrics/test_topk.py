"""Top-k accuracy: equality with timm's formula on untied logits, the documented tie policy, k >= C, errors."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import UserError
from harness.metrics import topk_accuracy
from harness.metrics.topk import topk_correct

torch = pytest.importorskip("torch")


def timm_accuracy(output, target, topk=(1,)) -> list[float]:
    """timm.utils.metrics.accuracy, re-typed (torch.topk based); the reference on untied logits."""
    maxk = min(max(topk), output.size()[1])
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.reshape(1, -1).expand_as(pred))
    return [float(correct[: min(k, maxk)].reshape(-1).float().sum(0)) * 100.0 / batch_size for k in topk]


def test_matches_timm_on_untied_logits() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1000, 37, generator=gen)
    target = torch.randint(0, 37, (1000,), generator=gen)
    logits[torch.arange(1000), target] += 1.0  # informative, so that accuracies are not tiny
    ks = (1, 2, 5, 10, 37, 50)
    want = timm_accuracy(logits, target, ks)
    got = topk_accuracy(logits, target, ks)
    assert list(got) == [f"top{k}" for k in ks]
    assert list(got.values()) == pytest.approx(want, abs=1e-9)
    assert got["top37"] == got["top50"] == 100.0  # k >= C
    assert topk_accuracy(logits.numpy(), target.numpy(), ks) == got
    # bfloat16 is widened exactly to float32 (bf16 rounding creates ties, so timm itself is not a reference there)
    low = logits.to(torch.bfloat16)
    assert topk_accuracy(low, target, ks) == topk_accuracy(low.float().numpy(), target.numpy(), ks)


def test_torch_topk_tie_order_is_arbitrary() -> None:
    # Why we do not defer to torch.topk on ties: on CPU it returns tied indices in no fixed order
    # (e.g. [2, 3] for 4 zeros, [28, 26, 27] for 40 zeros with torch 2.x), while our policy is the stable order.
    zeros = torch.zeros(1, 40)
    assert topk_correct(zeros, torch.tensor([0]), (1,)) == ([1], 1)
    assert topk_correct(zeros, torch.tensor([28]), (3,)) == ([0], 1)  # rank 28 under the stable order


def test_tie_policy_lower_class_index_first() -> None:
    # All four logits tie: the target's rank is the number of tied classes with a lower index.
    logits = np.zeros((4, 4))
    target = np.array([0, 1, 2, 3])  # ranks 0, 1, 2, 3
    # top1: only target 0 -> 1/4 = 25; top2: targets 0, 1 -> 50; top3: 75; top4: 100
    assert topk_accuracy(logits, target, (1, 2, 3, 4)) == {"top1": 25.0, "top2": 50.0, "top3": 75.0, "top4": 100.0}
    # Strictly higher logits always count: class 2 beats the tied pair (0, 3) -> target 3 has rank 2
    assert topk_correct(np.array([[1.0, 0.0, 2.0, 1.0]]), np.array([3]), (2, 3)) == ([0, 1], 1)


def test_int_logits_and_single_k() -> None:
    # ranks: sample 0 -> 0 (5 is the max), sample 1 -> 2 (7 and 3 are higher than 1)
    assert topk_accuracy([[5, 1, 2], [7, 3, 1]], [0, 2], topk=1) == {"top1": 50.0}


def test_input_errors() -> None:
    with pytest.raises(UserError, match=r"Expected `target` to have shape \(3,\) to match `logits`, but got \(2,\)"):
        topk_accuracy(np.zeros((3, 5)), np.zeros(2, dtype=int))
    with pytest.raises(UserError, match=r"Expected `target` values in \[0, 5\), but got 5"):
        topk_accuracy(np.zeros((2, 5)), np.array([0, 5]))
    with pytest.raises(UserError, match="integer class indices, but got dtype float64"):
        topk_accuracy(np.zeros((2, 5)), np.array([0.0, 1.0]))
    with pytest.raises(UserError, match="Expected `logits` to be finite, but row 0, column 0 is NaN"):
        topk_accuracy(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(UserError, match=r"positive integers such as \(1, 5\), but got \(0,\)"):
        topk_accuracy(np.zeros((2, 5)), np.array([0, 1]), topk=(0,))
    with pytest.raises(UserError, match=r"shape \(n_samples, n_classes\), but got shape \(5,\)"):
        topk_accuracy(np.zeros(5), np.array([0]))
