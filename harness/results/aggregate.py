r"""Run records -> tables. Reads only ``RunRecord``\ s (from run folders), never live objects.

``results_frame`` is the long format of ``results.csv``: one row per (run, metric); ``cost_frame`` the cost table.
Intervals, comparisons and claims come from :mod:`harness.stats` (see :mod:`harness.report.model`).
"""

from __future__ import annotations

import pandas as pd

from harness.results.record import RunRecord

COLUMNS = [
    "suite",
    "task",
    "task_type",
    "dataset",
    "model",
    "kind",
    "seed",
    "split",
    "metric",
    "value",
    "run_id",
    "fingerprint",
]


def results_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Long format: one row per (run, split, metric) of finished runs; values in percent. ``split`` is ``test``
    (scored once, with the state selected on val) or ``val`` (that state's val scores); every mean, interval and
    test in a report uses the test rows."""
    rows = [
        {
            "suite": r.suite,
            "task": r.task,
            "task_type": r.task_type,
            "dataset": r.dataset,
            "model": r.model,
            "kind": r.kind,
            "seed": r.seed,
            "split": split,
            "metric": metric,
            "value": float(value),
            "run_id": r.run_id,
            "fingerprint": r.fingerprint,
        }
        for r in records
        if r.ok
        for split, metrics in (("test", r.metrics), ("val", r.val_metrics))
        for metric, value in metrics.items()
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


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
                "train_GFLOPs_per_sample": _number(c.train_flops_per_sample) / 1e9,
                "train_s": _number(t.train_seconds),
                "data_wait_pct": 100 * _number(t.data_wait_fraction),
                "train_samples_per_s": _number(t.train_samples_per_s),
                "eval_s": _number(t.eval_seconds),
                "eval_samples_per_s": _number(t.eval_samples_per_s),
                "peak_rss_MB": _number(t.process_peak_rss_mb),
                "cuda_peak_MB": _number(t.cuda_peak_allocated_mb),
                "mfu_pct": 100 * _number(c.mfu),
            }
        )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    return frame.groupby(["task", "model"], sort=False).mean(numeric_only=True).reset_index()


def _number(value: float | None) -> float:
    """A measurement as a float column value: None (not measured) is NaN, so that the column is kept by the mean."""
    return float("nan") if value is None else float(value)
