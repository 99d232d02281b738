"""report.md: GitHub-flavoured Markdown."""

from __future__ import annotations

import pandas as pd

from harness import __version__
from harness.report.model import Report, fmt_delta, fmt_mean_std, settings_rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def task_rows(t, bold: tuple[str, str] = ("**", "**"), star: str = " ★") -> tuple[list[str], list[list[str]]]:
    """Header and rows of one task table (shared by Markdown and HTML)."""
    header = ["model", "kind"] + t.metrics + ([f"Δ {t.main_metric} vs {t.baseline}"] if t.baseline else []) + ["seeds"]
    rows = []
    for m in t.models:
        name = m + (star if m in t.best.get(t.main_metric, []) else "")
        cells = [name, t.kinds.get(m, "")]
        for metric in t.metrics:
            n = t.n.loc[m, metric]
            text = fmt_mean_std(t.mean.loc[m, metric], t.std.loc[m, metric], 0 if pd.isna(n) else int(n))
            cells.append(f"{bold[0]}{text}{bold[1]}" if m in t.best.get(metric, []) else text)
        if t.baseline:
            cells.append("baseline" if m == t.baseline else fmt_delta(t.delta.loc[m, t.main_metric]))
        cells.append(str(int(t.n.loc[m].max())) if not t.n.loc[m].isna().all() else "0")
        rows.append(cells)
    return header, rows


def cost_rows(cost: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [
        "task",
        "model",
        "params (M)",
        "trainable (M)",
        "GFLOPs/sample",
        "train s",
        "train samples/s",
        "eval s",
        "peak RSS (MB)",
    ]
    rows = []
    for _, r in cost.iterrows():
        rows.append(
            [
                r["task"],
                r["model"],
                f"{r['params_M']:.2f}",
                f"{r['trainable_M']:.2f}",
                "—" if pd.isna(r["GFLOPs_per_sample"]) else f"{r['GFLOPs_per_sample']:.4f}",
                f"{r['train_s']:.1f}",
                f"{r['train_samples_per_s']:.0f}",
                f"{r['eval_s']:.1f}",
                "—" if pd.isna(r["peak_rss_MB"]) else f"{r['peak_rss_MB']:.0f}",
            ]
        )
    return header, rows


def render_markdown(report: Report) -> str:
    s = report.suite
    env = report.env
    out = [f"# xmbench report: {s.name}", ""]
    if s.description:
        out += [s.description.strip(), ""]
    out += [
        f"Generated {report.generated:%Y-%m-%d %H:%M UTC} by xmbench {__version__}"
        + (f" (commit {env.get('git_commit')})" if env.get("git_commit") else "")
        + (f" on {env.get('device')}, torch {env.get('torch')}" if env else "")
        + ".",
        "",
    ]
    out += ["## Settings shared by every pairing", ""]
    out += [_table(["block", "settings"], [[k, v] for k, v in settings_rows(s)]), ""]
    if report.overrides:
        out += ["**Per-model overrides** (allowed by `train.allow_overrides`):", ""]
        out += [
            _table(
                ["model", "key", "suite", "model"],
                [[o["model"], o["key"], str(o["suite_value"]), str(o["model_value"])] for o in report.overrides],
            )
        ]
    else:
        out += ["No per-model overrides: every model trained with exactly these settings."]
    out.append("")
    for t in report.tables:
        task = s.tasks[t.task]
        out += [f"## Task `{t.task}`: {t.task_type} on `{t.dataset}`", ""]
        header, rows = task_rows(t)
        out += [_table(header, rows), ""]
        legend = f"Mean ± sample std over seeds, in percent. ★ = best mean {t.main_metric}; bold = best per column."
        if t.baseline:
            legend += f" Δ = difference of means against the baseline `{t.baseline}`, in points."
        out += [legend]
        note = report.notes.get(t.task, {})
        if note.get("classes_without_positives"):
            out += [
                f"{note['classes_without_positives']} class(es) without positives in the eval split are excluded "
                "from mAP (see docs/metrics.md)."
            ]
        if note.get("scoring"):
            out += [
                f"Retrieval scoring for fusion models: ITM re-ranking of the top-{note.get('k_test')} ITC candidates."
                if note["scoring"] == "itm"
                else "Retrieval scoring: ITC similarity."
            ]
        missing = [m for m in task.models if m not in t.models]
        if missing:
            out += [f"No finished runs for: {', '.join(missing)}."]
        out.append("")
    if report.submissions:
        out += [
            "## Results files for submission",
            "",
            "These runs were evaluated on a split without annotations "
            "(e.g. VQA test-dev): no scores, but the official results file to submit.",
            "",
        ]
        out += [f"- `{run}`: `{path}`" for run, path in report.submissions] + [""]
    if not report.cost.empty:
        out += ["## Cost (mean over seeds)", ""]
        header, rows = cost_rows(report.cost)
        out += [_table(header, rows), ""]
    if report.skipped:
        out += ["## Skipped samples", ""]
        for dataset, info in report.skipped.items():
            reasons = ", ".join(f"{k}: {v}" for k, v in info.get("by_reason", {}).items())
            out += [
                f"Dataset `{dataset}` (on_bad_sample: skip): **{info['count']} sample(s) skipped** ({reasons}).",
                "",
            ]
            out += [f"- {line}" for line in info.get("samples", [])]
            if info["count"] > len(info.get("samples", [])):
                out += [f"- ... and {info['count'] - len(info.get('samples', []))} more (see runs/*/skipped.json)"]
            out.append("")
    if report.failed:
        out += ["## Failed runs", "", "Not in any mean above.", ""]
        out += [_table(["run", "error"], [[f.run_id, str(f.error or "")] for f in report.failed]), ""]
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
        out += [_table(["folder", "run", "why"], [[f"`{o.folder}`", o.run_id, o.reason] for o in report.other]), ""]
    if env:
        out += ["## Environment", ""]
        out += [_table(["key", "value"], [[k, str(v)] for k, v in env.items()]), ""]
    out += [
        "Raw numbers: `results.csv` (one row per run and metric) and `summary.json`; per-run folders under `runs/`."
    ]
    return "\n".join(out) + "\n"
