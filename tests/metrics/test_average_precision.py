"""Average precision: sklearn per class (with ties), hand-computed VOC numbers, and a port of the ASL helper."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from harness.errors import UserError
from harness.metrics import average_precision

# `harness.metrics.average_precision` is the function (it shadows the submodule attribute): fetch the module itself.
ap_module = importlib.import_module("harness.metrics.average_precision")


def asl_map(targs: np.ndarray, preds: np.ndarray) -> tuple[float, np.ndarray]:
    """Port of ASL / ML-Decoder ``helper_functions.mAP`` (and its ``average_precision``), the reference for mode asl."""
    ap = np.zeros(preds.shape[1])
    for k in range(preds.shape[1]):
        output, target = preds[:, k], targs[:, k]
        indices = output.argsort()[::-1]
        total_count_ = np.cumsum(np.ones((len(output), 1)))
        target_ = target[indices]
        ind = target_ == 1
        pos_count_ = np.cumsum(ind)
        total = pos_count_[-1]
        pos_count_[np.logical_not(ind)] = 0
        pp = pos_count_ / total_count_
        ap[k] = np.sum(pp) / (total + 1e-8)
    return 100 * ap.mean(), ap


def test_matches_sklearn_per_class_with_ties() -> None:
    rng = np.random.default_rng(0)
    n, c = 300, 12
    targets = (rng.random((n, c)) < 0.2).astype(np.int64)
    targets[:, 5] = 0  # a class without positives: excluded
    targets[:, 7] = 1  # a class with only positives: AP 100
    # Informative scores rounded to 1 decimal: many ties, which sklearn groups into one threshold.
    scores = np.round(rng.random((n, c)) * 0.7 + targets * 0.3, 1)
    out = average_precision(scores, targets)
    assert out["num_classes_excluded"] == 1 and out["excluded_classes"] == [5]
    assert sorted(out["per_class"]) == [k for k in range(c) if k != 5]
    expected = {k: 100 * average_precision_score(targets[:, k], scores[:, k]) for k in range(c) if k != 5}
    assert out["per_class"] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert out["per_class"][7] == pytest.approx(100.0, abs=1e-12)
    assert out["mAP"] == pytest.approx(np.mean(list(expected.values())), rel=1e-12)
    # The order of tied samples does not matter in this mode: permuting the samples gives the same numbers.
    perm = rng.permutation(n)
    assert average_precision(scores[perm], targets[perm])["per_class"] == pytest.approx(out["per_class"], rel=1e-12)


def test_nonint_hand_tie_case() -> None:
    # scores [0.9, 0.9, 0.5], targets [0, 1, 1]: thresholds 0.9 (tp 1, fp 1: P = 1/2, R = 1/2) and 0.5 (P = 2/3, R = 1)
    # AP = 1/2 * 1/2 + 1/2 * 2/3 = 7/12
    out = average_precision([0.9, 0.9, 0.5], [0, 1, 1])
    assert out["per_class"][0] == pytest.approx(100 * 7 / 12, abs=1e-12)
    assert out["mAP"] == pytest.approx(100 * 7 / 12, abs=1e-12)


def test_voc_modes_hand_computed() -> None:
    # Ranked targets [1, 0, 0, 1, 1] (distinct scores): precision 1, 1/2, 1/3, 1/2, 3/5; recall 1/3 x3, 2/3, 1.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    targets = np.array([1, 0, 0, 1, 1])
    # non-interpolated: mean precision at the positives (1 + 1/2 + 3/5) / 3 = 0.7
    assert average_precision(scores, targets)["mAP"] == pytest.approx(70.0, abs=1e-12)
    # VOC2010+: envelope at the positives 1, max(1/2, 3/5) = 3/5, 3/5 -> (1 + 3/5 + 3/5) / 3 = 11/15
    assert average_precision(scores, targets, mode="voc")["mAP"] == pytest.approx(100 * 11 / 15, abs=1e-12)
    # VOC2007 11-point: t in {0, .1, .2, .3}: recall 1/3 reaches t -> max precision 1; t in {.4 .. 1.0} (7 values):
    # max precision at recall >= t is 3/5 -> (4 * 1 + 7 * 3/5) / 11 = 8.2 / 11
    assert average_precision(scores, targets, mode="voc11")["mAP"] == pytest.approx(100 * 8.2 / 11, abs=1e-12)


def test_voc11_threshold_quirk() -> None:
    # 10 positives: 3 on top, then 7 negatives, then 7 positives. Recall after the 3rd item is exactly 3/10 = 0.3,
    # but np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004, so that point does NOT count for t = 0.3:
    # t in {0, .1, .2} -> 1; t in {.3 .. 1.0} (8 values) -> best later precision 10/17 -> (3 + 8 * 10/17) / 11
    assert ap_module.VOC11_THRESHOLDS[3] == 0.30000000000000004
    targets = np.array([1] * 3 + [0] * 7 + [1] * 7)
    scores = -np.arange(17.0)
    got = average_precision(scores, targets, mode="voc11")["mAP"]
    assert got == pytest.approx(100 * (3 + 8 * 10 / 17) / 11, abs=1e-12)


def test_voc_ties_follow_sample_order() -> None:
    # The devkit ranks with MATLAB's stable sort: among equal scores the earlier sample comes first.
    assert average_precision([0.5, 0.5], [0, 1], mode="voc")["mAP"] == pytest.approx(50.0)  # negative first: P = 1/2
    assert average_precision([0.5, 0.5], [1, 0], mode="voc")["mAP"] == pytest.approx(100.0)  # positive first
    # The default mode groups the tie: one threshold with P = 1/2 in both orders.
    assert average_precision([0.5, 0.5], [1, 0])["mAP"] == pytest.approx(50.0)


def test_asl_mode_matches_port() -> None:
    rng = np.random.default_rng(1)
    targets = (rng.random((400, 20)) < 0.1).astype(np.int64)
    targets[:, 3] = 0  # no positives: ASL scores it 0 and keeps it in the mean
    scores = rng.random((400, 20)).astype(np.float32)
    want_map, want_ap = asl_map(targets, scores)
    out = average_precision(scores, targets, mode="asl")
    assert out["mAP"] == want_map
    assert out["per_class"] == {k: 100 * want_ap[k] for k in range(20)}
    assert out["per_class"][3] == 0.0 and out["num_classes_excluded"] == 0
    # Without ties, per-class ASL AP = non-interpolated AP * P / (P + 1e-8).
    default = average_precision(scores, targets)
    n_pos = targets.sum(axis=0)
    for k, v in default["per_class"].items():
        assert out["per_class"][k] == pytest.approx(v * n_pos[k] / (n_pos[k] + 1e-8), rel=1e-12)
    assert default["mAP"] > out["mAP"]  # ASL's convention drags the mean down with the empty class


def test_large_input_is_processed_in_blocks(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    targets = (rng.random((50, 9)) < 0.3).astype(np.int64)
    targets[0] = 1
    scores = np.round(rng.random((50, 9)), 1)
    full = {mode: average_precision(scores, targets, mode=mode) for mode in ("nonint", "voc", "voc11")}
    monkeypatch.setattr(ap_module, "_BLOCK_ELEMENTS", 100)  # 2 classes per block
    for mode, want in full.items():
        assert average_precision(scores, targets, mode=mode) == want


def test_input_errors() -> None:
    with pytest.raises(UserError, match=r"Expected `targets` to have the shape of `scores` \(3, 2\), but got \(3, 1\)"):
        average_precision(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(UserError, match="Expected `targets` to contain only 0 and 1, but got 2"):
        average_precision(np.zeros((2, 2)), np.array([[0, 1], [2, 1]]))
    with pytest.raises(UserError, match=r"Expected `scores` to be finite, but row 0, column 0 is NaN"):
        average_precision(np.array([[np.nan], [0.0]]), np.array([[1], [0]]))
    with pytest.raises(UserError, match="at least one class with a positive target, but all 2 classes have none"):
        average_precision(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(UserError, match="Expected `mode` to be one of 'nonint', 'voc', 'voc11', 'asl', but got 'x'"):
        average_precision(np.zeros((3, 2)), np.ones((3, 2)), mode="x")
