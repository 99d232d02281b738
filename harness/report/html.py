"""report.html: one self-contained file (inline CSS, plots as data URIs, no scripts, no network)."""

from __future__ import annotations

import html

from harness import __version__
from harness.report.markdown import cost_rows, task_rows
from harness.report.model import Report, settings_rows
from harness.report.plots import main_metric_plot

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .6rem;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
td.best{font-weight:700;background:#eef7ee}.legend{color:#555;font-size:.85rem}.fail{color:#b00020}
.settings td{text-align:left}img{max-width:100%}code{background:#f4f4f4;padding:0 .2rem}
"""


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = ""
    for r in rows:
        cells = ""
        for c in r:
            best = c.startswith("\x00")
            text = c.lstrip("\x00")
            cells += f"<td class='best'>{html.escape(text)}</td>" if best else f"<td>{html.escape(text)}</td>"
        body += f"<tr>{cells}</tr>"
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    s, env = report.suite, report.env
    esc = html.escape
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>xmbench: {esc(s.name or '')}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>xmbench report: {esc(s.name or '')}</h1>",
    ]
    if s.description:
        parts.append(f"<p>{esc(s.description.strip())}</p>")
    meta = f"Generated {report.generated:%Y-%m-%d %H:%M UTC} by xmbench {__version__}"
    if env:
        meta += f" on {env.get('device')}, torch {env.get('torch')}, commit {env.get('git_commit')}"
    parts.append(f"<p class='legend'>{esc(meta)}</p>")
    parts.append("<h2>Settings shared by every pairing</h2>")
    parts.append(_table(["block", "settings"], [[k, v] for k, v in settings_rows(s)], "settings"))
    if report.overrides:
        parts.append("<p><b>Per-model overrides</b> (allowed by <code>train.allow_overrides</code>):</p>")
        parts.append(
            _table(
                ["model", "key", "suite", "model"],
                [[o["model"], o["key"], str(o["suite_value"]), str(o["model_value"])] for o in report.overrides],
            )
        )
    else:
        parts.append("<p>No per-model overrides: every model trained with exactly these settings.</p>")
    for t in report.tables:
        parts.append(f"<h2>Task <code>{esc(t.task)}</code>: {esc(t.task_type)} on <code>{esc(t.dataset)}</code></h2>")
        header, rows = task_rows(t, bold=("\x00", ""))
        parts.append(_table(header, rows))
        legend = f"Mean ± sample std over seeds, in percent. ★ = best mean {t.main_metric}; shaded = best per column."
        if t.baseline:
            legend += f" Δ = difference of means against the baseline {t.baseline}, in points."
        parts.append(f"<p class='legend'>{esc(legend)}</p>")
        uri = main_metric_plot(report.results, t.task, t.main_metric, t.models, t.kinds)
        parts.append(f"<img alt='{esc(t.task)} {esc(t.main_metric)} by model' src='{uri}'>")
    if report.submissions:
        parts.append(
            "<h2>Results files for submission</h2><p>Evaluated on a split without annotations: no scores, "
            "but the official results file to submit.</p><ul>"
        )
        parts.append("".join(f"<li><code>{esc(r)}</code>: <code>{esc(p)}</code></li>" for r, p in report.submissions))
        parts.append("</ul>")
    if not report.cost.empty:
        parts.append("<h2>Cost (mean over seeds)</h2>")
        header, rows = cost_rows(report.cost)
        parts.append(_table(header, rows))
    if report.skipped:
        parts.append("<h2>Skipped samples</h2>")
        for dataset, info in report.skipped.items():
            reasons = ", ".join(f"{k}: {v}" for k, v in info.get("by_reason", {}).items())
            parts.append(
                f"<p>Dataset <code>{esc(dataset)}</code> (on_bad_sample: skip): <b>{info['count']} sample(s) "
                f"skipped</b> ({esc(reasons)}).</p>"
            )
            parts.append("<ul>" + "".join(f"<li>{esc(line)}</li>" for line in info.get("samples", [])) + "</ul>")
    if report.failed:
        parts.append("<h2 class='fail'>Failed runs</h2><p>Not in any mean above.</p>")
        parts.append(_table(["run", "error"], [[f.run_id, str(f.error or "")] for f in report.failed], "settings"))
    if report.missing or report.in_progress:
        parts.append("<h2>Runs without a result</h2><ul>")
        parts += [
            f"<li><code>{esc(r)}</code>: in progress (claimed by a running xmbench process)</li>"
            for r in report.in_progress
        ]
        parts += [f"<li><code>{esc(r)}</code>: missing (not run yet, or interrupted)</li>" for r in report.missing]
        parts.append("</ul>")
    if report.other:
        parts.append(
            "<h2>Not part of this plan</h2><p>Run folders that this suite, as it is now, does not plan. They are "
            "never averaged in.</p>"
        )
        parts.append(
            _table(["folder", "run", "why"], [[o.folder, o.run_id, o.reason] for o in report.other], "settings")
        )
    if env:
        parts.append("<h2>Environment</h2>")
        parts.append(_table(["key", "value"], [[k, str(v)] for k, v in env.items()], "settings"))
    parts.append("<p class='legend'>Raw numbers: results.csv (one row per run and metric) and summary.json.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
