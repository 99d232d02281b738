"""COCO (2014/2017) and Flickr30k in their published layouts (see docs/datasets.md).

- ``instances_*.json`` -> multi-label targets; category ids map to columns 0..K-1 in ascending id order.
- ``captions_*.json`` -> images and captions for retrieval.
- Karpathy split files ``dataset_coco.json`` / ``dataset_flickr30k.json`` (splits train / restval / val / test).
- LAVIS/BLIP retrieval files: eval format ``[{"image", "caption": [..]}]`` and train format
  ``[{"image", "caption", "image_id"}]`` (``coco_karpathy_{split}.json``, ``flickr30k_{split}.json``).

Every loader parses its file against the schema of :mod:`harness.data.formats` (a malformed file is an error), then
validates while it reads and reports bad samples to a :class:`SampleIssues` (stop, or skip and count).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.data import formats
from harness.data.images import safe_join
from harness.data.issues import SampleIssues
from harness.data.records import DATASET_HINT, DetectionSplit, MultilabelSplit, RetrievalSplit, index_unique
from harness.errors import UserError


def find_file(root: Path, names: list[str], what: str) -> Path:
    """First existing file among ``names`` (relative to root); a clear error listing where it looked."""
    for name in names:
        if (root / name).is_file():
            return root / name
    tried = ", ".join(str(root / n) for n in names)
    raise UserError(f"{what} not found; looked for {tried}. See docs/datasets.md for the expected layout")


def _image_path(root: Path, rel: str, where: str, issues: SampleIssues, sample: str) -> Path | None:
    """Resolve an image named by an annotation file; a missing file is a bad sample."""
    path = safe_join(root, rel, where)
    if not path.is_file():
        issues.bad(where, sample, f"image file {rel} is missing (looked in {root})")
        return None
    return path


def load_instances(ann_path: Path, images_root: Path, split_dir: str, issues: SampleIssues) -> MultilabelSplit:
    """``instances_*.json`` -> multi-label targets (images in ascending id order) with their image files."""
    where = str(ann_path)
    data = formats.read(ann_path, formats.COCO_INSTANCES, DATASET_HINT)
    images, labels, categories = labels_of_instances(data, where, issues)
    ids, paths = [], []
    for image_id in sorted(images):
        path = _image_path(
            images_root / split_dir, images[image_id]["file_name"], where, issues, f"image id {image_id}"
        )
        if path is not None:
            ids.append(image_id)
            paths.append(path)
    return MultilabelSplit(
        paths,
        multi_hot(ids, labels, len(categories)),
        [c["id"] for c in categories],
        [c["name"] for c in categories],
        ids,
    )


def load_detection(ann_path: Path, images_root: Path, split_dir: str, issues: SampleIssues) -> DetectionSplit:
    """``instances_*.json`` -> every image (ascending id, empty ones included) with its box annotations.

    Bad samples (stop, or skip and count): what :func:`labels_of_instances` refuses, and a box with a width or height
    that is not positive. Crowd regions are kept: COCOeval uses them to ignore matching detections, and the
    detection task leaves them out of the training targets.
    """
    where = str(ann_path)
    data = formats.read(ann_path, formats.COCO_INSTANCES, DATASET_HINT)
    images, _, categories = labels_of_instances(data, where, issues)
    known = {c["id"] for c in categories}
    by_image: dict[int, list[dict]] = {i: [] for i in images}
    for ann in data["annotations"]:
        if "iscrowd" not in ann or ann["image_id"] not in images or ann["category_id"] not in known:
            continue  # reported by labels_of_instances
        w, h = ann["bbox"][2:]
        if not (w > 0 and h > 0):
            issues.bad(where, f"annotation id {ann['id']}", f"has a box of width {w} and height {h}; both must be > 0")
            continue
        keep = {k: ann[k] for k in ("id", "image_id", "category_id", "bbox", "area", "iscrowd")}
        if "ignore" in ann:
            keep["ignore"] = ann["ignore"]
        by_image[ann["image_id"]].append(keep)
    out = DetectionSplit([], [], [], [], [c["id"] for c in categories], [c["name"] for c in categories])
    for image_id in sorted(images):
        entry = images[image_id]
        path = _image_path(images_root / split_dir, entry["file_name"], where, issues, f"image id {image_id}")
        if path is None:
            continue
        size = (entry.get("width"), entry.get("height"))
        if not all(isinstance(v, int | float) and v > 0 for v in size):
            size = _image_size(path, where, issues, f"image id {image_id}")
            if size is None:
                continue
        out.paths.append(path)
        out.ids.append(image_id)
        out.sizes.append(size)
        out.annotations.append(by_image[image_id])
    return out


def _image_size(path: Path, where: str, issues: SampleIssues, sample: str) -> tuple[int, int] | None:
    """(width, height) from the image header, for files whose entry has no size."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # any decoding failure of the header is a bad image
        issues.bad(where, sample, f"has no width/height, and the header of {path.name} cannot be read: {exc}")
        return None


