"""Suite -> ``RunSpec``\\ s: one per (task, model, seed), fully resolved and typed, each with a fingerprint.

The fingerprint hashes everything that can change a run's numbers: the resolved task, dataset, model, train,
hardware, image and text settings, the seed, the device type, the dataset and tokenizer fingerprints, the harness
version and :data:`NUMERICS_VERSION`. Every input is canonical (JSON with sorted keys; fingerprints of data computed
from file contents and sorted names), so the same suite gets the same fingerprints on any machine and in any
process. A finished run folder is reused only when its fingerprint matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from harness import __version__
from harness.suite.check import ResolvedModel, task_baseline
from harness.suite.schema import NOT_NUMERIC_TRAIN_KEYS, HardwareSpec, ImageSpec, Suite, TextSpec, TrainSpec

NUMERICS_VERSION = 3
"""Bump when a code change alters the numbers a run produces for the same settings (an optimiser implementation,
a loss, an evaluation convention): finished runs made by older code then no longer match and are re-run.
History: 1 = initial; 2 = fused AdamW where torch has it; 3 = train/val/test protocol (best-on-val checkpoint)."""


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, resolved. Written as ``spec.json`` in the run folder before training starts."""

    suite: str
    task: str
    task_type: str
    task_spec: dict[str, Any]
    dataset: str
    dataset_spec: dict[str, Any]
    splits: tuple[str, str, str]  # (train, val, test); a carved val reads "train[held-out 10%]"
    model: str
    model_type: str
    model_source: str
    kind: str
    model_params: dict[str, Any]
    overrides: dict[str, Any]
    seed: int
    device: str
    hardware: HardwareSpec
    train: TrainSpec
    image: ImageSpec
    text: TextSpec | None
    baseline: str | None
    dataset_fingerprint: str
    tokenizer_fingerprint: str | None = None
    harness_version: str = __version__
    numerics_version: int = NUMERICS_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # facts not in the fingerprint (never numbers-changing)
    # The run whose kept weights this run scores (a zero-shot task's trained_by run of the same model and seed):
    # task, run_id, folder and fingerprint. Its fingerprint is part of this run's.
    upstream: dict[str, Any] | None = None
    profile: str | None = None  # the suite profile (--profile); in to_json() and the fingerprint only when set
    # The model's ``quantize`` switch (``dynamic_int8``): an INT8 copy is also scored on CPU after the test split
    # (harness/train/quantize.py). In to_json() and the fingerprint only when set.
    quantize: str | None = None
    # Data-parallel processes (torchrun's WORLD_SIZE) that train the run together; in to_json() and the
    # fingerprint only when above 1 (BatchNorm statistics and augmentation draws are per rank).
    world_size: int = 1

    @property
    def run_id(self) -> str:
        return f"{self.task}/{self.model}/seed{self.seed}"

    @property
    def folder(self) -> str:
        """Run folder relative to the suite output: runs/<task>/<model>/seed<k>-<fingerprint[:10]>."""
        return f"runs/{self.task}/{self.model}/seed{self.seed}-{self.fingerprint[:10]}"

    def to_json(self) -> dict[str, Any]:
        """JSON form (``spec.json``): typed blocks as their pydantic JSON dumps. ``upstream`` appears only when set,
        so that the fingerprints of runs without one do not depend on it."""
        out = {
            "suite": self.suite,
            "task": self.task,
            "task_type": self.task_type,
            "task_spec": self.task_spec,
            "dataset": self.dataset,
            "dataset_spec": self.dataset_spec,
            "splits": list(self.splits),
            "model": self.model,
            "model_type": self.model_type,
            "model_source": self.model_source,
            "kind": self.kind,
            "model_params": self.model_params,
            "overrides": self.overrides,
            "seed": self.seed,
            "device": self.device,
            "hardware": _hardware_json(self.hardware),
            "train": self.train.model_dump(mode="json", exclude={"allow_overrides"}),
            "image": self.image.model_dump(mode="json"),
            "text": self.text.model_dump(mode="json") if self.text is not None else None,
            "baseline": self.baseline,
            "dataset_fingerprint": self.dataset_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "harness_version": self.harness_version,
            "numerics_version": self.numerics_version,
        }
        if self.upstream is not None:
            out["upstream"] = self.upstream
        if self.profile is not None:
            out["profile"] = self.profile
        if self.quantize is not None:
            out["quantize"] = self.quantize
        if self.world_size > 1:
            out["world_size"] = self.world_size
        return out

    @cached_property
    def fingerprint(self) -> str:
        payload = {k: v for k, v in self.to_json().items() if k not in ("suite", "baseline")}
        payload["train"] = {k: v for k, v in payload["train"].items() if k not in NOT_NUMERIC_TRAIN_KEYS}
        payload["hardware"] = {k: v for k, v in payload["hardware"].items() if k != "peak_tflops"}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()


