"""Execute one RunSpec into one run folder: seed, build, train, evaluate, write its ``RunRecord``.

The data (decoded images, tokens) is prepared once per task by the runner and shared by every model and seed of that
task; each run only builds its model and head, trains and evaluates.
"""

from __future__ import annotations

import os
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.errors import RunFailed, UserError, describe, is_out_of_memory
from harness.models import BuildContext
from harness.models.contract import check_forward
from harness.plan import RunSpec
from harness.results.record import Cost, RunRecord, Timings, finite_metrics, write_record
from harness.results.store import RunWriter
from harness.suite.check import ResolvedModel, build_model
from harness.suite.schema import ImageSpec
from harness.tasks.base import Batcher, Task, TaskData
from harness.train import measure
from harness.train.loop import train_model
from harness.train.precision import autocast_factory, grad_scaler


@dataclass
class SharedContext:
    """What every run of a suite shares: device, tokenizer, resolved models, tasks and their prepared data."""

    device: torch.device
    image: ImageSpec
    max_text_len: int
    tokenizer: Any | None
    models: dict[str, ResolvedModel]
    tasks: dict[str, Task]
    data: dict[str, TaskData]
    env: dict[str, Any]
    skipped: dict[str, dict] = field(default_factory=dict)  # task -> bad samples skipped in its dataset


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def execute_run(
    spec: RunSpec, ctx: SharedContext, out_dir: Path, on_step: Callable[[int], None] | None = None
) -> RunRecord:
    """Run one (task, model, seed) into its folder; the caller holds the run's lock. Returns its record."""
    folder = out_dir / spec.folder
    writer = RunWriter(folder)
    writer.spec({**spec.to_json(), "fingerprint": spec.fingerprint, "run_id": spec.run_id, "folder": spec.folder})
    task_cls = type(ctx.tasks[spec.task])
    identity = {
        "run_id": spec.run_id,
        "folder": spec.folder,
        "fingerprint": spec.fingerprint,
        "suite": spec.suite,
        "task": spec.task,
        "task_type": spec.task_type,
        "dataset": spec.dataset,
        "model": spec.model,
        "kind": spec.kind,
        "model_type": spec.model_type,
        "seed": spec.seed,
        "baseline": spec.baseline,
        "overrides": spec.overrides,
        "main_metric": task_cls.main_metric,
    }
    started = time.perf_counter()

    def failed(error: str, tb: str | None = None) -> RunRecord:
        wall = Timings(wall_seconds=round(time.perf_counter() - started, 3))
        return RunRecord(**identity, status="failed", error=error, traceback=tb, timings=wall, env=ctx.env)

    try:
        try:
            outcome = _run(spec, ctx, writer, on_step)
        except RunFailed as exc:
            record = failed(str(exc))
            write_record(folder, record)
            return record
        except UserError:
            write_record(folder, failed("configuration error (see the command's message)"))
            raise
        except Exception as exc:
            if is_out_of_memory(exc):  # building the model or head, a forward pass, the evaluation: the run fails
                record = failed(
                    f"out of memory ({describe(exc)[:200]}); lower train.batch_size, "
                    "train.eval_batch_size, image.size or the model size"
                )
                write_record(folder, record)
                return record
            # an unexpected bug: record it, let the caller decide
            write_record(folder, failed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            raise
    finally:
        writer.close()
    bad = finite_metrics(outcome["metrics"])
    if bad:
        record = failed(f"the evaluation produced a non-finite metric ({bad}); the model's outputs are not usable")
    else:
        timings = Timings(**outcome.pop("timings"), wall_seconds=round(time.perf_counter() - started, 3))
        record = RunRecord(
            **identity,
            status="ok",
            higher_is_better={m: task_cls.higher_is_better for m in outcome["metrics"]},
            timings=timings,
            env=ctx.env,
            **outcome,
        )
    write_record(folder, record)
    return record


def _run(spec: RunSpec, ctx: SharedContext, writer: RunWriter, on_step) -> dict[str, Any]:
    device = ctx.device
    train = spec.train
    seed_everything(spec.seed, spec.hardware.deterministic)
    resolved = ctx.models[spec.model]
    tok = ctx.tokenizer
    build_ctx = BuildContext(
        image_size=ctx.image.size,
        max_text_len=ctx.max_text_len,
        vocab_size=len(tok) if tok is not None else None,
        pad_token_id=getattr(tok, "pad_token_id", 0) or 0,
    )
    model = build_model(resolved, build_ctx).to(device)
    task, data = ctx.tasks[spec.task], ctx.data[spec.task]
    head = task.build_head(model, data).to(device)
    batcher = Batcher(ctx.image.mean, ctx.image.std, device, ctx.image.augment, ctx.image.crop_scale, spec.seed)
    probe = batcher(data.train, torch.arange(min(2, len(data.train))), with_targets=False)
    check_forward(model, probe, f"models.{spec.model} ({spec.model_type})")
    autocast = autocast_factory(device, spec.hardware.precision)
    measure.reset_peak_memory(device)

    total, trainable = measure.count_params(model, head)
    flops = _flops(task, model, head, data, batcher)
    stats = train_model(
        model,
        head,
        task,
        data,
        train,
        batcher,
        autocast,
        grad_scaler(device, spec.hardware.precision),
        spec.seed,
        writer.log,
        on_step,
    )
    model.eval()
    head.eval()
    eval_start = time.perf_counter()
    result = task.evaluate(model, head, data, batcher, train.eval_batch_size or 2 * train.batch_size, autocast)
    eval_seconds = time.perf_counter() - eval_start
    writer.predictions(result.predictions)
    for name, arr in result.arrays.items():
        writer.array(name, arr)
    for name, obj in result.files.items():
        writer.extra_json(name, obj)
    if result.evidence is not None:
        writer.evidence(result.evidence.to_bytes())
    skipped = ctx.skipped.get(spec.task) or {"count": 0}
    if skipped["count"]:
        writer.extra_json("skipped.json", skipped)
    return {
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "notes": result.notes,
        "timings": {
            "train_seconds": round(stats.seconds, 3),
            "eval_seconds": round(eval_seconds, 3),
            "train_samples": stats.samples,
            "train_samples_per_s": round(stats.samples_per_s, 2),
            "steps": stats.steps,
            "epochs": round(stats.epochs, 3),
            "warmup_steps": stats.warmup_steps,
            "final_loss": stats.final_loss,
            **measure.peak_memory_mb(device),
        },
        "cost": Cost(params=total, trainable_params=trainable, forward_flops_per_sample=flops),
        "skipped": {**skipped, "samples": skipped.get("samples", [])[:100]},
        "data": {
            "train_examples": len(data.train),
            "eval_examples": len(data.eval),
            "dataset_fingerprint": spec.dataset_fingerprint,
            **{k: v for k, v in data.info.items() if k.endswith("fingerprint")},
        },
    }


def _flops(task: Task, model, head, data: TaskData, batcher: Batcher) -> int | None:
    """Forward FLOPs for one eval example (for retrieval: both towers, plus the fusion of the pair)."""
    batch = batcher(data.eval, torch.arange(1), with_targets=False)
    was_training = model.training
    model.eval()
    try:
        if task.type == "retrieval":

            def fn(b):
                img = model.encode_image(b["image"])
                txt = model.encode_text(b["input_ids"], b["attention_mask"])
                return model.fuse(img, txt) if model.can_fuse else (img, txt)
        else:

            def fn(b):
                return head(model(b)["pooled"])

        return measure.forward_flops(fn, batch)
    finally:
        model.train(was_training)
