"""COCO bounding-box detection metrics through pycocotools' ``COCOeval`` (the reference implementation).

``stats`` is ``COCOeval.stats`` unchanged: 12 fractions in [0, 1] (``-1`` where an area range has no ground truth), so
it can be compared with published pycocotools numbers digit for digit. The named keys (``AP``, ``AP50``, ...) are the
same numbers in PERCENT like every other metric of this package, except that ``-1`` stays ``-1``.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.metrics.finite import NonFiniteError, non_finite_name

__all__ = ["COCO_STAT_NAMES", "coco_detection_stats"]

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_RESULT_KEYS = ("image_id", "category_id", "bbox", "score")


def _read(path: str | Path, fmt: Any) -> Any:
    from harness.data import formats

    return formats.read(Path(path), fmt, "check the path")


def _prepare_gt(gt: str | Path | dict, iscrowd_default: int | None) -> tuple[dict, str]:
    from harness.data import formats

    if isinstance(gt, str | Path):
        name = str(gt)
        data = _read(gt, formats.COCO_INSTANCES)  # validated: ids, bbox of 4 finite numbers, area, categories
    elif isinstance(gt, dict):
        name = "the ground-truth dict"
        data = copy.deepcopy(gt)  # pycocotools and the iscrowd fill mutate it
        if not isinstance(data.get("annotations"), list) or not isinstance(data.get("images"), list):
            raise UserError(f"Expected {name} to be a COCO annotation dict with 'images' and 'annotations' lists")
        data.setdefault("categories", [])
        for ann in data["annotations"]:
            for key in ("bbox", "area", "image_id", "category_id"):
                if key not in ann:
                    raise UserError(
                        f"Expected every annotation in {name} to have a {key!r} field, "
                        f"but annotation id {ann.get('id')!r} has none"
                    )
        _check_boxes(data["annotations"], name, "annotation", "id")
    else:
        raise UserError(f"Expected `gt` to be a path or a COCO dict, but got {type(gt).__name__}")
    for key in ("images", "categories"):
        if not data[key]:
            raise UserError(f"{name}: {key!r} is empty; a COCO instances file lists the {key} to evaluate on")
    for ann in data["annotations"]:
        if "iscrowd" not in ann:
            if iscrowd_default is None:
                raise UserError(
                    f"Expected every annotation in {name} to have an 'iscrowd' field, but annotation id "
                    f"{ann.get('id')!r} (the first such) has none; pass iscrowd_default=0 (CLI: --iscrowd-default 0) "
                    "to treat such annotations as not crowd"
                )
            ann["iscrowd"] = iscrowd_default
    return data, name


def _prepare_results(results: str | Path | list, image_ids: set, allow_empty: bool = False) -> list[dict]:
    from harness.data import formats

    if isinstance(results, str | Path):
        name = str(results)
        data = _read(results, formats.DETECTION_RESULTS)  # validated: the 4 keys, bbox of 4 finite numbers
    elif isinstance(results, list):
        name = "the results list"
        data = copy.deepcopy(results)  # COCO.loadRes writes area/id/iscrowd into every result
        for i, det in enumerate(data):
            missing = [k for k in _RESULT_KEYS if not isinstance(det, dict) or k not in det]
            if missing:
                raise UserError(
                    f"Expected every detection in {name} to have keys {_RESULT_KEYS}, but #{i} lacks {missing}"
                )
        _check_boxes(data, name, "detection", None)
    else:
        raise UserError(f"Expected `results` to be a path or a list of detections, but got {type(results).__name__}")
    if not data and allow_empty:
        return data
    if not data and isinstance(results, list):
        raise UserError(f"Expected {name} to be a non-empty list of detections, but it is empty")
    if not data:
        raise UserError(f"{name}: expected a non-empty list of detections, got []")
    for i, det in enumerate(data):
        if det["image_id"] not in image_ids:
            raise UserError(
                f"{name}: [{i}].image_id: {det['image_id']!r} is not an image of the ground truth; score the results "
                "against the annotation file they were made for"
            )
    return data


def _check_boxes(items: list[dict], name: str, noun: str, id_key: str | None) -> None:
    """Every ``bbox`` is 4 finite numbers and every ``score`` (results) / ``area`` (ground truth) a finite number."""
    extra = "area" if id_key else "score"
    try:
        boxes = np.asarray([d["bbox"] for d in items], dtype=np.float64).reshape(len(items), 4)
        values = np.asarray([d[extra] for d in items], dtype=np.float64).reshape(len(items))
    except (TypeError, ValueError):
        raise UserError(
            f"Expected every {noun} in {name} to have a 'bbox' of 4 numbers [x, y, width, height] and a numeric "
            f"{extra!r}"
        ) from None
    bad = ~np.isfinite(boxes).all(axis=1) | ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        j = next((j for j in range(4) if not np.isfinite(boxes[i, j])), None)
        loc, value = (f"[{i}].bbox[{j}]", boxes[i, j]) if j is not None else (f"[{i}].{extra}", values[i])
        ident = f"id {items[i].get(id_key)!r}" if id_key else f"image_id {items[i].get('image_id')!r}"
        raise NonFiniteError(
            f"Expected every {noun} in {name} to be finite, but {loc} is {non_finite_name(value)} ({ident})"
        )


def coco_detection_stats(
    gt: str | Path | dict,
    results: str | Path | list,
    iscrowd_default: int | None = None,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """Run ``COCOeval(gt, dt, "bbox")`` (evaluate, accumulate, summarize) silently and return its 12 stats.

    Args:
        gt: A COCO instances annotation file or the loaded dict (not modified).
        results: A COCO detection results file or the loaded list (not modified).
        iscrowd_default: Value for annotations without ``iscrowd``. ``None`` (default) raises instead, since
            pycocotools would crash with a ``KeyError``.
        allow_empty: Score an empty results list (a model that detects nothing) as COCOeval scores a results set
            with no detections: AP and AR 0 where the area range has ground truth, -1 where it has none.
            ``COCO.loadRes`` itself cannot load an empty list, so the results set is built directly. When False
            (the default, and ``xmbench score``), an empty list is an error: it is usually the wrong file.

    Returns:
        ``{"stats": [12 floats, pycocotools fractions], "AP": pct, "AP50": pct, ..., "ARl": pct}``.

    Raises:
        UserError: On unreadable or malformed files (checked against the schemas of :mod:`harness.data.formats`),
            missing fields, or detections on images absent from the ground truth.
        NonFiniteError: On a NaN or ±inf box, area or score (a ``ValueError``), naming the first one.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_data, _ = _prepare_gt(gt, iscrowd_default)
    dt_data = _prepare_results(results, {img["id"] for img in gt_data["images"]}, allow_empty)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_data
        coco_gt.createIndex()
        if dt_data:
            coco_dt = coco_gt.loadRes(dt_data)
        else:  # what loadRes builds, with no annotations
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt_data["images"]), "categories": list(gt_data["categories"])}
            coco_dt.dataset["annotations"] = []
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(x) for x in evaluator.stats]
    out: dict[str, Any] = {"stats": stats}
    for name, value in zip(COCO_STAT_NAMES, stats):
        out[name] = value if value == -1 else 100.0 * value
    return out
