"""The HTML leaderboard in headless Chromium: it loads without an error or a fetch, and clicking a column header sorts
the rows (again: the other way round), numbers by value with missing values last, text alphabetically."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.leaderboard.html import render_html
from tests.leaderboard import sample
from tests.report.test_browser import CATCH, CHROMIUM, FLAGS, _console_lines

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs headless Chromium (/usr/bin/chromium): install the distribution's package: apt-get install chromium",
)

# Clicks header buttons the way a user does and records the row order after each click.
PROBE = """<script>
window.addEventListener('load', () => {
  const table = document.querySelector('table.board');
  const models = () => [...table.tBodies[0].rows].map(r => r.children[1].textContent);
  const header = name => [...table.querySelectorAll('thead th')].find(th => th.textContent === name);
  const click = name => { header(name).querySelector('button').click(); return models(); };
  const sort = name => header(name).getAttribute('aria-sort');
  const out = {initial: models(), errors: window.__errors};
  out.mean_ascending = click('mean [95% CI]'); out.mean_sort = sort('mean [95% CI]');
  out.mean_descending = click('mean [95% CI]'); out.mean_sort_again = sort('mean [95% CI]');
  out.model_ascending = click('model'); out.mean_sort_after = sort('mean [95% CI]');
  out.rank_ascending = click('rank');
  out.differs = [...table.querySelectorAll('tr.differs')].map(r => r.children[1].textContent);
  out.differs_colour = getComputedStyle(table.querySelector('tr.differs td')).backgroundColor;
  out.resources = performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('data:'));
  document.body.setAttribute('data-probe', JSON.stringify(out));
});
</script>"""


def test_the_leaderboard_sorts_in_chromium(tmp_path: Path) -> None:
    page = render_html(sample.leaderboard(), tmp_path)
    path = tmp_path / "leaderboard.html"
    path.write_text(page.replace("<head>", "<head>" + CATCH, 1).replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
         path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    raw = done.stdout.split('data-probe="', 1)[1].split('"', 1)[0]
    probe = json.loads(raw.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))

    assert probe["errors"] == [] and _console_lines(done.stderr) == [] and probe["resources"] == []
    assert probe["initial"] == ["resnet", "vit", "clip", "bert", "xbert-1ep"]  # ranked by mean, then the marked row
    assert probe["mean_ascending"] == ["bert", "clip", "vit", "resnet", "xbert-1ep"]
    assert probe["mean_sort"] == "ascending"
    assert probe["mean_descending"] == ["xbert-1ep", "resnet", "vit", "clip", "bert"]
    assert probe["mean_sort_again"] == "descending"
    assert probe["model_ascending"] == ["bert", "clip", "resnet", "vit", "xbert-1ep"]
    assert probe["mean_sort_after"] is None  # only the column sorted by is marked
    # by best rank, then worst: 1–3, 1–3, 1–4, 3–4; the unranked row (no rank) last
    assert probe["rank_ascending"][2:] == ["clip", "bert", "xbert-1ep"]
    assert sorted(probe["rank_ascending"][:2]) == ["resnet", "vit"]
    assert probe["differs"] == ["xbert-1ep"] and probe["differs_colour"] == "rgb(255, 248, 225)"
