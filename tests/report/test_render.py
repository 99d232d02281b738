"""Report rendering from run records alone: tables, bests, deltas, metrics that only some models have."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.report.model import build_report
from harness.results.collect import OtherFolder, PlanResults
from harness.results.record import RunRecord
from harness.suite.schema import Suite


def _record(model: str, kind: str, seed: int, metrics: dict) -> RunRecord:
    return RunRecord.from_json(
        {
            "status": "ok",
            "folder": f"runs/ret/{model}/seed{seed}-x",
            "model_type": "dual",
            "main_metric": "r_mean",
            "suite": "s",
            "task": "ret",
            "task_type": "retrieval",
            "dataset": "coco",
            "model": model,
            "kind": kind,
            "seed": seed,
            "run_id": f"ret/{model}/seed{seed}",
            "fingerprint": f"{model}{seed}",
            "metrics": metrics,
            "env": {"torch": "x"},
            "timings": {
                "train_seconds": 1.0,
                "train_samples_per_s": 10.0,
                "eval_seconds": 0.1,
                "process_peak_rss_mb": 100.0,
            },
            "cost": {"params": 1000, "trainable_params": 1000, "forward_flops_per_sample": None},
        }
    )


SUITE = Suite.model_validate(
    yaml.safe_load("""
name: s
seeds: [0, 1]
train: {steps: 1}
datasets: {coco: {kind: coco, path: "@synthetic"}}
models:
  clip: {type: dual}
  xb: {type: xbert}
tasks:
  ret: {type: retrieval, dataset: coco, models: [clip, xb], baseline: clip}
""")
)


def test_metric_missing_for_one_model_and_ties() -> None:
    records = [
        _record("clip", "dual_encoder", 0, {"r_mean": 50.0, "txt_r1": 10.0}),
        _record("clip", "dual_encoder", 1, {"r_mean": 54.0, "txt_r1": 20.0}),
        _record("xb", "cross_modal", 0, {"r_mean": 40.0, "txt_r1": 15.0, "itc_r_mean": 60.0}),
        _record("xb", "cross_modal", 1, {"r_mean": 42.0, "txt_r1": 15.0, "itc_r_mean": 58.0}),
    ]
    report = build_report(SUITE, PlanResults(records), datetime(2026, 1, 1, tzinfo=UTC))
    md = render_markdown(report)
    rows = [line for line in md.splitlines() if line.startswith("| clip") or line.startswith("| xb")]
    assert rows[0] == ("| clip ★ | dual_encoder | **15.00 ± 7.07** | **52.00 ± 2.83** | — | baseline | 2 |")
    assert rows[1] == ("| xb | cross_modal | **15.00 ± 0.00** | 41.00 ± 1.41 | **59.00 ± 1.41** | -11.00 | 2 |")
    html = render_html(report)
    assert "<td class='best'>15.00 ± 7.07</td>" in html and "<td class='best'>15.00 ± 0.00</td>" in html
    summary = report.summary_json()["tasks"]["ret"]
    assert summary["best"]["txt_r1"] == ["clip", "xb"]
    assert summary["models"]["clip"]["itc_r_mean"] == {"mean": None, "std": None, "n": 0, "delta_vs_baseline": None}
    assert summary["models"]["xb"]["r_mean"]["delta_vs_baseline"] == -11.0


def test_failed_missing_and_other_folders_are_listed_never_averaged() -> None:
    failed = RunRecord.from_json({**_record("xb", "cross_modal", 1, {}).to_json(), "status": "failed", "error": "boom"})
    results = PlanResults(
        [
            _record("clip", "dual_encoder", 0, {"r_mean": 50.0}),
            _record("xb", "cross_modal", 0, {"r_mean": 40.0}),
            failed,
        ],
        missing=["ret/clip/seed1"],
        other=[OtherFolder("runs/ret/xb/seed0-0123456789", "ret/xb/seed0", "an older configuration")],
    )
    report = build_report(SUITE, results, datetime(2026, 1, 1, tzinfo=UTC))
    md = render_markdown(report)
    rows = [line for line in md.splitlines() if line.startswith("| xb ")]
    assert rows[0] == "| xb | cross_modal | 40.00 | -10.00 | 1 |"  # seed 1 failed: one seed, not a mean with it
    assert "| ret/xb/seed1 | boom |" in md
    assert "- `ret/clip/seed1`: missing" in md
    assert "## Not part of this plan" in md and "| `runs/ret/xb/seed0-0123456789` | ret/xb/seed0 |" in md
    summary = report.summary_json()
    assert summary["missing"] == ["ret/clip/seed1"]
    assert summary["not_part_of_this_plan"][0]["run_id"] == "ret/xb/seed0"
    html = render_html(report)
    assert "Not part of this plan" in html and "runs/ret/xb/seed0-0123456789" in html
