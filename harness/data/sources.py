"""Dataset kinds -> loaders: which task types each kind serves, default splits, roots and fingerprints.

A suite names a dataset by ``kind`` and ``path``. ``path: '@synthetic'`` is the built-in synthetic data (generated on
first use into the cache); any other path is a real dataset on disk. Relative paths resolve against ``--data-root``,
else ``$XMBENCH_DATA``, else the current directory. Switching synthetic -> real is a change of ``path`` only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data import coco
from harness.data.issues import SampleIssues
from harness.data.kinds import DATASET_KINDS, DatasetKind
from harness.data.records import file_digest, first_with
from harness.errors import UserError, expand_user
from harness.suite.schema import SYNTHETIC, SyntheticSpec


def resolve_data_root(data_root: str | Path | None) -> Path:
    """--data-root, else $XMBENCH_DATA, else the current directory."""
    if data_root is not None and str(data_root):
        return expand_user(data_root, "--data-root")
    env = os.environ.get("XMBENCH_DATA", "").strip()
    return expand_user(env, "$XMBENCH_DATA") if env else Path(".")


def dataset_path(name: str, spec, data_root: Path, synthetic: SyntheticSpec, generate: bool = True) -> Path | None:
    """Root folder of a dataset; the synthetic one is generated on first use (None if ``generate`` is False)."""
    if spec.path == SYNTHETIC:
        if not generate:
            return None
        from harness.data.synthetic import ensure_synthetic

        root = ensure_synthetic(images=synthetic.images, seed=synthetic.seed, size=synthetic.size)
        return root / DATASET_KINDS.get(spec.kind).synthetic_subdir
    path = expand_user(spec.path, f"datasets.{name}.path")
    if not path.is_absolute():
        path = data_root / path
    if not path.exists():
        raise UserError(
            f"datasets.{name}.path: {spec.path!r} does not exist (resolved to {path}); fix the path, pass --data-root, "
            f"or set XMBENCH_DATA (see docs/datasets.md for where to get {spec.kind} and its layout)"
        )
    if not path.is_dir():
        raise UserError(f"datasets.{name}.path: {str(path)!r} is a file; give the dataset's root folder")
    return path


@dataclass(frozen=True)
class Splits:
    """The three splits of a task: train, val and test. ``val`` None means a held-out part of the train split:
    ``val_fraction`` of its images (whole images, so no caption or question of a val image is trained on), chosen
    by a hash of each image's path relative to the dataset root, so the carve-out is the same on every machine and
    for every order of the annotation file."""

    train: str
    val: str | None
    test: str
    val_fraction: float | None = None

    @property
    def val_label(self) -> str:
        if self.val is not None:
            return self.val
        return f"{self.train}[held-out {100 * (self.val_fraction or 0):g}%]"

    @property
    def names(self) -> tuple[str, str, str]:
        """(train, val, test) as shown in specs and reports."""
        return self.train, self.val_label, self.test

    @property
    def files(self) -> tuple[str, ...]:
        """The dataset splits that are read (a held-out val reads nothing beyond train)."""
        return tuple(dict.fromkeys(s for s in (self.train, self.val, self.test) if s is not None))


class DataSource:
    """An opened dataset: its kind (layout), root, bad-sample accounting, loaded splits and fingerprint.

    Loaded splits are memoised, so the tokenizer corpus and the task preparation read each file once.
    """

    def __init__(self, name: str, spec: Any, root: Path) -> None:
        self.name, self.spec, self.root = name, spec, root
        self.issues = SampleIssues(name, spec.on_bad_sample)
        self.files: set[Path] = set()  # annotation files read by the load in progress
        self._loaded: dict[tuple[str, str], tuple[Any, set[Path]]] = {}
        self.layout: DatasetKind = DATASET_KINDS.get(spec.kind)(self)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def images_setting(self) -> Path | None:
        """The dataset's ``images`` folder, resolved against its root; None when not set."""
        images = getattr(self.spec, "images", None)
        if not images:
            return None
        path = expand_user(images, f"datasets.{self.name}.images")
        return path if path.is_absolute() else self.root / path

    def images_root(self, marker: str) -> Path:
        """The folder that holds ``marker`` (e.g. ``val2014`` or ``flickr30k-images``): the dataset's ``images``,
        else ROOT, else ROOT/images."""
        setting = self.images_setting()
        candidates = [setting] if setting is not None else [self.root, self.root / "images"]
        found = first_with(candidates, marker)
        if found is not None:
            return found
        looked = ", ".join(str(c / marker) for c in candidates)
        raise UserError(
            f"datasets.{self.name}: image folder {marker}/ not found (looked for {looked}); set the dataset's "
            f"'images' to the folder that contains {marker}/ (see docs/datasets.md)"
        )

    def splits(
        self,
        task_type: str,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        val_fraction: float | None = None,
    ) -> Splits:
        """The task's splits: what the suite names, else the kind's defaults (see :class:`Splits`)."""
        d_train, _, d_test = self.layout.default_splits(task_type)
        train, test = train or d_train, test or d_test
        if val_fraction is not None:
            return Splits(train, None, test, val_fraction)
        explicit = val is not None
        val = val or self.layout.default_val(task_type, train)
        if val is None:
            return Splits(train, None, test, self.layout.heldout_fraction)
        if val in (train, test):
            other = "train_split" if val == train else "test_split"
            how = "is" if explicit else "defaults to"
            raise UserError(
                f"datasets.{self.name}: the task's val_split {how} {val!r}, the same as its {other}, so checkpoints "
                "would be selected on examples it trains on or is scored on; name another val_split, or set "
                "val_fraction to hold out part of the train split"
            )
        return Splits(train, val, test)

    def records(self, task_type: str, splits: Splits) -> tuple[Any, Any, Any]:
        """(train, val, test) records; a held-out val is carved out of the train split."""
        train = self.load(task_type, splits.train)
        if splits.val is None:
            train, val = self.carve(train, splits.val_fraction or 0.0, splits.train)
        else:
            val = self.load(task_type, splits.val)
        return train, val, self.load(task_type, splits.test)

    def carve(self, records: Any, fraction: float, split: str) -> tuple[Any, Any]:
        """Split ``records`` into (rest, held out) by whole images: the ``round(fraction * n)`` images (at least one)
        with the smallest hash of their relative path are held out."""
        n = len(records.paths)
        n_val = max(1, round(fraction * n))
        if n_val >= n:
            raise UserError(
                f"datasets.{self.name}: split {split!r} has {n} image(s): too few to hold out {100 * fraction:g}% "
                "as the val split; lower the task's val_fraction or name a val_split"
            )
        keys = [hashlib.blake2b(_relative(p, self.root).encode(), digest_size=8).digest() for p in records.paths]
        order = sorted(range(n), key=lambda i: (keys[i], i))
        held = set(order[:n_val])
        rest, _ = records.without_images(held)
        val, _ = records.without_images(set(range(n)) - held)
        return rest, val

    def load(self, task_type: str, split: str):
        """Records for one split of one task type (see :mod:`harness.data.records`)."""
        key = (task_type, split)
        if key not in self._loaded:
            self.files = set()
            records = self.layout.load(task_type, split)
            if not len(records.paths):
                files = ", ".join(sorted(str(p) for p in self.files)) or str(self.root)
                skipped = f" after skipping {len(self.issues.skipped)} bad sample(s)" if self.issues.skipped else ""
                raise UserError(
                    f"{files}: split {split!r} of dataset {self.name!r} has no samples{skipped}; check the file, or "
                    "choose another split (the task's train_split / val_split / test_split)"
                )
            self._loaded[key] = (records, self.files)
        return self._loaded[key][0]

    def find(self, names: list[str], what: str) -> Path:
        """The first of ``names`` under the root (recorded as read, for the fingerprint); a clear error if none."""
        path = coco.find_file(self.root, names, f"datasets.{self.name}: {what}")
        self.files.add(path)
        return path

    def check_layout(self, task_type: str, splits: Splits) -> None:
        """Files and folders the splits need are present (``xmbench validate``; nothing is parsed)."""
        self.layout.check_layout(task_type, splits.files)

    def fingerprint(self, task_type: str, splits: Splits) -> str:
        """Hash of the annotation files read for these splits plus their image lists (cheap: no image bytes), and
        of an image folder's ``dicom:`` settings when set (they change the decoded pixels, so the frozen-encoder
        feature cache, keyed by this fingerprint, must not reuse features of another window)."""
        files: set[Path] = set()
        names: list[str] = []
        for split in splits.files:
            rec = self.load(task_type, split)
            files |= self._loaded[(task_type, split)][1]
            names += [_relative(p, self.root) for p in rec.paths]
        digest = file_digest(sorted(files, key=lambda p: (p.name, str(p))), names)
        dicom = getattr(self.spec, "dicom", None)
        if dicom is None:  # unchanged for every dataset without DICOM settings
            return digest
        settings = json.dumps(dicom.model_dump(mode="json"), sort_keys=True)
        return hashlib.blake2b(f"{digest}\0dicom:{settings}".encode(), digest_size=16).hexdigest()


def _relative(path: Path, root: Path) -> str:
    """Image names relative to the dataset root, so a moved dataset keeps its fingerprint."""
    for base in (root, root.resolve()):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)
