"""Dataset kinds: one registered class per published layout (``kind:`` in a suite).

A kind knows which task types it serves and their default splits, how to load one split into records
(:mod:`harness.data.records`), and how to check its layout on disk without parsing it (``xmbench validate``).
Loading goes through the kind's :class:`~harness.data.sources.DataSource`, which owns the bad-sample policy, the
memo of loaded splits and the dataset fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.data import coco, imagefolder, vqa
from harness.errors import UserError
from harness.registry import Registry

if TYPE_CHECKING:
    from harness.data.sources import DataSource

KARPATHY_SPLITS = ("train", "restval", "val", "test")


class DatasetKind:
    """Base class of a dataset kind.

    Attributes:
        name: the suite's ``kind``.
        splits: task type -> default (train, val, test) splits; ``{year}`` is filled from the dataset spec. A val of
            None means the layout has no val split with annotations: the val split is then a held-out part of the
            train split (``heldout_fraction`` of its images, unless the task sets ``val_fraction``).
        synthetic_subdir: where this kind lives inside the built-in synthetic dataset.
    """

    name: ClassVar[str] = ""
    splits: ClassVar[dict[str, tuple[str, str | None, str]]] = {}
    heldout_fraction: ClassVar[float] = 0.1
    synthetic_subdir: ClassVar[str] = ""
    split_names: ClassVar[tuple[str, ...] | None] = None  # the only split names the kind knows, when it is a fixed set

    def __init__(self, source: DataSource) -> None:
        self.source = source

    @classmethod
    def serves(cls, task_type: str) -> bool:
        return task_type in cls.splits

    def default_splits(self, task_type: str) -> tuple[str, str | None, str]:
        year = getattr(self.source.spec, "year", 2014)
        train, val, test = self.splits[task_type]
        return train.format(year=year), None if val is None else val.format(year=year), test.format(year=year)

    def default_val(self, task_type: str, train: str) -> str | None:
        """The val split that goes with ``train`` (None: hold out part of ``train``)."""
        return self.default_splits(task_type)[1]

    def load(self, task_type: str, split: str) -> Any:
        """Records of one split for one task type."""
        raise NotImplementedError

    def check_layout(self, task_type: str, splits: tuple[str, ...]) -> None:
        """Raise a UserError when a file or folder that :meth:`load` needs is missing (no parsing)."""
        raise NotImplementedError


DATASET_KINDS: Registry[type[DatasetKind]] = Registry("dataset kind")


def register_dataset(cls: type[DatasetKind]) -> type[DatasetKind]:
    """Class decorator: register a :class:`DatasetKind` under its ``name``."""
    DATASET_KINDS.register(cls.name)(cls)
    return cls


@register_dataset
class ImageFolderKind(DatasetKind):
    """``ROOT/[SPLIT/]CLASS/*.jpg`` (see :mod:`harness.data.imagefolder`)."""

    name = "imagefolder"
    splits: ClassVar[dict[str, tuple[str, str | None, str]]] = {
        "classification": ("train", "val", "test"),
        "zero_shot": ("train", "val", "test"),  # scored on test only; train and val are not read
    }
    synthetic_subdir = "imagefolder"
    split_names = imagefolder.SPLITS

    def load(self, task_type: str, split: str):
        spec = self.source.spec
        return imagefolder.load_imagefolder(self.source.root, split, spec.split_ratios, spec.split_seed)

    def check_layout(self, task_type: str, splits: tuple[str, ...]) -> None:
        for split in splits:  # listing folders is cheap: load both splits (>= 2 classes, no empty class)
            self.load(task_type, split)


@register_dataset
class Vqa2Kind(DatasetKind):
    """VQA v2: questions + annotations per split, COCO images (see :mod:`harness.data.vqa`)."""

    name = "vqa2"
    splits: ClassVar[dict[str, tuple[str, str | None, str]]] = {"vqa": ("train2014", None, "val2014")}

    def load(self, task_type: str, split: str):
        src = self.source
        q, a = vqa.vqa_files(src.root, split)
        src.files.update(p for p in (q, a) if p is not None)
        images = vqa.find_images_root(src.root, src.images_setting(), split)
        return vqa.load_vqa(src.root, images, split, src.issues)

    def check_layout(self, task_type: str, splits: tuple[str, ...]) -> None:
        for split in splits:
            vqa.vqa_files(self.source.root, split)
            vqa.find_images_root(self.source.root, self.source.images_setting(), split)


class _CaptionKind(DatasetKind):
    """Retrieval on Karpathy ``dataset_*.json`` files, or on the LAVIS/BLIP per-split files."""

    karpathy_file: ClassVar[str] = ""
    lavis_file: ClassVar[str] = ""

    def image_marker(self, layout: str, split: str) -> str:
        """The images folder that a split of this layout ("karpathy" or "lavis") reads from."""
        raise NotImplementedError

    def _karpathy(self) -> Path | None:
        root = self.source.root
        names = (self.karpathy_file, f"annotations/{self.karpathy_file}")
        return next((root / c for c in names if (root / c).is_file()), None)

    def _lavis(self, split: str) -> Path | None:
        root, name = self.source.root, self.lavis_file.format(split=split)
        return next((root / c for c in (name, f"annotations/{name}") if (root / c).is_file()), None)

    def _retrieval_file(self, split: str) -> tuple[str, Path]:
        """("karpathy" | "lavis", path) for a retrieval split; a clear error when neither exists."""
        if split not in KARPATHY_SPLITS:
            raise UserError(f"datasets.{self.source.name}: split {split!r} is not one of {list(KARPATHY_SPLITS)}")
        found = self._karpathy()
        if found is not None:
            return "karpathy", found
        lavis = self._lavis(split) if split != "restval" else None
        if lavis is not None:
            return "lavis", lavis
        root, name = self.source.root, self.lavis_file.format(split=split)
        tried = ", ".join(
            str(root / c)
            for c in (self.karpathy_file, f"annotations/{self.karpathy_file}", name, f"annotations/{name}")
        )
        raise UserError(
            f"datasets.{self.source.name}: retrieval split {split!r} needs {self.karpathy_file} (Karpathy) or {name} "
            f"(LAVIS); looked for {tried}. See docs/datasets.md"
        )

    def load_retrieval(self, split: str):
        src = self.source
        layout, path = self._retrieval_file(split)
        src.files.add(path)
        if layout == "lavis":  # the LAVIS train file already includes restval
            return coco.load_lavis(path, src.images_root(self.image_marker(layout, split)), src.issues)
        wanted = {split, "restval"} if split == "train" and src.spec.fold_restval else {split}
        return self.load_karpathy(path, wanted)

    def load_karpathy(self, path: Path, wanted: set[str]):
        raise NotImplementedError

    def check_layout(self, task_type: str, splits: tuple[str, ...]) -> None:
        for split in splits:
            layout, _ = self._retrieval_file(split)
            self.source.images_root(self.image_marker(layout, split))


@register_dataset
class CocoKind(_CaptionKind):
    """COCO 2014/2017: instances (multi-label) and captions (retrieval; Karpathy or LAVIS splits)."""

    name = "coco"
    splits: ClassVar[dict[str, tuple[str, str | None, str]]] = {
        "multilabel": ("train{year}", None, "val{year}"),
        "detection": ("train{year}", None, "val{year}"),
        "retrieval": ("train", "val", "test"),
    }
    karpathy_file = "dataset_coco.json"
    lavis_file = "coco_karpathy_{split}.json"

    def default_val(self, task_type: str, train: str) -> str | None:
        """Karpathy/LAVIS retrieval has a val split; the raw ``captions_<split>`` files have none."""
        if task_type == "retrieval" and train not in KARPATHY_SPLITS:
            return None
        return super().default_val(task_type, train)

    def image_marker(self, layout: str, split: str) -> str:
        if layout == "lavis":
            return "train2014" if split == "train" else "val2014"
        return "val2017" if getattr(self.source.spec, "year", 2014) == 2017 else "val2014"

    def load(self, task_type: str, split: str):
        src = self.source
        if task_type in ("multilabel", "detection"):
            ann = src.find(
                [f"annotations/instances_{split}.json", f"instances_{split}.json"], f"instances_{split}.json"
            )
            load = coco.load_instances if task_type == "multilabel" else coco.load_detection
            return load(ann, src.images_root(split), split, src.issues)
        if split in KARPATHY_SPLITS:
            return self.load_retrieval(split)
        ann = src.find([f"annotations/captions_{split}.json", f"captions_{split}.json"], f"captions_{split}.json")
        return coco.load_captions(ann, src.images_root(split), split, src.issues)

    def load_karpathy(self, path: Path, wanted: set[str]):
        src = self.source
        root = src.images_root(self.image_marker("karpathy", "test"))
        if getattr(src.spec, "year", 2014) == 2017:
            return coco.load_karpathy(path, root, wanted, src.issues, locate=_coco2017_locator(root))
        return coco.load_karpathy(path, root, wanted, src.issues)

    def check_layout(self, task_type: str, splits: tuple[str, ...]) -> None:
        if task_type == "retrieval" and all(s in KARPATHY_SPLITS for s in splits):
            return super().check_layout(task_type, splits)
        kind = "instances" if task_type in ("multilabel", "detection") else "captions"
        for split in splits:
            names = [f"annotations/{kind}_{split}.json", f"{kind}_{split}.json"]
            coco.find_file(self.source.root, names, f"datasets.{self.source.name}: {kind}_{split}.json")
            self.source.images_root(split)


@register_dataset
class Flickr30kKind(_CaptionKind):
    """Flickr30k: Karpathy ``dataset_flickr30k.json`` or the LAVIS ``flickr30k_{split}.json`` files."""

    name = "flickr30k"
    splits: ClassVar[dict[str, tuple[str, str | None, str]]] = {"retrieval": ("train", "val", "test")}
    synthetic_subdir = "flickr30k"
    karpathy_file = "dataset_flickr30k.json"
    lavis_file = "flickr30k_{split}.json"

    def image_marker(self, layout: str, split: str) -> str:
        return "flickr30k-images"

    def load(self, task_type: str, split: str):
        return self.load_retrieval(split)

    def load_karpathy(self, path: Path, wanted: set[str]):
        src = self.source
        return coco.load_karpathy(
            path,
            src.images_root("flickr30k-images"),
            wanted,
            src.issues,
            locate=lambda e: f"flickr30k-images/{e['filename']}",
        )


def _coco2017_locator(root: Path):
    """Karpathy entries name 2014 files; the same images live in train2017/ or val2017/ as {cocoid:012d}.jpg."""
    in_val = {p.name for p in (root / "val2017").glob("*.jpg")}

    def locate(entry: dict) -> str:
        name = f"{int(entry['cocoid']):012d}.jpg"
        return f"{'val2017' if name in in_val else 'train2017'}/{name}"

    return locate
