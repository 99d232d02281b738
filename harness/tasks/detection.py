"""Object detection on COCO instances: a feature pyramid over each model's spatial features, torchvision's FCOS head.

Why FCOS: it is anchor-free (one location per feature-map cell, no anchor shapes to tune per dataset or image size),
its head is the same for every pairing, and torchvision ships it (loss: sigmoid focal classification, GIoU box
regression, centre-ness; post-processing: score threshold, per-level top-k, class-wise NMS). RetinaNet would need
anchor sizes matched to each image size, which a suite that runs at 32 px on synthetic data and 800 px on COCO
cannot share.

Pipeline (one head for every pairing):

- ``model.spatial(batch)``: a CNN gives its last three stages (ResNet-50: C3-C5, strides 8/16/32); a ViT gives its
  patch tokens on their grid; the cross-modal BERT gives its visual tokens after fusion, conditioned on the
  task's ``prompt``. A single map (ViT, cross-modal) gets two coarser levels by 2x2 max-pooling (a simple pyramid,
  after ViTDet).
- ``torchvision.ops.FeaturePyramidNetwork`` over those levels, plus P6/P7 (``LastLevelP6P7``), as FCOS does.
- ``torchvision.models.detection.fcos.FCOSHead``; the loss and the post-processing are those of torchvision's
  ``FCOS`` (its ``compute_loss`` and ``postprocess_detections``), on locations whose size is each level's stride.

Images are decoded once at ``image.size`` x ``image.size`` (``resize: squash``); boxes are scaled with them and
mapped back to each image's own pixels for COCOeval. Training augmentation moves boxes with the pixels
(``torchvision.transforms.v2`` on ``tv_tensors.BoundingBoxes``): ``image.augment: crop`` is a random resized crop,
``crop_flip`` adds a horizontal flip; boxes cut to nothing are dropped (``SanitizeBoundingBoxes``). Crowd regions
are left out of the training targets (as detectron2 and the torchvision references do) and kept in the ground truth,
where COCOeval ignores the detections they match. Images without annotations are trained on as background and scored
as COCOeval scores them (their detections are false positives).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import UserError
from harness.metrics.detection import COCO_STAT_NAMES
from harness.models.base import XModel
from harness.tasks import register_task
from harness.tasks.base import Batcher, EvalResult, Examples, PrepareContext, Task, TaskData
from harness.tasks.images import split_images

PAD = -1.0  # label of padding rows in the (N, M, 5) target tensor


def _scaled_targets(rec, size: int) -> torch.Tensor:
    """(N, M, 5) float: x1, y1, x2, y2 in decoded-image pixels and the class column; crowd boxes left out, rows
    padded with label -1."""
    rows = []
    for (w, h), anns in zip(rec.sizes, rec.annotations):
        col = {c: i for i, c in enumerate(rec.category_ids)}
        boxes = [
            [x * size / w, y * size / h, (x + bw) * size / w, (y + bh) * size / h, col[a["category_id"]]]
            for a in anns
            if not a.get("iscrowd", 0)
            for x, y, bw, bh in [a["bbox"]]
        ]
        rows.append(boxes)
    m = max(1, max((len(r) for r in rows), default=0))
    out = torch.full((len(rows), m, 5), PAD)
    for i, r in enumerate(rows):
        if r:
            out[i, : len(r)] = torch.tensor(r, dtype=torch.float32)
    return out


class _NoBackbone(nn.Module):
    """Stands in for FCOS's backbone: the pyramid is built by :class:`DetectionHead` from the model's features."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels


