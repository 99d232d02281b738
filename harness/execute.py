"""Execute one RunSpec into one run folder: seed, build, train, evaluate, write its ``RunRecord``.

The data (decoded images, tokens) is prepared once per task by the runner and shared by every model and seed of that
task; each run only builds its model and head, trains and evaluates.
"""

from __future__ import annotations

import math
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

from harness.dist import world
from harness.errors import RunFailed, UserError, describe, is_out_of_memory
from harness.models import BuildContext
from harness.models.contract import check_forward
from harness.plan import RunSpec
from harness.results.record import Cost, RunRecord, Timings, finite_metrics
from harness.results.record import write_record as _write_record
from harness.results.store import NullWriter, RunWriter
from harness.suite.check import ResolvedModel, build_model
from harness.suite.schema import ImageSpec
from harness.tasks.base import Batcher, Task, TaskData
from harness.train import features, measure
from harness.train.checkpoint import Checkpoints
from harness.train.loop import Selection, Trainer, plan_steps
from harness.train.precision import apply_switches, autocast_factory, compile_encoders, grad_scaler
from harness.train.quantize import evaluate_int8


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


def _identity(spec: RunSpec, ctx: SharedContext) -> dict[str, Any]:
    return {
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
        "main_metric": type(ctx.tasks[spec.task]).main_metric,
    }


def execute_run(
    spec: RunSpec,
    ctx: SharedContext,
    out_dir: Path,
    on_step: Callable[[int], None] | None = None,
    *,
    tensorboard: Path | None = None,
) -> RunRecord:
    """Run one (task, model, seed) into its folder; the caller holds the run's lock. Returns its record.

    A run that fails (a non-finite loss, out of memory, bad data, an exception in the model's code) gets a failed
    record naming the error, and the caller goes on with the next run; only a configuration error (``UserError``
    that is not a :class:`RunFailed`) propagates, because it concerns every run.

    Under torchrun every rank calls this for the same run; only rank 0 writes (the others get a
    :class:`NullWriter` and their record is not written)."""
    main = world().main
    folder = out_dir / spec.folder
    checkpoints = Checkpoints(folder, spec.fingerprint, spec.train.keep) if spec.train.checkpoint_every else None
    resume, passed_over = checkpoints.latest() if checkpoints is not None else (None, [])
    resume_step = resume["step"] if resume is not None else None
    writer = RunWriter(folder, resume_step=resume_step) if main else NullWriter(folder)
    write_record = _write_record if main else (lambda folder, record: None)
    writer.spec({**spec.to_json(), "fingerprint": spec.fingerprint, "run_id": spec.run_id, "folder": spec.folder})
    task_cls = type(ctx.tasks[spec.task])
    identity = _identity(spec, ctx)
    started = time.perf_counter()

    def failed(error: str, tb: str | None = None) -> RunRecord:
        wall = Timings(wall_seconds=round(time.perf_counter() - started, 3))
        return RunRecord(**identity, status="failed", error=error, traceback=tb, timings=wall, env=ctx.env)

    try:
        try:
            log = writer.log if tensorboard is None else _Tee(writer.log, tensorboard / spec.run_id)
            try:
                outcome = _run(spec, ctx, writer, log, on_step, checkpoints, resume, out_dir=out_dir)
            finally:
                if isinstance(log, _Tee):
                    log.close()
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
                    "train.eval_batch_size, image.size or the model size, or set train.on_oom: halve_batch"
                )
            else:  # an exception in model or task code: this run fails, the suite goes on
                record = failed(f"{describe(exc)[:300]} ({_where(exc)})", traceback.format_exc())
            write_record(folder, record)
            return record
    finally:
        writer.close()
    if passed_over:
        outcome["notes"] = {**outcome["notes"], "checkpoints_passed_over": passed_over}
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
    if checkpoints is not None and record.ok and main:
        checkpoints.finish()
    return record


