"""Charts for the HTML report, drawn with matplotlib (Agg) and returned as base64 PNG data URIs.

Every chart colours a model with ``report.colors[model]`` so that a model looks the same everywhere. The ``*_figure``
functions build a :class:`~matplotlib.figure.Figure` (tests read their legends); :func:`render` turns one into a data
URI, with the warnings of matplotlib's tick maths on extreme values silenced.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.report.model import TaskSection
from harness.results.artifacts import Curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FALLBACK_COLOR = "#888888"
DPI = 100


def color_for(colors: dict[str, str], model: str) -> str:
    return colors.get(model, FALLBACK_COLOR)


def _finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _figure(width: float, height: float) -> Figure:
    """A figure drawn by matplotlib's Agg canvas (no pyplot, no GUI backend, nothing global)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _legend(fig: Figure) -> None:
    """One entry per model, outside the axes on the right (never over the data)."""
    fig.legend(loc="outside right upper", fontsize=7, frameon=False)


def metric_figure(task: TaskSection, metric: str, colors: dict[str, str]) -> Figure | None:
    """Bar = mean over seeds, error bar = 95% CI, dots = the seeds; one bar per model that has ``metric``."""
    rows = [r for r in task.rows if metric in r.cells and _finite(r.cells[metric].mean)]
    if not rows:
        return None
    fig = _figure(max(3.8, 0.8 * len(rows) + 2.6), 3.0)
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        cell = r.cells[metric]
        yerr = None
        if cell.ci is not None and all(_finite(v) for v in cell.ci):
            yerr = [[max(cell.mean - cell.ci[0], 0.0)], [max(cell.ci[1] - cell.mean, 0.0)]]
        ax.bar(
            i,
            cell.mean,
            color=color_for(colors, r.name),
            alpha=0.9,
            yerr=yerr,
            capsize=4,
            error_kw={"elinewidth": 1, "ecolor": "#333333"},
            label=r.name,
        )
        seeds = [v for v in cell.values if _finite(v)]
        if seeds:
            n = len(seeds)  # spread symmetrically around the bar's centre
            jitter = [i + (0.3 * k / (n - 1) - 0.15 if n > 1 else 0.0) for k in range(n)]
            ax.scatter(jitter, seeds, facecolor="white", edgecolor="#111111", linewidths=0.8, s=12, zorder=3)
    ax.set_xticks(range(len(rows)), [r.name for r in rows], rotation=20, ha="right")
    ax.set_xlabel("model")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{task.name}: {metric}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    _legend(fig)
    return fig


def curves_figure(task: str, curves: list[Curve], colors: dict[str, str], order: list[str]) -> Figure | None:
    """Training loss against optimiser step (left) and the val selection metric at each val evaluation (right,
    when the runs logged one; a ring marks the selected step): one thin line per seed, one colour per model; log
    scale for the loss when it spans more than two decades."""
    lines = []
    for c in sorted(curves, key=lambda c: (order.index(c.model) if c.model in order else len(order), c.seed)):
        pts = [(s, v) for s, v in zip(c.steps, c.loss, strict=False) if _finite(s) and _finite(v)]
        val = [(s, v) for s, v in zip(c.val_steps, c.val_values, strict=False) if _finite(s) and _finite(v)]
        if pts or val:
            lines.append((c, pts, val))
    if not lines:
        return None
    has_val = any(val for _, _, val in lines)
    fig = _figure(8.4 if has_val else 5.2, 3.0)
    ax = fig.add_subplot(1, 2, 1) if has_val else fig.add_subplot()
    vax = fig.add_subplot(1, 2, 2) if has_val else None
    labelled: set[str] = set()
    for c, pts, val in lines:
        color = color_for(colors, c.model)
        label = None if c.model in labelled else c.model
        labelled.add(c.model)
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linewidth=0.9, alpha=0.85, label=label)
        if vax is not None and val:
            vax.plot([p[0] for p in val], [p[1] for p in val], color=color, linewidth=0.9, alpha=0.85, marker=".")
            best = [p for p in val if p[0] == c.best_step]
            if best:
                vax.scatter([best[0][0]], [best[0][1]], s=40, facecolors="none", edgecolors=color, linewidths=1.2)
    values = [v for _, pts, _ in lines for _, v in pts]
    log = bool(values) and min(values) > 0 and max(values) / min(values) > 100
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss" + (" (log scale)" if log else ""))
    ax.set_title(f"{task}: training loss (one line per seed)", fontsize=10)
    ax.grid(alpha=0.3)
    if vax is not None:
        metric = next(c.val_metric for c, _, val in lines if val)
        vax.set_xlabel("optimiser step")
        vax.set_ylabel(f"val {metric}")
        vax.set_title(f"{task}: val {metric} (ring: selected step)", fontsize=10)
        vax.grid(alpha=0.3)
    _legend(fig)
    return fig


def throughput_figure(task: TaskSection, speed: dict[str, float], colors: dict[str, str]) -> Figure | None:
    """Main metric (mean, 95% CI) against training samples/s, one labelled point per model."""
    main = task.main_metric
    points = [
        (r, speed[r.name])
        for r in task.rows
        if r.name in speed and main in r.cells and _finite(r.cells[main].mean) and speed[r.name] > 0
    ]
    if not points:
        return None
    fig = _figure(5.2, 3.2)
    ax = fig.add_subplot()
    for r, x in points:
        cell = r.cells[main]
        color = color_for(colors, r.name)
        if cell.ci is not None and all(_finite(v) for v in cell.ci):
            err = [[max(cell.mean - cell.ci[0], 0.0)], [max(cell.ci[1] - cell.mean, 0.0)]]
            ax.errorbar([x], [cell.mean], yerr=err, color=color, capsize=3, linewidth=1, zorder=2)
        ax.scatter([x], [cell.mean], color=color, s=40, zorder=3, label=r.name, edgecolors="#222222")
        ax.annotate(r.name, (x, cell.mean), textcoords="offset points", xytext=(5, 5), fontsize=8)
    xs = [x for _, x in points]
    if max(xs) / min(xs) > 10:
        ax.set_xscale("log")
    ax.set_xlabel("training samples/s" + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(f"{main} (%)")
    ax.set_title(f"{task.name}: {main} against training throughput", fontsize=10)
    ax.grid(alpha=0.3)
    ax.margins(x=0.25, y=0.2)
    _legend(fig)
    return fig


def data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def render(build: Callable[..., Figure | None], *args: Any) -> str | None:
    """``build(*args)`` as a PNG data URI, or None when there is nothing to draw."""
    with warnings.catch_warnings():  # extreme values (a record edited by hand) make matplotlib's tick maths warn
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        fig = build(*args)
        return None if fig is None else data_uri(fig)
