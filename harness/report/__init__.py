"""Render reports from run records: results.csv, summary.json, report.md and a self-contained report.html."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness.suite.schema import Suite

if TYPE_CHECKING:
    from harness.plan import RunSpec
    from harness.results.collect import PlanResults


def write_report(suite: Suite, results: PlanResults, out_dir: Path, runs: list[RunSpec] | None = None):
    """Write every report file for the plan's ``results`` into ``out_dir`` (atomically); returns the report model
    (``.paths`` holds the files written)."""
    from harness.report.html import render_html
    from harness.report.markdown import render_markdown
    from harness.report.model import build_report
    from harness.results.store import atomic_write_json, atomic_write_text

    report = build_report(suite, results, out_dir, generated=datetime.now(UTC), runs=runs)
    paths = {
        "csv": out_dir / "results.csv",
        "json": out_dir / "summary.json",
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
    }
    atomic_write_text(paths["csv"], report.results.to_csv(index=False, float_format="%.4f"))
    atomic_write_json(paths["json"], report.summary_json())
    atomic_write_text(paths["markdown"], render_markdown(report))
    atomic_write_text(paths["html"], render_html(report))
    report.paths = paths
    return report
