"""The training loop: one class, readable top to bottom.

Micro-batches walk a seeded permutation of the training examples, epoch after epoch; ``grad_accum`` micro-batches
make one optimiser step. Every ``eval_every`` steps (or epochs; by default every epoch) and at the last step the
model is scored on the val split; the best state on the selection metric is kept and, at the end, loaded back, so
the caller scores the test split once with it. Early stopping is optional.

Every ``checkpoint_every`` steps the whole state is written (see :mod:`harness.train.checkpoint`); a run started
again resumes from its last checkpoint with exactly the same numbers.

A non-finite loss stops the run with a one-line reason. An out-of-memory error does too, unless the suite sets
``on_oom: halve_batch``: the step is then redone with micro-batches of half the size and twice as many of them
(the effective batch, and which samples it holds, stay the same), and the adjustment is recorded.

Time is split into data (building batches: indexing, augmentation, copies to the device), compute (forward,
backward and the optimiser step) and val evaluation.

Under ``torchrun`` (:mod:`harness.dist`) every rank draws the same global micro-batches (``batch_size`` x world
size examples) and takes its interleaved share of each; the gradients are summed over the ranks before the step, so
the step is the one a single process takes with the same global batch. The ranks agree after every step on the
loss and on whether any of them failed, so a non-finite loss or an out-of-memory error on one rank stops the run on
all of them with one reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness import dist
from harness.errors import RunFailed, describe, is_out_of_memory
from harness.models.base import XModel
from harness.suite.schema import TrainSpec
from harness.tasks.base import Batcher, Task, TaskData
from harness.train.checkpoint import Checkpoints, rng_state, set_rng_state
from harness.train.features import frozen_for_run
from harness.train.optim import build_optimizer, lr_lambda, param_groups, warmup_steps


@dataclass
class TrainStats:
    steps: int
    epochs: float
    samples: int
    seconds: float  # training time: data + compute (val evaluations excluded)
    final_loss: float
    warmup_steps: int
    data_seconds: float = 0.0
    compute_seconds: float = 0.0
    val_seconds: float = 0.0
    val_samples: int = 0
    val_evaluations: int = 0
    best: dict[str, Any] | None = None  # {"step", "metric", "value", "metrics"} of the selected state
    stopped_early: bool = False
    resumed_from_step: int | None = None
    micro_batch: int = 0
    grad_accum: int = 0
    adjustments: list[str] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")

    @property
    def data_wait_fraction(self) -> float | None:
        total = self.data_seconds + self.compute_seconds
        return self.data_seconds / total if total > 0 else None


def plan_steps(n_train: int, train: TrainSpec, world_size: int | None = None) -> tuple[int, int]:
    """(optimiser steps per epoch, total optimiser steps); a micro-batch is ``batch_size`` examples per rank, so
    ``batch_size x world_size`` in all (the world of this process when ``world_size`` is None)."""
    world_size = dist.world().size if world_size is None else world_size
    micro_per_epoch = math.ceil(n_train / (train.batch_size * world_size))
    per_epoch = max(1, math.ceil(micro_per_epoch / train.grad_accum))
    total = train.steps if train.steps is not None else train.epochs * per_epoch
    return per_epoch, total


def eval_steps(n_train: int, train: TrainSpec, world_size: int | None = None) -> list[int]:
    """The optimiser steps (1-based) after which the val split is scored; always includes the last."""
    per_epoch, total = plan_steps(n_train, train, world_size)
    every = train.eval_every or per_epoch * (train.eval_every_epochs or 1)
    return sorted({s for s in range(every, total + 1, every)} | {total})


class DataOrder:
    """Endless micro-batches over seeded permutations (the last batch of an epoch may be smaller); its state is
    the position in the data order."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.cursor = 0, 0
        self.perm = torch.randperm(n, generator=self.generator)

    def next(self) -> tuple[int, torch.Tensor]:
        if self.cursor >= self.n:
            self.epoch, self.cursor = self.epoch + 1, 0
            self.perm = torch.randperm(self.n, generator=self.generator)
        idx = self.perm[self.cursor : self.cursor + self.batch_size]
        self.cursor += len(idx)
        return self.epoch, idx

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "perm": self.perm, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor, self.perm = state["epoch"], state["cursor"], state["perm"]
        self.generator.set_state(state["generator"])


@dataclass
class Selection:
    """How the best state is chosen: the val metric, its direction, and early stopping."""

    metric: str
    higher_is_better: bool = True
    patience: int | None = None
    min_delta: float = 0.0

    def better(self, value: float, best: float | None) -> bool:
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best + self.min_delta if self.higher_is_better else value < best - self.min_delta


