"""The task contract: prepare tensors, build the head, compute the loss, evaluate into predictions + metrics.

A task never knows a particular model: it reads ``model(batch)["pooled"]`` (and the towers for retrieval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from harness.data.issues import SampleIssues
from harness.models.base import XModel


@dataclass
class Examples:
    """One split as tensors. Images are stored once (uint8) and indexed by ``image_index``."""

    images: torch.Tensor | None  # (N_img, 3, S, S) uint8
    image_index: torch.Tensor | None  # (N,) long
    input_ids: torch.Tensor | None  # (N, T) long
    attention_mask: torch.Tensor | None  # (N, T) long
    targets: torch.Tensor | None  # task-specific, first dim N
    ids: list[Any]  # example identifiers for predictions
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class EvalResult:
    """What an eval pass produces: metrics (percent), per-example predictions, notes and arrays to save."""

    metrics: dict[str, float]
    predictions: list[dict[str, Any]]
    notes: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)  # name -> numpy array, saved as name.npy
    files: dict[str, Any] = field(default_factory=dict)  # file name -> JSON-ready object
    evidence: Any = None  # harness.stats.evidence.Evidence: per-example evidence, saved as evidence.npz


SPLITS = ("train", "val", "test")


@dataclass
class TaskData:
    """The train, val and test splits as tensors plus task facts (class names, answer vocabulary, ...)."""

    train: Examples
    val: Examples
    test: Examples
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Examples:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return getattr(self, name)


class Batcher:
    """Turns example indices into a model batch on a device: uint8 rows from the image cache, augmented (training
    batches only) and normalised on the fly."""

    def __init__(
        self,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        device: torch.device,
        augment: str = "none",
        crop_scale: tuple[float, float] = (0.8, 1.0),
        seed: int = 0,
    ) -> None:
        self.device = device
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255.0
        self.augment, self.crop_scale = augment, crop_scale
        self.generator = torch.Generator().manual_seed(seed)
        # Set by the frozen-encoder feature cache (harness.train.features): id(images tensor) -> offset of its rows
        # in the cached features; batches then carry those rows as "image" instead of pixels.
        self.feature_rows: dict[int, int] | None = None
        self.channels_last = False  # hardware.channels_last: batches in the channels_last memory format

    def images(self, uint8: torch.Tensor) -> torch.Tensor:
        x = uint8.to(self.device, non_blocking=True).float()
        x = (x - self.mean) / self.std  # (B, 3, S, S)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __call__(
        self, ex: Examples, idx: torch.Tensor, with_targets: bool = True, train: bool = False
    ) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        if ex.images is not None and self.feature_rows is not None:
            rows = ex.image_index[idx] if ex.image_index is not None else idx
            batch["image"] = (rows + self.feature_rows[id(ex.images)]).to(self.device)
            batch["image_row"] = rows.to(self.device)
        elif ex.images is not None:
            rows = ex.image_index[idx] if ex.image_index is not None else idx
            pixels = ex.images.index_select(0, rows)  # (B, 3, S, S) uint8; 10x faster than ex.images[rows]
            if train and self.augment != "none":
                from harness.data.augment import augment_batch

                pixels = augment_batch(pixels, mode=self.augment, crop_scale=self.crop_scale, generator=self.generator)
            batch["image"] = self.images(pixels)
            batch["image_row"] = rows.to(self.device)
        if ex.input_ids is not None:
            batch["input_ids"] = ex.input_ids[idx].to(self.device)
            batch["attention_mask"] = ex.attention_mask[idx].to(self.device)
        if with_targets and ex.targets is not None:
            batch["targets"] = ex.targets[idx].to(self.device)
        return batch


class Task:
    """Base class of the task types.

    Subclasses set the class attributes (the facts about the task type) and implement the methods below.

    Attributes:
        type: the name a suite uses (``tasks.<name>.type``).
        main_metric: the metric that ranks models and that claims and the CI gate use by default.
        higher_is_better: direction of every metric of the task type.
        requires: modalities a model must read to run the task.
        metrics: every metric the task type reports, main metric first.
        trains: False for a task that only scores weights trained by another task (zero-shot).
        feature_cache: whether the frozen-encoder feature cache (pooled vectors, tokens) can serve the task.
        own_augmentation: the task augments images itself, with their targets (detection boxes); the Batcher
            then leaves training images as they are and the task reads ``self.augment`` (mode, crop scale).
    """

    type: ClassVar[str] = ""
    main_metric: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    higher_is_better: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()
    trains: ClassVar[bool] = True
    feature_cache: ClassVar[bool] = True
    own_augmentation: ClassVar[bool] = False

    @classmethod
    def model_problem(cls, model: XModel) -> str | None:
        """Why a built ``model`` (on the meta device in ``validate``) cannot run this task, or None."""
        return None

    @classmethod
    def pairing_problem(cls, model_kind: str, modalities: frozenset[str], spec: Any = None) -> str | None:
        """Why a model of ``model_kind`` reading ``modalities`` cannot run this task, or None if it can."""
        missing = cls.requires - modalities
        if not missing:
            return None
        return (
            f"{cls.type} needs image input and a {model_kind} model reads only {', '.join(sorted(modalities))}; "
            "image datasets have no text (models that read text get the task's prompt)"
        )

    def __init__(self, name: str, spec: Any) -> None:
        self.name = name
        self.spec = spec

    def build_head(self, model: XModel, data: TaskData) -> nn.Module:
        raise NotImplementedError

    def loss(self, model: XModel, head: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, source: Any, splits: Any, ctx: PrepareContext) -> TaskData:
        """Load the train, val and test splits (``source.records(self.type, splits)``) and turn them into
        tensors."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(
        self,
        model: XModel,
        head: nn.Module,
        data: TaskData,
        batcher: Batcher,
        batch_size: int,
        autocast: Any,
        split: str = "test",
    ) -> EvalResult:
        """Score one split (``val`` during training, ``test`` once at the end): metrics in percent plus per-example
        predictions."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, model: XModel, head: nn.Module, ex: Examples, batcher: Batcher, batch_size: int, autocast: Any):
        """Head outputs for every eval example, in order: (N, C) float32 on CPU (sharded over the ranks under
        torchrun: :func:`harness.dist.map_batches`)."""
        from harness.dist import map_batches

        def fn(idx: torch.Tensor) -> torch.Tensor:
            with autocast():
                return head(model(batcher(ex, idx, with_targets=False))["pooled"]).float().cpu()

        return map_batches(len(ex), batch_size, fn)

    @staticmethod
    def iterate(n: int, batch_size: int):
        for start in range(0, n, batch_size):
            yield torch.arange(start, min(n, start + batch_size))


def mlp_head(in_dim: int, out_dim: int, hidden: int | None = None) -> nn.Module:
    """Linear -> GELU -> LayerNorm -> Linear (the BUTD/ALBEF-style VQA classifier)."""
    hidden = hidden or 2 * in_dim
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.LayerNorm(hidden), nn.Linear(hidden, out_dim))


@dataclass
class PrepareContext:
    """What ``Task.prepare`` needs: image decoding settings and the suite's tokenizer."""

    image_size: int
    resize: str
    interpolation: str
    workers: int
    tokenizer: Any | None
    max_length: int
    modalities: frozenset[str] = frozenset({"image", "text"})  # union over the task's models
    issues: SampleIssues | None = None  # the dataset's bad-sample policy and record
    tokenizer_fingerprint: str | None = None  # enables the on-disk token cache
    truncation: bool = True
    dicom: Any | None = None  # harness.data.dicom.DicomOptions of an image folder's ``dicom:`` block (.dcm files)

    def decode(self, paths) -> tuple[torch.Tensor | None, list[tuple[int, str]]]:
        """``(images, bad)`` of ``paths`` from the on-disk image cache (built on first use); ``(None, [])`` when no
        model of the task reads images.

        ``bad`` lists ``(row, reason)`` of unreadable files (rows left zero) under ``on_bad_sample: skip``; otherwise
        the first bad file raises a UserError naming it. The cache key includes a stat fingerprint of the files, so
        replaced or edited images are decoded again, and the DICOM settings, so a changed window decodes again.
        """
        if "image" not in self.modalities:
            return None, []
        from harness.data.image_cache import files_fingerprint, load_images

        return load_images(
            paths,
            size=self.image_size,
            resize=self.resize,
            interpolation=self.interpolation,
            workers=self.workers,
            fingerprint=files_fingerprint(paths),
            skip_bad=self.issues is not None and self.issues.policy == "skip",
            dicom=self.dicom,
        )

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.tokenizer is None or "text" not in self.modalities:
            return None, None
        from harness.data.text import tokenize

        return tokenize(self.tokenizer, texts, self.max_length, self.truncation, self.tokenizer_fingerprint)
