"""``xmbench leaderboard DIR... --out FILE.{md,html,csv}``: results folders merged into ranked, comparable boards
(``board.py``: the model; ``render.py``: Markdown, CSV, terminal; ``html.py``: the sortable page)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import UserError
from harness.leaderboard.board import Leaderboard

FORMATS = (".md", ".html", ".csv")


def check_outputs(paths: list[Path]) -> None:
    """Refuse an output whose suffix is not a known format before any work is done."""
    for p in paths:
        if p.suffix.lower() not in FORMATS:
            raise UserError(
                f"--out {p}: unknown format {p.suffix or '(no suffix)'!r}; name the file .md, .html or .csv"
            )


def write_leaderboard(lb: Leaderboard, path: Path) -> None:
    """Write ``lb`` to ``path`` (atomically) in the format its suffix names; links are relative to its folder."""
    from harness.leaderboard.html import render_html
    from harness.leaderboard.render import render_csv, render_markdown
    from harness.results.store import atomic_write_text

    render = {".md": render_markdown, ".html": render_html, ".csv": render_csv}[path.suffix.lower()]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render(lb, path.parent))
