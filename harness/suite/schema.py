"""The suite schema: frozen pydantic models, unknown keys forbidden.

A suite is pure data. The loader validates it in pydantic strict mode (``validate_data``): no quoted numbers, no
booleans for numbers, no floats for ints; python code building these models directly gets the usual lax mode.
Cross-references (a task naming a model), model-family parameters and per-model overrides are checked by
:mod:`harness.suite.check`, which knows the registries and reports the exact key path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SYNTHETIC = "@synthetic"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MAX_SEED = 2**32 - 1


def _seed_range(v: int) -> int:
    if not 0 <= v <= MAX_SEED:
        raise ValueError(f"a seed must be an integer in 0..{MAX_SEED} (2**32-1), got {v}")
    return v


Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Seed = Annotated[int, AfterValidator(_seed_range)]
Finite = Annotated[float, AllowInfNan(False)]  # YAML 1.2 reads .inf and .nan as floats: no schema number may be one
Fraction = Annotated[Finite, Field(ge=0.0, lt=1.0)]
Positive = Annotated[Finite, Field(gt=0.0)]
NonNegative = Annotated[Finite, Field(ge=0.0)]


class Frozen(BaseModel):
    """Base for every schema node: immutable, unknown keys rejected. Not strict here: the loader validates suites with
    ``strict=True`` (no coercion from strings or booleans), while internal code may build nodes from python values."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, populate_by_name=False)


class HardwareSpec(Frozen):
    """Where and how every run of the suite executes."""

    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    workers: NonNegativeInt = 0
    deterministic: bool = True
    threads: PositiveInt | None = None
    # Peak dense TFLOP/s of the device at the suite's precision, for MFU; default: the table in
    # harness/train/measure.py (common NVIDIA GPUs). Not part of run fingerprints.
    peak_tflops: Positive | None = None
    # GPU switches, all off by default (in a run's fingerprint only when on; harness/train/precision.py):
    # tf32: CUDA matmuls and cuDNN convolutions in TF32 at precision fp32 (Ampere and later); off = IEEE fp32.
    tf32: bool = False
    # channels_last: images and the model in the channels_last memory format (faster convolutions on tensor cores).
    channels_last: bool = False
    # compile: torch.compile the image and text encoders in place (nn.Module.compile: state-dict keys unchanged),
    # after the FLOPs are counted; true = the default backend (inductor), or a backend name (aot_eager, eager:
    # graph capture without code generation, for checking that a model compiles).
    compile: bool | Literal["inductor", "aot_eager", "eager"] = False

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v):
            raise ValueError(f"expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {v!r}")
        return v


class LrMult(Frozen):
    """Learning-rate multipliers per branch (image encoder, text encoder, fusion layers, task head)."""

    image: Annotated[Finite, Field(ge=0.0)] = 1.0
    text: Annotated[Finite, Field(ge=0.0)] = 1.0
    fusion: Annotated[Finite, Field(ge=0.0)] = 1.0
    head: Annotated[Finite, Field(ge=0.0)] = 1.0


class EarlyStopping(Frozen):
    """Stop after ``patience`` val evaluations in a row that do not improve the selection metric by more than
    ``min_delta`` points."""

    patience: PositiveInt
    min_delta: NonNegative = 0.0


NOT_NUMERIC_TRAIN_KEYS = frozenset({"checkpoint_every", "keep", "feature_cache", "allow_overrides"})
"""Train keys that cannot change a run's numbers: left out of its fingerprint."""