def suite_fingerprint(suite_name: str, runs: list[RunSpec]) -> str:
    """What a suite measures, for the CI gate and leaderboards: its name, and per task the type, the test data
    (dataset fingerprint) and the splits. Models, seeds and the training recipe are left out on purpose: a baseline
    is checked against results of changed models, other seeds or another recipe of the same suite."""
    tasks = {r.task: {"type": r.task_type, "dataset": r.dataset_fingerprint, "splits": list(r.splits)} for r in runs}
    blob = json.dumps({"suite": suite_name, "tasks": tasks}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_runs(
    suite: Suite,
    models: dict[str, ResolvedModel],
    device: str,
    dataset_fingerprints: dict[str, str],
    splits: dict[str, Any],
    tokenizer_fingerprint: str | None,
    world_size: int = 1,
) -> list[RunSpec]:
    """Expand tasks × models × seeds in suite order (task, then model, then seed); runs of tasks that train nothing
    (zero-shot) come last, each linked to its ``trained_by`` run, which keeps its weights for it.

    ``world_size`` is the number of data-parallel processes (torchrun); a ``train.global_batch`` is turned into
    the ``grad_accum`` that gives it at this world size."""
    runs = []
    for tname, task in suite.tasks.items():
        dataset = suite.datasets[task.dataset]
        task_json = task.model_dump(mode="json", exclude={"models", "baseline"})
        for mname in task.models:
            m = models[mname]
            reads_text = "text" in m.family.modalities
            for seed in suite.seeds:
                runs.append(
                    RunSpec(
                        suite=suite.name or "suite",
                        task=tname,
                        task_type=task.type,
                        task_spec=task_json,
                        dataset=task.dataset,
                        dataset_spec=dataset.model_dump(mode="json"),
                        splits=splits[tname].names,
                        model=mname,
                        model_type=m.family.name,
                        model_source=m.family.source,
                        kind=m.family.kind,
                        model_params=m.config.model_dump(mode="json"),
                        overrides=m.overrides,
                        seed=seed,
                        device=device,
                        hardware=suite.hardware,
                        train=_with_accumulation(m.train, world_size, f"models.{mname}"),
                        image=suite.image,
                        text=suite.text if reads_text else None,
                        baseline=task_baseline(suite, tname),
                        dataset_fingerprint=dataset_fingerprints[tname],
                        tokenizer_fingerprint=tokenizer_fingerprint if reads_text else None,
                        profile=suite.profile,
                        quantize=suite.models[mname].quantize,
                        world_size=world_size,
                    )
                )
    return _link_upstream(suite, runs)


OFF_BY_DEFAULT_SWITCHES = ("tf32", "channels_last", "compile")


def _hardware_json(hardware: HardwareSpec) -> dict[str, Any]:
    """The hardware block; the GPU switches appear only when on, so runs made before they existed keep their
    fingerprints."""
    out = hardware.model_dump(mode="json")
    for key in OFF_BY_DEFAULT_SWITCHES:
        if not out[key]:
            del out[key]
    return out


def _with_accumulation(train: TrainSpec, world_size: int, where: str) -> TrainSpec:
    """``train`` with ``grad_accum`` derived from ``global_batch`` at ``world_size`` (unchanged without one)."""
    if train.global_batch is None:
        return train
    from harness.errors import UserError

    per_step = train.batch_size * world_size
    if train.global_batch % per_step:
        raise UserError(
            f"train.global_batch: {train.global_batch} is not a multiple of train.batch_size x world size = "
            f"{train.batch_size} x {world_size} = {per_step} ({where}); pick a batch_size or a number of processes "
            "that divides it"
        )
    return train.model_copy(update={"grad_accum": train.global_batch // per_step})


def _link_upstream(suite: Suite, runs: list[RunSpec]) -> list[RunSpec]:
    import dataclasses

    uses = {
        (task.trained_by, m) for task in suite.tasks.values() if getattr(task, "trained_by", None) for m in task.models
    }
    if not uses:
        return runs
    by_key = {(r.task, r.model, r.seed): r for r in runs}
    trainers, linked = [], []
    for r in runs:
        if (r.task, r.model) in uses:
            r = dataclasses.replace(r, extra={**r.extra, "keep_weights": True})
            by_key[(r.task, r.model, r.seed)] = r
        trainers.append(r)
    out = []
    for r in trainers:
        trained_by = getattr(suite.tasks[r.task], "trained_by", None)
        if trained_by is None:
            out.append(r)
            continue
        up = by_key[(trained_by, r.model, r.seed)]
        info = {"task": up.task, "run_id": up.run_id, "folder": up.folder, "fingerprint": up.fingerprint}
        linked.append(dataclasses.replace(r, upstream=info))
    return out + linked
