"""Reports built by hand for the renderer tests (the statistics behind them are not needed): a full one shaped like
the smoke suite, with every section, and one with every optional field empty, None or NaN."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import yaml

from harness.report.model import PALETTE, Cell, ClaimRow, Delta, ModelInfo, ModelRow, Report, TaskSection
from harness.results.artifacts import Curve
from harness.results.collect import OtherFolder
from harness.results.record import RunRecord
from harness.suite.schema import Suite

NAN = float("nan")

SUITE = Suite.model_validate(
    yaml.safe_load("""
name: smoke
description: >
  Tiny image-only, text-only and cross-modal models
  trained under one recipe.
seeds: [0, 1, 2]
baseline: vit
train: {steps: 10}
datasets:
  shapes-vqa: {kind: vqa2, path: "@synthetic"}
  shapes-cls: {kind: imagefolder, path: "@synthetic"}
models:
  vit: {type: timm}
  bert: {type: bert, train: {lr: 2.0e-3}}
  xbert: {type: xbert, fusion: cross_attention}
tasks:
  vqa: {type: vqa, dataset: shapes-vqa, models: [vit, bert, xbert], blind_baselines: true}
  classify: {type: classification, dataset: shapes-cls, models: [vit, xbert]}
claims:
  - {model: xbert, baseline: bert, task: vqa, delta: 10, source: "fusion answers what text alone cannot"}
  - {model: xbert, baseline: vit, task: vqa, delta: 40, source: "an overstated gain"}
  - {model: xbert, baseline: vit, task: classify, delta: 3.2, source: "design document 000"}
  - {model: xbert, baseline: vit, task: classify, delta: "15%", source: "a relative claim"}
