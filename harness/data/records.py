"""Plain records that loaders return and tasks consume (no torch)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError


@dataclass
class ClassificationSplit:
    """Single-label images."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]
    ids: list[str]


@dataclass
class MultilabelSplit:
    """Multi-label images: targets (N, C) in {0, 1}; columns follow ascending category id."""

    paths: list[Path]
    targets: np.ndarray
    category_ids: list[int]
    category_names: list[str]
    ids: list[int]


@dataclass
class RetrievalSplit:
    """Images and captions; texts are numbered consecutively in file order."""

    paths: list[Path]
    image_ids: list[Any]
    texts: list[str]
    txt2img: list[int]
    img2txt: list[list[int]]


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


def read_json(path: Path, what: str) -> Any:
    """Read a JSON annotation file with a one-line error when it is missing or malformed."""
    if not path.is_file():
        raise UserError(f"{path}: {what} not found; check the dataset path and layout (see docs/datasets.md)")
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: {what} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc


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