class _Tee:
    """The run's log lines, also written as TensorBoard scalars (``--tensorboard``): train loss, learning rate,
    throughput (samples/s between two log lines) and every val metric."""

    def __init__(self, log: Callable[[dict], None], folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise UserError(
                "--tensorboard needs the tensorboard package: pip install 'xmbench[tensorboard]' (or tensorboard)"
            ) from exc
        self.log, self.tb = log, SummaryWriter(str(folder))
        self.last: tuple[int, float] | None = None

    def __call__(self, row: dict) -> None:
        self.log(row)
        step = int(row["step"])
        if row.get("split") == "val":
            for name, value in row.get("metrics", {}).items():
                self.tb.add_scalar(f"val/{name}", value, step)
            return
        self.tb.add_scalar("train/loss", row["loss"], step)
        self.tb.add_scalar("train/lr", row["lr"], step)
        if "samples" in row and "elapsed_s" in row:
            if self.last is not None and row["elapsed_s"] > self.last[1]:
                rate = (row["samples"] - self.last[0]) / (row["elapsed_s"] - self.last[1])
                self.tb.add_scalar("train/samples_per_s", rate, step)
            self.last = (row["samples"], row["elapsed_s"])

    def close(self) -> None:
        self.tb.close()


def _where(exc: BaseException) -> str:
    """``file:line in function`` of the innermost frame of the exception (where a model's code raised)."""
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return "no traceback"
    frame = tb[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}; traceback in error.json"


def _run(
    spec: RunSpec,
    ctx: SharedContext,
    writer: RunWriter,
    log: Callable[[dict], None],
    on_step,
    checkpoints: Checkpoints | None = None,
    resume: dict[str, Any] | None = None,
    *,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    device = ctx.device
    train = spec.train
    seed_everything(spec.seed, spec.hardware.deterministic)
    if not getattr(type(ctx.tasks[spec.task]), "trains", True):
        return _run_untrained(spec, ctx, writer, out_dir)
    model = _build(spec, ctx)
    task, data = ctx.tasks[spec.task], ctx.data[spec.task]
    head = task.build_head(model, data).to(device)
    rank_seed = _data_parallel_start(spec, model, head)
    own_augmentation = getattr(type(task), "own_augmentation", False)
    if own_augmentation:  # the task augments images together with their targets (detection: boxes)
        task.augment = (ctx.image.augment, ctx.image.crop_scale)
    augment = "none" if own_augmentation else ctx.image.augment
    batcher = Batcher(ctx.image.mean, ctx.image.std, device, augment, ctx.image.crop_scale, rank_seed)
    apply_switches(spec.hardware, model)
    batcher.channels_last = spec.hardware.channels_last
    probe = batcher(data.train, torch.arange(min(2, len(data.train))), with_targets=False)
    check_forward(model, probe, f"models.{spec.model} ({spec.model_type})")
    autocast = autocast_factory(device, spec.hardware.precision)
    measure.reset_peak_memory(device)

    total, trainable = measure.count_params(model, head)
    flops = _count_flops(task, model, head, data, batcher, train.batch_size, autocast)
    eval_bs = train.eval_batch_size or 2 * train.batch_size
    image_encoder = getattr(model, "image", None)  # the feature cache may swap it; kept weights need it back
    cache_notes = _feature_cache(spec, type(task), model, data, batcher, eval_bs, autocast)
    if spec.hardware.compile:  # after the FLOP count, which needs eager modules
        cache_notes = {**cache_notes, "compiled": compile_encoders(model, spec.hardware.compile)}
    task_cls = type(task)
    select = getattr(task.spec, "select_metric", None) or task_cls.main_metric
    stop = train.early_stopping
    trainer = Trainer(
        model,
        head,
        task,
        data,
        train,
        batcher,
        autocast,
        grad_scaler(device, spec.hardware.precision),
        spec.seed,
        log,
        on_step,
        evaluate=(lambda: task.evaluate(model, head, data, batcher, eval_bs, autocast, split="val").metrics)
        if train.validation
        else None,
        selection=Selection(
            select, task_cls.higher_is_better, stop.patience if stop else None, stop.min_delta if stop else 0.0
        ),
        checkpoints=checkpoints,
        on_oom=train.on_oom,
        sync=(lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None,
    )
    stats = trainer.run(resume)
    model.eval()
    head.eval()
    eval_start = time.perf_counter()
    result = task.evaluate(model, head, data, batcher, eval_bs, autocast, split="test")
    test_seconds = time.perf_counter() - eval_start
    if spec.extra.get("keep_weights") and world().main:  # a zero-shot task reads it (under torchrun rank 0 writes)
        keep_weights(writer.folder, model, head, image_encoder)
    quantized = None
    if spec.quantize:  # an INT8 copy scored on CPU (harness/train/quantize.py); the fp32 results above stand
        quantized = evaluate_int8(
            spec, task, model, head, data, ctx.image, eval_bs, result, writer.folder, image_encoder
        )
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
    eval_seconds = stats.val_seconds + test_seconds
    eval_samples = stats.val_samples + len(data.test)
    samples_per_s = stats.samples_per_s
    peak = measure.peak_flops(ctx.env.get("gpu"), spec.hardware.precision, spec.hardware.peak_tflops)
    best = stats.best or {}
    return {
        "quantized": quantized,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "val_metrics": {k: float(v) for k, v in best.get("metrics", {}).items() if math.isfinite(float(v))},
        "selection": {
            "metric": select,
            "step": best.get("step"),
            "value": best.get("value"),
            "evaluations": stats.val_evaluations,
            "eval_steps": sorted(trainer.eval_at),
            "stopped_early": stats.stopped_early,
            "early_stopping": stop.model_dump() if stop else None,
        },
        "adjustments": list(stats.adjustments),
        "notes": {**result.notes, **cache_notes, "batch": _batch_note(spec, stats)},
        "timings": {
            "train_seconds": round(stats.seconds, 3),
            "eval_seconds": round(eval_seconds, 3),
            "train_samples": stats.samples,
            "train_samples_per_s": round(samples_per_s, 2),
            "steps": stats.steps,
            "epochs": round(stats.epochs, 3),
            "warmup_steps": stats.warmup_steps,
            "final_loss": stats.final_loss,
            "data_seconds": round(stats.data_seconds, 3),
            "compute_seconds": round(stats.compute_seconds, 3),
            "val_seconds": round(stats.val_seconds, 3),
            "test_seconds": round(test_seconds, 3),
            "data_wait_fraction": None if stats.data_wait_fraction is None else round(stats.data_wait_fraction, 4),
            "eval_samples_per_s": round(eval_samples / eval_seconds, 2) if eval_seconds > 0 else None,
            "val_evaluations": stats.val_evaluations,
            "resumed_from_step": stats.resumed_from_step,
            "rss_scope": measure.rss_peak_scope() if device.type != "cuda" else None,
            **measure.peak_memory_mb(device),
        },
        "cost": Cost(
            params=total,
            trainable_params=trainable,
            forward_flops_per_sample=flops["forward"],
            train_flops_per_sample=flops["train"],
            flops_error=flops["error"],
            peak_flops=peak,
            mfu=measure.mfu(flops["train"], samples_per_s, peak),
        ),
        "skipped": {**skipped, "samples": skipped.get("samples", [])[:100]},
        "data": {
            "train_examples": len(data.train),
            "val_examples": len(data.val),
            "eval_examples": len(data.test),
            "splits": list(spec.splits),
            "dataset_fingerprint": spec.dataset_fingerprint,
            **{k: v for k, v in data.info.items() if k.endswith("fingerprint")},
        },
    }


WEIGHTS = "model.pt"


def _data_parallel_start(spec: RunSpec, model, head) -> int:
    """Under torchrun: every rank starts from rank 0's weights, and ranks other than 0 draw dropout and
    augmentation from their own streams (rank 0 keeps the single-process ones). Returns the augmentation seed."""
    from harness.dist import broadcast_module

    w = world()
    if not w.active:
        return spec.seed
    broadcast_module(model)
    broadcast_module(head)
    if w.main:
        return spec.seed
    rank_seed = int(np.random.SeedSequence([spec.seed, w.rank]).generate_state(1)[0])
    torch.manual_seed(rank_seed)
    random.seed(rank_seed)
    np.random.seed(rank_seed)
    return rank_seed


def _batch_note(spec: RunSpec, stats) -> dict[str, Any]:
    """The batch the run trained with: per-rank micro-batch, accumulation, world size, the effective (global)
    batch and the peak learning rate."""
    train = spec.train
    return {
        "world_size": spec.world_size,
        "batch_size_per_rank": train.batch_size,
        "grad_accum": train.grad_accum,
        "effective_batch": train.batch_size * train.grad_accum * spec.world_size,
        "global_batch": train.global_batch,
        "lr": train.lr,
        "micro_batch_after_oom": stats.micro_batch if stats.micro_batch != train.batch_size else None,
    }


def _build(spec: RunSpec, ctx: SharedContext):
    """The run's model on its device, built with the suite's image size and tokenizer."""
    tok = ctx.tokenizer
    build_ctx = BuildContext(
        image_size=ctx.image.size,
        max_text_len=ctx.max_text_len,
        vocab_size=len(tok) if tok is not None else None,
        pad_token_id=getattr(tok, "pad_token_id", 0) or 0,
    )
    return build_model(ctx.models[spec.model], build_ctx).to(ctx.device)


def keep_weights(folder: Path, model, head, image_encoder) -> None:
    """Write the scored state of ``model`` and ``head`` to ``folder/model.pt`` (atomically), with the real image
    encoder even when the frozen-encoder feature cache stood in for it."""
    import io

    from harness.results.store import atomic_write_bytes

    swapped = image_encoder is not None and getattr(model, "image", None) is not image_encoder
    cached = model.image if swapped else None
    if swapped:
        model.image = image_encoder
    try:
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "head": head.state_dict()}, buf)
    finally:
        if swapped:
            model.image = cached
    atomic_write_bytes(folder / WEIGHTS, buf.getvalue())


def _run_untrained(spec: RunSpec, ctx: SharedContext, writer: RunWriter, out_dir: Path | None) -> dict[str, Any]:
    """A task that trains nothing (zero-shot): load the state its ``trained_by`` run kept, then score the test
    split once."""
    device = ctx.device
    upstream = spec.upstream or {}
    task, data = ctx.tasks[spec.task], ctx.data[spec.task]
    model = _build(spec, ctx)
    head = ctx.tasks[upstream["task"]].build_head(model, None).to(device)
    folder = (out_dir or Path(".")) / upstream["folder"]
    path = folder / WEIGHTS
    if not path.is_file():
        raise RunFailed(
            f"the {upstream['task']} run {upstream['run_id']} that trains this model's towers has not finished with "
            f"kept weights ({path} is missing); run it first (xmbench run SUITE --tasks {upstream['task']}), or, if "
            "it finished before a zero-shot task used it, delete its folder to train it again"
        )
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
    except Exception as exc:  # a damaged or foreign file
        raise RunFailed(
            f"{path}: cannot load the kept weights ({describe(exc)[:200]}); delete the file's run folder "
            "to train it again"
        ) from exc
    model.eval()
    head.eval()
    autocast = autocast_factory(device, spec.hardware.precision)
    batcher = Batcher(ctx.image.mean, ctx.image.std, device, "none", ctx.image.crop_scale, spec.seed)
    apply_switches(spec.hardware, model)
    batcher.channels_last = spec.hardware.channels_last
    measure.reset_peak_memory(device)
    total, _ = measure.count_params(model, head)
    eval_bs = spec.train.eval_batch_size or 2 * spec.train.batch_size
    one = batcher(data.test, torch.arange(1), with_targets=False)
    forward, error = None, "train FLOPs: a zero-shot run trains nothing"
    try:
        forward = measure.eval_flops(lambda b: head.embed_image(model.encode_image(b["image"])), one)
    except measure.FlopCountError as exc:
        error += f"; forward FLOPs: {exc}"
    start = time.perf_counter()
    result = task.evaluate(model, head, data, batcher, eval_bs, autocast, split="test")
    test_seconds = time.perf_counter() - start
    quantized = None
    if spec.quantize:
        quantized = evaluate_int8(spec, task, model, head, data, ctx.image, eval_bs, result, writer.folder)
    writer.predictions(result.predictions)
    for name, obj in result.files.items():
        writer.extra_json(name, obj)
    if result.evidence is not None:
        writer.evidence(result.evidence.to_bytes())
    skipped = ctx.skipped.get(spec.task) or {"count": 0}
    if skipped["count"]:
        writer.extra_json("skipped.json", skipped)
    return {
        "quantized": quantized,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        "val_metrics": {},
        "selection": {"metric": None, "trained_by": upstream.get("run_id"), "upstream": upstream.get("fingerprint")},
        "adjustments": [],
        "notes": {**result.notes, "trained_by": {k: upstream[k] for k in ("task", "run_id", "fingerprint")}},
        "timings": {
            "eval_seconds": round(test_seconds, 3),
            "test_seconds": round(test_seconds, 3),
            "eval_samples_per_s": round(len(data.test) / test_seconds, 2) if test_seconds > 0 else None,
            "rss_scope": measure.rss_peak_scope() if device.type != "cuda" else None,
            **measure.peak_memory_mb(device),
        },
        "cost": Cost(params=total, trainable_params=0, forward_flops_per_sample=forward, flops_error=error),
        "skipped": {**skipped, "samples": skipped.get("samples", [])[:100]},
        "data": {
            "train_examples": 0,
            "val_examples": 0,
            "eval_examples": len(data.test),
            "splits": list(spec.splits),
            "dataset_fingerprint": spec.dataset_fingerprint,
        },
    }


def _feature_cache(spec: RunSpec, task_cls, model, data: TaskData, batcher: Batcher, batch_size: int, autocast) -> dict:
    """With encoders frozen for the whole run, encode the images once (or reuse the cached features)."""
    train = spec.train
    per_epoch, total = plan_steps(len(data.train), train)
    if not features.frozen_for_run(train.freeze_encoders_epochs, per_epoch, total):
        return {}
    if not getattr(task_cls, "feature_cache", True):
        return {"feature_cache": {"off": f"a {task_cls.type} task reads spatial features, not cached pooled ones"}}
    reason = features.why_not_cached(model, spec.image.augment, train.feature_cache)
    if reason is not None:
        return {"feature_cache": {"off": reason}}
    key = {
        "dataset": spec.dataset_fingerprint,
        "splits": list(spec.splits),
        "image": spec.image.model_dump(mode="json"),
        "precision": spec.hardware.precision,
        "device": spec.device,
    }
    return features.install(model, data, batcher, key, batch_size, autocast)


def _count_flops(task: Task, model, head, data: TaskData, batcher: Batcher, batch_size: int, autocast) -> dict:
    """FLOPs per training sample (forward + backward, train mode, one real micro-batch: the counter sees every
    matmul, attention included) and forward FLOPs per eval example (eval mode; for retrieval: both towers plus
    the fusion of the pair). A count that fails says why in ``error``; nothing is left as None silently."""
    out: dict[str, Any] = {"train": None, "forward": None, "error": None}
    errors = []
    idx = torch.arange(min(batch_size, len(data.train)))
    aug = batcher.generator.get_state()
    try:
        batch = batcher(data.train, idx, train=True)
    finally:
        batcher.generator.set_state(aug)  # the count must not move the augmentation stream
    model.train()
    head.train()
    try:
        with autocast():
            total = measure.train_flops(lambda: task.loss(model, head, batch), [model, head])
        out["train"] = round(total / len(idx))
    except measure.FlopCountError as exc:
        errors.append(f"train FLOPs: {exc}")
    one = batcher(data.test, torch.arange(1), with_targets=False)
    model.eval()
    head.eval()
    try:
        if hasattr(task, "flops_forward"):

            def fn(b):
                return task.flops_forward(model, head, b)
        elif task.type == "retrieval":

            def fn(b):
                img = model.encode_image(b["image"])
                txt = model.encode_text(b["input_ids"], b["attention_mask"])
                return model.fuse(img, txt) if model.can_fuse else (img, txt)
        else:

            def fn(b):
                return head(model(b)["pooled"])

        out["forward"] = measure.eval_flops(fn, one)
    except measure.FlopCountError as exc:
        errors.append(f"forward FLOPs: {exc}")
    finally:
        model.train()
        head.train()
    out["error"] = "; ".join(errors) or None
    return out