def multi_hot(ids: list[int], labels: dict[int, set[int]], n_classes: int) -> np.ndarray:
    """(len(ids), n_classes) uint8 targets; column j is the j-th category in ascending id order."""
    targets = np.zeros((len(ids), n_classes), dtype=np.uint8)
    for row, image_id in enumerate(ids):
        targets[row, sorted(labels[image_id])] = 1
    return targets


def instance_labels(data: dict, where: str, issues: SampleIssues) -> tuple[dict[int, dict], dict[int, set[int]], list]:
    """Validated images (by id), their label columns, and the categories sorted by id (column order).

    ``data`` is a loaded ``instances_*.json``; it is checked against the schema of
    :data:`harness.data.formats.COCO_INSTANCES` first (and not modified).
    """
    return labels_of_instances(formats.convert(data, formats.COCO_INSTANCES, where), where, issues)


def labels_of_instances(
    data: formats.CocoInstancesFile, where: str, issues: SampleIssues
) -> tuple[dict[int, dict], dict[int, set[int]], list]:
    """:func:`instance_labels` of data already validated against :data:`harness.data.formats.COCO_INSTANCES`.

    Bad samples: a repeated image id, an annotation without ``iscrowd`` or on an unknown image or category.
    """
    categories = sorted(data["categories"], key=lambda c: c["id"])
    if not categories:
        raise UserError(f"{where}: 'categories' is empty; an instances_*.json file lists the categories")
    col = {c["id"]: i for i, c in enumerate(categories)}
    if len(col) != len(categories):
        dup = next(c["id"] for k, c in enumerate(categories) if k and c["id"] == categories[k - 1]["id"])
        raise UserError(f"{where}: category id {dup} appears twice in 'categories'")
    images = index_unique(data["images"], "id", "image id", "duplicate image id", where, issues)
    labels: dict[int, set[int]] = {i: set() for i in images}
    for ann in data["annotations"]:
        sample = f"annotation id {ann['id']}"
        if "iscrowd" not in ann:
            issues.bad(where, sample, "has no 'iscrowd' field; real COCO files always have it (add \"iscrowd\": 0)")
        elif ann["image_id"] not in images:
            issues.bad(where, sample, f"refers to unknown image id {ann['image_id']}")
        elif ann["category_id"] not in col:
            issues.bad(where, sample, f"has unknown category id {ann['category_id']}")
        else:
            labels[ann["image_id"]].add(col[ann["category_id"]])
    return images, labels, categories


class _Builder:
    """Accumulates a RetrievalSplit image by image, skipping bad ones."""

    def __init__(self) -> None:
        self.out = RetrievalSplit([], [], [], [], [])

    def add(self, path: Path, image_id, captions: list[str]) -> None:
        row = len(self.out.paths)
        self.out.paths.append(path)
        self.out.image_ids.append(image_id)
        self.out.img2txt.append(list(range(len(self.out.texts), len(self.out.texts) + len(captions))))
        self.out.txt2img.extend([row] * len(captions))
        self.out.texts.extend(captions)


def load_captions(ann_path: Path, images_root: Path, split_dir: str, issues: SampleIssues) -> RetrievalSplit:
    """``captions_*.json`` -> images (ascending id) and their captions (file order)."""
    data = formats.read(ann_path, formats.COCO_CAPTIONS, DATASET_HINT)
    where = str(ann_path)
    images = index_unique(data["images"], "id", "image id", "duplicate image id", where, issues)
    captions: dict[int, list[str]] = {i: [] for i in images}
    for ann in data["annotations"]:
        if ann["image_id"] not in images:
            issues.bad(where, f"caption id {ann.get('id')}", f"caption of unknown image id {ann['image_id']}")
            continue
        captions[ann["image_id"]].append(ann["caption"])
    builder = _Builder()
    for image_id in sorted(images):
        sample = f"image id {image_id}"
        if not captions[image_id]:
            issues.bad(where, sample, "has no captions")
            continue
        path = _image_path(images_root / split_dir, images[image_id]["file_name"], where, issues, sample)
        if path is not None:
            builder.add(path, image_id, captions[image_id])
    return builder.out


