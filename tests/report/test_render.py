"""The report's renderers on reports built by hand: tables, best marks, deltas, claims first, no None/nan/inf in any
text, the same numbers in Markdown and HTML, one colour per model in every chart, and the terminal summary."""

from __future__ import annotations

import dataclasses
import html as htmllib
import io
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from rich.console import Console

from harness.report import format as f
from harness.report import plots
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.report.model import Cell, ModelRow, TaskSection, build_report
from harness.report.terminal import print_summary
from harness.results.artifacts import Curve
from harness.results.collect import PlanResults
from harness.results.record import RunRecord
from tests.report.sample import COLORS, empty_report, full_report

LEAKS = re.compile(r"(?<![\w.])(None|NaN|nan|inf|-inf|Infinity|null)(?![\w.])")


def _visible(page: str) -> str:
    """The text of an HTML page: no CSS, no data URIs, no tags, entities decoded."""
    page = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    page = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", page))


def _section(md: str, heading: str) -> str:
    return md.split(heading + "\n", 1)[1].split("\n## ", 1)[0]


def _summary(report, styles: bool = False) -> str:
    console = Console(
        record=True,
        width=120,
        file=io.StringIO(),
        force_terminal=styles,
        color_system="standard" if styles else None,
    )
    print_summary(report, console)
    return console.export_text(styles=styles)


# --- formatting ----------------------------------------------------------------------------------------------------


def test_formatting_conventions() -> None:
    assert f.mean_ci(55.866, (54.1, 57.6)) == "55.87 [54.10, 57.60]"
    assert f.mean_ci(55.866, None) == "55.87" and f.mean_ci(55.8, (math.nan, 1.0)) == "55.80"
    assert f.delta_ci(28.664, (26.9, 30.4)) == "+28.66 [26.90, 30.40]"
    assert f.delta_ci(-1.2, (-3.04, 0.64)) == "-1.20 [-3.04, 0.64]" and f.delta_ci(0.0) == "+0.00"
    assert f.num(-0.001) == "0.00"  # never -0.00
    assert [f.p_value(p) for p in (0.0004, 0.001, 0.0042, 0.03, 0.456, 1.2)] == [
        "p < 0.001",
        "p = 0.001",
        "p = 0.004",
        "p = 0.03",
        "p = 0.46",
        "p = 1.00",
    ]
    assert f.p_value(0.0004, prefix=False) == "< 0.001" and f.p_value(0.03, prefix=False) == "0.03"
    assert f.sig(0.004) == "0.004" and f.sig(5.07) == "5.07" and f.sig(0.01234) == "0.0123"
    for missing in (None, math.nan, math.inf, -math.inf, "", "nan"):
        assert f.num(missing) == f.MISSING and f.text(missing) == f.MISSING
        assert f.mean_ci(missing, (1.0, 2.0)) == f.MISSING and f.p_value(missing) == f.MISSING
    assert f.text("eval_batch_size=None, grad_clip=nan, lr=0.001") == "eval_batch_size=—, grad_clip=—, lr=0.001"
    assert f.text("inference, infinite, Nonetheless") == "inference, infinite, Nonetheless"
    assert f.verdict_word("not judged") == "not judged" and f.verdict_key("odd") == "not judged"


# --- tables ----------------------------------------------------------------------------------------------------------


