"""Plain records that loaders return and tasks consume (no torch)."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def _keep(bad: set[int], n: int) -> list[int]:
    return [i for i in range(n) if i not in bad]


@dataclass
class ClassificationSplit:
    """Single-label images."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]
    ids: list[str]

    def without_images(self, bad: set[int]) -> tuple[ClassificationSplit, list[int]]:
        """Drop images (by row); returns the new split and, for each kept image, its original row."""
        rows = _keep(bad, len(self.paths))
        pick = lambda xs: [xs[i] for i in rows]  # noqa: E731
        return ClassificationSplit(pick(self.paths), pick(self.labels), self.classes, pick(self.ids)), rows


@dataclass
class MultilabelSplit:
    """Multi-label images: targets (N, C) in {0, 1}; columns follow ascending category id."""

    paths: list[Path]
    targets: np.ndarray
    category_ids: list[int]
    category_names: list[str]
    ids: list[int]

    def without_images(self, bad: set[int]) -> tuple[MultilabelSplit, list[int]]:
        rows = _keep(bad, len(self.paths))
        split = MultilabelSplit(
            [self.paths[i] for i in rows],
            self.targets[rows],
            self.category_ids,
            self.category_names,
            [self.ids[i] for i in rows],
        )
        return split, rows


@dataclass
class DetectionSplit:
    """Images with their boxes. ``annotations[i]`` are image ``i``'s COCO annotations (``bbox`` [x, y, w, h] in the
    image's own pixels, ``category_id``, ``iscrowd``, ``area``, ``id``), kept as COCOeval reads them; ``sizes[i]`` is
    its (width, height). Category ids map to columns 0..K-1 in ascending id order."""

    paths: list[Path]
    ids: list[int]
    sizes: list[tuple[int, int]]
    annotations: list[list[dict]]
    category_ids: list[int]
    category_names: list[str]

    def without_images(self, bad: set[int]) -> tuple[DetectionSplit, list[int]]:
        rows = _keep(bad, len(self.paths))
        pick = lambda xs: [xs[i] for i in rows]  # noqa: E731
        split = DetectionSplit(
            pick(self.paths), pick(self.ids), pick(self.sizes), pick(self.annotations), self.category_ids,
            self.category_names,
        )  # fmt: skip
        return split, rows

    def coco_ground_truth(self) -> dict:
        """The split as a COCO instances dict (every image, empty ones included, and every category), for COCOeval."""
        return {
            "images": [{"id": i, "width": w, "height": h} for i, (w, h) in zip(self.ids, self.sizes)],
            "annotations": [a for anns in self.annotations for a in anns],
            "categories": [{"id": c, "name": n} for c, n in zip(self.category_ids, self.category_names)],
        }


@dataclass
class RetrievalSplit:
    """Images and captions; texts are numbered consecutively in file order."""

    paths: list[Path]
    image_ids: list[Any]
    texts: list[str]
    txt2img: list[int]
    img2txt: list[list[int]]

    def without_images(self, bad: set[int]) -> tuple[RetrievalSplit, list[int]]:
        """Drop images and their captions; texts are renumbered consecutively in their original order."""
        rows = _keep(bad, len(self.paths))
        new_row = {old: new for new, old in enumerate(rows)}
        out = RetrievalSplit(
            [self.paths[i] for i in rows], [self.image_ids[i] for i in rows], [], [], [[] for _ in rows]
        )
        for text, img in zip(self.texts, self.txt2img):
            if img in new_row:
                out.img2txt[new_row[img]].append(len(out.texts))
                out.txt2img.append(new_row[img])
                out.texts.append(text)
        return out, rows


@dataclass
class VqaSplit:
    """Questions over images. ``answers`` is None for splits without annotations (test-dev)."""

    paths: list[Path]  # unique images
    image_ids: list[int]
    question_ids: list[int]
    image_index: list[int]  # question -> row in paths
    questions: list[str]
    answers: list[list[str]] | None
    answer_types: list[str] | None
    question_types: list[str] | None
    mc_answers: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def without_images(self, bad: set[int]) -> tuple[VqaSplit, list[int]]:
        """Drop images and every question about them."""
        rows = _keep(bad, len(self.paths))
        if not bad:
            return self, rows
        new_row = {old: new for new, old in enumerate(rows)}
        keep = [q for q, img in enumerate(self.image_index) if img in new_row]
        pick = lambda xs: None if xs is None else [xs[q] for q in keep]  # noqa: E731
        split = VqaSplit(
            [self.paths[i] for i in rows],
            [self.image_ids[i] for i in rows],
            pick(self.question_ids),
            [new_row[self.image_index[q]] for q in keep],
            pick(self.questions),
            pick(self.answers),
            pick(self.answer_types),
            pick(self.question_types),
            pick(self.mc_answers),
            self.extra,
        )
        return split, rows


DATASET_HINT = "check the dataset path and layout (see docs/datasets.md)"


def read_json(path: Path, what: str, hint: str = DATASET_HINT) -> Any:
    """Read any JSON file with a one-line error when it is missing, unreadable, not UTF-8, malformed or holds a
    non-finite number. Files of a known format are read with :func:`harness.data.formats.read` instead."""
    from harness.data.formats import Format, read

    return read(path, Format(what, Any, "JSON"), hint)


def index_unique(
    entries: list, key: str | Callable[[Any], Any], noun: str, reason: str, where: str | Path, issues: Any
) -> dict[Any, Any]:
    """Entries by ``entry[key]`` (or ``key(entry)``); a repeated key is a bad sample ``"<noun> <key value>: <reason>"``
    reported to ``issues`` (the first entry is kept)."""
    get = key if callable(key) else operator.itemgetter(key)
    out: dict[Any, Any] = {}
    for entry in entries:
        k = get(entry)
        if k in out:
            issues.bad(where, f"{noun} {k}", reason)
            continue
        out[k] = entry
    return out


def first_with(candidates: list[Path], marker: str) -> Path | None:
    """The first folder among ``candidates`` that contains the sub-folder ``marker``."""
    return next((c for c in candidates if (c / marker).is_dir()), None)


def file_digest(paths: list[Path], names: list[str] | None = None) -> str:
    """Stable hash of annotation file contents plus a list of image names (order-sensitive)."""
    h = hashlib.blake2b(digest_size=16)
    for p in paths:
        h.update(p.name.encode())
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    for n in names or []:
        h.update(n.encode())
        h.update(b"\0")
    return h.hexdigest()
