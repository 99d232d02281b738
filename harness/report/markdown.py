"""report.md: the report as GitHub-flavoured Markdown: the HTML report's sections, in the same order, without charts."""

from __future__ import annotations

import re

from harness.report import format as f
from harness.report import quantized as q
from harness.report.model import Report, TaskSection

_TAG = re.compile(r"<(?=[A-Za-z/!?])")
VERDICT_ICONS = {"supported": "✅", "contradicted": "❌", "inconclusive": "⚠️", "not judged": "⏸️"}


def _safe(value: str) -> str:
    """Free text (errors, notes, file names) that GitHub would otherwise take for an HTML tag: ``<module>``."""
    return _TAG.sub(r"\\<", value)


def _cell(value: str) -> str:
    """Text safe inside a table cell: pipes escaped, one line."""
    return " ".join(_safe(value).replace("|", "\\|").split()) or f.MISSING


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    """A GFM table; ``align`` per column: "l" or "r" (default: the first two left, the rest right)."""
    align = align or ["l" if i < 2 else "r" for i in range(len(header))]
    rule = ["---" if a == "l" else "--:" for a in align]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return [*lines, ""]


def _bold(value: str) -> str:
    return f"**{value}**" if value and value != f.MISSING else value


def _code(value: str) -> str:
    return f"`{value}`" if value and value != f.MISSING else f.MISSING


def _verdict(verdict: str) -> str:
    word = f.verdict_word(verdict)
    icon = VERDICT_ICONS.get(verdict)
    return f"{icon} **{word}**" if icon else word


def _claims(report: Report) -> list[str]:
    out = ["## Claims and verdicts", ""]
    if report.claims:
        rows = []
        for c in report.claims:
            cells = f.claim_cells(c)
            cells[f.CLAIM_HEADER.index("verdict")] = _verdict(c.verdict)
            rows.append(cells)
        align = ["r", "l", "l", "r", "r", "r", "r", "r", "l", "l"]
        out += _table(f.CLAIM_HEADER, rows, align)
        out += [f.VERDICT_RULES + " " + f.UNITS_LEGEND, ""]
    else:
        out += ["This suite makes no claims: the tables below compare its models.", ""]
    if report.tasks:
        out += ["### At a glance", ""]
        out += [f"- **{t.name}**: {f.glance(t, report.claims)}." for t in report.tasks]
        out.append("")
    return out


def _task(t: TaskSection) -> list[str]:
    out = [f"## Task `{t.name}`: {t.task_type} on `{t.dataset}`", ""]
    rows = [[_bold(c.text) if c.best else c.text for c in row] for row in f.task_rows(t)]
    align = ["l", "l"] + ["r"] * (len(f.task_header(t)) - 2)
    out += _table(f.task_header(t), rows, align)
    legend = [_safe(line) for line in f.task_legend(t)]
    out += [line + "  " for line in legend[:-1]] + legend[-1:]
    return [*out, ""]