def test_task_table_markdown() -> None:
    md = render_markdown(full_report())
    vqa = _section(md, "## Task `vqa`: vqa on `shapes-vqa`")
    table = [line for line in vqa.splitlines() if line.startswith("|")]
    assert table == [
        "| model | kind | vqa_accuracy | vqa_yesno | Δ vqa_accuracy vs vit | p | seeds |",
        "|---|---|--:|--:|--:|--:|--:|",
        "| vit | image | 22.00 [19.52, 24.48] | — | baseline | — | 3 |",
        "| bert | text | 31.90 [30.91, 32.89] | 61.00 [58.50, 63.50] | +9.90 [8.10, 11.70] | < 0.001 | 3 |",
        "| xbert ★ | cross_modal | **55.87 [54.10, 57.60]** | **71.00 [68.50, 73.50]** | +33.87 [31.93, 35.81] "
        "| < 0.001 | 3 |",
    ]
    assert "Δ = vqa_accuracy against the baseline vit, in points, with its 95% CI and p-value." in vqa
    assert "CIs: t over seeds (vit, bert, xbert)." in vqa and "Δ: paired bootstrap (bert, xbert)." in vqa
    assert "Question-blind image-only baseline (blind_baselines: true)." in vqa
    classify = _section(md, "## Task `classify`: classification on `shapes-cls`")
    assert "| vit ★ | image | **89.00 [86.52, 91.48]** | baseline | — | 3 |" in classify
    assert "| xbert | cross_modal | 87.80 [86.31, 89.29] | -1.20 [-3.04, 0.64] | 0.19 | 3 |" in classify
    assert "No finished runs for: bert." in classify
    assert "\x00" not in md


def test_task_table_html_marks_best_natively() -> None:
    page = render_html(full_report())
    assert '<td class="best">55.87 [54.10, 57.60]</td>' in page and '<td class="best">89.00 [86.52, 91.48]</td>' in page
    assert "<td>31.90 [30.91, 32.89]</td>" in page  # not the best: plain
    assert '<tr class="winner"><td class="l"><span class="sw" style="background:#E45756"' in page  # xbert on vqa
    assert "**" not in page and "\x00" not in page and "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_ties_and_a_metric_only_some_models_have() -> None:
    rows = [
        ModelRow("clip", "dual_encoder", 2, {"r_mean": Cell(52.0, (50.0, 54.0), "t", 2.8, 2, (50.0, 54.0))}),
        ModelRow(
            "xb",
            "cross_modal",
            2,
            {
                "r_mean": Cell(52.0, (51.0, 53.0), "t", 1.4, 2, (51.0, 53.0)),
                "itc_r_mean": Cell(59.0, (57.0, 61.0), "t", 1.4, 2, (58.0, 60.0)),
            },
        ),
    ]
    task = TaskSection("ret", "retrieval", "coco", "r_mean", None, ["r_mean", "itc_r_mean"], rows, {}, [], [])
    task.best = {"r_mean": ["clip", "xb"], "itc_r_mean": ["xb"]}
    report = dataclasses.replace(full_report(), tasks=[task], claims=[], curves={}, cost=full_report().cost[:0])
    md = render_markdown(report)
    assert "| clip ★ | dual_encoder | **52.00 [50.00, 54.00]** | — | 2 |" in md  # no baseline: no Δ, no p
    assert "| xb ★ | cross_modal | **52.00 [51.00, 53.00]** | **59.00 [57.00, 61.00]** | 2 |" in md
    assert "- **ret**: tie between clip, xb (r_mean 52.00)." in md
    assert "This suite makes no claims" in md and "No baseline: no deltas." in md


