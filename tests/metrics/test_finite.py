"""NaN and ±inf scores are refused by every metric function, naming the first bad entry; the error is a ValueError and
a RunFailed (the runner records a failed run and goes on)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.errors import RunFailed, UserError
from harness.metrics import average_precision, coco_detection_stats, retrieval_recall, topk_accuracy
from harness.metrics.finite import NonFiniteError, first_non_finite

BAD = [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")]


def _retrieval(scores: np.ndarray, t2i: np.ndarray | None = None) -> dict:
    img2txt = [[2 * i, 2 * i + 1] for i in range(4)]
    txt2img = [t // 2 for t in range(8)]
    return retrieval_recall(scores, img2txt, txt2img, scores_t2i=t2i)


def _scores(value: float, shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    s = rng.random(shape, dtype=np.float64).astype(np.float32)
    s[at] = value
    return s


# (id, call(value), expected message)
CASES = [
    (
        "retrieval-i2t",
        lambda v: _retrieval(_scores(v, (4, 8), (2, 5))),
        "`scores_i2t` to be finite, but row 2, column 5",
    ),
    (
        "retrieval-t2i",
        lambda v: _retrieval(_scores(0.0, (4, 8), (0, 0)), _scores(v, (8, 4), (6, 1))),
        "`scores_t2i` to be finite, but row 6, column 1",
    ),
    (
        "average-precision",
        lambda v: average_precision(_scores(v, (5, 3), (4, 2)), np.eye(5, 3, dtype=int)),
        "`scores` to be finite, but row 4, column 2",
    ),
    (
        "average-precision-1d",
        lambda v: average_precision(np.array([0.5, v, 0.1]), np.array([1, 0, 1])),
        "`scores` to be finite, but row 1, column 0",
    ),
    (
        "topk",
        lambda v: topk_accuracy(_scores(v, (6, 4), (3, 1)), np.zeros(6, int)),
        "`logits` to be finite, but row 3, column 1",
    ),
]


@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize(("value", "name"), BAD, ids=[b[1] for b in BAD])
def test_metric_functions_refuse_non_finite_scores(call, expected: str, value: float, name: str) -> None:
    with pytest.raises(NonFiniteError) as info:
        call(value)
    assert str(info.value) == f"Expected {expected} is {name}"
    assert isinstance(info.value, ValueError) and isinstance(info.value, RunFailed)


def test_row_offset_of_blocks_is_global() -> None:
    # topk and retrieval check block by block; the reported row is the row of the full matrix.
    from harness.metrics import topk

    s = np.zeros((10, 3))
    s[7, 2] = np.inf
    old = topk._BLOCK_ELEMENTS
    topk._BLOCK_ELEMENTS = 6  # blocks of 2 rows
    try:
        with pytest.raises(NonFiniteError, match="row 7, column 2 is inf"):
            topk_accuracy(s, np.zeros(10, int))
    finally:
        topk._BLOCK_ELEMENTS = old


def test_first_non_finite() -> None:
    assert first_non_finite(np.array([1.0, 2.0])) is None
    assert first_non_finite(np.array([1, 2])) is None  # integers are always finite
    assert first_non_finite(np.zeros((0, 3))) is None
    assert first_non_finite(np.array([1.0, -np.inf, np.nan])) == "entry 1 is -inf"
    assert first_non_finite(np.array([[0.0, 1.0], [np.nan, np.inf]]), row_offset=10) == "row 11, column 0 is NaN"


@pytest.fixture
def gt(fixtures_dir) -> dict:
    return json.loads((fixtures_dir / "coco" / "instances_val2014_100.json").read_text())


@pytest.mark.parametrize(("value", "name"), BAD, ids=[b[1] for b in BAD])
def test_detection_refuses_non_finite_boxes_and_scores(gt: dict, value: float, name: str) -> None:
    a = gt["annotations"][0]
    good = {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]), "score": 0.9}
    box = dict(good, bbox=[*good["bbox"][:2], value, good["bbox"][3]])
    with pytest.raises(NonFiniteError) as info:
        coco_detection_stats(gt, [good, box])
    assert str(info.value) == (
        f"Expected every detection in the results list to be finite, but [1].bbox[2] is {name} "
        f"(image_id {a['image_id']})"
    )
    with pytest.raises(NonFiniteError, match=rf"\[0\]\.score is {name} \(image_id"):
        coco_detection_stats(gt, [dict(good, score=value)])
    bad_gt = json.loads(json.dumps(gt))
    bad_gt["annotations"][3]["bbox"][0] = value
    with pytest.raises(
        NonFiniteError, match=rf"annotation in the ground-truth dict .* \[3\]\.bbox\[0\] is {name} \(id"
    ):
        coco_detection_stats(bad_gt, [good])


def test_detection_nan_boxes_used_to_score_100(gt: dict) -> None:
    # pycocotools on its own: NaN boxes give AP 100 here. We refuse them instead.
    dets = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": [np.nan] * 4, "score": 1.0}
        for a in gt["annotations"]
    ]
    with pytest.raises(UserError, match="is NaN"):
        coco_detection_stats(gt, dets)
