"""COCO detection: the published pycocotools numbers on the fixture pair, and the missing-iscrowd error."""

from __future__ import annotations

import copy
import json

import pytest

from harness.errors import UserError
from harness.metrics import coco_detection_stats
from harness.metrics.detection import COCO_STAT_NAMES

# Published result for instances_val2014_100.json + instances_val2014_fakebbox100_results.json (fixtures README).
PUBLISHED = [
    0.5045806987249628, 0.6969727247299577, 0.5729816669904824, 0.5856257209410443, 0.5193996948036719,
    0.5013978986347466, 0.38681277964578054, 0.5936795762842003, 0.595352982877607, 0.6398109626113442,
    0.5664205978994309, 0.5642905982905982,
]  # fmt: skip


def test_reproduces_published_stats(fixtures_dir) -> None:
    coco = fixtures_dir / "coco"
    out = coco_detection_stats(coco / "instances_val2014_100.json", coco / "instances_val2014_fakebbox100_results.json")
    assert out["stats"] == pytest.approx(PUBLISHED, abs=1e-12)
    assert list(out) == ["stats", *COCO_STAT_NAMES]
    for name, value in zip(COCO_STAT_NAMES, PUBLISHED):
        assert out[name] == pytest.approx(100 * value, abs=1e-10)  # named keys in percent


def test_dict_and_list_inputs_are_not_mutated(fixtures_dir) -> None:
    coco = fixtures_dir / "coco"
    gt = json.loads((coco / "instances_val2014_100.json").read_text())
    dt = json.loads((coco / "instances_val2014_fakebbox100_results.json").read_text())
    gt_before, dt_before = copy.deepcopy(gt), copy.deepcopy(dt)
    out = coco_detection_stats(gt, dt)
    assert out["stats"] == pytest.approx(PUBLISHED, abs=1e-12)
    assert gt == gt_before and dt == dt_before


def test_missing_iscrowd_is_a_clear_error(fixtures_dir) -> None:
    path = fixtures_dir / "coco" / "coco_sample_no_iscrowd.json"
    with pytest.raises(UserError) as info:
        coco_detection_stats(path, [{"image_id": 0, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 1.0}])
    message = str(info.value)
    assert "coco_sample_no_iscrowd.json" in message and "annotation id 1 " in message
    assert "iscrowd_default=0" in message and "\n" not in message


def test_iscrowd_default_fills_the_field(fixtures_dir) -> None:
    path = fixtures_dir / "coco" / "coco_sample_no_iscrowd.json"
    gt = json.loads(path.read_text())
    # Perfect detections (the ground-truth boxes themselves): every 20x20 box is "small" (area 400 < 32^2), so
    # AP = AP50 = AP75 = APs = 1 and the medium/large ranges have no ground truth (-1, kept as -1 in the named keys).
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt["annotations"]
    ]
    out = coco_detection_stats(path, perfect, iscrowd_default=0)
    assert out["stats"][:6] == [1.0, 1.0, 1.0, 1.0, -1.0, -1.0]
    assert out["AP"] == 100.0 and out["APm"] == -1.0


def test_bad_results(fixtures_dir) -> None:
    gt = fixtures_dir / "coco" / "instances_val2014_100.json"
    with pytest.raises(UserError, match="non-empty list of detections"):
        coco_detection_stats(gt, [])
    with pytest.raises(UserError, match=r"\[0\]\.image_id: -5 is not an image of the ground truth"):
        coco_detection_stats(gt, [{"image_id": -5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}])
    with pytest.raises(UserError, match=r"#0 lacks \['score'\]"):
        coco_detection_stats(gt, [{"image_id": -5, "category_id": 1, "bbox": [0, 0, 1, 1]}])
    with pytest.raises(UserError, match=r"missing.json: detection results file not found"):
        coco_detection_stats(gt, fixtures_dir / "coco" / "missing.json")
