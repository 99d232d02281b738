"""COCO bounding-box detection metrics through pycocotools' ``COCOeval`` (the reference implementation).

``stats`` is ``COCOeval.stats`` unchanged: 12 fractions in [0, 1] (``-1`` where an area range has no ground truth), so
it can be compared with published pycocotools numbers digit for digit. The named keys (``AP``, ``AP50``, ...) are the
same numbers in PERCENT like every other metric of this package, except that ``-1`` stays ``-1``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

from harness.errors import UserError

__all__ = ["COCO_STAT_NAMES", "coco_detection_stats"]

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_RESULT_KEYS = ("image_id", "category_id", "bbox", "score")


def _load_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"Expected {what} file {str(p)!r} to exist, but it was not found")
    try:
        with p.open(encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"Expected {what} file {str(p)!r} to be JSON, but it failed to parse: {exc}") from None


def _prepare_gt(gt: str | Path | dict, iscrowd_default: int | None) -> dict:
    if isinstance(gt, str | Path):
        name = str(gt)
        data = _load_json(gt, "COCO annotation")
    elif isinstance(gt, dict):
        name = "the ground-truth dict"
        data = copy.deepcopy(gt)  # pycocotools and the iscrowd fill mutate it
    else:
        raise UserError(f"Expected `gt` to be a path or a COCO dict, but got {type(gt).__name__}")
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise UserError(f"Expected {name} to be a COCO annotation dict with 'images' and 'annotations', but it is not")
    data.setdefault("categories", [])
    for ann in data["annotations"]:
        for key in ("bbox", "area", "image_id", "category_id"):
            if key not in ann:
                raise UserError(
                    f"Expected every annotation in {name} to have a {key!r} field, "
                    f"but annotation id {ann.get('id')!r} has none"
                )
        if "iscrowd" not in ann:
            if iscrowd_default is None:
                raise UserError(
                    f"Expected every annotation in {name} to have an 'iscrowd' field, but annotation id "
                    f"{ann.get('id')!r} (the first such) has none; pass iscrowd_default=0 (CLI: --iscrowd-default 0) "
                    "to treat such annotations as not crowd"
                )
            ann["iscrowd"] = iscrowd_default
    return data


def _prepare_results(results: str | Path | list, image_ids: set) -> list[dict]:
    if isinstance(results, str | Path):
        name = str(results)
        data = _load_json(results, "detection results")
    elif isinstance(results, list):
        name = "the results list"
        data = copy.deepcopy(results)  # COCO.loadRes writes area/id/iscrowd into every result
    else:
        raise UserError(f"Expected `results` to be a path or a list of detections, but got {type(results).__name__}")
    if not isinstance(data, list) or not data:
        raise UserError(
            f"Expected {name} to be a non-empty list of detections, but got {type(data).__name__} {data!r:.60}"
        )
    for i, det in enumerate(data):
        missing = [k for k in _RESULT_KEYS if not isinstance(det, dict) or k not in det]
        if missing:
            raise UserError(f"Expected every detection in {name} to have keys {_RESULT_KEYS}, but #{i} lacks {missing}")
        if det["image_id"] not in image_ids:
            raise UserError(
                f"Expected every detection in {name} to refer to an image of the ground truth, "
                f"but #{i} has image_id {det['image_id']!r}"
            )
    return data


def coco_detection_stats(
    gt: str | Path | dict,
    results: str | Path | list,
    iscrowd_default: int | None = None,
) -> dict[str, Any]:
    """Run ``COCOeval(gt, dt, "bbox")`` (evaluate, accumulate, summarize) silently and return its 12 stats.

    Args:
        gt: A COCO instances annotation file or the loaded dict (not modified).
        results: A COCO detection results file or the loaded list (not modified).
        iscrowd_default: Value for annotations without ``iscrowd``. ``None`` (default) raises instead, since
            pycocotools would crash with a ``KeyError``.

    Returns:
        ``{"stats": [12 floats, pycocotools fractions], "AP": pct, "AP50": pct, ..., "ARl": pct}``.

    Raises:
        UserError: On unreadable files, missing fields, or detections on images absent from the ground truth.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_data = _prepare_gt(gt, iscrowd_default)
    dt_data = _prepare_results(results, {img["id"] for img in gt_data["images"]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_data
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dt_data)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(x) for x in evaluator.stats]
    out: dict[str, Any] = {"stats": stats}
    for name, value in zip(COCO_STAT_NAMES, stats):
        out[name] = value if value == -1 else 100.0 * value
    return out
