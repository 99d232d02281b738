"""Terminal tables of the CI gate (rich)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.gate.check import CheckResult, Row
from harness.report import format as f

STATUS_STYLES = {"regressed": "bold red", "improved": "green", "cannot tell": "bold yellow", "ok": "", "info": "dim"}


def _tolerance(r: Row) -> str:
    if r.threshold is None:
        return r.tolerance
    return f"{r.tolerance}: -{r.threshold:.2f}"


def check_table(result: CheckResult, title: str = "xmbench check") -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name, justify in [
        ("task/model/metric", "left"),
        ("baseline", "right"),
        ("new", "right"),
        ("change", "right"),
        ("tolerance", "right"),
        ("95% CI of change", "right"),
        ("p (drop)", "right"),
        ("status", "left"),
    ]:
        table.add_column(name, justify=justify, no_wrap=name != "status")  # type: ignore[arg-type]
    rows = sorted(result.rows, key=lambda r: (not r.gate, r.status != "regressed", r.key))
    for r in rows:
        status = r.status + ("" if r.gate else " (not gated)") if r.status == "info" else r.status
        detail = r.note or (f"~{r.seeds_to_tell} seeds per side would tell a drop this size" if r.seeds_to_tell else "")
        table.add_row(
            r.key,
            f"{f.num(r.base_mean)} (n={r.n_base})",
            f"{f.num(r.new_mean)} (n={r.n_new})",
            f.signed(-r.drop),
            _tolerance(r),
            f.ci(r.ci95),
            f.p_value(r.p_value, prefix=False) if r.p_value is not None else f.MISSING,
            Text(status + (f": {detail}" if detail else ""), style=STATUS_STYLES.get(r.status, "")),
        )
    return table


def print_check(result: CheckResult, console: Console, title: str = "xmbench check") -> None:
    if result.rows:
        console.print(check_table(result, title))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    level = f"{result.per_metric_level:.3g}" if result.per_metric_level else "-"
    console.print(
        f"false-alarm rate {result.false_alarm:g} for the whole check (per noise-gated metric {level}); "
        "change = new - baseline, in points",
        highlight=False,
    )
    for problem in result.problems:
        console.print(Text(f"cannot check: {problem}", style="bold red"))
    cannot = [r.key for r in result.rows if r.status == "cannot tell"]
    if cannot:
        console.print(Text(f"cannot tell: {', '.join(cannot)} (see the notes above)", style="bold yellow"))
    verdict = {0: ("PASS: no gated metric regressed", "bold green"), 1: ("", ""), 2: ("", "")}
    if result.exit_code == 0:
        console.print(Text(verdict[0][0], style=verdict[0][1]))
    elif result.exit_code == 1:
        keys = ", ".join(r.key for r in result.regressed)
        console.print(Text(f"REGRESSED: {keys}", style="bold red"))


def compare_table(rows: list[dict[str, Any]], a: str, b: str) -> Table:
    table = Table(
        title=f"paired differences: {b} - {a}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for name in ("task/model/metric", "A", "B", "B - A [95% CI]", "p", "clusters"):
        table.add_column(name, justify="left" if name == "task/model/metric" else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["key"],
            f.num(r["a"]),
            f.num(r["b"]),
            f.delta_ci(r["delta"], r["ci95"]),
            f.p_value(r["p_value"], prefix=False) if r["p_value"] is not None else f.MISSING,
            str(r["n_clusters"]) if r["n_clusters"] else f.MISSING,
        )
    return table
