"""Formatting shared by every renderer (Markdown, HTML, terminal): numbers, intervals, deltas, p-values, verdicts,
and the rows of the tables the renderers draw each in their own way.

Everything here returns plain text (no markup, no marker characters); a renderer escapes it and adds emphasis
natively. Anything missing (None, NaN, an infinity, an empty string) is shown as :data:`MISSING`, so that no
``None``, ``nan`` or ``inf`` ever reaches a reader.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from harness import __version__
from harness.report.model import Cell, ClaimRow, Delta, ModelRow, Report, TaskSection
from harness.results.artifacts import Curve

MISSING = "—"

VERDICTS = ("supported", "contradicted", "inconclusive", "not judged")
VERDICT_COLORS = {  # badge background, text colour
    "supported": ("#2e7d32", "#ffffff"),
    "contradicted": ("#c62828", "#ffffff"),
    "inconclusive": ("#f0b400", "#222222"),
    "not judged": ("#757575", "#ffffff"),
}
VERDICT_RULES = (
    "Verdicts read the CI corrected for the number of claims (Bonferroni): supported = it lies above 0 and reaches "
    "the claimed delta; contradicted = it lies below the claimed delta; inconclusive = it holds both 0 and the "
    "claimed delta (MDE: the smallest gain the current seeds and examples would detect at 80% power); not judged = "
    "runs or their per-example evidence are missing. An absolute claim (reaches a value) is supported when the "
    "corrected CI of the model's metric lies at or above the value (less its tolerance), contradicted when it lies "
    "below; an ordering holds when every adjacent pair (rows n.1, n.2, ...) is significant in the claimed direction "
    "after Holm's correction; a size claim (INT8 smaller by) is contradicted when the measured reduction falls "
    "short, and with max_drop its CI is the accuracy change int8 - fp32, which must lie at or above -max_drop."
)
UNITS_LEGEND = (
    "pp = percentage points; % rel. = percent of the baseline's mean; % = the metric itself (absolute claims)."
)

_BAD_TOKEN = re.compile(r"(?<![\w.])(?:None|NaN|nan|[+-]?inf|[+-]?Infinity|null)(?![\w.])")


# --- scalars -------------------------------------------------------------------------------------------------------


def finite(x: Any) -> bool:
    """Whether ``x`` is a real, finite number (bools are not numbers here)."""
    if x is None or isinstance(x, bool):
        return False
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def num(x: Any, digits: int = 2) -> str:
    """``55.87``; :data:`MISSING` when not a finite number. Never ``-0.00``."""
    if not finite(x):
        return MISSING
    text = f"{float(x):.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def sig(x: Any, digits: int = 3) -> str:
    """A value of any magnitude to ``digits`` significant figures, trailing zeros dropped (losses, GFLOPs):
    ``0.0123``, ``3.22``, ``0.004``; exponent notation only below 10^-4 or from 10^6."""
    if not finite(x):
        return MISSING
    v = float(x)
    if v == 0:
        return "0"
    if 1e-4 <= abs(v) < 1e6:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
        out = num(v, decimals)
        return out.rstrip("0").rstrip(".") if "." in out else out
    return f"{v:.{digits - 1}e}"


def signed(x: Any, digits: int = 2) -> str:
    """``+28.66`` / ``-1.20``; a zero is ``+0.00``."""
    text = num(x, digits)
    return text if text == MISSING or text.startswith("-") else "+" + text


def integer(x: Any) -> str:
    """``1,234``."""
    return f"{round(float(x)):,}" if finite(x) else MISSING


def ci(pair: tuple[Any, Any] | None, digits: int = 2) -> str:
    """``[54.10, 57.60]``; :data:`MISSING` when either bound is missing."""
    if pair is None or len(pair) != 2 or not (finite(pair[0]) and finite(pair[1])):
        return MISSING
    return f"[{num(pair[0], digits)}, {num(pair[1], digits)}]"


def mean_ci(mean: Any, pair: tuple[Any, Any] | None = None, digits: int = 2) -> str:
    """``55.87 [54.10, 57.60]``; the mean alone when there is no interval; :data:`MISSING` without a mean."""
    if not finite(mean):
        return MISSING
    interval = ci(pair, digits)
    return num(mean, digits) if interval == MISSING else f"{num(mean, digits)} {interval}"


def delta_ci(delta: Any, pair: tuple[Any, Any] | None = None, digits: int = 2) -> str:
    """``+28.66 [26.90, 30.40]``; the signed delta alone when there is no interval."""
    if not finite(delta):
        return MISSING
    interval = ci(pair, digits)
    return signed(delta, digits) if interval == MISSING else f"{signed(delta, digits)} {interval}"


def p_value(p: Any, prefix: bool = True) -> str:
    """``p < 0.001``, ``p = 0.004``, ``p = 0.03``; without ``prefix``: ``< 0.001``, ``0.004``, ``0.03``."""
    if not finite(p):
        return MISSING
    v = min(max(float(p), 0.0), 1.0)
    if v < 0.001:
        body = "< 0.001"
    elif v < 0.01:
        body = f"= {v:.3f}"
    else:
        body = f"= {v:.2f}"
    if prefix:
        return f"p {body}"
    return body[2:] if body.startswith("= ") else body


def text(x: Any) -> str:
    """Any value as display text: :data:`MISSING` for None/NaN/inf/empty; floats to at most 4 significant decimals;
    inside strings (settings such as ``grad_clip=None``) the bare tokens None/nan/inf become :data:`MISSING`."""
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return f"{x:.6g}" if finite(x) else MISSING
    if isinstance(x, int):
        return str(x)
    if isinstance(x, list | tuple):
        return ", ".join(text(v) for v in x) if x else MISSING
    if isinstance(x, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in x.items()) if x else MISSING
    s = str(x).strip()
    return _BAD_TOKEN.sub(MISSING, s) if s else MISSING


def verdict_word(verdict: Any) -> str:
    """The verdict as shown: one of :data:`VERDICTS` (an unknown one verbatim; a missing one :data:`MISSING`)."""
    return text(verdict)


def verdict_key(verdict: Any) -> str:
    """The verdict as a CSS class / colour key (unknown ones are shown as not judged)."""
    return verdict if verdict in VERDICT_COLORS else "not judged"


def generated_at(when: datetime | None) -> str:
    if when is None:
        return MISSING
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return f"{when:%Y-%m-%d %H:%M} UTC"


def generated_line(report: Report) -> str:
    """``Generated 2026-01-01 12:00 UTC by xmbench 0.1.0 on cuda:0 (NVIDIA H200), torch 2.5.1, commit 3fc4b92a1c2e.``"""
    env = report.env or {}
    device = text(env.get("device"))
    gpu = env.get("gpu")
    if isinstance(gpu, str) and gpu.strip():
        device += f" ({text(gpu)})"
    commit = text(env.get("git_commit"))
    if commit != MISSING:
        sha, _, rest = commit.partition("-")
        commit = sha[:12] + (f"-{rest}" if rest else "")
    line = (
        f"Generated {generated_at(report.generated)} by xmbench {__version__} on {device}, "
        f"torch {text(env.get('torch'))}, commit {commit}."
    )
    world = env.get("world_size") or 1
    line += f" World size: {world} (torchrun data-parallel processes per run)." if world > 1 else " World size: 1."
    suite = report.suite
    line += f" Profile: {suite.profile}." if suite.profile else " Profile: none (the suite as written)."
    if suite.overrides:
        line += f" Overrides (--set): {', '.join(suite.overrides)}."
    return line


def title(report: Report) -> str:
    name = getattr(report.suite, "name", None)
    return f"xmbench report: {name}" if name else "xmbench report"


def description(report: Report) -> str:
    return (getattr(report.suite, "description", "") or "").strip()


# --- tables --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    text: str
    best: bool = False  # the best value of its column: rendered bold / shaded


def row_by_name(task: TaskSection, name: str) -> ModelRow | None:
    return next((r for r in task.rows if r.name == name), None)


def main_delta(task: TaskSection, row: ModelRow) -> Delta | None:
    return row.vs_baseline.get(task.main_metric) if task.baseline else None


def task_header(task: TaskSection) -> list[str]:
    """``model | kind | <metric>... | Δ <main> vs <baseline> | p | seeds``."""
    header = ["model", "kind", *task.metrics]
    if task.baseline:
        header += [f"Δ {task.main_metric} vs {task.baseline}", "p"]
    return [*header, "seeds"]


def task_rows(task: TaskSection, star: str = " ★") -> list[list[Column]]:
    """One row per model: the winner's name gets ``star``; every metric ``mean [95% CI]`` (``best`` flagged)."""
    out = []
    winners = set(task.winner)
    for r in task.rows:
        row = [Column(r.name + (star if r.name in winners else "")), Column(text(r.kind))]
        for metric in task.metrics:
            cell = r.cells.get(metric)
            shown = mean_ci(cell.mean, cell.ci) if cell else MISSING
            row.append(Column(shown, best=shown != MISSING and r.name in task.best.get(metric, [])))
        if task.baseline:
            if r.name == task.baseline:
                row += [Column("baseline"), Column(MISSING)]
            else:
                d = main_delta(task, r)
                row += [
                    Column(delta_ci(d.delta, d.ci) if d else MISSING),
                    Column(p_value(d.p_value, prefix=False) if d else MISSING),
                ]
        out.append([*row, Column(str(r.seeds))])
    return out


