r"""Run records -> tables. Reads only ``RunRecord``\ s (from run folders), never live objects.

``results_frame`` is the long format of ``results.csv``: one row per (run, metric). ``task_tables`` turns it into one
table per task: models as rows, mean ± std over seeds per metric, the best model, and deltas against the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.results.record import RunRecord

COLUMNS = ["suite", "task", "task_type", "dataset", "model", "kind", "seed", "metric", "value", "run_id", "fingerprint"]
METRIC_ORDER = [
    "top1",
    "top5",
    "mAP",
    "vqa_accuracy",
    "vqa_yesno",
    "vqa_number",
    "vqa_other",
    "txt_r1",
    "txt_r5",
    "txt_r10",
    "img_r1",
    "img_r5",
    "img_r10",
    "txt_r_mean",
    "img_r_mean",
    "r_mean",
    "itc_r_mean",
]


def results_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Long format: one row per (run, metric) of finished runs; values in percent."""
    rows = [
        {
            "suite": r.suite,
            "task": r.task,
            "task_type": r.task_type,
            "dataset": r.dataset,
            "model": r.model,
            "kind": r.kind,
            "seed": r.seed,
            "metric": metric,
            "value": float(value),
            "run_id": r.run_id,
            "fingerprint": r.fingerprint,
        }
        for r in records
        if r.ok
        for metric, value in r.metrics.items()
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


@dataclass
class TaskTable:
    """Summary of one task."""

    task: str
    task_type: str
    dataset: str
    main_metric: str
    baseline: str | None
    metrics: list[str]
    models: list[str]
    kinds: dict[str, str]
    mean: pd.DataFrame  # models × metrics
    std: pd.DataFrame
    n: pd.DataFrame
    best: dict[str, list[str]]  # metric -> best model(s): highest mean, all of them on a tie
    delta: pd.DataFrame | None  # models × metrics, mean - baseline mean (percentage points)


def task_tables(
    df: pd.DataFrame,
    model_order: dict[str, list[str]],
    baselines: dict[str, str | None],
    main_metrics: dict[str, str] | None = None,
) -> list[TaskTable]:
    """One :class:`TaskTable` per task present in ``df`` (task order of ``model_order``); ``main_metrics`` (task ->
    metric, from the run records) defaults to the first metric."""
    main_metrics = main_metrics or {}
    tables = []
    for task, models in model_order.items():
        sub = df[df["task"] == task]
        if sub.empty:
            continue
        task_type = sub["task_type"].iloc[0]
        present = [m for m in models if m in set(sub["model"])]
        metrics = sorted(set(sub["metric"]), key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else 99, m))
        grouped = sub.groupby(["model", "metric"])["value"]
        mean = grouped.mean().unstack().reindex(index=present, columns=metrics)
        std = grouped.std(ddof=1).unstack().reindex(index=present, columns=metrics)
        n = grouped.count().unstack().reindex(index=present, columns=metrics)
        best = {
            m: [str(i) for i in mean.index[mean[m] >= mean[m].max() - 1e-9]] for m in metrics if mean[m].notna().any()
        }
        baseline = baselines.get(task)
        delta = mean - mean.loc[baseline] if baseline in present else None
        kinds = dict(sub.drop_duplicates("model").set_index("model")["kind"])
        tables.append(
            TaskTable(
                task,
                task_type,
                sub["dataset"].iloc[0],
                main_metrics.get(task) or metrics[0],
                baseline if baseline in present else None,
                metrics,
                present,
                kinds,
                mean,
                std,
                n,
                best,
                delta,
            )
        )
    return tables


def cost_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Per (task, model): mean over seeds of parameters, FLOPs, training time, throughput and memory."""
    rows = []
    for r in records:
        if not r.ok:
            continue
        t, c = r.timings, r.cost
        rows.append(
            {
                "task": r.task,
                "model": r.model,
                "params_M": c.params / 1e6,
                "trainable_M": c.trainable_params / 1e6,
                "GFLOPs_per_sample": _number(c.forward_flops_per_sample) / 1e9,
                "train_s": _number(t.train_seconds),
                "train_samples_per_s": _number(t.train_samples_per_s),
                "eval_s": _number(t.eval_seconds),
                "peak_rss_MB": _number(t.process_peak_rss_mb),
                "cuda_peak_MB": _number(t.cuda_peak_allocated_mb),
            }
        )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    return frame.groupby(["task", "model"], sort=False).mean(numeric_only=True).reset_index()


def _number(value: float | None) -> float:
    """A measurement as a float column value: None (not measured) is NaN, so that the column is kept by the mean."""
    return float("nan") if value is None else float(value)
