"""Plots for the HTML report, rendered with matplotlib (Agg) to base64 PNG."""

from __future__ import annotations

import base64
import io
import warnings

import pandas as pd

KIND_COLORS = {"image": "#4C78A8", "text": "#F58518", "dual_encoder": "#54A24B", "cross_modal": "#E45756"}


def main_metric_plot(df: pd.DataFrame, task: str, metric: str, models: list[str], kinds: dict[str, str]) -> str:
    """Bar = mean over seeds, error bar = sample std, dots = individual seeds. Returns a data: URI."""
    with warnings.catch_warnings():  # extreme values (a record edited by hand) make matplotlib's tick maths warn
        warnings.simplefilter("ignore", RuntimeWarning)
        return _plot(df, task, metric, models, kinds)


def _plot(df: pd.DataFrame, task: str, metric: str, models: list[str], kinds: dict[str, str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = df[(df["task"] == task) & (df["metric"] == metric)]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(models) + 1.5), 3.0), dpi=110)
    for i, m in enumerate(models):
        vals = sub[sub["model"] == m]["value"]
        if vals.empty:
            continue
        color = KIND_COLORS.get(kinds.get(m, ""), "#888888")
        ax.bar(i, vals.mean(), color=color, alpha=0.85, yerr=vals.std(ddof=1) if len(vals) > 1 else None, capsize=4)
        ax.scatter([i] * len(vals), vals, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(models)), models, rotation=20, ha="right")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{task}: {metric}")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