def task_legend(task: TaskSection) -> list[str]:
    """The lines under a task table: how to read it, the interval methods, notes, models without results."""
    lines = [
        f"Mean [95% CI] over seeds, in percent (a t interval is clipped to 0–100, the range of every metric)."
        f" ★ = best mean {task.main_metric}; bold = best per column."
        + (
            f" Δ = {task.main_metric} against the baseline {task.baseline}, in points, with its 95% CI and p-value."
            if task.baseline
            else " No baseline: no deltas."
        )
    ]
    methods = _grouped((r.name, c.ci_method) for r in task.rows for c in r.cells.values() if c.ci_method)
    if methods:
        lines.append("CIs: " + "; ".join(f"{m} ({', '.join(names)})" for m, names in methods.items()) + ".")
    agree = [
        f"{r.name} {m}"
        for r in task.rows
        for m, c in r.cells.items()
        if c.n_seeds >= 2 and c.ci is not None and c.ci[0] == c.ci[1]
    ]
    if agree:
        lines.append(
            "Every seed gave the same value for "
            + ", ".join(agree)
            + ": a CI over seeds has zero width there. It covers training randomness only, not the sampling of the"
            " test images (the Δ column's bootstrap covers both)."
        )
    deltas = _grouped((r.name, d.method) for r in task.rows for d in r.vs_baseline.values() if d.method)
    if deltas:
        lines.append("Δ: " + "; ".join(f"{m} ({', '.join(names)})" for m, names in deltas.items()) + ".")
    lines += [text(n) for n in task.notes if n]
    if task.without_results:
        lines.append(f"No finished runs for: {', '.join(task.without_results)}.")
    return lines