class TrainSpec(Frozen):
    """One optimiser and schedule for every pairing: AdamW, warmup then cosine/linear/constant."""

    epochs: PositiveInt | None = None
    steps: PositiveInt | None = None
    batch_size: PositiveInt = 32
    eval_batch_size: PositiveInt | None = None
    lr: Annotated[Finite, Field(gt=0.0)] = 1e-4
    weight_decay: Annotated[Finite, Field(ge=0.0)] = 0.01
    betas: tuple[Annotated[Finite, Field(ge=0.0, lt=1.0)], Annotated[Finite, Field(ge=0.0, lt=1.0)]] = (0.9, 0.999)
    eps: Annotated[Finite, Field(gt=0.0)] = 1e-8
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: Fraction = 0.0
    warmup_steps: NonNegativeInt | None = None
    min_lr_ratio: Annotated[Finite, Field(ge=0.0, le=1.0)] = 0.0
    grad_clip: Annotated[Finite, Field(gt=0.0)] | None = 1.0
    grad_accum: PositiveInt = 1
    # A fixed global batch (examples per optimiser step over all data-parallel ranks): the runner derives
    # grad_accum = global_batch / (batch_size x world size), so the recipe holds on 1 or N processes
    # (docs/scale-out.md). Without it the effective batch is batch_size x grad_accum x world size.
    global_batch: PositiveInt | None = None
    lr_mult: LrMult = LrMult()
    freeze_encoders_epochs: NonNegativeInt = 0
    # Encoders frozen for the whole run (a linear probe) run in eval mode, and the image encoder's features are
    # computed once and reused across seeds and runs (harness/train/features.py); false recomputes them each step.
    feature_cache: bool = True
    # Model selection: evaluate on the val split every `eval_every` optimiser steps, or every `eval_every_epochs`
    # epochs (default: every epoch), and always at the last step; keep the best on the task's `select_metric`
    # (default: its main metric) and score the test split once with it. Early stopping after `patience`
    # evaluations without an improvement of more than `min_delta` points.
    eval_every: PositiveInt | None = None
    eval_every_epochs: PositiveInt | None = None
    validation: bool = True  # false: no val evaluation; the test split is scored with the final state
    early_stopping: EarlyStopping | None = None
    # Checkpoints (do not change a run's numbers, so they are not part of its fingerprint): every
    # `checkpoint_every` optimiser steps, atomically; `keep` resume checkpoints are kept besides the best one.
    checkpoint_every: PositiveInt | None = None
    keep: PositiveInt = 1
    # On out-of-memory during a training step: fail the run, or halve the micro-batch and double the
    # accumulation (the effective batch and its samples stay the same; recorded in the fairness section).
    on_oom: Literal["fail", "halve_batch"] = "fail"
    allow_overrides: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_length(self) -> TrainSpec:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("set exactly one of 'epochs' or 'steps'")
        if self.warmup_steps is not None and self.warmup_ratio:
            raise ValueError("set at most one of 'warmup_ratio' or 'warmup_steps'")
        if self.eval_every is not None and self.eval_every_epochs is not None:
            raise ValueError("set at most one of 'eval_every' (steps) or 'eval_every_epochs'")
        if self.global_batch is not None and self.grad_accum != 1:
            raise ValueError(
                "set at most one of 'global_batch' or 'grad_accum': with global_batch the runner derives grad_accum "
                "from the world size"
            )
        unknown = [k for k in self.allow_overrides if k not in TrainSpec.model_fields or k == "allow_overrides"]
        if unknown:
            raise ValueError(f"allow_overrides names unknown train keys {unknown}")
        return self


class ImageSpec(Frozen):
    """Input images, identical for every model: size, resize policy and normalisation."""

    size: PositiveInt = 224
    resize: Literal["squash", "shorter_crop"] = "squash"
    interpolation: Literal["bilinear", "bicubic"] = "bicubic"
    mean: tuple[Finite, Finite, Finite] = IMAGENET_MEAN
    std: tuple[Positive, Positive, Positive] = IMAGENET_STD  # pixels are divided by it
    augment: Literal["none", "crop", "crop_flip"] = "none"
    crop_scale: tuple[Annotated[Finite, Field(gt=0.0, le=1.0)], Annotated[Finite, Field(gt=0.0, le=1.0)]] = (0.8, 1.0)

    @model_validator(mode="after")
    def _scale_order(self) -> ImageSpec:
        if self.crop_scale[0] > self.crop_scale[1]:
            raise ValueError(f"crop_scale must be (low, high) with low <= high, got {list(self.crop_scale)}")
        return self