""")
)
COLORS = {m: PALETTE[i] for i, m in enumerate(SUITE.models)}
GENERATED = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
ENV = {
    "xmbench": "0.1.0",
    "python": "3.11.9",
    "torch": "2.5.1",
    "device": "cuda:0",
    "gpu": "NVIDIA H200",
    "git_commit": "3fc4b92a1c2e77d5f00a1b2c3d4e5f60718293a4-dirty",
    "cuda": None,
}


def cell(values: tuple[float, ...], lo: float, hi: float, method: str = "t over seeds") -> Cell:
    mean = sum(values) / len(values)
    return Cell(mean, (lo, hi), method, 1.0, len(values), values)


def record(run_id: str, status: str = "failed", error: str | None = "boom") -> RunRecord:
    task, model, seed = run_id.split("/")
    return RunRecord.from_json(
        {
            "run_id": run_id,
            "folder": f"runs/{run_id}-0123456789",
            "fingerprint": "f",
            "suite": "smoke",
            "task": task,
            "task_type": "vqa",
            "dataset": "shapes-vqa",
            "model": model,
            "kind": "image",
            "model_type": "timm",
            "seed": int(seed.removeprefix("seed")),
            "status": status,
            "error": error,
        }
    )


def vqa_section() -> TaskSection:
    vit = ModelRow("vit", "image", 3, {"vqa_accuracy": cell((21.0, 22.0, 23.0), 19.52, 24.48)})
    bert = ModelRow(
        "bert",
        "text",
        3,
        {"vqa_accuracy": cell((31.5, 31.9, 32.3), 30.91, 32.89), "vqa_yesno": cell((60.0, 62.0, 61.0), 58.5, 63.5)},
        {"vqa_accuracy": Delta(9.9, (8.1, 11.7), 0.0004, "paired bootstrap")},
    )
    xbert = ModelRow(
        "xbert",
        "cross_modal",
        3,
        {"vqa_accuracy": cell((55.0, 55.87, 56.74), 54.1, 57.6), "vqa_yesno": cell((70.0, 71.0, 72.0), 68.5, 73.5)},
        {
            "vqa_accuracy": Delta(33.87, (31.93, 35.81), 0.0001, "paired bootstrap"),
            "vqa_yesno": Delta(10.0, (8.0, 12.0), 0.002, "paired bootstrap"),
        },
    )
    return TaskSection(
        name="vqa",
        task_type="vqa",
        dataset="shapes-vqa",
        main_metric="vqa_accuracy",
        baseline="vit",
        metrics=["vqa_accuracy", "vqa_yesno"],
        rows=[vit, bert, xbert],
        best={"vqa_accuracy": ["xbert"], "vqa_yesno": ["xbert"]},
        notes=["Question-blind image-only baseline (blind_baselines: true)."],
        without_results=[],
    )


def classify_section() -> TaskSection:
    vit = ModelRow("vit", "image", 3, {"top1": cell((88.0, 89.0, 90.0), 86.52, 91.48)})
    xbert = ModelRow(
        "xbert",
        "cross_modal",
        3,
        {"top1": cell((87.2, 87.8, 88.4), 86.31, 89.29)},
        {"top1": Delta(-1.2, (-3.04, 0.64), 0.19, "paired bootstrap")},
    )
    return TaskSection(
        name="classify",
        task_type="classification",
        dataset="shapes-cls",
        main_metric="top1",
        baseline="vit",
        metrics=["top1"],
        rows=[vit, xbert],
        best={"top1": ["vit"]},
        notes=[],
        without_results=["bert"],
    )


def claims() -> list[ClaimRow]:
    return [
        ClaimRow(
            0,
            "xbert beats bert on vqa by +10 points of vqa_accuracy",
            "fusion answers what text alone cannot",
            "vqa",
            "xbert",
            "bert",
            "vqa_accuracy",
            10.0,
            False,
            "supported",
            measured=23.98,
            ci=(21.02, 26.94),
            ci95=(21.6, 26.4),
            p_value=0.0002,
            p_adjusted=0.0008,
        ),
        ClaimRow(
            1,
            "xbert beats vit on vqa by +40 points of vqa_accuracy",
            "an overstated gain",
            "vqa",
            "xbert",
            "vit",
            "vqa_accuracy",
            40.0,
            False,
            "contradicted",
            measured=33.87,
            ci=(31.13, 36.61),
            ci95=(31.9, 35.8),
            p_value=0.0001,
            p_adjusted=0.0006,
        ),
        ClaimRow(
            2,
            "xbert beats vit on classify by +3.2 points of top1",
            "design document 000",
            "classify",
            "xbert",
            "vit",
            "top1",
            3.2,
            False,
            "inconclusive",
            measured=-1.2,
            ci=(-3.9, 1.5),
            ci95=(-3.04, 0.64),
            p_value=0.19,
            p_adjusted=0.38,
            mde=4.25,
            seeds_needed=9,
        ),
        ClaimRow(
            3,
            "xbert beats vit on classify by +15% (relative) of top1",
            "a relative claim",
            "classify",
            "xbert",
            "vit",
            "top1",
            15.0,
            True,
            "not judged",
            note="some runs have no per-example evidence (made by an older xmbench): run them again",
        ),
    ]


def curves() -> dict[str, list[Curve]]:
    out: dict[str, list[Curve]] = {}
    for task, models in (("vqa", ("vit", "bert", "xbert")), ("classify", ("vit", "xbert"))):
        for m in models:
            for seed in (0, 1, 2):
                steps = tuple(range(1, 41))
                scale = 1.0 + 0.1 * seed + 0.2 * models.index(m)
                loss = tuple(5.0 * scale * math.exp(-s / 12) + 0.01 for s in steps)
                out.setdefault(task, []).append(Curve(task, m, seed, steps, loss, tuple(1e-3 for _ in steps)))
    return out


def cost() -> pd.DataFrame:
    rows = []
    for task, model, params, speed in (
        ("vqa", "vit", 0.21, 5200.0),
        ("vqa", "bert", 0.12, 7400.0),
        ("vqa", "xbert", 0.41, 2100.0),
        ("classify", "vit", 0.2, 5300.0),
        ("classify", "xbert", 0.4, 2200.0),
    ):
        rows.append(
            {
                "task": task,
                "model": model,
                "params_M": params,
                "trainable_M": params,
                "GFLOPs_per_sample": 0.0123,
                "train_s": 12.5,
                "train_samples_per_s": speed,
                "eval_s": 1.25,
                "peak_rss_MB": 812.0,
                "cuda_peak_MB": NAN,
            }
        )
    return pd.DataFrame(rows)


def full_report() -> Report:
    return Report(
        suite=SUITE,
        generated=GENERATED,
        claims=claims(),
        tasks=[vqa_section(), classify_section()],
        results=pd.DataFrame(),
        cost=cost(),
        curves=curves(),
        models=[
            ModelInfo("vit", "timm", "image", None, "timm", 0.21, 0.0123, "the suite's recipe"),
            ModelInfo("bert", "bert", "text", None, "bert", 0.12, 0.004, "lr=0.002"),
            ModelInfo("xbert", "xbert", "cross_modal", "cross_attention", "xbert", 0.41, 0.0311, "the suite's recipe"),
        ],
        settings=[("train (AdamW)", "steps=10, batch_size=32, grad_clip=None"), ("seeds", "0, 1, 2")],
        overrides=[{"model": "bert", "key": "lr", "suite_value": 0.001, "model_value": 0.002}],
        failed=[record("vqa/vit/seed3", error="non-finite loss (nan) at step 1/3")],
        missing=["vqa/bert/seed3"],
        in_progress=["classify/vit/seed3"],
        other=[
            OtherFolder("runs/vqa/xbert/seed9-0123456789", "vqa/xbert/seed9", "its model or seed is not in the suite")
        ],
        skipped={"shapes-vqa": {"count": 3, "by_reason": {"unreadable": 3}, "samples": ["a.jpg: truncated"]}},
        submissions=[("vqa/xbert/seed0", "runs/vqa/xbert/seed0-x/vqa_results.json")],
        env=ENV,
        colors=COLORS,
    )


def empty_report() -> Report:
    """Every optional field empty, None or NaN."""
    bare = Suite.model_validate(
        yaml.safe_load("""
