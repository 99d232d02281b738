"""The detection task: learnable on the synthetic instances, boxes mapped exactly to and from the decoded size,
crowd regions and empty images as COCOeval expects, box-consistent augmentation, and clear refusals."""

from __future__ import annotations

import contextlib
import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console

from harness.cli import main
from harness.data.records import DetectionSplit
from harness.metrics.detection import coco_detection_stats
from harness.tasks.detection import _augment, _scaled_targets

VIT64 = {"name": "vit_tiny_patch16_224", "args": {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2}}
BERT = {"config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}}

DET_SUITE = {
    "name": "det",
    "seeds": [0],
    "hardware": {"device": "cpu", "threads": 2},
    "train": {"epochs": 8, "batch_size": 32, "lr": 2e-3, "warmup_ratio": 0.1},
    "image": {"size": 64},
    "text": {"vocab_size": 120, "max_length": 12},
    "synthetic": {"images": 400, "size": 64},
    "datasets": {"shapes": {"kind": "coco", "path": "@synthetic"}},
    "models": {"vit": {"type": "timm", "image_encoder": VIT64}},
    "tasks": {
        "det": {"type": "detection", "dataset": "shapes", "models": ["vit"], "fpn_channels": 64, "head_convs": 1}
    },
}


def _write(tmp_path: Path, suite: dict, name: str = "det.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _untrained_metrics(path: Path, tmp_path: Path) -> dict[str, float]:
    """The test split scored by the model and head as built (seed 0), before any training step."""
    from harness import runner
    from harness.models import BuildContext
    from harness.suite.check import build_model
    from harness.suite.loader import load_suite
    from harness.tasks.base import Batcher

    quiet = Console(quiet=True)
    suite = load_suite(path)
    plan = runner.plan_suite(suite, path, tmp_path, quiet)
    ctx = runner.prepare_data(plan, {"det"}, quiet)
    torch.manual_seed(0)
    model = build_model(ctx.models["vit"], BuildContext(image_size=64, max_text_len=12))
    task, data = ctx.tasks["det"], ctx.data["det"]
    head = task.build_head(model, data)
    model.eval()
    head.eval()
    batcher = Batcher(suite.image.mean, suite.image.std, torch.device("cpu"))
    return task.evaluate(model, head, data, batcher, 64, contextlib.nullcontext, split="test").metrics


@pytest.mark.slow
def test_detection_trained_on_synthetic_instances_beats_an_untrained_model(tmp_path: Path) -> None:
    path = _write(tmp_path, DET_SUITE)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    (record,) = (tmp_path / "out" / "runs" / "det" / "vit").glob("seed0-*/metrics.json")
    trained = json.loads(record.read_text())
    before = _untrained_metrics(path, tmp_path)
    after = trained["metrics"]
    # pycocotools' 12 stats are kept as COCOeval gives them (fractions); the metrics are the same numbers in percent
    # without the -1 of area ranges that have no ground truth (the synthetic shapes are all small)
    stats = trained["notes"]["coco_stats"]
    assert after["AP"] == pytest.approx(100 * stats[0]) and after["AP50"] == pytest.approx(100 * stats[1])
    assert stats[4] == -1 and stats[5] == -1 and "APm" not in after and "APl" not in after
    assert trained["notes"]["not_scored"] == ["APm", "APl", "ARm", "ARl"]
    assert before["AP50"] < 2.0, before
    assert after["AP50"] > 20.0 and after["AP50"] > before["AP50"] + 20.0, (before, after)
    assert after["AP"] > before["AP"] + 10.0
    # the official results format, scored again by pycocotools against the dataset's own instances file (the test
    # split is all of val2014), gives the same 12 numbers: the ground truth the task built is the file's
    detections = json.loads((record.parent / "detections.json").read_text())
    assert {"image_id", "category_id", "bbox", "score"} <= set(detections[0])
    (gt_file,) = Path(os.environ["XMBENCH_CACHE"]).glob("synthetic/shapes-n400-*/annotations/instances_val2014.json")
    assert coco_detection_stats(gt_file, detections)["stats"] == stats
    # FLOPs of a training step were counted (train mode, real batch), not left out
    assert trained["cost"]["train_flops_per_sample"] > trained["cost"]["forward_flops_per_sample"] > 0


def _split(boxes: list[list[dict]], sizes: list[tuple[int, int]]) -> DetectionSplit:
    ids = list(range(1, len(boxes) + 1))
    anns = [[{**a, "image_id": i} for a in per] for i, per in zip(ids, boxes)]
    return DetectionSplit([Path(f"{i}.jpg") for i in ids], ids, sizes, anns, [1, 3], ["circle", "square"])


def _ann(ann_id: int, bbox: list[float], cat: int = 1, crowd: int = 0) -> dict:
    return {"id": ann_id, "category_id": cat, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": crowd}


def test_boxes_scale_to_the_decoded_size_and_back_exactly() -> None:
    """Ground truth pushed through the task's scaling to 64 x 64 and mapped back as the evaluation does is a perfect
    detector: COCOeval gives AP 100 (boxes of non-square images, two categories, an empty image)."""
    split = _split(
        [[_ann(1, [10.0, 20.0, 30.0, 40.0]), _ann(2, [100.5, 7.25, 50.0, 12.0], cat=3)], [], [_ann(3, [0, 0, 5, 9])]],
        [(200, 100), (64, 64), (33, 77)],
    )
    targets = _scaled_targets(split, 64)
    assert targets.shape == (3, 2, 5)
    assert targets[0, 0].tolist() == pytest.approx([3.2, 12.8, 12.8, 38.4, 0.0])  # x * 64/200, y * 64/100
    assert (targets[1, :, 4] == -1).all()  # the empty image: padding only
    results = []
    for i, (row, (w, h)) in enumerate(zip(targets, split.sizes)):
        for x1, y1, x2, y2, lab in row.tolist():
            if lab < 0:
                continue
            sx, sy = w / 64, h / 64
            box = [x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy]
            results.append({"image_id": split.ids[i], "category_id": [1, 3][int(lab)], "bbox": box, "score": 0.9})
    stats = coco_detection_stats(split.coco_ground_truth(), results)
    assert stats["AP"] == pytest.approx(100.0) and stats["AP75"] == pytest.approx(100.0)


def test_crowd_regions_are_not_trained_on_and_their_matches_are_ignored() -> None:
    crowd = [100.0, 100.0, 60.0, 60.0]
    split = _split([[_ann(1, [10.0, 10.0, 40.0, 40.0]), _ann(2, crowd, crowd=1)]], [(200, 200)])
    targets = _scaled_targets(split, 64)
    assert (targets[0, :, 4] >= 0).sum() == 1  # the crowd box is not a training target
    gt = split.coco_ground_truth()
    assert len(gt["annotations"]) == 2  # ... but stays in the ground truth COCOeval reads
    hit = {"image_id": 1, "category_id": 1, "bbox": [10.0, 10.0, 40.0, 40.0], "score": 0.5}
    on_crowd = {"image_id": 1, "category_id": 1, "bbox": [105.0, 105.0, 50.0, 50.0], "score": 0.9}
    elsewhere = {"image_id": 1, "category_id": 1, "bbox": [150.0, 10.0, 40.0, 40.0], "score": 0.9}
    # a higher-scored detection inside a crowd region is ignored; the same detection elsewhere is a false positive
    assert coco_detection_stats(gt, [hit, on_crowd])["AP"] == pytest.approx(100.0)
    assert coco_detection_stats(gt, [hit, elsewhere])["AP"] < 60.0


def test_an_empty_results_set_scores_as_cocoeval_scores_no_detections() -> None:
    gt = _split([[_ann(1, [10.0, 10.0, 20.0, 20.0])], []], [(64, 64), (64, 64)]).coco_ground_truth()
    empty = coco_detection_stats(gt, [], allow_empty=True)
    # independently: one detection that overlaps nothing (IoU 0) adds no true positive, so AP and AR are 0 as well
    miss = coco_detection_stats(gt, [{"image_id": 2, "category_id": 1, "bbox": [0.0, 0.0, 5.0, 5.0], "score": 0.1}])
    assert empty["stats"] == miss["stats"]
    assert empty["AP"] == 0.0 and empty["APs"] == 0.0 and empty["APl"] == -1  # a 20 x 20 box is small
    with pytest.raises(Exception, match="non-empty"):
        coco_detection_stats(gt, [])  # `xmbench score` keeps refusing an empty file


@pytest.mark.parametrize("seed", range(6))
def test_augmentation_moves_boxes_with_the_pixels(seed: int) -> None:
    """A bright rectangle on a dark image: after a random resized crop and flip, the box still covers it."""
    torch.manual_seed(seed)
    image = torch.zeros(3, 64, 64)
    image[:, 10:30, 20:50] = 1.0  # rows 10..29, columns 20..49: the box x1=20, y1=10, x2=50, y2=30
    boxes = torch.tensor([[20.0, 10.0, 50.0, 30.0]])
    out, out_boxes, labels = _augment(image, boxes, torch.tensor([2]), "crop_flip", (0.5, 1.0), 64)
    assert out.shape == (3, 64, 64)
    if len(out_boxes) == 0:  # cropped away entirely: sanitized out with its label
        assert len(labels) == 0 and out.mean() < 0.05
        return
    assert labels.tolist() == [2]
    x1, y1, x2, y2 = (round(v) for v in out_boxes[0].tolist())
    inside = out[0, y1 + 1 : y2 - 1, x1 + 1 : x2 - 1]
    outside = out[0].clone()
    outside[max(0, y1 - 1) : y2 + 1, max(0, x1 - 1) : x2 + 1] = 0
    assert inside.numel() == 0 or inside.mean() > 0.9
    assert outside.max() < 0.5


def test_detection_refusals(tmp_path: Path, capsys) -> None:
    def refused(suite: dict) -> str:
        path = _write(tmp_path, suite, "bad.yaml")
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Traceback" not in err
        return err

    s = copy.deepcopy(DET_SUITE)
    s["models"]["bert"] = {"type": "bert", "text_encoder": BERT}
    s["tasks"]["det"]["models"] = ["vit", "bert"]
    assert "tasks.det.models[1]: model 'bert' cannot run this task: detection needs image input" in refused(s)

    s = copy.deepcopy(DET_SUITE)
    s["image"]["resize"] = "shorter_crop"
    assert "image.resize: 'shorter_crop' cannot serve the detection task 'det'" in refused(s)

    s = copy.deepcopy(DET_SUITE)
    s["tasks"]["det"]["fpn_channels"] = 48
    err = refused(s)
    assert "tasks.det.fpn_channels" in err and "multiple of 32" in err

    s = copy.deepcopy(DET_SUITE)
    s["datasets"]["cls"] = {"kind": "imagefolder", "path": "@synthetic"}
    s["tasks"]["det"]["dataset"] = "cls"
    assert "a detection task cannot use dataset 'cls' of kind 'imagefolder'" in refused(s)


def test_a_model_without_spatial_features_is_refused() -> None:
    from harness.models.base import XModel
    from harness.tasks.detection import DetectionTask

    class Pooled(XModel):
        kind = "image"
        modalities = frozenset({"image"})

    problem = DetectionTask.model_problem(Pooled())
    assert problem.startswith("detection needs spatial feature maps and Pooled has none; implement XModel.spatial")


@pytest.mark.parametrize("fusion", ["single_stream", "cross_attention", "sum", "concat", "two_token"])
def test_every_fusion_gives_text_conditioned_maps_on_the_patch_grid(fusion: str) -> None:
    from harness.models import BuildContext, load_families

    family = load_families().get("xbert")
    torch.manual_seed(0)
    cfg = family.config.model_validate(
        {"fusion": fusion, "image_encoder": {**VIT64, "args": {**VIT64["args"], "embed_dim": 32}}, "text_encoder": BERT}
    )
    model = family.build(cfg, BuildContext(image_size=32, max_text_len=6, vocab_size=50)).eval()
    batch = {
        "image": torch.randn(2, 3, 32, 32),
        "input_ids": torch.tensor([[2, 7, 8, 3, 0, 0]] * 2),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 0, 0]] * 2),
    }
    (grid,) = model.spatial(batch)
    assert grid.shape[0] == 2 and grid.shape[2:] == (4, 4)  # 32 px, patch 8
    other = {**batch, "input_ids": torch.tensor([[2, 9, 10, 3, 0, 0]] * 2)}
    with torch.no_grad():
        assert not torch.allclose(model.spatial(other)[0], grid)  # another prompt, other features


def test_cnn_feature_maps_are_the_last_three_stages() -> None:
    from harness.models import BuildContext, load_families

    family = load_families().get("timm")
    model = family.build(
        family.config.model_validate({"image_encoder": {"name": "resnet18"}}),
        BuildContext(image_size=64, max_text_len=8),
    )
    maps = model.spatial({"image": torch.zeros(1, 3, 64, 64)})
    assert [tuple(m.shape[1:]) for m in maps] == [(128, 8, 8), (256, 4, 4), (512, 2, 2)]  # strides 8, 16, 32
    assert np.allclose([64 / m.shape[2] for m in maps], [8, 16, 32])
