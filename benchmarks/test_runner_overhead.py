"""The runner's overhead against a minimal hand-written PyTorch loop: step time in one process, and whole process.

Run: ``.venv/bin/python -m pytest benchmarks/test_runner_overhead.py --benchmark-only -q -s``

The same model (the smoke suite's tiny ViT ``vit``, image size 32) on the same data (the built-in synthetic image
folder, 600 images: 456 train / 72 val / 72 test), one seed, 60 optimiser steps of batch 32, fp32 on CPU with 2
threads, val evaluation (``validation: false``) and checkpoints (no ``checkpoint_every``) off, two ways:

* **step time, in one process** (the issue's target: overhead <= 3%): the data is prepared once
  (``harness.runner.prepare``); then, after one warm-up round, ``ROUNDS`` rounds of whole 60-step runs of each,
  alternately (the order swapped every round),

  - *runner*: what ``harness.execute._run`` does for training: ``seed_everything``, ``build_model``, the task's
    head, the ``Batcher``, ``autocast_factory``/``grad_scaler``, ``Trainer(...).run()`` (no logging sink, no val
    evaluation, no checkpoints). Its step time is ``(data_seconds + compute_seconds) / steps``, measured by the loop
    itself around each step; the whole ``Trainer(...)`` construction plus ``.run()`` is also timed from outside.
  - *hand*: the same model built the same way from the same seed, the same head, ``torch.optim.AdamW(fused=True)``
    over the same parameter groups (``harness.train.optim.param_groups``: no decay on norms, biases, position
    embeddings, class token) with ``LambdaLR(lr_lambda(...))``, the same seeded permutation per epoch, batches indexed
    from the same uint8 tensor and normalised inline (not through the ``Batcher``: the hand loop is what a user would
    write, so the ``Batcher``'s extra work counts as runner overhead), ``F.cross_entropy``, backward,
    ``clip_grad_norm_``, step, ``zero_grad(set_to_none=True)``, ``scheduler.step()``, ``loss.item()`` per step.
    Its step time is the 60-step loop, timed around it, divided by 60; "outer" adds the optimiser and scheduler
    construction, to compare with the runner's outer time.

  On a shared machine one run-level ratio moves by +-10-30% (bursts of noise last about as long as a run), so
  ``ROUNDS`` more rounds follow in *lockstep*: the runner's ``on_step`` callback (called after the loop has timed
  its step) runs one step of a hand loop built beside it, timed on its own; runner and hand steps then alternate
  one by one, and each round's ratio is good to about 1%. Both sides compute the same numbers: their final losses
  must agree to 1e-4 relative (asserted: a failed comparison, not a time).
* **whole process**: ``python -m harness run SUITE --out FRESH`` against ``python benchmarks/hand_loop.py SUITE FRESH``
  (the same job written by hand; see that file), alternately for ``PROCESS_ROUNDS`` rounds with a fresh output
  folder each round and one shared, warmed ``XMBENCH_CACHE``; plus the import floor of each side, to split the
  difference into imports and work.

Nothing is asserted about time: these are measurements.
"""

from __future__ import annotations

import copy
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from benchmarks._timing import ROOT, ratio, summary, timed

ROUNDS = 15
PROCESS_ROUNDS = 7
STEPS = 60
# What each process imports (its top-level imports under ``python -X importtime``, checked with this suite): xmbench
# run also imports the report (pandas, matplotlib) and the statistics; both import transformers, because
# ``prepare`` records its version in the run environment (``harness.train.measure.environment``).
IMPORTS_HAND = "numpy, torch, timm, transformers, rich.console, harness.runner, harness.execute"
IMPORTS_RUN = (
    f"{IMPORTS_HAND}, harness.cli, rich.progress, harness.metrics, harness.stats.paired, harness.stats.claims, "
    "harness.report.html, matplotlib.figure, matplotlib.backends.backend_agg"
)
# Both real processes call gc.freeze() after their imports (harness.runner.plan_suite); without it the interpreter's
# shutdown alone costs ~1.4 s more here, and an import floor would exceed the process it is the floor of.
FREEZE = "; import gc; gc.freeze()"
BATCH = 32