class DetectionHead(nn.Module):
    """Feature pyramid (FPN + P6/P7) and torchvision's FCOS head, loss and post-processing."""

    def __init__(
        self, in_channels: list[int], strides: list[int], num_classes: int, spec: Any, image_size: int
    ) -> None:
        super().__init__()
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.fcos import FCOS, FCOSHead
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        self.single_scale = len(in_channels) == 1
        if self.single_scale:  # a simple pyramid: the map, then two 2x2 max-pooled copies
            in_channels = in_channels * 3
            strides = [strides[0], 2 * strides[0], 4 * strides[0]]
        c = spec.fpn_channels
        self.fpn = FeaturePyramidNetwork(in_channels, c, extra_blocks=LastLevelP6P7(c, c))
        self.strides = [*strides, 2 * strides[-1], 4 * strides[-1]]
        anchors = AnchorGenerator(sizes=tuple((s,) for s in self.strides), aspect_ratios=((1.0,),) * len(self.strides))
        head = FCOSHead(c, num_anchors=1, num_classes=num_classes, num_convs=spec.head_convs)
        # FCOS's own transform (resize, normalise) is never called: images arrive decoded and normalised.
        self.fcos = FCOS(
            _NoBackbone(c),
            num_classes,
            min_size=image_size,
            max_size=image_size,
            anchor_generator=anchors,
            head=head,
            score_thresh=spec.score_thresh,
            nms_thresh=spec.nms_thresh,
            detections_per_img=spec.detections_per_img,
        )
        self.image_size = image_size

    def pyramid(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.single_scale:
            x = maps[0]
            maps = [x, F.max_pool2d(x, 2, ceil_mode=True), F.max_pool2d(x, 4, ceil_mode=True)]
        feats = self.fpn(OrderedDict((str(i), m.float()) for i, m in enumerate(maps)))
        return list(feats.values())

    def _run(self, maps: list[torch.Tensor], batch_size: int):
        from torchvision.models.detection.image_list import ImageList

        feats = self.pyramid(maps)
        outputs = self.fcos.head(feats)
        dummy = feats[0].new_empty((batch_size, 3, self.image_size, self.image_size))
        sizes = [(self.image_size, self.image_size)] * batch_size
        images = ImageList(dummy, sizes)
        anchors = self.fcos.anchor_generator(images, feats)
        per_level = [f.size(2) * f.size(3) for f in feats]
        return outputs, anchors, per_level, sizes

    def loss(self, maps: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        outputs, anchors, per_level, _ = self._run(maps, len(targets))
        losses = self.fcos.compute_loss(targets, outputs, anchors, per_level)
        return sum(losses.values())

    def detect(self, maps: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        batch = maps[0].shape[0]
        outputs, anchors, per_level, sizes = self._run(maps, batch)
        split = {k: list(v.split(per_level, dim=1)) for k, v in outputs.items()}
        split_anchors = [list(a.split(per_level)) for a in anchors]
        return self.fcos.postprocess_detections(split, split_anchors, sizes)


def _augment(image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, mode: str, scale, size: int):
    """One training image with its boxes through torchvision.transforms.v2 (boxes move with the pixels)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    ops: list[Any] = [v2.RandomResizedCrop(size, scale=tuple(scale), antialias=True)]
    if mode == "crop_flip":
        ops.append(v2.RandomHorizontalFlip(0.5))
    ops.append(v2.SanitizeBoundingBoxes(min_size=1.0))
    sample = {
        "image": tv_tensors.Image(image),
        "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(size, size)),
        "labels": labels,
    }
    out = v2.Compose(ops)(sample)
    return out["image"].as_subclass(torch.Tensor), out["boxes"].as_subclass(torch.Tensor), out["labels"]


@register_task
class DetectionTask(Task):
    """FPN + FCOS on every model's spatial features; COCOeval bbox mAP (see the module docstring)."""

    type = "detection"
    main_metric = "AP"
    metrics = COCO_STAT_NAMES
    requires = frozenset({"image"})
    feature_cache = False  # the pyramid reads spatial maps, not the pooled vector the cache holds
    own_augmentation = True  # boxes must move with the pixels: the Batcher does not augment

    @classmethod
    def model_problem(cls, model: XModel) -> str | None:
        if not model.has_spatial:
            return (
                f"detection needs spatial feature maps and {type(model).__name__} has none; implement "
                "XModel.spatial(batch) -> [(B, C, H, W), ...] (finest first)"
            )
        return None

    def prepare(self, source, splits, ctx: PrepareContext) -> TaskData:
        if ctx.resize != "squash":
            raise UserError(
                f"tasks.{self.name}: detection needs image.resize: squash (got {ctx.resize!r}): a crop would cut "
                "ground-truth boxes out of the scored image"
            )
        parts = []
        recs = []
        for records in source.records(self.type, splits):
            images, rec, rows = split_images(ctx, records, self.name)
            ids, mask = ctx.tokenize([self.spec.prompt])
            n = len(rec.paths)
            if ids is not None:
                ids, mask = ids.expand(n, -1).contiguous(), mask.expand(n, -1).contiguous()
            ex = Examples(images, rows, ids, mask, _scaled_targets(rec, ctx.image_size), rec.ids)
            ex.extra.update(ground_truth=rec.coco_ground_truth(), sizes=rec.sizes)
            parts.append(ex)
            recs.append(rec)
        space = {"classes": recs[0].category_names, "category_ids": recs[0].category_ids}
        for name, rec in zip(("val", "test"), recs[1:]):
            if rec.category_ids != space["category_ids"]:
                raise UserError(
                    f"tasks.{self.name}: the {name} split's categories {rec.category_ids} differ from the train "
                    f"split's {space['category_ids']}; detection needs one label space"
                )
        space["image_size"] = ctx.image_size
        return TaskData(parts[0], parts[1], parts[2], space)

    def build_head(self, model: XModel, data: TaskData) -> nn.Module:
        problem = self.model_problem(model)
        if problem:
            raise UserError(f"tasks.{self.name}: {problem}")
        size = data.info["image_size"]
        device = next(model.parameters()).device
        probe = {"image": torch.zeros(1, 3, size, size, device=device)}
        if data.train.input_ids is not None:
            probe["input_ids"] = data.train.input_ids[:1].to(device)
            probe["attention_mask"] = data.train.attention_mask[:1].to(device)
        was = model.training
        model.eval()
        with torch.no_grad():
            maps = model.spatial(probe)
        model.train(was)
        if not maps or any(m.ndim != 4 for m in maps):
            raise UserError(f"tasks.{self.name}: {type(model).__name__}.spatial() must return (B, C, H, W) maps")
        strides = [max(1, round(size / m.shape[2])) for m in maps]
        return DetectionHead([m.shape[1] for m in maps], strides, len(data.info["classes"]), self.spec, size)

    def _targets(self, batch: dict[str, torch.Tensor], augment: tuple[str, Any] | None):
        out = []
        images = batch["image"]
        for i, t in enumerate(batch["targets"]):
            keep = t[:, 4] >= 0
            boxes, labels = t[keep, :4], t[keep, 4].long()
            if augment is not None and augment[0] != "none":
                img, boxes, labels = _augment(images[i], boxes, labels, augment[0], augment[1], images.shape[-1])
                images[i] = img
            out.append({"boxes": boxes, "labels": labels})
        return out

    def loss(self, model: XModel, head: DetectionHead, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        augment = getattr(self, "augment", None) if model.training else None
        targets = self._targets(batch, augment)
        return head.loss(model.spatial(batch), targets)

    def flops_forward(self, model: XModel, head: DetectionHead, batch: dict[str, torch.Tensor]) -> Any:
        return head.detect(model.spatial(batch))

    @torch.no_grad()
    def evaluate(self, model, head, data, batcher: Batcher, batch_size: int, autocast, split="test") -> EvalResult:
        from harness.metrics.detection import coco_detection_stats

        ex = data.split(split)
        size = data.info["image_size"]
        cat_ids = data.info["category_ids"]
        from harness.dist import gather_list, local_batches

        results: list[dict[str, Any]] = []
        for idx in local_batches(len(ex), batch_size):  # this rank's images under torchrun (all of them otherwise)
            batch = batcher(ex, idx, with_targets=False)
            with autocast():
                dets = head.detect(model.spatial(batch))
            for j, det in zip(idx.tolist(), dets):
                w, h = ex.extra["sizes"][j]
                scale = torch.tensor([w / size, h / size, w / size, h / size])
                boxes = det["boxes"].float().cpu() * scale
                xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).numpy().astype(np.float64)
                for b, s, lab in zip(xywh, det["scores"].float().cpu().tolist(), det["labels"].cpu().tolist()):
                    results.append(
                        {
                            "image_id": ex.ids[j],
                            "category_id": cat_ids[lab],
                            "bbox": [round(float(v), 2) for v in b],
                            "score": round(float(s), 5),
                        }
                    )
        results = gather_list(results)  # every rank's detections, in image order
        stats = coco_detection_stats(ex.extra["ground_truth"], results, allow_empty=True)
        # COCOeval reports -1 for an area range without ground truth (no large objects, say): not a score, so it is
        # left out of the metrics (every model is scored on the same images) and listed in the notes.
        metrics = {name: float(stats[name]) for name in COCO_STAT_NAMES if stats[name] != -1}
        notes = {
            "not_scored": [name for name in COCO_STAT_NAMES if stats[name] == -1],
            "coco_stats": stats["stats"],
            "detections": len(results),
            "images": len(ex),
            "head": "FCOS (torchvision) over FPN + P6/P7",
            "strides": head.strides,
        }
        label_map = {"category_ids": cat_ids, "classes": data.info["classes"]}
        files = {"detections.json": results, "label_map.json": label_map}
        return EvalResult(metrics, [], notes, files=files)
