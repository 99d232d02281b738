"""The training loop: one function, readable top to bottom.

Micro-batches walk a seeded permutation of the training examples, epoch after epoch; ``grad_accum`` micro-batches
make one optimiser step. A non-finite loss or an out-of-memory error stops the run with a one-line reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import RunFailed, is_out_of_memory
from harness.models.base import XModel
from harness.suite.schema import TrainSpec
from harness.tasks.base import Batcher, Task, TaskData
from harness.train.optim import build_optimizer, lr_lambda, param_groups, warmup_steps


@dataclass
class TrainStats:
    steps: int
    epochs: float
    samples: int
    seconds: float
    final_loss: float
    warmup_steps: int

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")


def plan_steps(n_train: int, train: TrainSpec) -> tuple[int, int]:
    """(optimiser steps per epoch, total optimiser steps)."""
    micro_per_epoch = math.ceil(n_train / train.batch_size)
    per_epoch = max(1, math.ceil(micro_per_epoch / train.grad_accum))
    total = train.steps if train.steps is not None else train.epochs * per_epoch
    return per_epoch, total


def micro_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[tuple[int, torch.Tensor]]:
    """Endless (epoch, indices) stream over seeded permutations; the last batch of an epoch may be smaller."""
    epoch = 0
    while True:
        perm = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            yield epoch, perm[start : start + batch_size]
        epoch += 1


def train_model(
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
) -> TrainStats:
    """Train ``model`` + ``head`` on ``data.train`` with the suite's optimiser and schedule."""
    n = len(data.train)
    per_epoch, total = plan_steps(n, train)
    optimizer = build_optimizer(param_groups(model, head, train), train)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total, train))
    generator = torch.Generator().manual_seed(seed)
    stream = micro_batches(n, train.batch_size, generator)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    frozen = _set_frozen(model, train.freeze_encoders_epochs > 0)
    model.train()
    head.train()
    samples, loss_value, start = 0, float("nan"), time.perf_counter()
    for step in range(total):
        if frozen and step >= train.freeze_encoders_epochs * per_epoch:
            frozen = _set_frozen(model, False)
        running = 0.0
        for _ in range(train.grad_accum):
            epoch, idx = next(stream)
            batch = batcher(data.train, idx, train=True)
            try:
                with autocast():
                    loss = task.loss(model, head, batch)
                if not torch.isfinite(loss):
                    raise RunFailed(
                        f"non-finite loss ({loss.item()}) at step {step + 1}/{total} (epoch {epoch + 1}); lower "
                        "train.lr, keep train.grad_clip on, or use precision fp32/bf16"
                    )
                (scaler.scale(loss / train.grad_accum) if scaler else loss / train.grad_accum).backward()
            except Exception as exc:
                if not is_out_of_memory(exc):  # torch.OutOfMemoryError (CUDA) or the CPU allocator's RuntimeError
                    raise
                raise RunFailed(
                    f"out of memory at step {step + 1} with batch_size {train.batch_size}; lower train.batch_size "
                    "and raise train.grad_accum to keep the effective batch size"
                ) from exc
            running += loss.item() / train.grad_accum
            samples += len(idx)
        if scaler is not None:
            scaler.unscale_(optimizer)
        grad_norm = nn.utils.clip_grad_norm_(params, train.grad_clip) if train.grad_clip else None
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        loss_value = running
        if step == 0 or (step + 1) % max(1, total // 20) == 0 or step + 1 == total:
            log(
                {
                    "step": step + 1,
                    "epoch": round((step + 1) / per_epoch, 3),
                    "loss": round(loss_value, 6),
                    "lr": optimizer.param_groups[0]["lr"],
                    "grad_norm": None if grad_norm is None else float(grad_norm),
                    "elapsed_s": round(time.perf_counter() - start, 3),
                }
            )
        if on_step is not None:
            on_step(step + 1)
    seconds = time.perf_counter() - start
    return TrainStats(total, total / per_epoch, samples, seconds, loss_value, warmup_steps(total, train))


def _set_frozen(model: XModel, frozen: bool) -> bool:
    """Freeze (or release) the image and text encoders; returns ``frozen``."""
    for name, module in model.branches().items():
        if name in ("image", "text"):
            for p in module.parameters():
                p.requires_grad_(not frozen)
    return frozen
