"""The report's content, independent of the output format."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from harness import __version__
from harness.results.aggregate import TaskTable, cost_frame, results_frame, task_tables
from harness.results.collect import OtherFolder, PlanResults
from harness.results.record import RunRecord
from harness.suite.schema import Suite


@dataclass
class Report:
    suite: Suite
    generated: datetime
    results: pd.DataFrame
    tables: list[TaskTable]
    cost: pd.DataFrame
    failed: list[RunRecord]
    missing: list[str]  # plan runs with no result
    in_progress: list[str]  # plan runs claimed by a live process
    other: list[OtherFolder]  # run folders that are not part of this plan (never averaged in)
    overrides: list[dict[str, Any]]
    env: dict[str, Any]
    notes: dict[str, dict[str, Any]]
    skipped: dict[str, dict[str, Any]]  # dataset -> {"count", "by_reason", "samples"}
    submissions: list[tuple[str, str]]  # (run id, results file) for eval splits without annotations

    def summary_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "suite": self.suite.name,
            "generated": self.generated.isoformat(),
            "xmbench": __version__,
            "env": self.env,
            "tasks": {},
            "failed": [{"run_id": r.run_id, "folder": r.folder, "error": r.error} for r in self.failed],
            "missing": self.missing,
            "in_progress": self.in_progress,
            "not_part_of_this_plan": [{"folder": o.folder, "run_id": o.run_id, "reason": o.reason} for o in self.other],
            "overrides": self.overrides,
            "skipped": self.skipped,
        }
        for t in self.tables:
            rows = {}
            for m in t.models:
                rows[m] = {
                    "kind": t.kinds.get(m),
                    **{
                        metric: {
                            "mean": _num(t.mean.loc[m, metric]),
                            "std": _num(t.std.loc[m, metric]),
                            "n": int(t.n.loc[m, metric]) if not pd.isna(t.n.loc[m, metric]) else 0,
                            "delta_vs_baseline": _num(t.delta.loc[m, metric]) if t.delta is not None else None,
                        }
                        for metric in t.metrics
                    },
                }
            out["tasks"][t.task] = {
                "task_type": t.task_type,
                "dataset": t.dataset,
                "main_metric": t.main_metric,
                "baseline": t.baseline,
                "best": t.best,
                "models": rows,
            }
        return out


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x) else round(float(x), 4)


def build_report(suite: Suite, results: PlanResults, generated: datetime) -> Report:
    from harness.suite.check import task_baseline

    ok = results.ok
    df = results_frame(ok)
    order = {tname: list(t.models) for tname, t in suite.tasks.items()}
    baselines = {tname: task_baseline(suite, tname) for tname in suite.tasks}
    main_metrics = {r.task: r.main_metric for r in ok if r.main_metric}
    overrides = []
    for name, spec in suite.models.items():
        for key, value in spec.train.items():
            overrides.append(
                {"model": name, "key": key, "suite_value": getattr(suite.train, key), "model_value": value}
            )
    notes: dict[str, dict[str, Any]] = {}
    for r in ok:
        notes.setdefault(r.task, {}).update(
            {k: v for k, v in (r.notes or {}).items() if k in ("classes_without_positives", "scoring", "k_test")}
        )
    skipped: dict[str, dict[str, Any]] = {}
    for r in ok:
        if (r.skipped or {}).get("count"):
            skipped[r.dataset] = r.skipped
    return Report(
        suite,
        generated,
        df,
        task_tables(df, order, baselines, main_metrics),
        cost_frame(ok),
        results.failed,
        results.missing,
        results.in_progress,
        results.other,
        overrides,
        ok[-1].env if ok else {},
        notes,
        skipped,
        [(r.run_id, f"{r.folder}/{r.notes['submission']}") for r in ok if (r.notes or {}).get("submission")],
    )


def fmt_mean_std(mean: float, std: float, n: int) -> str:
    if pd.isna(mean):
        return "—"
    if n <= 1 or pd.isna(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


def fmt_delta(x: float | None) -> str:
    if x is None or pd.isna(x):
        return "—"
    return f"{x:+.2f}"


def settings_rows(suite: Suite) -> list[tuple[str, str]]:
    """(block, 'key=value, ...') lines of the settings every pairing shares."""
    train = suite.train.model_dump(mode="json", exclude={"allow_overrides", "epochs", "steps", "lr_mult"})
    length = f"epochs={suite.train.epochs}" if suite.train.epochs else f"steps={suite.train.steps}"
    lr_mult = suite.train.lr_mult.model_dump()
    parts = [length] + [f"{k}={v}" for k, v in train.items()]
    parts.append("lr_mult=" + "/".join(f"{k}:{v:g}" for k, v in lr_mult.items()))
    return [
        ("hardware", ", ".join(f"{k}={v}" for k, v in suite.hardware.model_dump(mode="json").items())),
        ("train (AdamW)", ", ".join(parts)),
        ("image", ", ".join(f"{k}={v}" for k, v in suite.image.model_dump(mode="json").items())),
        ("text", ", ".join(f"{k}={v}" for k, v in suite.text.model_dump(mode="json").items())),
        ("seeds", ", ".join(str(s) for s in suite.seeds)),
    ]
