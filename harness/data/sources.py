"""Dataset kinds -> loaders: which task types each kind serves, default splits, roots and fingerprints.

A suite names a dataset by ``kind`` and ``path``. ``path: '@synthetic'`` is the built-in synthetic data (generated on
first use into the cache); any other path is a real dataset on disk. Relative paths resolve against ``--data-root``,
else ``$XMBENCH_DATA``, else the current directory. Switching synthetic -> real is a change of ``path`` only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.data import coco, imagefolder, vqa
from harness.data.records import file_digest
from harness.errors import UserError
from harness.suite.schema import SYNTHETIC, SyntheticSpec

# kind -> task type -> (default train split, default eval split)
DEFAULT_SPLITS: dict[str, dict[str, tuple[str, str]]] = {
    "coco": {"multilabel": ("train{year}", "val{year}"), "retrieval": ("train", "test")},
    "flickr30k": {"retrieval": ("train", "test")},
    "vqa2": {"vqa": ("train2014", "val2014")},
    "imagefolder": {"classification": ("train", "test")},
}
KARPATHY_SPLITS = ("train", "restval", "val", "test")


def resolve_data_root(data_root: str | Path | None) -> Path:
    """--data-root, else $XMBENCH_DATA, else the current directory."""
    return Path(data_root or os.environ.get("XMBENCH_DATA") or ".").expanduser()


def dataset_path(name: str, spec, data_root: Path, synthetic: SyntheticSpec, generate: bool = True) -> Path | None:
    """Root folder of a dataset; the synthetic one is generated on first use (None if ``generate`` is False)."""
    if spec.path == SYNTHETIC:
        if not generate:
            return None
        from harness.data.synthetic import ensure_synthetic

        root = ensure_synthetic(images=synthetic.images, seed=synthetic.seed, size=synthetic.size)
        return root / "imagefolder" if spec.kind == "imagefolder" else root
    path = Path(spec.path).expanduser()
    if not path.is_absolute():
        path = data_root / path
    if not path.exists():
        raise UserError(
            f"datasets.{name}.path: {spec.path!r} does not exist (resolved to {path}); fix the path, pass --data-root, "
            f"or set XMBENCH_DATA (see docs/datasets.md for where to get {spec.kind} and its layout)"
        )
    return path


@dataclass
class DataSource:
    """An opened dataset: kind, root, images root, and loaders per task type."""

    name: str
    spec: object
    root: Path

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def images_root(self) -> Path:
        images = getattr(self.spec, "images", None)
        if not images:
            return self.root
        path = Path(images).expanduser()
        return path if path.is_absolute() else self.root / path

    def splits(self, task_type: str, train: str | None, eval_: str | None) -> tuple[str, str]:
        default = DEFAULT_SPLITS[self.kind][task_type]
        year = getattr(self.spec, "year", 2014)
        return (train or default[0].format(year=year), eval_ or default[1].format(year=year))

    def load(self, task_type: str, split: str):
        """Records for one split of one task type (see :mod:`harness.data.records`)."""
        kind = self.kind
        if kind == "imagefolder":
            return imagefolder.load_imagefolder(self.root, split, self.spec.split_ratios, self.spec.split_seed)
        if kind == "vqa2":
            return vqa.load_vqa(self.root, self.images_root, split)
        if kind == "coco" and task_type == "multilabel":
            ann = coco.find_file(
                self.root,
                [f"annotations/instances_{split}.json", f"instances_{split}.json"],
                f"datasets.{self.name}: COCO instances_{split}.json",
            )
            return coco.load_instances(ann, self.images_root, split)
        if split in KARPATHY_SPLITS:
            fname = "dataset_coco.json" if kind == "coco" else "dataset_flickr30k.json"
            path = coco.find_file(self.root, [fname, f"annotations/{fname}"], f"datasets.{self.name}: {fname}")
            wanted = {split, "restval"} if split == "train" and self.spec.fold_restval else {split}
            default_dir = "" if kind == "coco" else "flickr30k-images"
            return coco.load_karpathy(path, self.images_root, wanted, default_dir)
        if kind == "coco":
            ann = coco.find_file(
                self.root,
                [f"annotations/captions_{split}.json", f"captions_{split}.json"],
                f"datasets.{self.name}: COCO captions_{split}.json",
            )
            return coco.load_captions(ann, self.images_root, split)
        raise UserError(f"datasets.{self.name}: split {split!r} is not one of {list(KARPATHY_SPLITS)}")

    def fingerprint(self, records) -> str:
        """Hash of the annotation files this dataset reads plus the image list of the loaded records."""
        files = sorted(p for p in self.root.glob("*.json")) + sorted(self.root.glob("annotations/*.json"))
        names = [
            str(p.relative_to(self.images_root)) if p.is_relative_to(self.images_root) else str(p)
            for p in records.paths
        ]
        return file_digest(files, names)


def supported(kind: str, task_type: str) -> bool:
    return task_type in DEFAULT_SPLITS.get(kind, {})


def tasks_for(kind: str) -> list[str]:
    return sorted(DEFAULT_SPLITS.get(kind, {}))