class Trainer:
    """Trains ``model`` + ``head`` on ``data.train`` with the suite's optimiser and schedule (see the module doc)."""

    def __init__(
        self,
        model: XModel,
        head: nn.Module,
        task: Task,
        data: TaskData,
        train: TrainSpec,
        batcher: Batcher,
        autocast: Callable,
        scaler: torch.amp.GradScaler | None,
        seed: int,
        log: Callable[[dict], None],
        on_step: Callable[[int], None] | None = None,
        *,
        evaluate: Callable[[], dict[str, float]] | None = None,
        selection: Selection | None = None,
        checkpoints: Checkpoints | None = None,
        on_oom: str = "fail",
        sync: Callable[[], None] | None = None,
    ) -> None:
        self.model, self.head, self.task, self.data, self.train = model, head, task, data, train
        self.batcher, self.autocast, self.scaler, self.log, self.on_step = batcher, autocast, scaler, log, on_step
        self.evaluate, self.selection, self.checkpoints, self.on_oom = evaluate, selection, checkpoints, on_oom
        self.sync = sync or (lambda: None)
        n = len(data.train)
        self.per_epoch, self.total = plan_steps(n, train)
        self.eval_at = set(eval_steps(n, train)) if evaluate is not None else set()
        self.optimizer = build_optimizer(param_groups(model, head, train), train)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(self.total, train))
        self.world = dist.world()
        self.order = DataOrder(n, train.batch_size * self.world.size, seed)  # global micro-batches
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.stats = TrainStats(
            0, 0.0, 0, 0.0, float("nan"), warmup_steps(self.total, train), micro_batch=train.batch_size
        )
        self.stats.grad_accum = train.grad_accum
        self.bad_evals = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    # ---------------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "model": self.model.state_dict(),
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            # every rank's generators (dropout and augmentation draws are per rank), for an exact resume under DDP
            "rng_ranks": dist.all_gather_object(rng_state()) if self.world.active else None,
            "world_size": self.world.size,
            "data_order": self.order.state_dict(),
            "augment_generator": self.batcher.generator.get_state(),
            "loop": {
                "step": s.steps,
                "samples": s.samples,
                "final_loss": s.final_loss,
                "data_seconds": s.data_seconds,
                "compute_seconds": s.compute_seconds,
                "val_seconds": s.val_seconds,
                "val_samples": s.val_samples,
                "val_evaluations": s.val_evaluations,
                "best": s.best,
                "bad_evals": self.bad_evals,
                "micro_batch": s.micro_batch,
                "adjustments": list(s.adjustments),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.order.load_state_dict(state["data_order"])
        self.batcher.generator.set_state(state["augment_generator"])
        loop, s = state["loop"], self.stats
        s.steps, s.samples, s.final_loss = loop["step"], loop["samples"], loop["final_loss"]
        s.data_seconds, s.compute_seconds = loop["data_seconds"], loop["compute_seconds"]
        s.val_seconds, s.val_samples, s.val_evaluations = (
            loop["val_seconds"],
            loop["val_samples"],
            loop["val_evaluations"],
        )
        s.best, s.micro_batch, s.adjustments = loop["best"], loop["micro_batch"], list(loop["adjustments"])
        s.grad_accum = self.train.grad_accum * math.ceil(self.train.batch_size / max(1, s.micro_batch))
        self.bad_evals = loop["bad_evals"]
        s.resumed_from_step = s.steps
        if s.best is not None and self.checkpoints is not None:
            best = self.checkpoints.best()
            if best is None:
                raise RunFailed(
                    f"the resume checkpoint at step {s.steps} refers to a best state, but "
                    f"{self.checkpoints.folder}/best.pt is missing; delete the run folder to start it again"
                )
            self.best_state = {"model": best["model"], "head": best["head"]}
        if state.get("world_size", 1) != self.world.size:
            raise RunFailed(
                f"the resume checkpoint at step {s.steps} was written by {state.get('world_size', 1)} process(es) "
                f"and this run has {self.world.size}; resume with the same torchrun --nproc_per_node, or delete the "
                "run folder to start it again"
            )
        ranks = state.get("rng_ranks")
        set_rng_state(ranks[self.world.rank] if ranks else state["rng"])  # last: nothing above may draw

    # ----------------------------------------------------------------------------------------------------- run
    def run(self, resume: dict[str, Any] | None = None) -> TrainStats:
        if resume is not None:
            self.load_state_dict(resume)
        train, s = self.train, self.stats
        frozen_until = train.freeze_encoders_epochs * self.per_epoch
        frozen = _set_frozen(self.model, s.steps < frozen_until)
        self._train_mode()
        for step in range(s.steps, self.total):
            if frozen and step >= frozen_until:
                frozen = _set_frozen(self.model, False)
            s.final_loss = self._step(step)
            s.steps = step + 1
            if step == 0 or (step + 1) % max(1, self.total // 20) == 0 or step + 1 == self.total:
                self.log(
                    {
                        "step": step + 1,
                        "epoch": round((step + 1) / self.per_epoch, 3),
                        "loss": round(s.final_loss, 6),
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "grad_norm": self._grad_norm,
                        "samples": s.samples,
                        "elapsed_s": round(s.data_seconds + s.compute_seconds + s.val_seconds, 3),
                    }
                )
            stop = self._validate(step + 1) if (step + 1) in self.eval_at else False
            if self.on_step is not None:
                self.on_step(step + 1)
            if stop:
                s.stopped_early = True
                break
            every = train.checkpoint_every
            if self.checkpoints is not None and every and (step + 1) % every == 0 and step + 1 < self.total:
                state = self.state_dict()  # on every rank: it gathers their generators
                if self.world.main:
                    self.checkpoints.save(step + 1, state)
        s.seconds = s.data_seconds + s.compute_seconds
        s.epochs = s.steps / self.per_epoch
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state["model"])
            self.head.load_state_dict(self.best_state["head"])
        return s

    def _step(self, step: int) -> float:
        """One optimiser step; redone with smaller micro-batches after an out-of-memory error when allowed."""
        train, s = self.train, self.stats
        batches = [self.order.next() for _ in range(train.grad_accum)]
        # (epoch, this rank's examples, size of the global micro-batch)
        batches = [(epoch, dist.rank_slice(idx), len(idx)) for epoch, idx in batches]
        while True:
            try:
                return self._accumulate(step, batches)
            except RunFailed:
                raise
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                if self.on_oom != "halve_batch" or s.micro_batch <= 1:
                    raise RunFailed(
                        f"out of memory at step {step + 1} with micro-batch {s.micro_batch}; lower "
                        "train.batch_size and raise train.grad_accum to keep the effective batch size, or set "
                        "train.on_oom: halve_batch"
                    ) from exc
                _free_cached_memory()
                s.micro_batch = max(1, s.micro_batch // 2)
                s.grad_accum = train.grad_accum * math.ceil(train.batch_size / s.micro_batch)
                s.adjustments.append(
                    f"out of memory at step {step + 1} ({describe(exc)[:80]}): micro-batch halved to "
                    f"{s.micro_batch}, {s.grad_accum} micro-batches per step (effective batch unchanged)"
                )

    def _accumulate(self, step: int, batches: list[tuple[int, torch.Tensor, int]]) -> float:
        """Forward and backward over the step's micro-batches (``(epoch, this rank's indices, global size)``),
        then the optimiser step. Under DDP the ranks first agree (one all-reduce) on the loss and on whether one
        of them failed, then sum their gradients."""
        train, s = self.train, self.stats
        scaler = self.scaler
        running = 0.0
        t_step = time.perf_counter()
        data_time = 0.0
        failure: BaseException | None = None
        try:
            for epoch, idx, global_size in batches:
                for chunk in idx.split(s.micro_batch):
                    t0 = time.perf_counter()
                    batch = self.batcher(self.data.train, chunk, train=True)
                    self.sync()
                    data_time += time.perf_counter() - t0
                    # mean-reduced losses, weighted by their share of the global micro-batch: exact under
                    # splitting over micro-batches and over ranks
                    weight = len(chunk) / (global_size * train.grad_accum)
                    with self.autocast():
                        loss = self.task.loss(self.model, self.head, batch)
                    value = loss.item()  # one device sync per micro-batch, which the check and the log share
                    if not math.isfinite(value):
                        raise RunFailed(
                            f"non-finite loss ({value}) at step {step + 1}/{self.total} (epoch {epoch + 1}); "
                            "lower train.lr, keep train.grad_clip on, or use precision fp32/bf16"
                        )
                    scaled = loss if weight == 1.0 else loss * weight  # x * 1.0 is exact: the same gradients
                    (scaler.scale(scaled) if scaler else scaled).backward()
                    running += value * weight
        except Exception as exc:
            if not self.world.active:
                raise
            failure = exc
        if self.world.active:
            running = self._agree(step, running, failure)
        for _, _, global_size in batches:
            s.samples += global_size
        dist.all_reduce_grads(self.params)
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        norm = nn.utils.clip_grad_norm_(self.params, train.grad_clip) if train.grad_clip else None
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.world.active:  # rank 0's BatchNorm statistics everywhere (DDP's broadcast_buffers)
            dist.broadcast_module(self.model, buffers_only=True)
            dist.broadcast_module(self.head, buffers_only=True)
        self.sync()
        self._grad_norm = None if norm is None else float(norm)
        s.data_seconds += data_time
        s.compute_seconds += time.perf_counter() - t_step - data_time
        return running

    _grad_norm: float | None = None

    def _agree(self, step: int, running: float, failure: BaseException | None) -> float:
        """Under DDP: the step's loss summed over the ranks, or, when any rank failed, the same exception on all
        of them (an out-of-memory error is re-raised as such, so each rank halves its micro-batch and redoes the
        step; any other failure stops the run with the failing rank's reason)."""
        import torch.distributed as tdist

        kind = 0.0 if failure is None else (1.0 if is_out_of_memory(failure) else 2.0)
        device = torch.device("cuda", self.world.local_rank) if self.world.backend == "nccl" else torch.device("cpu")
        box = torch.tensor([running, kind], dtype=torch.float64, device=device)
        flags = box.clone()
        tdist.all_reduce(box)  # the loss
        tdist.all_reduce(flags, op=tdist.ReduceOp.MAX)  # the worst failure
        worst = int(flags[1].item())
        if worst == 0:
            return float(box[0].item())
        reasons = dist.all_gather_object((kind, None if failure is None else describe(failure)))
        if worst == 1:  # out of memory somewhere: every rank redoes the step with half the micro-batch
            if failure is not None:
                raise failure
            raise torch.OutOfMemoryError(f"out of memory on another rank: {next(r for k, r in reasons if k)}")
        rank, reason = next((i, r) for i, (k, r) in enumerate(reasons) if k == 2)
        if failure is not None and self.world.rank == rank:
            raise failure  # the failing rank keeps its own exception (and traceback)
        raise RunFailed(f"rank {rank} of {self.world.size} failed: {reason}"[:400])

    def _train_mode(self) -> None:
        """Train mode, except encoders frozen for the whole run: eval mode (no dropout, BatchNorm statistics kept),
        the linear-probe convention, which also makes their features cacheable (:mod:`harness.train.features`)."""
        self.model.train()
        self.head.train()
        if frozen_for_run(self.train.freeze_encoders_epochs, self.per_epoch, self.total):
            for name, module in self.model.branches().items():
                if name in ("image", "text"):
                    module.eval()

    def _validate(self, step: int) -> bool:
        """Score the val split; keep the state if it is the best so far. Returns whether to stop early."""
        s, sel = self.stats, self.selection
        t0 = time.perf_counter()
        self.model.eval()
        self.head.eval()
        try:
            metrics = self.evaluate()
        finally:
            self._train_mode()
        s.val_seconds += time.perf_counter() - t0
        s.val_samples += len(self.data.val)
        s.val_evaluations += 1
        value = float(metrics.get(sel.metric, float("nan")))
        improved = sel.better(value, None if s.best is None else s.best["value"])
        if improved:
            s.best = {"step": step, "metric": sel.metric, "value": value, "metrics": dict(metrics)}
            self.best_state = {
                "model": {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()},
                "head": {k: v.detach().to("cpu", copy=True) for k, v in self.head.state_dict().items()},
            }
            if self.checkpoints is not None and self.train.checkpoint_every and self.world.main:
                self.checkpoints.save_best({**self.best_state, "step": step, "metrics": dict(metrics)})
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        self.log(
            {
                "step": step,
                "epoch": round(step / self.per_epoch, 3),
                "split": "val",
                "metrics": {k: round(float(v), 6) for k, v in metrics.items()},
                "select": sel.metric,
                "best": improved,
            }
        )
        return sel.patience is not None and self.bad_evals >= sel.patience


def _free_cached_memory() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _set_frozen(model: XModel, frozen: bool) -> bool:
    """Freeze (or release) the image and text encoders; returns ``frozen``."""
    for name, module in model.branches().items():
        if name in ("image", "text"):
            for p in module.parameters():
                p.requires_grad_(not frozen)
    return frozen
