"""AdamW parameter groups (per-branch lr multipliers, no decay on norms/biases) and warmup + decay schedules."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from harness.models.base import XModel
from harness.suite.schema import TrainSpec


def param_groups(model: XModel, head: nn.Module, train: TrainSpec) -> list[dict]:
    """Groups keyed by (branch, decay). Branches: image / text / fusion from the model, ``head`` for the task head.

    No weight decay on parameters with fewer than 2 dimensions (norm weights, biases) and on the model's
    ``no_weight_decay()`` names (position embeddings, class tokens). Parameters outside any branch count as fusion.
    """
    branch_of: dict[int, str] = {}
    for branch, module in model.branches().items():
        for p in module.parameters():
            branch_of[id(p)] = branch
    skip = model.no_weight_decay()
    groups: dict[tuple[str, bool], dict] = {}

    def add(name: str, p: nn.Parameter, branch: str) -> None:
        decay = p.ndim >= 2 and name not in skip
        key = (branch, decay)
        if key not in groups:
            mult = getattr(train.lr_mult, branch)
            groups[key] = {
                "params": [],
                "names": [],
                "branch": branch,
                "lr": train.lr * mult,
                "lr_mult": mult,
                "weight_decay": train.weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)

    for name, p in model.named_parameters():
        add(name, p, branch_of.get(id(p), "fusion"))
    for name, p in head.named_parameters():
        add(f"head.{name}", p, "head")
    return [groups[k] for k in sorted(groups)]


def build_optimizer(groups: list[dict], train: TrainSpec) -> torch.optim.AdamW:
    """AdamW over ``groups``; the fused implementation (one kernel per step) where torch has it for the parameters'
    device (CPU and CUDA in torch >= 2.4), else torch's default. The choice depends only on the device type, which
    is part of every run's fingerprint."""
    clean = [{k: v for k, v in g.items() if k != "names"} for g in groups]
    kwargs = {"lr": train.lr, "betas": train.betas, "eps": train.eps, "weight_decay": train.weight_decay}
    if fused_available(clean):
        return torch.optim.AdamW(clean, fused=True, **kwargs)
    return torch.optim.AdamW(clean, **kwargs)


def fused_available(groups: list[dict]) -> bool:
    """Whether ``torch.optim.AdamW(fused=True)`` supports every parameter in ``groups`` (device and dtype)."""
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    devices = set(_get_fused_kernels_supported_devices())
    params = [p for g in groups for p in g["params"]]
    return bool(params) and all(p.device.type in devices and p.is_floating_point() for p in params)


def lr_lambda(total_steps: int, train: TrainSpec) -> Callable[[int], float]:
    """Multiplier of the base lr at optimiser step ``s``: linear warmup, then cosine/linear decay or constant."""
    warmup = train.warmup_steps if train.warmup_steps is not None else round(train.warmup_ratio * total_steps)
    warmup = min(warmup, max(total_steps - 1, 0))
    floor = train.min_lr_ratio

    def fn(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if train.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if train.schedule == "linear":
            return floor + (1.0 - floor) * (1.0 - progress)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


def warmup_steps(total_steps: int, train: TrainSpec) -> int:
    w = train.warmup_steps if train.warmup_steps is not None else round(train.warmup_ratio * total_steps)
    return min(w, max(total_steps - 1, 0))