def _suite(folder: Path) -> Path:
    smoke = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())
    suite = {
        "name": "overhead",
        "seeds": [0],
        "hardware": {"device": "cpu", "precision": "fp32", "threads": 2},
        "train": {
            "steps": STEPS,
            "batch_size": BATCH,
            "lr": 1e-3,
            "schedule": "cosine",
            "warmup_ratio": 0.1,
            "validation": False,
        },
        "image": {"size": 32},
        "synthetic": {"images": 600, "seed": 0, "size": 64},
        "datasets": {"shapes": {"kind": "imagefolder", "path": "@synthetic"}},
        "models": {"vit": copy.deepcopy(smoke["models"]["vit"])},
        "tasks": {"cls": {"type": "classification", "dataset": "shapes", "models": ["vit"]}},
    }
    path = folder / "overhead.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _build(ctx, spec):
    """Model and head exactly as ``harness.execute._run`` builds them (seeded first)."""
    from harness.execute import seed_everything
    from harness.models import BuildContext
    from harness.suite.check import build_model

    seed_everything(spec.seed, spec.hardware.deterministic)
    tok = ctx.tokenizer
    build_ctx = BuildContext(
        image_size=ctx.image.size,
        max_text_len=ctx.max_text_len,
        vocab_size=len(tok) if tok is not None else None,
        pad_token_id=getattr(tok, "pad_token_id", 0) or 0,
    )
    model = build_model(ctx.models[spec.model], build_ctx).to(ctx.device)
    head = ctx.tasks[spec.task].build_head(model, ctx.data[spec.task]).to(ctx.device)
    return model, head


def _runner(ctx, spec, on_step=None) -> dict[str, float]:
    """The training of ``harness.execute._run``: Batcher, precision, ``Trainer(...).run()``; no val, no checkpoints."""
    from harness.tasks.base import Batcher
    from harness.train.loop import Trainer
    from harness.train.precision import autocast_factory, grad_scaler

    model, head = _build(ctx, spec)
    task, data, image = ctx.tasks[spec.task], ctx.data[spec.task], ctx.image
    batcher = Batcher(image.mean, image.std, ctx.device, image.augment, image.crop_scale, spec.seed)
    autocast = autocast_factory(ctx.device, spec.hardware.precision)
    scaler = grad_scaler(ctx.device, spec.hardware.precision)
    start = time.perf_counter()
    stats = Trainer(
        model, head, task, data, spec.train, batcher, autocast, scaler, spec.seed, lambda row: None, on_step,
        evaluate=None, selection=None, checkpoints=None, on_oom=spec.train.on_oom,
    ).run()  # fmt: skip
    outer = time.perf_counter() - start
    assert stats.steps == STEPS, stats
    return {
        "step": (stats.data_seconds + stats.compute_seconds) / stats.steps,
        "outer": outer / stats.steps,
        "data": stats.data_seconds / stats.steps,
        "loss": stats.final_loss,
    }


