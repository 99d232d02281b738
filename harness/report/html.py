"""report.html: one self-contained file (inline CSS, charts as PNG data URIs, no scripts, nothing fetched).

The sections and their order are those of report.md; the HTML adds the charts: per task one per metric, the learning
curves, and the main metric against training throughput, each model in its colour from ``report.colors``.
"""

from __future__ import annotations

import re
from html import escape

from harness.report import format as f
from harness.report import plots
from harness.report import quantized as q
from harness.report.model import Report, TaskSection

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1180px;color:#222;
padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.3rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;
padding-bottom:.2rem}h3{font-size:1.02rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}th,td{border:1px solid #ddd;padding:.28rem .55rem;
text-align:right;vertical-align:top}th{background:#f4f4f4}.l{text-align:left}
td{white-space:nowrap}td.l{white-space:normal}td.best{font-weight:700;background:#e8f5e9}
tr.winner td:first-child{font-weight:700}
.meta,.legend{color:#555;font-size:.85rem}.legend{margin:.3rem 0}.fail{color:#b00020}
.scroll{overflow-x:auto}code{background:#f4f4f4;padding:0 .2rem;border-radius:2px}
.sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:-1px}
.verdict{display:inline-block;padding:.05rem .55rem;border-radius:.8rem;font-weight:600;font-size:.8rem;
white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-start}.charts img{max-width:100%;
border:1px solid #eee}
ul.glance{margin:.3rem 0 .6rem;padding-left:1.2rem}ul.glance li{margin:.15rem 0}
td.claim{min-width:16rem}td.source{max-width:18rem;color:#444}.panels{display:flex;flex-wrap:wrap;gap:1.5rem}
.panel h3{margin-top:.4rem}
""" + "".join(f".v-{k.replace(' ', '-')}{{background:{bg};color:{fg}}}" for k, (bg, fg) in f.VERDICT_COLORS.items())

_COLOR = re.compile(r"^#[0-9a-fA-F]{3,8}$")


def _esc(value: object) -> str:
    return escape(str(value), quote=True)


def _swatch(report: Report, model: str) -> str:
    color = report.colors.get(model, plots.FALLBACK_COLOR)
    color = color if _COLOR.match(color or "") else plots.FALLBACK_COLOR
    return f'<span class="sw" style="background:{color}" title="{_esc(model)}"></span>'


def _with_swatches(report: Report, rows: list[list[str]]) -> list[list[str]]:
    """Text rows whose first cell is a model name, as HTML cells with the model's colour swatch in front."""
    return [[_swatch(report, r[0]) + _esc(r[0]), *(_esc(c) for c in r[1:])] for r in rows]


def _table(
    header: list[str],
    rows: list[list[str]],
    left: int = 2,
    html: bool = False,
    col_classes: list[str] | None = None,
    row_classes: list[str] | None = None,
    best: list[set[int]] | None = None,
) -> str:
    """A table; the first ``left`` columns left-aligned. Cells are text (escaped here) or, with ``html``, ready HTML;
    ``best[n]`` holds the columns of row ``n`` that are the best of their column (shaded, bold)."""

    def attrs(i: int, extra: str = "") -> str:
        col = col_classes[i] if col_classes and i < len(col_classes) else ""
        names = " ".join(n for n in ("l" if i < left else "", col, extra) if n)
        return f' class="{names}"' if names else ""

    head = "".join(f"<th{attrs(i)}>{_esc(h)}</th>" for i, h in enumerate(header))
    body = []
    for n, r in enumerate(rows):
        tr = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        marks = best[n] if best else set()
        cells = "".join(
            f"<td{attrs(i, 'best' if i in marks else '')}>{c if html else _esc(c)}</td>" for i, c in enumerate(r)
        )
        body.append(f"<tr{tr}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _img(uri: str | None, alt: str) -> str:
    return "" if uri is None else f'<img alt="{_esc(alt)}" src="{uri}">'


def _verdict(verdict: str) -> str:
    key = f.verdict_key(verdict).replace(" ", "-")
    return f'<span class="verdict v-{key}">{_esc(f.verdict_word(verdict))}</span>'


def _claims(report: Report) -> list[str]:
    out = ['<section id="claims">', "<h2>Claims and verdicts</h2>"]
    if report.claims:
        v = f.CLAIM_HEADER.index("verdict")
        rows = []
        for c in report.claims:
            cells = [_esc(x) for x in f.claim_cells(c)]
            cells[v] = _verdict(c.verdict)
            rows.append(cells)
        classes = ["", "claim", "", "", "", "", "", "", "source l", "l"]
        out.append(_table(f.CLAIM_HEADER, rows, left=3, html=True, col_classes=classes))
        out.append(f'<p class="legend">{_esc(f.VERDICT_RULES)} {_esc(f.UNITS_LEGEND)}</p>')
    else:
        out.append("<p>This suite makes no claims: the tables below compare its models.</p>")
    if report.tasks:
        out.append("<h3>At a glance</h3>")
        items = "".join(f"<li><b>{_esc(t.name)}</b>: {_esc(f.glance(t, report.claims))}.</li>" for t in report.tasks)
        out.append(f'<ul class="glance">{items}</ul>')
    return [*out, "</section>"]


def _task(report: Report, t: TaskSection) -> list[str]:
    out = [
        f'<section id="task-{_esc(t.name)}">',
        f"<h2>Task <code>{_esc(t.name)}</code>: {_esc(t.task_type)} on <code>{_esc(t.dataset)}</code></h2>",
    ]
    rows, marks, row_classes = [], [], []
    for r, cols in zip(t.rows, f.task_rows(t), strict=True):
        rows.append([_swatch(report, r.name) + _esc(cols[0].text), *(_esc(c.text) for c in cols[1:])])
        marks.append({i for i, c in enumerate(cols) if c.best})
        row_classes.append("winner" if r.name in t.winner else "")
    out.append(_table(f.task_header(t), rows, html=True, row_classes=row_classes, best=marks))
    out += [f'<p class="legend">{_esc(line)}</p>' for line in f.task_legend(t)]
    charts = [
        _img(plots.render(plots.metric_figure, t, metric, report.colors), f"{t.name}: {metric} by model")
        for metric in t.metrics
    ]
    if any(charts):
        out.append(
            '<p class="legend">Bar = mean over seeds, error bar = 95% CI, dots = the individual seeds.</p>'
            f'<div class="charts">{"".join(charts)}</div>'
        )
    return [*out, "</section>"]


def render_html(report: Report) -> str:
    title = f.title(report)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{_esc(title)}</h1>",
    ]
    if f.description(report):
        out.append(f"<p>{_esc(' '.join(f.description(report).split()))}</p>")
    out.append(f'<p class="meta">{_esc(f.generated_line(report))}</p></header>')
    out += _claims(report)
    for t in report.tasks:
        out += _task(report, t)

    order = f.model_order(report)
    curves = {t: cs for t, cs in (report.curves or {}).items() if cs}
    if curves:
        out += ['<section id="curves">', "<h2>Learning curves</h2>", '<div class="panels">']
        for task, cs in curves.items():
            uri = plots.render(plots.curves_figure, task, cs, report.colors, order)
            out += [
                f'<div class="panel"><h3><code>{_esc(task)}</code></h3>',
                _img(uri, f"{task}: training loss and val metric against optimiser step"),
                _table(f.CURVE_HEADER, _with_swatches(report, f.curve_rows(cs, order)), left=1, html=True),
                "</div>",
            ]
        out.append("</div></section>")
    speeds = [(t, f.throughput_rows(report, t)) for t in report.tasks]
    speeds = [(t, rows) for t, rows in speeds if any(r[-1] != f.MISSING for r in rows)]
    if speeds:
        out += ['<section id="throughput">', "<h2>Accuracy against training throughput</h2>", '<div class="panels">']
        for t, rows in speeds:
            uri = plots.render(plots.throughput_figure, t, f.throughput(report, t.name), report.colors)
            out += [
                f'<div class="panel"><h3><code>{_esc(t.name)}</code></h3>',
                _img(uri, f"{t.name}: {t.main_metric} against training samples/s"),
                _table(f.THROUGHPUT_HEADER, _with_swatches(report, rows), html=True),
                "</div>",
            ]
        out.append("</div></section>")

    if report.models:
        out += ['<section id="models">', "<h2>Models</h2>"]
        rows = []
        for m in report.models:
            cells = [_esc(x) for x in f.model_cells(m)]
            cells[0] = _swatch(report, m.name) + cells[0]
            rows.append(cells)
        cols = ["", "", "", "", "", "", "l"]
        out += [_table(f.MODEL_HEADER, rows, left=4, html=True, col_classes=cols), "</section>"]

    out += ['<section id="fairness">', "<h2>Fairness</h2>"]
    if report.settings:
        out.append("<p>Settings shared by every pairing:</p>")
        out.append(_table(["block", "settings"], [[f.text(k), f.text(v)] for k, v in report.settings]))
    if report.overrides:
        out.append("<p><b>Per-model overrides</b> (allowed by <code>train.allow_overrides</code>):</p>")
        out.append(_table(f.OVERRIDE_HEADER, [f.override_cells(o) for o in report.overrides]))
    else:
        out.append("<p>No per-model overrides: every model trained with exactly the same settings.</p>")
    if report.adjustments:
        out.append("<p><b>Runner adjustments</b> (the effective batch is unchanged; the micro-batch is not):</p>")
        out.append(_table(["run", "adjustment"], [[str(r), str(a)] for r, a in report.adjustments]))
    out.append("</section>")

    header, rows = f.cost_table(report.cost)
    if rows:
        out += ['<section id="cost">', "<h2>Cost (mean over seeds)</h2>", _table(header, rows), "</section>"]
    if report.quantized:
        legend = _esc(q.LEGEND.replace("*", "").replace("`", ""))
        out += [
            '<section id="quantized">',
            "<h2>Quantised evaluation (dynamic INT8)</h2>",
            _table(q.HEADER, [q.cells(r) for r in report.quantized]),
            f'<p class="legend">{legend}</p>',
            "</section>",
        ]
    if report.failed:
        rows = [[str(r.run_id), str(r.folder), str(r.error or f.MISSING)] for r in report.failed]
        out += [
            '<section id="failed">',
            '<h2 class="fail">Failed runs</h2><p>Not in any mean above.</p>',
            _table(["run", "folder", "error"], rows, left=3),
            "</section>",
        ]
    if report.missing or report.in_progress:
        items = [
            f"<li><code>{_esc(r)}</code>: in progress (claimed by a running xmbench process)</li>"
            for r in report.in_progress
        ]
        items += [
            f"<li><code>{_esc(r)}</code>: missing (not run yet, or interrupted); "
            "<code>xmbench run</code> trains it</li>"
            for r in report.missing
        ]
        out += ['<section id="without-result">', "<h2>Runs without a result</h2>", f"<ul>{''.join(items)}</ul>"]
        out.append("</section>")
    if report.other:
        rows = [[f.text(o.folder), f.text(o.run_id), f.text(o.reason)] for o in report.other]
        out += [
            '<section id="other">',
            "<h2>Not part of this plan</h2><p>Run folders under <code>runs/</code> that this suite, as it is now, "
            "does not plan. They are never averaged in.</p>",
            _table(["folder", "run", "why"], rows, left=3),
            "</section>",
        ]
    if report.skipped:
        out += ['<section id="skipped">', "<h2>Skipped samples</h2>"]
        for dataset, info in report.skipped.items():
            reasons, samples = f.skipped_lines(info)
            out.append(
                f"<p>Dataset <code>{_esc(dataset)}</code> (on_bad_sample: skip): "
                f"<b>{_esc(f.text(info.get('count')))} sample(s) skipped</b> ({_esc(reasons)}).</p>"
            )
            if samples:
                out.append("<ul>" + "".join(f"<li>{_esc(s)}</li>" for s in samples) + "</ul>")
        out.append("</section>")
    if report.submissions:
        items = "".join(f"<li><code>{_esc(r)}</code>: <code>{_esc(p)}</code></li>" for r, p in report.submissions)
        out += [
            '<section id="submissions">',
            "<h2>Results files for submission</h2><p>These runs were evaluated on a split without annotations "
            "(e.g. VQA test-dev): no scores, but the official results file to submit.</p>",
            f"<ul>{items}</ul>",
            "</section>",
        ]
    if report.env:
        rows = [[f.text(k), f.text(v)] for k, v in report.env.items()]
        out += ['<section id="env">', "<h2>Environment</h2>", _table(["key", "value"], rows), "</section>"]
    out.append(
        '<p class="legend">Raw numbers: <code>results.csv</code> (one row per run and metric) and '
        "<code>summary.json</code>; run folders under <code>runs/</code>.</p>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