seeds: [0]
train: {steps: 1}
datasets: {d: {kind: coco, path: "@synthetic"}}
models: {m: {type: dual}, n: {type: dual}}
tasks: {t: {type: retrieval, dataset: d, models: [m, n], baseline: m}}
""")
    )
    nan_cell = Cell(NAN, (NAN, NAN), "", None, 0, (NAN,))
    none_cell = Cell(NAN, None, "", None, 1, ())
    task = TaskSection(
        name="t",
        task_type="retrieval",
        dataset="d",
        main_metric="r_mean",
        baseline="m",
        metrics=["r_mean", "txt_r1"],
        rows=[
            ModelRow("m", "", 0, {"r_mean": nan_cell, "txt_r1": none_cell}),
            ModelRow("n", "", 1, {"r_mean": nan_cell}, {"r_mean": Delta(NAN, (NAN, NAN), NAN, "")}),
        ],
        best={},
        notes=[],
        without_results=[],
    )
    claim = ClaimRow(0, "", "", "t", "n", "m", "r_mean", NAN, False, "inconclusive", NAN, None, (NAN, NAN), NAN)
    claim_none = ClaimRow(1, "n beats m", "", "t", "n", "m", "r_mean", 1.0, True, "not judged")
    return Report(
        suite=bare,
        generated=GENERATED,
        claims=[claim, claim_none],
        tasks=[task],
        results=pd.DataFrame(),
        cost=pd.DataFrame(
            [{"task": "t", "model": "m", "params_M": NAN, "train_samples_per_s": NAN, "GFLOPs_per_sample": None}]
        ),
        curves={"t": [Curve("t", "m", 0, (1, 2), (NAN, float("inf")), (0.0, 0.0))], "u": []},
        models=[ModelInfo("m", "dual", "", None, "", None, NAN, "")],
        settings=[("train", "eval_batch_size=None, warmup_steps=None, grad_clip=nan"), ("empty", "")],
        overrides=[{"model": "m", "key": "lr", "suite_value": None, "model_value": NAN}],
        failed=[record("t/m/seed0", error=None)],
        missing=[],
        in_progress=[],
        other=[],
        skipped={"d": {"count": None}},
        submissions=[],
        env={"device": None, "torch": NAN, "git_commit": None, "gpu": None},
        colors={},
    )