class HandLoop:
    """The hand-written loop, one optimiser step per :meth:`step`; built the same way and from the same seed as the
    runner's model (``_build``), with the same parameter groups, schedule and data order."""

    def __init__(self, ctx, spec) -> None:
        from harness.train.optim import lr_lambda, param_groups

        self.model, self.head = _build(ctx, spec)
        start = time.perf_counter()
        train = self.train = spec.train
        groups = [
            {"params": g["params"], "lr": g["lr"], "weight_decay": g["weight_decay"]}
            for g in param_groups(self.model, self.head, train)
        ]
        self.opt = torch.optim.AdamW(
            groups, lr=train.lr, betas=train.betas, eps=train.eps, weight_decay=train.weight_decay, fused=True
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(STEPS, train))
        self.params = [p for g in groups for p in g["params"]]
        self.mean = torch.tensor(ctx.image.mean).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(ctx.image.std).view(1, 3, 1, 1) * 255.0
        ex = ctx.data[spec.task].train
        self.images, self.targets, self.n = ex.images, ex.targets, len(ex)
        self.gen = torch.Generator().manual_seed(spec.seed)
        self.perm, self.cursor = torch.randperm(self.n, generator=self.gen), 0
        self.model.train()
        self.head.train()
        self.setup_seconds = time.perf_counter() - start
        self.loss = float("nan")

    def step(self) -> None:
        if self.cursor >= self.n:
            self.perm, self.cursor = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.cursor : self.cursor + self.train.batch_size]
        self.cursor += len(idx)
        x = (self.images.index_select(0, idx).float() - self.mean) / self.std
        loss = F.cross_entropy(self.head(self.model({"image": x})["pooled"]), self.targets[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.train.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        self.loss = loss.item()


def _hand(ctx, spec) -> dict[str, float]:
    loop = HandLoop(ctx, spec)
    start = time.perf_counter()
    for _ in range(STEPS):
        loop.step()
    seconds = time.perf_counter() - start
    return {"step": seconds / STEPS, "outer": (loop.setup_seconds + seconds) / STEPS, "loss": loop.loss}


def _lockstep(ctx, spec) -> tuple[dict[str, float], dict[str, float]]:
    """Both loops one step at a time, alternately: the runner's ``on_step`` callback (after the runner has timed
    its step) runs one hand step, timed on its own. Noise bursts of the machine then hit both sides alike."""
    loop, hand = HandLoop(ctx, spec), [0.0]

    def hand_step(_step: int) -> None:
        start = time.perf_counter()
        loop.step()
        hand[0] += time.perf_counter() - start

    runner = _runner(ctx, spec, on_step=hand_step)
    return runner, {"step": hand[0] / STEPS, "loss": loop.loss}


def _pct(mid: float, lo: float, hi: float) -> str:
    return f"{mid - 1:+.1%} [{lo - 1:+.1%}, {hi - 1:+.1%}]"


def test_runner_step_overhead_in_process(benchmark, tmp_path: Path, monkeypatch) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    from rich.console import Console

    from harness.runner import prepare
    from harness.suite.loader import load_suite

    monkeypatch.setenv("XMBENCH_CACHE", str(tmp_path / "cache"))
    path = _suite(tmp_path)
    ctx, plan = prepare(load_suite(path), path, tmp_path, Console(quiet=True))  # decodes once; sets 2 threads
    (spec,) = plan.runs
    assert spec.train.validation is False and spec.train.checkpoint_every is None
    for warm_up in (_runner, _hand, _lockstep):  # allocator, kernels, lazy imports
        warm_up(ctx, spec)
    runner: list[dict[str, float]] = []
    hand: list[dict[str, float]] = []
    for i in range(ROUNDS):  # whole 60-step runs, alternately, the order swapped every round
        sides = (_runner, runner), (_hand, hand)
        for fn, out in sides if i % 2 == 0 else sides[::-1]:
            out.append(fn(ctx, spec))
    lock = [_lockstep(ctx, spec) for _ in range(ROUNDS)]
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)

    def col(rows: list[dict[str, float]], key: str = "step") -> list[float]:
        return [r[key] for r in rows]

    ms = statistics.median
    step_r, step_h = col(runner), col(hand)
    inner, outer = ratio(step_r, step_h), ratio(col(runner, "outer"), col(hand, "outer"))
    lock_r, lock_h = col([r for r, _ in lock]), col([h for _, h in lock])
    locked = ratio(lock_r, lock_h)
    rounds = [f"{a / b - 1:+.1%}" for a, b in zip(step_r, step_h, strict=True)]
    lock_rounds = [f"{a / b - 1:+.1%}" for a, b in zip(lock_r, lock_h, strict=True)]
    finals = [(r["loss"], h["loss"]) for r, h in [*zip(runner, hand, strict=True), *lock]]
    rel = max(abs(a - b) / abs(b) for a, b in finals)
    loss_r, loss_h = finals[-1]
    lines = [
        f"\nin-process step time ({STEPS} steps, batch {BATCH}, {ROUNDS} rounds, median): runner "
        f"{1000 * ms(step_r):.2f} ms (data {1000 * ms(col(runner, 'data')):.2f} ms; outer, Trainer(...).run() "
        f"{1000 * ms(col(runner, 'outer')):.2f} ms), hand {1000 * ms(step_h):.2f} ms "
        f"(outer, with optimiser construction {1000 * ms(col(hand, 'outer')):.2f} ms)",
        f"runner/hand step time: {_pct(*inner)}; outer {_pct(*outer)}; ratio of the fastest rounds "
        f"{min(step_r) / min(step_h) - 1:+.1%}",
        f"runner/hand per round: {', '.join(rounds)}",
        f"lockstep (one runner step, one hand step, ...): runner {1000 * ms(lock_r):.2f} ms, hand "
        f"{1000 * ms(lock_h):.2f} ms; runner/hand {_pct(*locked)}",
        f"lockstep per round: {', '.join(lock_rounds)}",
        f"final loss: runner {loss_r:.7f}, hand {loss_h:.7f}; largest relative difference over "
        f"{len(finals)} pairs {rel:.1e}",
    ]
    benchmark.extra_info.update(
        {
            "runner_step_ms": round(1000 * ms(step_r), 3),
            "hand_step_ms": round(1000 * ms(step_h), 3),
            "runner_over_hand": round(inner[0], 4),
            "runner_over_hand_range": [round(inner[1], 4), round(inner[2], 4)],
            "runner_over_hand_outer": round(outer[0], 4),
            "rounds": rounds,
            "lockstep_runner_over_hand": round(locked[0], 4),
            "lockstep_range": [round(locked[1], 4), round(locked[2], 4)],
            "lockstep_rounds": lock_rounds,
            "final_loss": [loss_r, loss_h],
        }
    )
    for line in lines:
        print(line)
    assert rel <= 1e-4, f"the two loops trained differently: final losses (runner, hand) {finals}"


def test_runner_whole_process(benchmark, tmp_path: Path) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    path = _suite(tmp_path)
    env = {"XMBENCH_CACHE": str(tmp_path / "cache")}
    py = sys.executable
    timed([py, "-m", "harness", "run", str(path), "--out", str(tmp_path / "warm")], env)  # synthesise, decode once
    sides = {
        "xmbench run": [py, "-m", "harness", "run", str(path), "--out"],
        "hand loop": [py, str(ROOT / "benchmarks" / "hand_loop.py"), str(path)],
        "imports: xmbench": [py, "-c", f"import {IMPORTS_RUN}{FREEZE}"],
        "imports: hand": [py, "-c", f"import {IMPORTS_HAND}{FREEZE}"],
        "python -c pass": [py, "-c", "pass"],
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    outs = {"xmbench run": tmp_path / "out-xmbench", "hand loop": tmp_path / "out-hand"}
    for _ in range(PROCESS_ROUNDS):
        for name, argv in sides.items():
            if name in outs:
                shutil.rmtree(outs[name], ignore_errors=True)  # fresh: no finished run to reuse
                argv = [*argv, str(outs[name])]
            times[name].append(timed(argv, env))
    hand_json = json.loads((outs["hand loop"] / "result.json").read_text())
    (metrics_file,) = outs["xmbench run"].glob("runs/*/*/*/metrics.json")
    record = json.loads(metrics_file.read_text())
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    mid, lo, hi = ratio(times["xmbench run"], times["hand loop"])
    ms = statistics.median
    diff = ms(times["xmbench run"]) - ms(times["hand loop"])
    imports = ms(times["imports: xmbench"]) - ms(times["imports: hand"])
    t = record["timings"]
    lines = [
        f"\nwhole process ({PROCESS_ROUNDS} rounds): xmbench run {summary(times['xmbench run'])}, "
        f"hand loop {summary(times['hand loop'])}; xmbench/hand {_pct(mid, lo, hi)}, "
        f"{diff:+.2f} s of which imports {imports:+.2f} s",
        f"imports: xmbench {summary(times['imports: xmbench'])}, hand {summary(times['imports: hand'])}, "
        f"python -c pass {summary(times['python -c pass'])}",
        f"last round, inside: xmbench run train {t['train_seconds']:.2f} s, test {t['test_seconds']:.2f} s, "
        f"run wall {t['wall_seconds']:.2f} s; hand prepare {hand_json['prepare_s']:.2f} s, "
        f"train {hand_json['train_s']:.2f} s, test {hand_json['test_s']:.2f} s",
        f"top1: xmbench {record['metrics']['top1']:.2f}, hand {hand_json['top1']:.2f}; final loss: xmbench "
        f"{t['final_loss']:.6f}, hand {hand_json['final_loss']:.6f}",
    ]
    benchmark.extra_info.update(
        {
            "run_s": summary(times["xmbench run"]),
            "hand_s": summary(times["hand loop"]),
            "run_over_hand": round(mid, 4),
            "run_over_hand_range": [round(lo, 4), round(hi, 4)],
            "imports_diff_s": round(imports, 3),
        }
    )
    for line in lines:
        print(line)