class TextSpec(Frozen):
    """Tokenisation, identical for every model that reads text."""

    tokenizer: str = "wordpiece"
    vocab_size: Annotated[int, Field(ge=5)] = 1000  # at least the 5 special tokens ([PAD], [UNK], [CLS], [SEP], [MASK])
    max_length: Annotated[int, Field(ge=4, le=512)] = 32
    truncation: bool = True
    lowercase: bool = True


class SyntheticSpec(Frozen):
    """Parameters of the built-in synthetic dataset (used by datasets whose path is '@synthetic')."""

    images: Annotated[int, Field(ge=20, le=100_000)] = 1000  # harness.data.synthetic.MIN_IMAGES, MAX_IMAGES
    seed: int = 0
    size: Annotated[int, Field(ge=32, le=512)] = 64


class _DatasetBase(Frozen):
    path: str
    images: str | None = None
    on_bad_sample: Literal["error", "skip"] = "error"


class CocoDataset(_DatasetBase):
    kind: Literal["coco"]
    year: Literal[2014, 2017] = 2014
    fold_restval: bool = True


class Flickr30kDataset(_DatasetBase):
    kind: Literal["flickr30k"]
    fold_restval: bool = True


class Vqa2Dataset(_DatasetBase):
    kind: Literal["vqa2"]


class DicomSpec(Frozen):
    """How ``.dcm`` files of an image folder become pixels (harness/data/dicom.py; docs/datasets.md, "DICOM image
    folders"). None: from each file's tags (RescaleSlope/RescaleIntercept, else 1 and 0; WindowCenter/WindowWidth,
    else the image's minimum and maximum)."""

    rescale_slope: Finite | None = None
    rescale_intercept: Finite | None = None
    window_center: Finite | None = None
    window_width: Finite | None = None
    invert_monochrome1: bool = True

    @field_validator("rescale_slope")
    @classmethod
    def _slope(cls, v: float | None) -> float | None:
        if v == 0:
            raise ValueError("a rescale slope of 0 maps every pixel to the intercept; give a non-zero slope")
        return v

    @field_validator("window_width")
    @classmethod
    def _width(cls, v: float | None) -> float | None:
        if v is not None and v < 1:
            raise ValueError(f"the window width must be at least 1 (DICOM PS3.3 C.11.2.1.2), got {v:g}")
        return v

    @model_validator(mode="after")
    def _window_pair(self) -> DicomSpec:
        if (self.window_center is None) != (self.window_width is None):
            raise ValueError(
                "set both window_center and window_width, or neither (then each file's WindowCenter and WindowWidth "
                "tags are used)"
            )
        return self


class ImageFolderDataset(_DatasetBase):
    kind: Literal["imagefolder"]
    split_ratios: tuple[NonNegative, NonNegative, NonNegative] = (0.7, 0.15, 0.15)  # train, val, test
    split_seed: int = 0
    dicom: DicomSpec | None = None  # settings for .dcm files; in dumps (and run fingerprints) only when set

    @field_validator("split_ratios")
    @classmethod
    def _sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"the train, val and test fractions must sum to 1, got {list(v)} (sum {sum(v):g})")
        return v

    @model_serializer(mode="wrap")
    def _without_unset_dicom(self, handler: Any) -> Any:
        """Leave ``dicom`` out when it is not set, so the dataset specs (and fingerprints) of suites without DICOM
        settings are what they were."""
        data = handler(self)
        if self.dicom is None and isinstance(data, dict):
            data.pop("dicom", None)
        return data


DatasetSpec = Annotated[CocoDataset | Flickr30kDataset | Vqa2Dataset | ImageFolderDataset, Field(discriminator="kind")]