def test_glance_lines() -> None:
    """Who wins each task, and by how much over the runner-up, with a paired CI and p wherever the report has one."""
    report = full_report()
    vqa, classify = report.tasks
    # xbert against the runner-up bert: the claim on that pair gives the paired 95% CI and p
    assert f.glance(vqa, report.claims) == (
        "xbert wins (vqa_accuracy 55.87 [54.10, 57.60]), +23.98 [21.60, 26.40] over bert, p < 0.001"
    )
    # without it: the difference of means, then the paired Δ against the baseline
    assert f.glance(vqa) == (
        "xbert wins (vqa_accuracy 55.87 [54.10, 57.60]), +23.97 over bert (difference of means); "
        "+33.87 [31.93, 35.81] over the baseline vit, p < 0.001"
    )
    # the baseline wins: the runner-up's Δ, turned round
    assert f.glance(classify, report.claims) == (
        "vit wins (top1 89.00 [86.52, 91.48]), +1.20 [-0.64, 3.04] over xbert, p = 0.19: "
        "not significant (the 95% CI holds 0)"
    )
    # the runner-up is the baseline
    two = dataclasses.replace(vqa, rows=[vqa.rows[0], vqa.rows[2]])
    assert f.glance(two) == "xbert wins (vqa_accuracy 55.87 [54.10, 57.60]), +33.87 [31.93, 35.81] over vit, p < 0.001"
    # a claim the other way round (bert against xbert) is turned round too
    flipped = [
        dataclasses.replace(report.claims[0], model="bert", baseline="xbert", measured=-23.98, ci95=(-26.4, -21.6))
    ]
    assert f.glance(vqa, flipped).endswith("+23.98 [21.60, 26.40] over bert, p < 0.001")
    relative = [dataclasses.replace(report.claims[0], relative=True)]  # a relative claim is not in points: unused
    assert f.glance(vqa, relative) == f.glance(vqa)
    alone = dataclasses.replace(classify, rows=classify.rows[:1])
    assert f.glance(alone) == "vit wins (top1 89.00 [86.52, 91.48]), the only model with a result"
    nothing = dataclasses.replace(classify, rows=[])
    assert f.glance(nothing) == "no model has a top1 result"


# --- claims ----------------------------------------------------------------------------------------------------------


