"""Render reports from run records: results.csv, summary.json, report.md and a self-contained report.html."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.suite.schema import Suite


def write_report(suite: Suite, records: list[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    """Write every report file for ``records`` into ``out_dir`` (atomically); returns the paths."""
    from harness.report.html import render_html
    from harness.report.markdown import render_markdown
    from harness.report.model import build_report
    from harness.results.store import atomic_write_json, atomic_write_text

    report = build_report(suite, records, generated=datetime.now(UTC))
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
    return paths