def render_markdown(report: Report) -> str:
    out = [f"# {f.title(report)}", ""]
    if f.description(report):
        out += [_safe(" ".join(f.description(report).split())), ""]
    out += [f.generated_line(report), ""]
    out += _claims(report)
    for t in report.tasks:
        out += _task(t)

    order = f.model_order(report)
    curves = {t: cs for t, cs in (report.curves or {}).items() if cs}
    if curves:
        out += [
            "## Learning curves",
            "",
            "Training loss per optimiser step, and the val split's selection metric at each val evaluation; each run "
            "was scored on the test split once, with its state at the selected step (the charts are in "
            "report.html).",
            "",
        ]
        rows = [[task, *row] for task, cs in curves.items() for row in f.curve_rows(cs, order)]
        out += _table(["task", *f.CURVE_HEADER], rows, ["l", "l", "r", "r", "r", "r", "r", "r", "r"])
    speeds = [(t, f.throughput_rows(report, t)) for t in report.tasks]
    speeds = [(t, rows) for t, rows in speeds if any(r[-1] != f.MISSING for r in rows)]
    if speeds:
        out += ["## Accuracy against training throughput", "", "The scatter plots are in report.html.", ""]
        rows = [[t.name, *row] for t, task_rows in speeds for row in task_rows]
        out += _table(["task", *f.THROUGHPUT_HEADER], rows, ["l", "l", "l", "r", "r"])

    if report.models:
        out += ["## Models", ""]
        rows = [f.model_cells(m) for m in report.models]
        for r in rows:
            r[0] = _code(r[0])
        out += _table(f.MODEL_HEADER, rows, ["l", "l", "l", "l", "r", "r", "l"])

    out += ["## Fairness", ""]
    if report.settings:
        out += ["Settings shared by every pairing:", ""]
        out += _table(["block", "settings"], [[f.text(k), f.text(v)] for k, v in report.settings], ["l", "l"])
    if report.overrides:
        out += ["**Per-model overrides** (allowed by `train.allow_overrides`):", ""]
        out += _table(f.OVERRIDE_HEADER, [f.override_cells(o) for o in report.overrides], ["l", "l", "r", "r"])
    else:
        out += ["No per-model overrides: every model trained with exactly the same settings.", ""]
    if report.adjustments:
        out += ["**Runner adjustments** (the effective batch is unchanged; the micro-batch is not):", ""]
        out += _table(["run", "adjustment"], [[str(r), str(a)] for r, a in report.adjustments], ["l", "l"])

    header, rows = f.cost_table(report.cost)
    if rows:
        out += ["## Cost (mean over seeds)", ""]
        out += _table(header, rows)
    if report.quantized:
        out += ["## Quantised evaluation (dynamic INT8)", ""]
        out += _table(q.HEADER, [q.cells(r) for r in report.quantized], q.ALIGN)
        out += [_safe(q.LEGEND), ""]
    if report.failed:
        out += ["## Failed runs", "", "Not in any mean above.", ""]
        rows = [[str(r.run_id), _code(str(r.folder)), str(r.error or f.MISSING)] for r in report.failed]
        out += _table(["run", "folder", "error"], rows, ["l", "l", "l"])
    if report.missing or report.in_progress:
        out += ["## Runs without a result", ""]
        out += [f"- `{r}`: in progress (claimed by a running xmbench process)" for r in report.in_progress]
        out += [f"- `{r}`: missing (not run yet, or interrupted); `xmbench run` trains it" for r in report.missing]
        out.append("")
    if report.other:
        out += [
            "## Not part of this plan",
            "",
            "Run folders under `runs/` that this suite, as it is now, does not plan. They are never averaged in.",
            "",
        ]
        rows = [[_code(o.folder), f.text(o.run_id), f.text(o.reason)] for o in report.other]
        out += _table(["folder", "run", "why"], rows, ["l", "l", "l"])
    if report.skipped:
        out += ["## Skipped samples", ""]
        for dataset, info in report.skipped.items():
            reasons, samples = f.skipped_lines(info)
            out += [
                f"Dataset `{dataset}` (on_bad_sample: skip): **{f.text(info.get('count'))} sample(s) skipped** "
                f"({reasons}).",
                "",
            ]
            out += [f"- {_safe(s)}" for s in samples]
            out += [""] if samples else []
    if report.submissions:
        out += [
            "## Results files for submission",
            "",
            "These runs were evaluated on a split without annotations (e.g. VQA test-dev): no scores, but the official "
            "results file to submit.",
            "",
        ]
        out += [f"- `{run}`: `{path}`" for run, path in report.submissions] + [""]
    if report.env:
        out += ["## Environment", ""]
        out += _table(["key", "value"], [[f.text(k), f.text(v)] for k, v in report.env.items()], ["l", "l"])
    out.append("Raw numbers: `results.csv` (one row per run and metric) and `summary.json`; run folders under `runs/`.")
    return "\n".join(out) + "\n"
