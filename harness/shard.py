"""``--shard I/N``: a deterministic 1/N of a plan's runs, balanced by estimated cost.

Every shard computes the same assignment from the plan alone (never from what is on disk, which changes while the
shards run), so N processes on N machines, each given its own ``I``, split the runs between them with no
coordinator: each run belongs to exactly one shard. The shards write into one results folder; the run locks
(:class:`harness.results.store.RunLock`) keep two processes off one run anyway, and ``xmbench report`` reads the
folder whole.

Cost of a run = the samples it trains on (optimiser steps x effective batch) plus the examples it scores, times
the parameters of its model and head-less family built on the meta device: proportional to its FLOPs for models
of one input size, which is what matters for balancing. Runs are dealt largest first to the shard with the least
cost so far (LPT scheduling; ties by fingerprint, then the lowest shard index). A run that scores another run's
kept weights (a zero-shot task's ``trained_by`` run) goes with that run, so a shard never waits for another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.errors import UserError
from harness.plan import RunSpec


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with ``0 <= I < N``; anything else is a one-line error."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ValueError(f"expected I/N (for example 0/4), got {text!r}")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"expected I/N with 0 <= I < N, got {text!r}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def model_params(plan: Any) -> dict[str, int]:
    """Parameters of every model of the plan, built once on the meta device (no memory, no weights read)."""
    import torch

    from harness.suite.check import build_model, meta_build_context

    ctx = meta_build_context(plan.suite, len(plan.tokenizer) if plan.tokenizer is not None else None)
    out = {}
    for name, resolved in plan.models.items():
        model = build_model(resolved, ctx, device=torch.device("meta"))
        out[name] = sum(p.numel() for p in model.parameters())
    return out


def run_costs(plan: Any, runs: list[RunSpec], params: dict[str, int] | None = None) -> dict[str, float]:
    """Estimated cost of each run (see the module doc), by fingerprint."""
    from harness.runner import split_sizes
    from harness.train.loop import plan_steps

    params = params if params is not None else model_params(plan)
    costs = {}
    for spec in runs:
        n_train, n_val, n_test = split_sizes(plan, spec)
        samples = n_test
        if spec.upstream is None:
            _, steps = plan_steps(n_train, spec.train, spec.world_size)
            samples += steps * spec.train.batch_size * spec.train.grad_accum * spec.world_size
            if spec.train.validation:
                samples += n_val * spec.train.epochs if spec.train.epochs else n_val
        costs[spec.fingerprint] = float(samples) * max(1, params.get(spec.model, 1))
    return costs


def assign(runs: list[RunSpec], costs: dict[str, float], count: int) -> dict[str, int]:
    """Shard index of each run (by fingerprint): groups (a training run and the runs that read its weights) dealt
    largest first to the least-loaded shard."""
    by_fp = {s.fingerprint: s for s in runs}
    group_of: dict[str, str] = {}
    for spec in runs:
        root = spec
        while root.upstream is not None and root.upstream.get("fingerprint") in by_fp:
            root = by_fp[root.upstream["fingerprint"]]
        group_of[spec.fingerprint] = root.fingerprint
    groups: dict[str, list[str]] = {}
    for fp, root in group_of.items():
        groups.setdefault(root, []).append(fp)
    weight = {root: sum(costs[fp] for fp in members) for root, members in groups.items()}
    load = [0.0] * count
    out: dict[str, int] = {}
    for root in sorted(groups, key=lambda r: (-weight[r], r)):
        shard = min(range(count), key=lambda i: (load[i], i))
        load[shard] += weight[root]
        for fp in groups[root]:
            out[fp] = shard
    return out


def shard_runs(plan: Any, runs: list[RunSpec], shard: Shard) -> list[RunSpec]:
    """The runs of ``runs`` that belong to ``shard``, in plan order. More shards than runs is an error; a shard can
    still be empty when zero-shot runs ride with the run they read (fewer groups than shards)."""
    if shard.count > len(runs):
        raise UserError(
            f"--shard {shard}: the plan has {len(runs)} run(s), fewer than {shard.count} shards; use at most "
            f"--shard I/{len(runs)}"
        )
    owner = assign(runs, run_costs(plan, runs), shard.count)
    return [s for s in runs if owner[s.fingerprint] == shard.index]
