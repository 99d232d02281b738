"""Dataset kinds -> loaders: which task types each kind serves, default splits, roots and fingerprints.

A suite names a dataset by ``kind`` and ``path``. ``path: '@synthetic'`` is the built-in synthetic data (generated on
first use into the cache); any other path is a real dataset on disk. Relative paths resolve against ``--data-root``,
else ``$XMBENCH_DATA``, else the current directory. Switching synthetic -> real is a change of ``path`` only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.data import coco, imagefolder, vqa
from harness.data.issues import SampleIssues
from harness.data.records import file_digest, first_with
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
KARPATHY_FILE = {"coco": "dataset_coco.json", "flickr30k": "dataset_flickr30k.json"}
LAVIS_FILE = {"coco": "coco_karpathy_{split}.json", "flickr30k": "flickr30k_{split}.json"}
SYNTHETIC_SUBDIR = {"imagefolder": "imagefolder", "flickr30k": "flickr30k"}


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
        return root / SYNTHETIC_SUBDIR.get(spec.kind, "")
    path = Path(spec.path).expanduser()
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


class DataSource:
    """An opened dataset: kind, root, loaders per task type, bad-sample accounting and a fingerprint.

    Loaded splits are memoised, so the tokenizer corpus and the task preparation read each file once.
    """

    def __init__(self, name: str, spec: Any, root: Path) -> None:
        self.name, self.spec, self.root = name, spec, root
        self.issues = SampleIssues(name, spec.on_bad_sample)
        self.files: set[Path] = set()  # annotation files read by the load in progress
        self._loaded: dict[tuple[str, str], tuple[Any, set[Path]]] = {}

    @property
    def kind(self) -> str:
        return self.spec.kind

    def _images_setting(self) -> Path | None:
        images = getattr(self.spec, "images", None)
        if not images:
            return None
        path = Path(images).expanduser()
        return path if path.is_absolute() else self.root / path

    def images_root(self, marker: str) -> Path:
        """The folder that holds ``marker`` (e.g. ``val2014`` or ``flickr30k-images``): the dataset's ``images``,
        else ROOT, else ROOT/images."""
        setting = self._images_setting()
        candidates = [setting] if setting is not None else [self.root, self.root / "images"]
        found = first_with(candidates, marker)
        if found is not None:
            return found
        looked = ", ".join(str(c / marker) for c in candidates)
        raise UserError(
            f"datasets.{self.name}: image folder {marker}/ not found (looked for {looked}); set the dataset's "
            f"'images' to the folder that contains {marker}/ (see docs/datasets.md)"
        )

    def splits(self, task_type: str, train: str | None, eval_: str | None) -> tuple[str, str]:
        default = DEFAULT_SPLITS[self.kind][task_type]
        year = getattr(self.spec, "year", 2014)
        return (train or default[0].format(year=year), eval_ or default[1].format(year=year))

    def load(self, task_type: str, split: str):
        """Records for one split of one task type (see :mod:`harness.data.records`)."""
        key = (task_type, split)
        if key not in self._loaded:
            self.files = set()
            self._loaded[key] = (self._load(task_type, split), self.files)
        return self._loaded[key][0]

    def _find(self, names: list[str], what: str) -> Path:
        path = coco.find_file(self.root, names, f"datasets.{self.name}: {what}")
        self.files.add(path)
        return path

    def _load(self, task_type: str, split: str):
        kind, issues = self.kind, self.issues
        if kind == "imagefolder":
            return imagefolder.load_imagefolder(self.root, split, self.spec.split_ratios, self.spec.split_seed)
        if kind == "vqa2":
            q, a = vqa.vqa_files(self.root, split)
            self.files.update(p for p in (q, a) if p is not None)
            images = vqa.find_images_root(self.root, self._images_setting(), split)
            return vqa.load_vqa(self.root, images, split, issues)
        if kind == "coco" and task_type == "multilabel":
            ann = self._find(
                [f"annotations/instances_{split}.json", f"instances_{split}.json"], f"instances_{split}.json"
            )
            return coco.load_instances(ann, self.images_root(split), split, issues)
        if split in KARPATHY_SPLITS:
            return self._load_retrieval_split(split)
        if kind == "coco":
            ann = self._find([f"annotations/captions_{split}.json", f"captions_{split}.json"], f"captions_{split}.json")
            return coco.load_captions(ann, self.images_root(split), split, issues)
        raise UserError(f"datasets.{self.name}: split {split!r} is not one of {list(KARPATHY_SPLITS)}")

    def _load_retrieval_split(self, split: str):
        """Karpathy split file if present, else the LAVIS/BLIP files (whose train split already includes restval)."""
        kind = self.kind
        karpathy = KARPATHY_FILE[kind]
        lavis = LAVIS_FILE[kind].format(split=split)
        candidates = [karpathy, f"annotations/{karpathy}"]
        found = next((self.root / c for c in candidates if (self.root / c).is_file()), None)
        if found is None and split != "restval":
            lavis_path = next(
                (self.root / c for c in (lavis, f"annotations/{lavis}") if (self.root / c).is_file()), None
            )
            if lavis_path is not None:
                self.files.add(lavis_path)
                marker = "flickr30k-images" if kind == "flickr30k" else ("val2014" if split != "train" else "train2014")
                return coco.load_lavis(lavis_path, self.images_root(marker), self.issues)
        if found is None:
            tried = ", ".join(str(self.root / c) for c in [*candidates, lavis, f"annotations/{lavis}"])
            raise UserError(
                f"datasets.{self.name}: retrieval split {split!r} needs {karpathy} (Karpathy) or {lavis} (LAVIS); "
                f"looked for {tried}. See docs/datasets.md"
            )
        self.files.add(found)
        wanted = {split, "restval"} if split == "train" and self.spec.fold_restval else {split}
        if kind == "flickr30k":
            return coco.load_karpathy(
                found,
                self.images_root("flickr30k-images"),
                wanted,
                self.issues,
                locate=lambda e: f"flickr30k-images/{e['filename']}",
            )
        if getattr(self.spec, "year", 2014) == 2017:
            root = self.images_root("val2017")
            return coco.load_karpathy(found, root, wanted, self.issues, locate=_coco2017_locator(root))
        return coco.load_karpathy(found, self.images_root("val2014"), wanted, self.issues)

    def fingerprint(self, task_type: str, splits: tuple[str, ...]) -> str:
        """Hash of the annotation files read for these splits plus their image lists (cheap: no image bytes)."""
        files: set[Path] = set()
        names: list[str] = []
        for split in splits:
            rec = self.load(task_type, split)
            files |= self._loaded[(task_type, split)][1]
            names += [_relative(p, self.root) for p in rec.paths]
        return file_digest(sorted(files), names)


def _relative(path: Path, root: Path) -> str:
    """Image names relative to the dataset root, so a moved dataset keeps its fingerprint."""
    for base in (root, root.resolve()):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def _coco2017_locator(root: Path):
    """Karpathy entries name 2014 files; the same images live in train2017/ or val2017/ as {cocoid:012d}.jpg."""
    in_val = {p.name for p in (root / "val2017").glob("*.jpg")}

    def locate(entry: dict) -> str:
        name = f"{int(entry['cocoid']):012d}.jpg"
        return f"{'val2017' if name in in_val else 'train2017'}/{name}"

    return locate


def supported(kind: str, task_type: str) -> bool:
    return task_type in DEFAULT_SPLITS.get(kind, {})


def tasks_for(kind: str) -> list[str]:
    return sorted(DEFAULT_SPLITS.get(kind, {}))
