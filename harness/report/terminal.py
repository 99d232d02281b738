"""The report at the end of ``xmbench run``: one compact table per task and the claims with their verdicts (rich)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.report import format as f
from harness.report.model import Report, TaskSection

VERDICT_STYLES = {
    "supported": "bold green",
    "contradicted": "bold red",
    "inconclusive": "bold yellow",
    "not judged": "dim",
}


def _task_table(t: TaskSection) -> Table:
    table = Table(
        title=Text(f"{t.name}: {t.task_type} on {t.dataset}"),
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("model", no_wrap=True)
    table.add_column(Text(f"{t.main_metric} [95% CI]"), justify="right", no_wrap=True)
    if t.baseline:
        table.add_column(Text(f"Δ vs {t.baseline} [95% CI]"), justify="right", no_wrap=True)
        table.add_column("p", justify="right", no_wrap=True)
    table.add_column("seeds", justify="right")
    winners = set(t.winner)
    for r in t.rows:
        cell = r.cells.get(t.main_metric)
        won = r.name in winners
        row = [
            Text(r.name + (" ★" if won else ""), style="bold green" if won else ""),
            Text(f.mean_ci(cell.mean, cell.ci) if cell else f.MISSING, style="bold" if won else ""),
        ]
        if t.baseline:
            d = r.vs_baseline.get(t.main_metric)
            if r.name == t.baseline:
                row += [Text("baseline"), Text(f.MISSING)]
            else:
                row += [
                    Text(f.delta_ci(d.delta, d.ci) if d else f.MISSING),
                    Text(f.p_value(d.p_value, prefix=False) if d else f.MISSING),
                ]
        row.append(Text(str(r.seeds)))
        table.add_row(*row)
    return table


def _claims_table(report: Report) -> Table:
    table = Table(
        title="Claims",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("#", justify="right")
    table.add_column("claim")
    table.add_column(Text("measured [corrected CI]"), justify="right", no_wrap=True)
    table.add_column("p adj.", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for c in report.claims:
        word = f.verdict_word(c.verdict)
        table.add_row(
            Text(c.label or str(c.index + 1)),
            Text(f.text(c.text)),
            Text(f.measured(c)),
            Text(f.p_value(c.p_adjusted, prefix=False)),
            Text(word, style=VERDICT_STYLES.get(c.verdict, "")),
        )
    return table


def _claim_notes(report: Report) -> list[Text]:
    """``#3 inconclusive: MDE 4.25 pp; ~9 seeds per model would settle it`` for claims without a clear verdict."""
    out = []
    for c in report.claims:
        detail = f.claim_detail(c)
        if c.verdict in ("inconclusive", "not judged") and detail != f.MISSING:
            line = Text(f"#{c.label or c.index + 1} ")
            line.append(f.verdict_word(c.verdict), style=VERDICT_STYLES.get(c.verdict, ""))
            line.append(f": {detail}")
            out.append(line)
    return out


def print_summary(report: Report, console: Console) -> None:
    """Per task: model, main metric with its 95% CI, Δ against the baseline with CI and p, seeds (★ = winner); then the
    claims with coloured verdicts, and one line on runs that failed or are missing."""
    for t in report.tasks:
        console.print(_task_table(t))
        console.print()
    if report.claims:
        console.print(_claims_table(report))
        for line in _claim_notes(report):
            console.print(line)
        console.print()
    problems = []
    if report.failed:
        problems.append(f"{len(report.failed)} failed")
    if report.missing:
        problems.append(f"{len(report.missing)} missing")
    if report.in_progress:
        problems.append(f"{len(report.in_progress)} in progress")
    if problems:
        console.print(f"[bold red]Runs without a result:[/] {', '.join(problems)} (see the report).", highlight=False)
    if not report.tasks and not report.claims and not problems:
        console.print("No finished runs to summarise.")
