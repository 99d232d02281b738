"""COCO (2014/2017) and Flickr30k in their published layouts.

COCO root::

    ROOT/annotations/instances_{train,val}{YEAR}.json   multi-label targets (80 categories, ids 1..90 with gaps)
    ROOT/annotations/captions_{train,val}{YEAR}.json    image-caption pairs
    ROOT/dataset_coco.json                              Karpathy split file (or ROOT/annotations/dataset_coco.json)
    ROOT/{train,val}{YEAR}/...jpg                       images (or under the dataset's ``images`` folder)

Flickr30k root::

    ROOT/dataset_flickr30k.json                         Karpathy split file (1k test split)
    ROOT/flickr30k-images/*.jpg                         images (or under ``images``)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.images import safe_join
from harness.data.records import MultilabelSplit, RetrievalSplit, read_json
from harness.errors import UserError


def find_file(root: Path, names: list[str], what: str) -> Path:
    """First existing file among ``names`` (relative to root); a clear error listing where it looked."""
    for name in names:
        if (root / name).is_file():
            return root / name
    tried = ", ".join(str(root / n) for n in names)
    raise UserError(f"{what} not found; looked for {tried}. See docs/datasets.md for the expected layout")


def load_instances(ann_path: Path, images_root: Path, split_dir: str) -> MultilabelSplit:
    """``instances_*.json`` -> multi-label targets; category ids map to 0..K-1 in ascending id order."""
    data = read_json(ann_path, "COCO instances file")
    where = str(ann_path)
    categories = sorted(data.get("categories", []), key=lambda c: c["id"])
    if not categories:
        raise UserError(f"{where}: no 'categories'; is this an instances_*.json file?")
    col = {c["id"]: i for i, c in enumerate(categories)}
    images = data.get("images", [])
    seen: set[int] = set()
    for im in images:
        if im["id"] in seen:
            raise UserError(f"{where}: duplicate image id {im['id']}; the annotation file is corrupt")
        seen.add(im["id"])
    images = sorted(images, key=lambda im: im["id"])
    row = {im["id"]: i for i, im in enumerate(images)}
    targets = np.zeros((len(images), len(categories)), dtype=np.uint8)
    for ann in data.get("annotations", []):
        if "iscrowd" not in ann:
            raise UserError(
                f"{where}: annotation {ann.get('id')} has no 'iscrowd' field; real COCO files always have it "
                '(add "iscrowd": 0 to each annotation)'
            )
        if ann["image_id"] not in row:
            raise UserError(f"{where}: annotation {ann.get('id')} refers to unknown image id {ann['image_id']}")
        if ann["category_id"] not in col:
            raise UserError(f"{where}: annotation {ann.get('id')} has unknown category id {ann['category_id']}")
        targets[row[ann["image_id"]], col[ann["category_id"]]] = 1
    paths = [safe_join(images_root / split_dir, im["file_name"], where) for im in images]
    return MultilabelSplit(
        paths=paths,
        targets=targets,
        category_ids=[c["id"] for c in categories],
        category_names=[c["name"] for c in categories],
        ids=[im["id"] for im in images],
    )


def load_captions(ann_path: Path, images_root: Path, split_dir: str) -> RetrievalSplit:
    """``captions_*.json`` -> images (ascending id) and their captions (file order)."""
    data = read_json(ann_path, "COCO captions file")
    where = str(ann_path)
    images = sorted(data.get("images", []), key=lambda im: im["id"])
    row = {im["id"]: i for i, im in enumerate(images)}
    if len(row) != len(images):
        raise UserError(f"{where}: duplicate image ids in 'images'")
    texts, txt2img = [], []
    img2txt: list[list[int]] = [[] for _ in images]
    for ann in data.get("annotations", []):
        if ann["image_id"] not in row:
            raise UserError(f"{where}: caption {ann.get('id')} refers to unknown image id {ann['image_id']}")
        i = row[ann["image_id"]]
        img2txt[i].append(len(texts))
        txt2img.append(i)
        texts.append(ann["caption"])
    paths = [safe_join(images_root / split_dir, im["file_name"], where) for im in images]
    return RetrievalSplit(paths, [im["id"] for im in images], texts, txt2img, img2txt)


def load_karpathy(path: Path, images_root: Path, splits: set[str], default_dir: str = "") -> RetrievalSplit:
    """A Karpathy ``dataset_*.json`` restricted to ``splits`` (e.g. {"train", "restval"}), in file order."""
    data = read_json(path, "Karpathy split file")
    where = str(path)
    entries = [e for e in data.get("images", []) if e.get("split") in splits]
    if not entries:
        found = sorted({e.get("split") for e in data.get("images", [])})
        raise UserError(f"{where}: no images in split(s) {sorted(splits)}; the file has splits {found}")
    paths, ids, texts, txt2img, img2txt = [], [], [], [], []
    seen: set = set()
    for i, e in enumerate(entries):
        key = e.get("cocoid", e.get("imgid", e["filename"]))
        if key in seen:
            raise UserError(f"{where}: duplicate image {key!r} in split(s) {sorted(splits)}")
        seen.add(key)
        rel = f"{e['filepath']}/{e['filename']}" if e.get("filepath") else f"{default_dir}/{e['filename']}"
        paths.append(safe_join(images_root, rel.lstrip("/"), where))
        ids.append(key)
        img2txt.append([])
        for s in e.get("sentences", []):
            img2txt[i].append(len(texts))
            txt2img.append(i)
            texts.append(s["raw"])
    return RetrievalSplit(paths, ids, texts, txt2img, img2txt)