def _grouped(pairs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, method in pairs:
        names = out.setdefault(text(method), [])
        if name not in names:
            names.append(name)
    return out


def _pairwise(
    task: TaskSection, claims: Sequence[ClaimRow], a: ModelRow, b: ModelRow
) -> tuple[float, tuple[float, float] | None, float | None] | None:
    """``a`` against ``b`` on the main metric with a paired 95% CI and p-value, when the report has one: a Δ against
    the baseline (either way round) or a claim in points on that pair and metric (either way round)."""
    main = task.main_metric

    def flip(ci_: tuple[float, float] | None) -> tuple[float, float] | None:
        return None if ci_ is None else (-ci_[1], -ci_[0])

    if task.baseline == b.name and main in a.vs_baseline:
        d = a.vs_baseline[main]
        return d.delta, d.ci, d.p_value
    if task.baseline == a.name and main in b.vs_baseline:
        d = b.vs_baseline[main]
        return -d.delta, flip(d.ci), d.p_value
    for c in claims:
        if c.task != task.name or c.metric != main or c.relative or not finite(c.measured):
            continue
        if (c.model, c.baseline) == (a.name, b.name):
            return c.measured, c.ci95, c.p_value
        if (c.model, c.baseline) == (b.name, a.name):
            return -c.measured, flip(c.ci95), c.p_value
    return None


def glance(task: TaskSection, claims: Sequence[ClaimRow] = ()) -> str:
    """One line saying who wins the task and by how much over the runner-up: ``xbert wins (vqa_accuracy 55.87 [54.10,
    57.60]), +23.98 [21.60, 26.40] over bert, p < 0.001``. The margin comes with its paired 95% CI and p-value when the
    runner-up is the baseline (or the winner is) or a claim compares the two; otherwise it is the difference of means,
    followed by the winner's Δ against the baseline."""
    main = task.main_metric
    scored = sorted(
        (r for r in task.rows if main in r.cells and finite(r.cells[main].mean)), key=lambda r: -r.cells[main].mean
    )
    if not scored:
        return f"no model has a {main} result"
    top = scored[0].cells[main].mean
    tied = [r for r in scored if r.cells[main].mean >= top - 1e-9]
    if len(tied) > 1:
        return f"tie between {', '.join(r.name for r in tied)} ({main} {num(top)})"
    w = scored[0]
    line = f"{w.name} wins ({main} {mean_ci(w.cells[main].mean, w.cells[main].ci)})"
    if len(scored) == 1:
        return line + ", the only model with a result"
    runner = scored[1]
    pair = _pairwise(task, claims, w, runner)
    if pair is not None:
        delta, interval, p = pair
        line += f", {delta_ci(delta, interval)} over {runner.name}"
        line += f", {p_value(p)}" if finite(p) else ""
        if interval is not None and finite(interval[0]) and finite(interval[1]) and interval[0] <= 0 <= interval[1]:
            line += ": not significant (the 95% CI holds 0)"
        return line
    line += f", {signed(w.cells[main].mean - runner.cells[main].mean)} over {runner.name} (difference of means)"
    d = main_delta(task, w)
    if d is not None and finite(d.delta):
        line += f"; {delta_ci(d.delta, d.ci)} over the baseline {task.baseline}"
        line += f", {p_value(d.p_value)}" if finite(d.p_value) else ""
    return line


# --- claims --------------------------------------------------------------------------------------------------------


def claim_unit(c: ClaimRow) -> str:
    if c.kind == "value":
        return "%"
    return "% rel." if c.relative else "pp"


def claimed(c: ClaimRow) -> str:
    if c.kind == "order":
        return "ordering"
    if c.kind == "pair":
        return "> 0 pp"
    if c.kind == "smaller":
        return f"{num(c.claimed, 1)}% smaller"
    value = num(c.claimed) if c.kind == "value" else signed(c.claimed)
    return value if value == MISSING else f"{value} {claim_unit(c)}"


def measured(c: ClaimRow) -> str:
    """Measured delta with the corrected CI: ``+12.30 [8.10, 16.50] pp``; an absolute claim's metric itself:
    ``97.10 [96.20, 98.00] %``; an ordering: see its pairs."""
    if c.kind == "order":
        return "see its pairs" if c.verdict != "not judged" else MISSING
    if c.kind == "smaller":  # exact; the CI columns hold the accuracy change int8 - fp32 (with max_drop)
        value = num(c.measured, 1)
        return value if value == MISSING else f"{value}% smaller"
    if c.kind == "value":
        value = num(c.measured)
        if value != MISSING and c.ci is not None:
            value += f" [{num(c.ci[0])}, {num(c.ci[1])}]"
        return value if value == MISSING else f"{value} %"
    value = delta_ci(c.measured, c.ci)
    return value if value == MISSING else f"{value} {claim_unit(c)}"


def claim_detail(c: ClaimRow) -> str:
    """For an inconclusive claim the MDE and the seeds (or test examples) that would settle it; then the claim's note
    (a note that already gives those counts replaces the short form, so nothing is said twice)."""
    note = (c.note or "").strip()
    if c.verdict != "inconclusive":
        return text(note)
    note = note.removeprefix("Inconclusive:").strip().rstrip(".")
    parts = [f"MDE {num(c.mde)} {claim_unit(c)}"] if finite(c.mde) else []
    counts, numbers = [], []
    if finite(c.seeds_needed):
        counts.append(f"~{integer(c.seeds_needed)} seeds per model")
        numbers.append(str(round(float(c.seeds_needed))))
    if finite(c.examples_needed):
        counts.append(f"~{integer(c.examples_needed)} test examples")
        numbers.append(str(round(float(c.examples_needed))))
    if counts and not (note and all(re.search(rf"(?<![\d,]){n}(?![\d,])", note) for n in numbers)):
        parts.append(" and ".join(counts) + " would settle it")
    if note:
        parts.append(text(note))
    return "; ".join(parts) if parts else MISSING


CLAIM_HEADER = [
    "#",
    "claim",
    "verdict",
    "claimed",
    "measured [corrected CI]",
    "95% CI",
    "p",
    "p adj.",
    "source",
    "notes",
]


def claim_cells(c: ClaimRow) -> list[str]:
    """The claim row in :data:`CLAIM_HEADER` order (the verdict plain: renderers dress it)."""
    return [
        c.label or str(c.index + 1),
        text(c.text),
        verdict_word(c.verdict),
        claimed(c),
        measured(c),
        ci(c.ci95),
        p_value(c.p_value, prefix=False),
        p_value(c.p_adjusted, prefix=False),
        text(c.source),
        claim_detail(c),
    ]


# --- other sections ------------------------------------------------------------------------------------------------

MODEL_HEADER = ["model", "family", "kind", "fusion", "params (M)", "GFLOPs/sample", "recipe"]


def model_cells(m) -> list[str]:
    return [
        m.name,
        text(m.family),
        text(m.kind),
        text(m.fusion),
        num(m.params_m, 2),
        sig(m.gflops, 3),
        text(m.recipe),
    ]


OVERRIDE_HEADER = ["model", "key", "suite", "model value"]


def override_cells(o: dict[str, Any]) -> list[str]:
    return [text(o.get("model")), text(o.get("key")), text(o.get("suite_value")), text(o.get("model_value"))]


COST_COLUMNS = [  # (frame column, header, formatter)
    ("params_M", "params (M)", lambda v: num(v, 2)),
    ("trainable_M", "trainable (M)", lambda v: num(v, 2)),
    ("GFLOPs_per_sample", "eval GFLOPs/sample", lambda v: sig(v, 3)),
    ("train_GFLOPs_per_sample", "train GFLOPs/sample", lambda v: sig(v, 3)),
    ("train_s", "train s", lambda v: num(v, 1)),
    ("data_wait_pct", "data wait %", lambda v: num(v, 1)),
    ("train_samples_per_s", "train samples/s", lambda v: num(v, 0)),
    ("eval_s", "eval s", lambda v: num(v, 1)),
    ("eval_samples_per_s", "eval samples/s", lambda v: num(v, 0)),
    ("peak_rss_MB", "peak RSS (MB)", lambda v: num(v, 0)),
    ("cuda_peak_MB", "CUDA peak (MB)", lambda v: num(v, 0)),
    ("mfu_pct", "MFU %", lambda v: num(v, 1)),
]


def cost_table(cost: pd.DataFrame | None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the cost table (columns the frame lacks, or that are empty throughout, are left out)."""
    if cost is None or cost.empty:
        return [], []
    records = cost.to_dict("records")
    cols = [c for c in COST_COLUMNS if any(finite(r.get(c[0])) for r in records)]
    if not cols:
        return [], []
    header = ["task", "model", *(h for _, h, _ in cols)]
    rows = [[text(r.get("task")), text(r.get("model")), *(f(r.get(k)) for k, _, f in cols)] for r in records]
    return header, rows


def throughput(report: Report, task: str) -> dict[str, float]:
    """model -> training samples/s on ``task`` (finite values only)."""
    if report.cost is None or report.cost.empty or "train_samples_per_s" not in report.cost:
        return {}
    out = {}
    for r in report.cost.to_dict("records"):
        if r.get("task") == task and finite(r.get("train_samples_per_s")):
            out[str(r.get("model"))] = float(r["train_samples_per_s"])
    return out


THROUGHPUT_HEADER = ["model", "main metric", "mean [95% CI]", "train samples/s"]


def throughput_rows(report: Report, task: TaskSection) -> list[list[str]]:
    speed = throughput(report, task.name)
    rows = []
    for r in task.rows:
        cell: Cell | None = r.cells.get(task.main_metric)
        if cell is None and r.name not in speed:
            continue
        rows.append(
            [r.name, task.main_metric, mean_ci(cell.mean, cell.ci) if cell else MISSING, num(speed.get(r.name), 0)]
        )
    return rows


CURVE_HEADER = [
    "model",
    "seeds",
    "last step",
    "first loss (mean)",
    "final loss (mean)",
    "val evaluations",
    "selected step(s)",
    "best val (mean)",
]


def curve_rows(curves: list[Curve], order: list[str]) -> list[list[str]]:
    """Per model: seeds logged, last optimiser step, mean first and final training loss over its seeds."""
    by_model: dict[str, list[Curve]] = {}
    for c in curves:
        by_model.setdefault(c.model, []).append(c)
    names = [m for m in order if m in by_model] + [m for m in by_model if m not in order]
    rows = []
    for m in names:
        cs = by_model[m]
        firsts = [c.loss[0] for c in cs if c.loss and finite(c.loss[0])]
        lasts = [c.loss[-1] for c in cs if c.loss and finite(c.loss[-1])]
        steps = [c.steps[-1] for c in cs if c.steps]
        evals = [len(c.val_steps) for c in cs]
        picked = [c.best_step for c in cs if c.best_step is not None]
        best = [
            v for c in cs for s, v in zip(c.val_steps, c.val_values, strict=False) if s == c.best_step and finite(v)
        ]
        metric = next((c.val_metric for c in cs if c.val_metric), None)
        rows.append(
            [
                m,
                str(len(cs)),
                integer(max(steps)) if steps else MISSING,
                sig(sum(firsts) / len(firsts), 4) if firsts else MISSING,
                sig(sum(lasts) / len(lasts), 4) if lasts else MISSING,
                str(max(evals)) if any(evals) else MISSING,
                ", ".join(str(p) for p in picked) if picked else MISSING,
                f"{num(sum(best) / len(best), 2)} {metric}" if best else MISSING,
            ]
        )
    return rows


def model_order(report: Report) -> list[str]:
    """Every model in suite order (the order of ``report.colors``, then of the Models section)."""
    names = list(report.colors)
    names += [m.name for m in report.models if m.name not in names]
    return names


def skipped_lines(info: dict[str, Any]) -> tuple[str, list[str]]:
    """(``"N sample(s) skipped"`` reasons, sample lines) of one dataset's skipped samples."""
    count = info.get("count") or 0
    reasons = ", ".join(f"{k}: {text(v)}" for k, v in (info.get("by_reason") or {}).items())
    samples = [text(s) for s in info.get("samples") or []]
    if finite(count) and count > len(samples):
        samples.append(f"... and {integer(count - len(samples))} more (see runs/*/skipped.json)")
    return reasons or MISSING, samples
