"""Image folders for single-label classification: ``ROOT/[SPLIT/]CLASS/*.{jpg,jpeg,png,bmp,webp,tif,tiff,dcm}``.

``.dcm`` files are DICOM, decoded by :mod:`harness.data.dicom` (needs the optional pydicom).

If ROOT has ``train``/``val``/``test`` sub-folders they are the splits. Otherwise ROOT holds the class folders and a
seeded stratified split (``split_ratios``, ``split_seed``) is drawn per class; the split is deterministic.
"""

from __future__ import annotations

import random
from pathlib import Path

from harness.data.records import ClassificationSplit
from harness.errors import UserError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".dcm"}
SPLITS = ("train", "val", "test")


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise UserError(f"{folder}: no class folders; expected {folder}/CLASS_NAME/*.jpg")
    out = {}
    for d in classes:
        out[d.name] = sorted(
            p for p in d.rglob("*") if p.suffix.lower() in EXTENSIONS and not _hidden(p, d) and not p.is_dir()
        )
    empty = [c for c, f in out.items() if not f]
    if empty:
        raise UserError(f"{folder}: class folder(s) {empty} contain no images ({', '.join(sorted(EXTENSIONS))})")
    return out


def _hidden(path: Path, top: Path) -> bool:
    """A hidden file or a file in a hidden folder below ``top`` (``.DS_Store``, macOS ``._x.jpg`` resource forks,
    ``.ipynb_checkpoints/``): never a sample. Other entries named like images are kept even when they are not
    regular files (a dangling link, a pipe), so that the image loader reports them as bad samples, never silently."""
    return any(part.startswith(".") for part in path.relative_to(top).parts)


def has_split_folders(root: Path) -> bool:
    return all((root / s).is_dir() for s in ("train",)) and any((root / s).is_dir() for s in ("val", "test"))


def load_imagefolder(root: Path, split: str, ratios: tuple[float, float, float], seed: int) -> ClassificationSplit:
    """One split of an image folder; class indices follow sorted class-folder names of the training split."""
    if not root.is_dir():
        raise UserError(f"{root}: image folder not found")
    if split not in SPLITS:
        raise UserError(f"image folder split must be one of {SPLITS}, got {split!r}")
    if has_split_folders(root):
        classes = sorted(_class_files(root / "train"))
        if not (root / split).is_dir():
            raise UserError(f"{root}: has split folders but no {split!r} folder")
        files = _class_files(root / split)
        unknown = sorted(set(files) - set(classes))
        if unknown:
            raise UserError(f"{root / split}: classes {unknown} do not exist in {root / 'train'}")
    else:
        present = [s for s in SPLITS if (root / s).is_dir()]
        if present:  # e.g. only train/: not a layout with split folders, and not class folders either
            raise UserError(
                f"{root}: has the split folder(s) {present} but a layout with split folders needs train/ and val/ or "
                "test/; add the missing split, or put the class folders directly in the root (split by split_ratios)"
            )
        by_class = _class_files(root)
        classes = sorted(by_class)
        files = {c: _stratified(paths, ratios, seed, c)[SPLITS.index(split)] for c, paths in by_class.items()}
    if len(classes) < 2:
        raise UserError(
            f"{root}: classification needs at least 2 classes, found {len(classes)} ({classes}); add a folder per class"
        )
    out = ClassificationSplit([], [], classes, [])
    for c in classes:
        for p in files.get(c, []):
            out.paths.append(p)
            out.labels.append(classes.index(c))
            out.ids.append(str(p.relative_to(root)))
    if not out.paths:
        raise UserError(f"{root}: split {split!r} is empty; adjust split_ratios or add images")
    return out


def _stratified(paths: list[Path], ratios: tuple[float, float, float], seed: int, cls: str) -> list[list[Path]]:
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise UserError(f"split_ratios must sum to 1, got {list(ratios)}")
    order = sorted(paths)
    random.Random(f"{seed}:{cls}").shuffle(order)
    n = len(order)
    n_train = round(ratios[0] * n)
    n_val = round(ratios[1] * n)
    return [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]
