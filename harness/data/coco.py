"""COCO (2014/2017) and Flickr30k in their published layouts (see docs/datasets.md).

- ``instances_*.json`` -> multi-label targets; category ids map to columns 0..K-1 in ascending id order.
- ``captions_*.json`` -> images and captions for retrieval.
- Karpathy split files ``dataset_coco.json`` / ``dataset_flickr30k.json`` (splits train / restval / val / test).
- LAVIS/BLIP retrieval files: eval format ``[{"image", "caption": [..]}]`` and train format
  ``[{"image", "caption", "image_id"}]`` (``coco_karpathy_{split}.json``, ``flickr30k_{split}.json``).

Every loader validates while it reads and reports bad samples to a :class:`SampleIssues` (stop, or skip and count).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.data.images import safe_join
from harness.data.issues import SampleIssues
from harness.data.records import MultilabelSplit, RetrievalSplit, index_unique, read_json
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
    images, labels, categories = instance_labels(read_json(ann_path, "COCO instances file"), where, issues)
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


def multi_hot(ids: list[int], labels: dict[int, set[int]], n_classes: int) -> np.ndarray:
    """(len(ids), n_classes) uint8 targets; column j is the j-th category in ascending id order."""
    targets = np.zeros((len(ids), n_classes), dtype=np.uint8)
    for row, image_id in enumerate(ids):
        targets[row, sorted(labels[image_id])] = 1
    return targets


def instance_labels(data: dict, where: str, issues: SampleIssues) -> tuple[dict[int, dict], dict[int, set[int]], list]:
    """Validated images (by id), their label columns, and the categories sorted by id (column order)."""
    categories = sorted(data.get("categories") or [], key=lambda c: c["id"])
    if not categories or "annotations" not in data or "images" not in data:
        raise UserError(f"{where}: needs 'images', 'annotations' and 'categories'; is this an instances_*.json file?")
    col = {c["id"]: i for i, c in enumerate(categories)}
    images = index_unique(data["images"], "id", "image id", "duplicate image id", where, issues)
    labels: dict[int, set[int]] = {i: set() for i in images}
    for ann in data["annotations"]:
        sample = f"annotation id {ann.get('id')}"
        if "iscrowd" not in ann:
            issues.bad(where, sample, "has no 'iscrowd' field; real COCO files always have it (add \"iscrowd\": 0)")
        elif ann.get("image_id") not in images:
            issues.bad(where, sample, f"refers to unknown image id {ann.get('image_id')}")
        elif ann.get("category_id") not in col:
            issues.bad(where, sample, f"has unknown category id {ann.get('category_id')}")
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
    data = read_json(ann_path, "COCO captions file")
    where = str(ann_path)
    if "annotations" not in data or "images" not in data:
        raise UserError(f"{where}: needs 'images' and 'annotations'; is this a captions_*.json file?")
    images = index_unique(data["images"], "id", "image id", "duplicate image id", where, issues)
    captions: dict[int, list[str]] = {i: [] for i in images}
    for ann in data["annotations"]:
        if ann.get("image_id") not in images:
            issues.bad(where, f"caption id {ann.get('id')}", f"caption of unknown image id {ann.get('image_id')}")
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


def load_karpathy(
    path: Path, images_root: Path, splits: set[str], issues: SampleIssues, locate: Callable[[dict], str] | None = None
) -> RetrievalSplit:
    """A Karpathy ``dataset_*.json`` restricted to ``splits`` (e.g. {"train", "restval"}), in file order.

    ``locate(entry) -> relative image path`` overrides the default ``filepath/filename`` (used for COCO 2017).
    """
    data = read_json(path, "Karpathy split file")
    where = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise UserError(f"{where}: expected {{'images': [...]}} (Karpathy format)")
    entries = [e for e in data["images"] if e.get("split") in splits]
    if not entries:
        found = sorted({str(e.get("split")) for e in data["images"]})
        raise UserError(f"{where}: no images in split(s) {sorted(splits)}; the file has splits {found}")
    builder, seen = _Builder(), set()
    for e in entries:
        key = e.get("cocoid", e.get("imgid", e.get("filename")))
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


def load_lavis(path: Path, images_root: Path, issues: SampleIssues) -> RetrievalSplit:
    """LAVIS/BLIP retrieval annotations, eval format (caption lists) or train format (one caption per entry)."""
    data = read_json(path, "LAVIS retrieval annotation file")
    where = str(path)
    if not isinstance(data, list) or not data or not all(isinstance(e, dict) and "image" in e for e in data):
        raise UserError(f"{where}: expected a list of {{'image', 'caption'}} entries (LAVIS retrieval format)")
    grouped: dict[str, list[str]] = {}
    ids: dict[str, object] = {}
    eval_format = isinstance(data[0].get("caption"), list)
    for n, e in enumerate(data):
        caption = e.get("caption")
        if eval_format:
            if not isinstance(caption, list):
                raise UserError(f"{where}: entry {n} has a single caption; the file mixes train and eval formats")
            if e["image"] in grouped:
                issues.bad(where, f"image {e['image']!r}", "duplicate image")
                continue
            grouped[e["image"]] = [str(c) for c in caption]
        else:
            if not isinstance(caption, str):
                raise UserError(f"{where}: entry {n} has a caption list; the file mixes train and eval formats")
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
