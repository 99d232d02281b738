"""leaderboard.html: one self-contained page (inline CSS and one inline script, nothing fetched), every board a table
that sorts by any column when its header is clicked (again: the other way round). Rows with other settings than the
board's are marked; links go to each row's report and run folders, relative to the page."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from harness.leaderboard.board import Leaderboard, Row
from harness.leaderboard.render import HEADER, RANK_RULE, board_settings, cells, direction, link
from harness.report import format as f

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1280px;color:#222;
padding:0 1rem;line-height:1.4}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;
text-align:right;white-space:nowrap}th{background:#f4f4f4}th button{all:unset;cursor:pointer;font-weight:700}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
.l{text-align:left}td.settings{white-space:normal;max-width:22rem}tr.differs td{background:#fff8e1}
tr.differs td.settings{color:#8a5a00;font-weight:600}.meta{color:#555;font-size:.85rem}
"""

# Sorting: numbers by their data-v (missing values last either way), text by its content.
SCRIPT = """
document.querySelectorAll('table.board').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, col) {
    var button = th.querySelector('button');
    if (!button) return;
    button.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var key = function (row) {
        var cell = row.children[col];
        if (cell.hasAttribute('data-v')) {
          var v = cell.getAttribute('data-v');
          return v === '' ? null : Number(v);
        }
        return cell.textContent.trim().toLowerCase();
      };
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return (x === null) - (y === null);
        var c = typeof x === 'number' ? x - y : (x < y ? -1 : x > y ? 1 : 0);
        return asc ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

NUMERIC = {"rank", "mean [95% CI]", "seeds", "params (M)", "GFLOPs/sample", "train samples/s"}


def _esc(value: object) -> str:
    return escape(str(value), quote=True)


def _v(x: float | None) -> str:
    return "" if x is None or not math.isfinite(x) else repr(float(x))


def _sort_values(row: Row) -> dict[str, str]:
    rank = None if row.rank is None else row.rank[0] * 10_000 + row.rank[1]
    return {
        "rank": _v(rank),
        "mean [95% CI]": _v(row.cell.mean),
        "seeds": _v(row.cell.n_seeds),
        "params (M)": _v(row.params / 1e6 if row.params else None),
        "GFLOPs/sample": _v(row.gflops),
        "train samples/s": _v(row.samples_per_s),
    }


def _row(row: Row, base: Path | None) -> str:
    values = _sort_values(row)
    tds = []
    for header, text in zip(HEADER, cells(row)):
        cls = ' class="l"' if header in ("model", "from") else ' class="l settings"' if header == "settings" else ""
        data = f' data-v="{values[header]}"' if header in NUMERIC else ""
        tds.append(f"<td{cls}{data}>{_esc(text)}</td>")
    links = []
    if row.report is not None:
        links.append(f'<a href="{_esc(link(row.report, base))}">report</a>')
    links += [f'<a href="{_esc(link(row.folder / p, base))}">seed {s}</a>' for s, p in zip(row.seeds, row.run_folders)]
    tds.append(f'<td class="l">{" ".join(links)}</td>')
    cls = "" if row.comparable else ' class="differs"'
    return f"<tr{cls}>{''.join(tds)}</tr>"


def render_html(lb: Leaderboard, base: Path | None = None) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(lb.title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{_esc(lb.title)}</h1>",
        f'<p class="meta">{len(lb.sources)} results folder(s), {len(lb.boards)} board(s); generated '
        f"{_esc(f.generated_at(lb.generated))}. Mean over seeds [95% CI], in percent. Click a column header to sort."
        f"</p>",
        f'<p class="meta">{_esc(RANK_RULE)}</p></header>',
    ]
    for i, board in enumerate(lb.boards):
        out.append(f'<section id="board-{i}"><h2>{_esc(board.key.title())}</h2>')
        out.append(
            f'<p class="meta">{_esc(board.task_type)}, {direction(board)}. Board settings: '
            f"{_esc(board_settings(board))}.</p>"
            f'<details><summary>all {len(board.majority)} settings</summary><p class="meta">'
            f"{_esc(board_settings(board, full=True))}</p></details>"
        )
        head = "".join(
            f'<th class="{"l" if h in ("model", "from", "settings") else ""}"><button type="button">{_esc(h)}'
            f"</button></th>"
            for h in HEADER
        )
        out.append(f'<table class="board"><thead><tr>{head}<th class="l">links</th></tr></thead><tbody>')
        out += [_row(r, base) for r in board.rows]
        out.append("</tbody></table></section>")
    if lb.excluded:
        head = "".join(f'<th class="l">{h}</th>' for h in ("from", "task", "model", "why"))
        out.append(f'<section id="excluded"><h2>Not on the board</h2><table><thead><tr>{head}</tr></thead><tbody>')
        out += [
            f'<tr><td class="l">{_esc(e.source)}</td><td class="l">{_esc(e.task)}</td><td class="l">{_esc(e.model)}'
            f'</td><td class="l settings">{_esc(e.reason)}</td></tr>'
            for e in lb.excluded
        ]
        out.append("</tbody></table></section>")
    if lb.notes:
        out.append('<section id="notes"><h2>Notes</h2><ul>')
        out += [f"<li>{_esc(n)}</li>" for n in lb.notes]
        out.append("</ul></section>")
    out.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(out)