class _TaskBase(Frozen):
    """Every task trains on ``train_split``, selects its checkpoint on ``val_split`` and is scored once on
    ``test_split``; each defaults to what the dataset kind says (``xmbench list`` shows them). ``val_fraction``
    carves the val split out of the train split instead (deterministic, whole images), for layouts without one.
    ``eval_split`` is the former name of ``test_split`` and is still accepted."""

    dataset: Name
    models: tuple[Name, ...] = Field(min_length=1)
    baseline: Name | None = None
    train_split: str | None = None
    val_split: str | None = None
    test_split: str | None = None
    val_fraction: Annotated[Finite, Field(gt=0.0, lt=1.0)] | None = None
    select_metric: str | None = None  # the val metric that picks the checkpoint; default: the task's main metric

    @model_validator(mode="before")
    @classmethod
    def _eval_split_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "eval_split" in data:
            if "test_split" in data:
                raise ValueError("eval_split is the former name of test_split; set only test_split")
            data = {("test_split" if k == "eval_split" else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _val_source(self) -> _TaskBase:
        if self.val_fraction is not None and self.val_split is not None:
            raise ValueError(
                "set at most one of 'val_split' (a split of the dataset) or 'val_fraction' (carved out of "
                "the train split)"
            )
        return self

    @field_validator("models")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        dup = sorted({m for m in v if v.count(m) > 1})
        if dup:
            raise ValueError(f"model names listed twice: {dup}")
        return v


class ClassificationTask(_TaskBase):
    type: Literal["classification"]
    prompt: str = "what is in the image?"


class MultilabelTask(_TaskBase):
    type: Literal["multilabel"]
    prompt: str = "what is in the image?"


class RetrievalTask(_TaskBase):
    type: Literal["retrieval"]
    k_test: PositiveInt = 16
    embed_dim: PositiveInt = 256
    temperature: Annotated[Finite, Field(gt=0.0)] = 0.07
    learn_temperature: bool = True


class VqaTask(_TaskBase):
    type: Literal["vqa"]
    answer_min_count: PositiveInt = 9
    answer_top_k: PositiveInt | None = None
    blind_baselines: bool = False  # allow image-only models, which never see the question, as a baseline


class DetectionTask(_TaskBase):
    """Box detection on COCO instances: an FPN over each model's spatial features and torchvision's FCOS head, the
    same head for every pairing; scored by pycocotools COCOeval (see docs/metrics.md). Models that read text get
    ``prompt`` as their text (their visual tokens after fusion feed the pyramid)."""

    type: Literal["detection"]
    prompt: str = "what objects are in the image?"
    fpn_channels: Annotated[int, Field(gt=0, multiple_of=32)] = 256  # FCOS's GroupNorm has 32 groups
    head_convs: Annotated[int, Field(ge=0, le=8)] = 4  # conv layers per FCOS branch (torchvision's default 4)
    score_thresh: Annotated[Finite, Field(ge=0.0, lt=1.0)] = 0.05  # detections below this score are dropped
    nms_thresh: Annotated[Finite, Field(gt=0.0, le=1.0)] = 0.6
    detections_per_img: Annotated[int, Field(gt=0, le=1000)] = 100  # COCOeval's largest maxDets is 100


DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a bad photo of a {}.",
    "a photo of the small {}.",
    "a photo of the large {}.",
    "a drawing of a {}.",
    "a close-up photo of a {}.",
    "itap of a {}.",
)
"""CLIP's prompt ensemble, shortened: a mix of the templates of Radford et al. (2021), notebook "Prompt Engineering
for ImageNet". Each class embedding is the normalised mean of its normalised template embeddings."""


class ZeroShotTask(_TaskBase):
    """Zero-shot classification of an image folder by text prompts, with the towers trained by another task.

    ``trained_by`` names a retrieval task of the suite (image-text pairs) that lists the same model: each seed's
    zero-shot run scores the state that the retrieval run selected, with its projections. No training happens on
    the target classes. Class names are the folder names, or ``classes`` (a list in sorted folder order, or a
    mapping folder -> name). Each class's text embedding is the mean over ``templates`` (``{}`` is the class name).
    """

    type: Literal["zero_shot"]
    trained_by: Name
    templates: tuple[str, ...] = Field(default=DEFAULT_TEMPLATES, min_length=1)
    classes: tuple[str, ...] | dict[str, str] | None = None

    @field_validator("templates")
    @classmethod
    def _placeholder(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in v if t.count("{}") != 1]
        if bad:
            raise ValueError(f"every template needs exactly one '{{}}' for the class name, got {bad[0]!r}")
        return v


TaskSpec = Annotated[
    ClassificationTask | MultilabelTask | RetrievalTask | VqaTask | DetectionTask | ZeroShotTask,
    Field(discriminator="type"),
]


class ModelSpec(Frozen):
    """A named model: a registered family (``type``) plus that family's parameters.

    The family parameters are validated by the family's own config class in the loader, which knows the registry;
    here they are kept as ``params``. ``train`` holds per-model overrides, allowed only for keys that the suite
    lists in ``train.allow_overrides``.
    """

    type: str
    train: dict[str, Any] = Field(default_factory=dict)
    # After the test evaluation, also score a dynamic-INT8 copy (its nn.Linear layers) on CPU in fp32, with its size
    # and latency (harness/train/quantize.py; docs/metrics.md, "Quantised evaluation").
    quantize: Literal["dynamic_int8"] | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "params" in data:
            raise ValueError("write the family's parameters directly under the model, not under 'params'")
        known = {"type", "train", "quantize"}
        out = {k: v for k, v in data.items() if k in known}
        out["params"] = {k: v for k, v in data.items() if k not in known}
        return out


PERCENT_PATTERN = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*%\s*$")


class ClaimSpec(Frozen):
    """A claim the suite puts to the test. Three kinds, by the key that states the claim:

    - ``delta``: ``model`` beats ``baseline`` on ``task`` by ``delta`` percentage points (``delta: 3.2``), or
      relative to the baseline's mean when written with a percent sign (``delta: 15%``: mean(model) /
      mean(baseline) - 1 >= 15%);
    - ``value``: an absolute claim, ``model`` reaches ``value`` (percent) of the metric on ``task``, up to
      ``tolerance`` points (``value: 98.7``);
    - ``order``: an ordering, ``order: [a, b, c]`` means a > b > c on the metric; every adjacent pair is a paired
      comparison, and the ordering holds only when every pair does;
    - ``smaller``: a quantisation claim, ``model``'s dynamic-INT8 copy is ``smaller`` percent smaller on disk than
      its fp32 state (``smaller: 75%``; the model needs ``quantize: dynamic_int8``), and, with ``max_drop``, loses
      at most ``max_drop`` points of the metric (a non-inferiority test of the paired INT8 - fp32 change).

    ``metric`` defaults to the task's main metric. ``source`` says where the claim comes from (an article, a design
    document). Verdicts: docs/statistics.md.
    """

    task: Name
    model: Name | None = None
    baseline: Name | None = None
    metric: str | None = None
    delta: Finite | str | None = None
    value: Finite | None = None
    tolerance: NonNegative = 0.0
    order: tuple[Name, ...] | None = None
    smaller: Finite | str | None = None
    max_drop: NonNegative | None = None
    source: str = ""

    @field_validator("smaller")
    @classmethod
    def _smaller(cls, v: float | str | None) -> float | str | None:
        if v is None:
            return v
        if isinstance(v, str):
            m = PERCENT_PATTERN.match(v)
            if not m:
                raise ValueError(f"expected a percentage such as 75% (or the number 75), got {v!r}")
            number = float(m.group(1))
        else:
            number = float(v)
        if not 0 < number < 100:
            raise ValueError(f"a size reduction is a percentage between 0 and 100 (exclusive), got {v!r}")
        return v

    @field_validator("delta")
    @classmethod
    def _delta(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, str) and not PERCENT_PATTERN.match(v):
            raise ValueError(
                f"expected points as a number (delta: 3.2) or a relative gain with a percent sign (delta: 15%), "
                f"got {v!r}"
            )
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> ClaimSpec:
        stated = [k for k in ("delta", "value", "order", "smaller") if getattr(self, k) is not None]
        if len(stated) != 1:
            raise ValueError(
                "state the claim with exactly one of 'delta' (model beats baseline by delta), 'value' (model "
                f"reaches value), 'order' (a > b > ...) or 'smaller' (its INT8 copy is smaller by), got "
                f"{stated or 'none'}"
            )
        kind = stated[0]
        if kind == "delta" and (self.model is None or self.baseline is None):
            raise ValueError("a delta claim names a 'model' and the 'baseline' it beats")
        if kind == "value" and (self.model is None or self.baseline is not None):
            raise ValueError("an absolute claim (value) names a 'model' and no 'baseline'")
        if kind == "order":
            if self.model is not None or self.baseline is not None:
                raise ValueError("an ordering claim lists its models in 'order' and names no 'model' or 'baseline'")
            if len(self.order) < 2 or len(set(self.order)) != len(self.order):
                raise ValueError(f"'order' lists at least two different models, best first, got {list(self.order)}")
        if kind == "smaller" and (self.model is None or self.baseline is not None):
            raise ValueError("a quantisation claim (smaller) names a 'model' and no 'baseline'")
        if kind != "value" and "tolerance" in self.model_fields_set:
            raise ValueError("'tolerance' belongs to an absolute claim (value)")
        if kind != "smaller" and self.max_drop is not None:
            raise ValueError("'max_drop' belongs to a quantisation claim (smaller)")
        return self

    @property
    def kind(self) -> str:
        """``delta`` | ``value`` | ``order`` | ``smaller``."""
        for kind in ("delta", "value", "order", "smaller"):
            if getattr(self, kind) is not None:
                return kind
        return "order"

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the claim is about."""
        if self.order is not None:
            return self.order
        return tuple(m for m in (self.model, self.baseline) if m is not None)

    @property
    def relative(self) -> bool:
        """Whether ``delta`` is relative to the baseline's mean (written with %)."""
        return isinstance(self.delta, str)

    @property
    def amount(self) -> float:
        """The claimed gain (points, or percent of the baseline's mean when :attr:`relative`), or the claimed
        absolute value."""
        if self.kind == "value":
            return float(self.value)
        if self.kind == "order":
            return 0.0
        if self.kind == "smaller":
            text = self.smaller
            return float(PERCENT_PATTERN.match(text).group(1)) if isinstance(text, str) else float(text)
        if isinstance(self.delta, str):
            return float(PERCENT_PATTERN.match(self.delta).group(1))
        return float(self.delta)

    def describe(self, metric: str) -> str:
        """The claim in words, for tables and the terminal."""
        if self.kind == "order":
            return f"{' > '.join(self.order)} on {self.task} in {metric}"
        if self.kind == "smaller":
            drop = "" if self.max_drop is None else f", losing at most {self.max_drop:g} points of {metric}"
            return f"{self.model}'s dynamic-INT8 copy is {self.amount:g}% smaller on disk ({self.task}){drop}"
        if self.kind == "value":
            tol = f" (within {self.tolerance:g} point{'' if self.tolerance == 1 else 's'})" if self.tolerance else ""
            return f"{self.model} reaches {self.amount:g}% {metric} on {self.task}{tol}"
        amount = f"{self.amount:+g}% (relative)" if self.relative else f"{self.amount:+g} points"
        return f"{self.model} beats {self.baseline} on {self.task} by {amount} of {metric}"


class Suite(Frozen):
    """A declarative benchmark: datasets × models × tasks × seeds under one hardware and train block."""

    name: Name | None = None
    description: str = ""
    seeds: tuple[Seed, ...] = Field(min_length=1)
    baseline: Name | None = None
    hardware: HardwareSpec = HardwareSpec()
    train: TrainSpec
    image: ImageSpec = ImageSpec()
    text: TextSpec = TextSpec()
    synthetic: SyntheticSpec = SyntheticSpec()
    datasets: dict[Name, DatasetSpec] = Field(min_length=1)
    models: dict[Name, ModelSpec] = Field(min_length=1)
    tasks: dict[Name, TaskSpec] = Field(min_length=1)
    claims: tuple[ClaimSpec, ...] = ()
    # Set by the command line (--profile, --set), never by the file (harness/suite/profiles.py).
    profile: Name | None = None
    overrides: tuple[str, ...] = ()

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be unique, got {list(v)}")
        return v