def karpathy_key(entry: formats.KarpathyImage) -> int | str:
    """The id of a Karpathy entry: ``cocoid`` (COCO), else ``imgid``, else the file name."""
    return entry.get("cocoid", entry.get("imgid", entry["filename"]))


def karpathy_entries(data: formats.KarpathyFile, splits: set[str], where: str | Path) -> list[formats.KarpathyImage]:
    """The entries of ``splits`` in file order; an error naming the splits present when there are none."""
    entries = [e for e in data["images"] if e["split"] in splits]
    if not entries:
        found = sorted({e["split"] for e in data["images"]})
        raise UserError(f"{where}: no images in split(s) {sorted(splits)}; the file has splits {found}")
    return entries


def load_karpathy(
    path: Path, images_root: Path, splits: set[str], issues: SampleIssues, locate: Callable[[dict], str] | None = None
) -> RetrievalSplit:
    """A Karpathy ``dataset_*.json`` restricted to ``splits`` (e.g. {"train", "restval"}), in file order.

    ``locate(entry) -> relative image path`` overrides the default ``filepath/filename`` (used for COCO 2017). The
    entry is a dict with the keys of :class:`harness.data.formats.KarpathyImage` (``filename``, ``filepath``,
    ``cocoid``, ``imgid``, ``split``, ``sentences``).
    """
    data = formats.read(path, formats.KARPATHY, DATASET_HINT)
    where = str(path)
    builder, seen = _Builder(), set()
    for e in karpathy_entries(data, splits, where):
        key = karpathy_key(e)
        sample = f"image {key!r}"
        if key in seen:
            issues.bad(where, sample, "duplicate image")
            continue
        seen.add(key)
        sentences = [s["raw"] for s in e.get("sentences", [])]
        if not sentences:
            issues.bad(where, sample, "has no sentences")
            continue
        if locate is not None:
            rel = locate(e)
        else:
            rel = f"{e['filepath']}/{e['filename']}" if e.get("filepath") else e["filename"]
        image = _image_path(images_root, rel, where, issues, sample)
        if image is not None:
            builder.add(image, key, sentences)
    return builder.out


def lavis_captions(data: list[formats.LavisEntry], where: str | Path) -> bool:
    """Whether a LAVIS file is in the eval format (caption lists); an error when it is empty or mixes formats."""
    if not data:
        raise UserError(f"{where}: the LAVIS retrieval annotation file is empty; expected [{{'image', 'caption'}}]")
    eval_format = isinstance(data[0]["caption"], list)
    for n, e in enumerate(data):
        if isinstance(e["caption"], list) != eval_format:
            first, this = (
                ("a caption list", "a single caption") if eval_format else ("a single caption", "a caption list")
            )
            raise UserError(f"{where}: [{n}] has {this} but [0] has {first}; the file mixes the train and eval formats")
    return eval_format


def load_lavis(path: Path, images_root: Path, issues: SampleIssues) -> RetrievalSplit:
    """LAVIS/BLIP retrieval annotations, eval format (caption lists) or train format (one caption per entry)."""
    data = formats.read(path, formats.LAVIS, DATASET_HINT)
    where = str(path)
    eval_format = lavis_captions(data, where)
    grouped: dict[str, list[str]] = {}
    ids: dict[str, object] = {}
    for e in data:
        caption = e["caption"]
        if eval_format:
            if e["image"] in grouped:
                issues.bad(where, f"image {e['image']!r}", "duplicate image")
                continue
            grouped[e["image"]] = list(caption)
        else:
            grouped.setdefault(e["image"], []).append(caption)
        ids.setdefault(e["image"], e.get("image_id", e["image"]))
    builder = _Builder()
    for rel, captions in grouped.items():
        sample = f"image {rel!r}"
        if not captions:
            issues.bad(where, sample, "has no captions")
            continue
        image = _image_path(images_root, rel, where, issues, sample)
        if image is not None:
            builder.add(image, ids[rel], captions)
    return builder.out