def test_claims_come_first_with_verdicts() -> None:
    report = full_report()
    md = render_markdown(report)
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Claims and verdicts"
    claims = _section(md, "## Claims and verdicts")
    assert claims.splitlines()[1] == (
        "| # | claim | verdict | claimed | measured [corrected CI] | 95% CI | p | p adj. | source | notes |"
    )
    rows = [line for line in claims.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert rows == [
        "| 1 | xbert beats bert on vqa by +10 points of vqa_accuracy | ✅ **supported** | +10.00 pp | "
        "+23.98 [21.02, 26.94] pp | [21.60, 26.40] | < 0.001 | < 0.001 | fusion answers what text alone cannot | — |",
        "| 2 | xbert beats vit on vqa by +40 points of vqa_accuracy | ❌ **contradicted** | +40.00 pp | "
        "+33.87 [31.13, 36.61] pp | [31.90, 35.80] | < 0.001 | < 0.001 | an overstated gain | — |",
        "| 3 | xbert beats vit on classify by +3.2 points of top1 | ⚠️ **inconclusive** | +3.20 pp | "
        "-1.20 [-3.90, 1.50] pp | [-3.04, 0.64] | 0.19 | 0.38 | design document 000 | "
        "MDE 4.25 pp; ~9 seeds per model would settle it |",
        "| 4 | xbert beats vit on classify by +15% (relative) of top1 | ⏸️ **not judged** | +15.00 % rel. | — | — | — "
        "| — | a relative claim | some runs have no per-example evidence (made by an older xmbench): run them again |",
    ]
    assert f.VERDICT_RULES in claims and "pp = percentage points" in claims
    glance = _section(md, "### At a glance")
    assert glance.splitlines()[1:3] == [
        "- **vqa**: xbert wins (vqa_accuracy 55.87 [54.10, 57.60]), +23.98 [21.60, 26.40] over bert, p < 0.001.",
        "- **classify**: vit wins (top1 89.00 [86.52, 91.48]), +1.20 [-0.64, 3.04] over xbert, p = 0.19: "
        "not significant (the 95% CI holds 0).",
    ]

    page = render_html(report)
    assert page.index('<section id="claims">') < page.index("<h2>Task")
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", page)[0] == "Claims and verdicts"
    for verdict, css in [
        ("supported", "v-supported"),
        ("contradicted", "v-contradicted"),
        ("inconclusive", "v-inconclusive"),
        ("not judged", "v-not-judged"),
    ]:
        assert f'<span class="verdict {css}">{verdict}</span>' in page
        bg = f.VERDICT_COLORS[verdict][0]
        assert f".{css}{{background:{bg};" in page
    assert f.VERDICT_COLORS["supported"][0] == "#2e7d32" and f.VERDICT_COLORS["contradicted"][0] == "#c62828"
    assert "MDE 4.25 pp; ~9 seeds per model would settle it" in page


def test_inconclusive_claim_with_examples_needed() -> None:
    claim = dataclasses.replace(full_report().claims[2], seeds_needed=None, examples_needed=12000, note="one seed")
    assert f.claim_detail(claim) == "MDE 4.25 pp; ~12,000 test examples would settle it; one seed"
    both = dataclasses.replace(claim, seeds_needed=12, note="")
    assert f.claim_detail(both) == "MDE 4.25 pp; ~12 seeds per model and ~12,000 test examples would settle it"
    # the note harness.stats writes already gives the count: it replaces the short form (nothing said twice)
    stats_note = "Inconclusive: about 9 seeds per model (now 3) would likely settle it, from the observed variances."
    judged = dataclasses.replace(full_report().claims[2], note=stats_note)
    assert f.claim_detail(judged) == (
        "MDE 4.25 pp; about 9 seeds per model (now 3) would likely settle it, from the observed variances"
    )
    supported = dataclasses.replace(full_report().claims[0], note="The 98.75% CI excludes 0.")
    assert f.claim_detail(supported) == "The 98.75% CI excludes 0."  # no MDE for a settled claim
    relative = dataclasses.replace(claim, relative=True, measured=4.5, ci=(1.0, 8.0))
    assert f.measured(relative) == "+4.50 [1.00, 8.00] % rel." and f.claimed(relative) == "+3.20 % rel."


# --- both renderers, one model ------------------------------------------------------------------------------------


def test_markdown_and_html_have_the_same_sections_in_the_same_order() -> None:
    report = full_report()
    md_h2 = [line[3:].replace("`", "") for line in render_markdown(report).splitlines() if line.startswith("## ")]
    page = render_html(report)
    html_h2 = [htmllib.unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", page)]
    assert md_h2 == html_h2
    assert md_h2 == [
        "Claims and verdicts",
        "Task vqa: vqa on shapes-vqa",
        "Task classify: classification on shapes-cls",
        "Learning curves",
        "Accuracy against training throughput",
        "Models",
        "Fairness",
        "Cost (mean over seeds)",
        "Failed runs",
        "Runs without a result",
        "Not part of this plan",
        "Skipped samples",
        "Results files for submission",
        "Environment",
    ]


def test_the_same_numbers_in_markdown_and_html() -> None:
    report = full_report()
    md, text = render_markdown(report), _visible(render_html(report))
    number = re.compile(r"[+-]?\d+(?:\.\d+)?(?: \[[-\d.]+, [-\d.]+\])?")
    md_numbers = set(number.findall(md))
    assert {"55.87 [54.10, 57.60]", "+33.87 [31.93, 35.81]", "+23.98 [21.60, 26.40]", "0.2776", "7400"} <= md_numbers
    missing = {n for n in md_numbers if n not in text}
    assert not missing, sorted(missing)[:20]


def test_no_none_nan_or_inf_in_any_text() -> None:
    for report in (empty_report(), full_report()):
        texts = {
            "markdown": render_markdown(report),
            "html": _visible(render_html(report)),
            "terminal": _summary(report),
        }
        for name, text in texts.items():
            text = text.replace("non-finite loss (nan) at step", "")  # a run's error message, shown verbatim
            leaks = [m.group(0) for m in LEAKS.finditer(text)]
            assert not leaks, (name, leaks, text[:3000])
            assert "-0.00" not in text
    md = render_markdown(empty_report())
    assert "| m | — | — | — | baseline | — | 0 |" in md and "| n | — | — | — | — | — | 1 |" in md
    assert "| train | eval_batch_size=—, warmup_steps=—, grad_clip=— |" in md
    assert "Generated 2026-01-02 03:04 UTC by xmbench" in md and "on —, torch —, commit —." in md
    assert "# xmbench report\n" in md  # a suite without a name
    assert "## Cost" not in md  # only NaN in the cost frame: nothing to show


# --- charts ----------------------------------------------------------------------------------------------------------


def _legend_colors(fig) -> dict[str, str]:
    legend = fig.legends[0]
    out = {}
    for handle, label in zip(legend.legend_handles, legend.get_texts(), strict=True):
        if hasattr(handle, "get_facecolor") and not hasattr(handle, "get_xdata"):
            color = handle.get_facecolor()
            color = color[0] if len(color) and hasattr(color[0], "__len__") else color
        else:
            color = handle.get_color()
        out[label.get_text()] = to_hex(color, keep_alpha=False).upper()
    return out


def test_one_colour_per_model_in_every_chart() -> None:
    report = full_report()
    vqa = report.tasks[0]
    bars = plots.metric_figure(vqa, "vqa_accuracy", report.colors)
    lines = plots.curves_figure("vqa", report.curves["vqa"], report.colors, list(report.colors))
    scatter = plots.throughput_figure(vqa, f.throughput(report, "vqa"), report.colors)
    expected = {m: COLORS[m].upper() for m in ("vit", "bert", "xbert")}
    assert _legend_colors(bars) == _legend_colors(lines) == _legend_colors(scatter) == expected
    bar_colors = [to_hex(p.get_facecolor(), keep_alpha=False).upper() for p in bars.axes[0].patches]
    assert bar_colors == list(expected.values())
    yesno = plots.metric_figure(vqa, "vqa_yesno", report.colors)  # vit lacks the metric: bert keeps its colour
    assert _legend_colors(yesno) == {"bert": expected["bert"], "xbert": expected["xbert"]}
    page = render_html(report)
    for model, color in COLORS.items():  # the tables' swatches use the same colours
        assert f'<span class="sw" style="background:{color}" title="{model}">' in page


def test_charts_axes_and_error_bars() -> None:
    report = full_report()
    vqa = report.tasks[0]
    ax = plots.metric_figure(vqa, "vqa_accuracy", report.colors).axes[0]
    assert ax.get_ylabel() == "vqa_accuracy (%)" and ax.get_xlabel() == "model"
    assert [round(p.get_height(), 2) for p in ax.patches] == [22.0, 31.9, 55.87]
    caps = [line for line in ax.lines if len(line.get_ydata()) == 1]  # error-bar caps at the CI bounds
    assert sorted(round(float(c.get_ydata()[0]), 2) for c in caps) == [19.52, 24.48, 30.91, 32.89, 54.1, 57.6]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    seeds = sorted(round(float(y), 2) for coll in dots for _, y in coll.get_offsets())
    assert seeds == [21.0, 22.0, 23.0, 31.5, 31.9, 32.3, 55.0, 55.87, 56.74]
    curves = plots.curves_figure("vqa", report.curves["vqa"], report.colors, ["vit", "bert", "xbert"]).axes[0]
    assert len(curves.lines) == 9 and curves.get_yscale() == "linear"  # one thin line per seed
    assert curves.get_xlabel() == "optimiser step" and curves.get_ylabel() == "training loss"
    steep = [Curve("vqa", "vit", 0, (1, 2, 3), (100.0, 1.0, 0.1), (0.0,) * 3)]
    log = plots.curves_figure("vqa", steep, report.colors, ["vit"]).axes[0]
    assert log.get_yscale() == "log" and log.get_ylabel() == "training loss (log scale)"
    speed = plots.throughput_figure(vqa, f.throughput(report, "vqa"), report.colors).axes[0]
    assert speed.get_xlabel() == "training samples/s" and speed.get_ylabel() == "vqa_accuracy (%)"
    assert [t.get_text() for t in speed.texts] == ["vit", "bert", "xbert"]
    assert plots.render(plots.metric_figure, empty_report().tasks[0], "r_mean", {}) is None  # nothing finite


def test_html_embeds_every_chart_as_a_png() -> None:
    page = render_html(full_report())
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert images == [
        "vqa: vqa_accuracy by model",
        "vqa: vqa_yesno by model",
        "classify: top1 by model",
        "vqa: training loss and val metric against optimiser step",
        "classify: training loss and val metric against optimiser step",
        "vqa: vqa_accuracy against training samples/s",
        "classify: top1 against training samples/s",
    ]
    assert "<img" not in render_markdown(full_report())


# --- the other sections --------------------------------------------------------------------------------------------


def test_models_fairness_cost_and_run_lists() -> None:
    report = full_report()
    md = render_markdown(report)
    assert "| `xbert` | xbert | cross_modal | cross_attention | 0.41 | 0.0311 | the suite's recipe |" in md
    assert "| `bert` | bert | text | — | 0.12 | 0.004 | lr=0.002 |" in md
    fairness = _section(md, "## Fairness")
    assert "| train (AdamW) | steps=10, batch_size=32, grad_clip=— |" in fairness
    assert "| bert | lr | 0.001 | 0.002 |" in fairness
    same = render_markdown(dataclasses.replace(report, overrides=[]))
    assert "No per-model overrides: every model trained with exactly the same settings." in same
    cost = _section(md, "## Cost (mean over seeds)")
    assert "| vqa | xbert | 0.41 | 0.41 | 0.0123 | 12.5 | 2100 | 1.2 | 812 |" in cost
    assert "CUDA peak" not in cost  # a column with no value at all is left out
    assert "| vqa/vit/seed3 | `runs/vqa/vit/seed3-0123456789` | non-finite loss (nan) at step 1/3 |" in md
    assert "- `classify/vit/seed3`: in progress (claimed by a running xmbench process)" in md
    assert "- `vqa/bert/seed3`: missing (not run yet, or interrupted); `xmbench run` trains it" in md
    assert "| `runs/vqa/xbert/seed9-0123456789` | vqa/xbert/seed9 | its model or seed is not in the suite |" in md
    assert "**3 sample(s) skipped** (unreadable: 3)" in md and "- ... and 2 more (see runs/*/skipped.json)" in md
    assert "- `vqa/xbert/seed0`: `runs/vqa/xbert/seed0-x/vqa_results.json`" in md
    assert "| classify | xbert | 3 | 40 | 5.99 | 0.2419 |" in _section(md, "## Learning curves")
    assert "| vqa | bert | vqa_accuracy | 31.90 [30.91, 32.89] | 7400 |" in md
    # Only the task tables start a row with a bare model name (and end it with the seeds): what readers grep for.
    model_rows = [line for line in md.splitlines() if line.startswith(("| vit ", "| bert ", "| xbert "))]
    assert len(model_rows) == 5 + 1 and all(line.endswith("| 3 |") for line in model_rows[:5])
    assert model_rows[5] == "| bert | lr | 0.001 | 0.002 |"  # the override
    assert "| gpu | NVIDIA H200 |" in md and "| cuda | — |" in md
    assert "on cuda:0 (NVIDIA H200), torch 2.5.1, commit 3fc4b92a1c2e-dirty." in md


def test_renders_what_build_report_makes_from_records(tmp_path: Path) -> None:
    """The real model builder (one seed each, no per-example evidence: no statistics needed) through both renderers."""
    from tests.report.sample import SUITE

    def record(model: str, kind: str, acc: float) -> RunRecord:
        return RunRecord.from_json(
            {
                "status": "ok",
                "folder": f"runs/vqa/{model}/seed0-x",
                "model_type": model,
                "main_metric": "vqa_accuracy",
                "suite": "smoke",
                "task": "vqa",
                "task_type": "vqa",
                "dataset": "shapes-vqa",
                "model": model,
                "kind": kind,
                "seed": 0,
                "run_id": f"vqa/{model}/seed0",
                "fingerprint": f"{model}0",
                "metrics": {"vqa_accuracy": acc},
                "env": {"torch": "2.5.1", "device": "cpu"},
                "timings": {"train_seconds": 1.0, "train_samples_per_s": 10.0},
                "cost": {"params": 1000, "trainable_params": 1000},
            }
        )

    suite = SUITE.model_copy(update={"claims": ()})
    results = PlanResults([record("vit", "image", 20.0), record("bert", "text", 30.0), record("xbert", "cross", 50.0)])
    report = build_report(suite, results, tmp_path, datetime(2026, 1, 1, tzinfo=UTC))
    md = render_markdown(report)
    assert "| xbert ★ | cross | **50.00** | +30.00 | — | 1 |" in md
    assert (
        "- **vqa**: xbert wins (vqa_accuracy 50.00), +20.00 over bert (difference of means); "
        "+30.00 over the baseline vit." in md
    )
    assert '<td class="best">50.00</td>' in render_html(report)
    assert not LEAKS.search(md)


# --- terminal --------------------------------------------------------------------------------------------------------


def test_print_summary() -> None:
    out = _summary(full_report())
    lines = out.splitlines()
    assert len(lines) <= 40 and max(len(line.rstrip()) for line in lines) <= 120
    assert "vqa: vqa on shapes-vqa" in out and "classify: classification on shapes-cls" in out
    rows = [" ".join(line.split()) for line in lines]
    assert "model vqa_accuracy [95% CI] Δ vs vit [95% CI] p seeds" in rows
    assert "xbert ★ 55.87 [54.10, 57.60] +33.87 [31.93, 35.81] < 0.001 3" in rows
    assert "vit 22.00 [19.52, 24.48] baseline — 3" in rows
    assert "vit ★ 89.00 [86.52, 91.48] baseline — 3" in rows
    assert "xbert 87.80 [86.31, 89.29] -1.20 [-3.04, 0.64] 0.19 3" in rows
    assert "1 xbert beats bert on vqa by +10 points of vqa_accuracy +23.98 [21.02, 26.94] pp < 0.001 supported" in rows
    assert (
        "2 xbert beats vit on vqa by +40 points of vqa_accuracy +33.87 [31.13, 36.61] pp < 0.001 contradicted" in rows
    )
    assert "#3 inconclusive: MDE 4.25 pp; ~9 seeds per model would settle it" in rows
    assert "Runs without a result: 1 failed, 1 missing, 1 in progress (see the report)." in rows
    styled = _summary(full_report(), styles=True)
    assert "\x1b[1;32msupported" in styled and "\x1b[1;31mcontradicted" in styled
    assert "\x1b[1;33minconclusive" in styled and "\x1b[2mnot judged" in styled
    assert "\x1b[1;32mxbert ★" in styled  # the winner


@pytest.mark.parametrize("width", [80, 120])
def test_print_summary_fits_narrow_terminals(width: int) -> None:
    console = Console(record=True, width=width, file=io.StringIO())
    print_summary(full_report(), console)
    text = console.export_text()
    assert "supported" in text and "55.87 [54.10, 57.60]" in text
    assert all(len(line.rstrip()) <= width for line in text.splitlines())


def test_free_text_is_never_markup() -> None:
    """Errors and notes are shown as written: no HTML tag, pipe or entity of theirs reaches the markup."""
    report = full_report()
    failed = [dataclasses.replace(report.failed[0], error="assert x | y in <module> & <b>bold</b>")]
    task = dataclasses.replace(report.tasks[0], notes=["see <docs/metrics.md>"])
    report = dataclasses.replace(report, failed=failed, tasks=[task, report.tasks[1]])
    md = render_markdown(report)
    assert "| assert x \\| y in \\<module> & \\<b>bold\\</b> |" in md
    assert "see \\<docs/metrics.md>" in md
    page = render_html(report)
    assert "assert x | y in &lt;module&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
