"""The HTML report in a real browser (headless Chromium from the distribution's ``chromium`` package): a full report
(claims, every chart, every section) loads without a console message or error, every chart decodes, nothing is fetched,
the claims come first, and the verdict colours and best-cell marks are what the stylesheet says."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.html import render_html
from tests.report.sample import empty_report, full_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # were anything fetched from a host, it would fail (and be counted)
    "--enable-logging=stderr",
    "--v=0",
]
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs headless Chromium (/usr/bin/chromium): install the distribution's package: apt-get install chromium",
)

# The test's own probe (the report has no scripts): errors are caught from the first line of <head>; on load it
# records what the page shows into an attribute of <body>, which --dump-dom prints. It is synchronous, so the
# attribute is there before the DOM is dumped: each image is decoded by drawing it onto a canvas (a broken image
# throws) and reading its pixels back (a chart has some that are not transparent black).
CATCH = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.target && e.target.src)), true);
const __error = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ')); __error(...a); };
</script>"""
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const decodes = i => {
    try {
      if (!i.complete || i.naturalWidth === 0) return false;
      const c = document.createElement('canvas');
      c.width = i.naturalWidth;
      c.height = i.naturalHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(i, 0, 0);
      return ctx.getImageData(0, 0, c.width, c.height).data.some(v => v !== 0);
    } catch (e) {
      return false;
    }
  };
  const decoded = imgs.map(decodes);
  const style = sel => { const el = document.querySelector(sel); return el ? getComputedStyle(el) : {}; };
  const out = {
    images: imgs.length,
    decoded: decoded.filter(Boolean).length,
    sizes: imgs.map(i => [i.naturalWidth, i.naturalHeight]),
    order: [...document.querySelectorAll('h1, h2')].map(h => h.tagName + ':' + h.textContent),
    first_after_title: document.querySelector('header').nextElementSibling.id,
    resources: performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('data:')),
    verdicts: Object.fromEntries([...document.querySelectorAll('.verdict')].map(
      b => [b.textContent, getComputedStyle(b).backgroundColor])),
    best_weight: style('td.best').fontWeight || null,
    plain_weight: style('tbody td:nth-child(3):not(.best)').fontWeight || null,
    errors: window.__errors,
  };
  document.body.setAttribute('data-probe', JSON.stringify(out));
});
</script>"""


def _open(tmp_path: Path, page: str, extra: str = "") -> tuple[dict, str]:
    """Load ``page`` (with the probe, and ``extra`` HTML at the end) in headless Chromium; returns the probe's
    findings and Chromium's stderr."""
    assert "<script" not in page  # the report itself has none: the probe is the test's own
    path = tmp_path / "report.html"
    path.write_text(page.replace("<head>", "<head>" + CATCH, 1).replace("</body>", extra + PROBE + "</body>"))
    done = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    marker = 'data-probe="'
    assert marker in done.stdout, (done.stdout[-2000:], done.stderr[-2000:])
    raw = done.stdout.split(marker, 1)[1].split('"', 1)[0]
    probe = json.loads(raw.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    return probe, done.stderr


def _console_lines(stderr: str) -> list[str]:
    """Chromium's log lines for console messages and uncaught errors of the page."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_full_report_renders_in_chromium(tmp_path: Path) -> None:
    probe, stderr = _open(tmp_path, render_html(full_report()))
    assert probe["errors"] == [] and _console_lines(stderr) == []
    assert probe["images"] == 7 and probe["decoded"] == 7  # 3 metric charts, 2 learning curves, 2 throughput
    assert all(w >= 300 and h >= 200 for w, h in probe["sizes"]), probe["sizes"]
    assert probe["resources"] == []  # nothing fetched from anywhere
    assert probe["first_after_title"] == "claims"
    assert probe["order"] == [
        "H1:xmbench report: smoke",
        "H2:Claims and verdicts",
        "H2:Task vqa: vqa on shapes-vqa",
        "H2:Task classify: classification on shapes-cls",
        "H2:Learning curves",
        "H2:Accuracy against training throughput",
        "H2:Models",
        "H2:Fairness",
        "H2:Cost (mean over seeds)",
        "H2:Failed runs",
        "H2:Runs without a result",
        "H2:Not part of this plan",
        "H2:Skipped samples",
        "H2:Results files for submission",
        "H2:Environment",
    ]
    assert probe["verdicts"] == {
        "supported": "rgb(46, 125, 50)",  # green
        "contradicted": "rgb(198, 40, 40)",  # red
        "inconclusive": "rgb(240, 180, 0)",  # amber
        "not judged": "rgb(117, 117, 117)",  # grey
    }
    assert probe["best_weight"] == "700" and probe["plain_weight"] == "400"


def test_a_report_with_nothing_optional_renders_in_chromium(tmp_path: Path) -> None:
    probe, stderr = _open(tmp_path, render_html(empty_report()))
    assert probe["errors"] == [] and _console_lines(stderr) == []
    assert probe["images"] == 0 and probe["resources"] == []  # only NaN to plot: no chart, no broken image
    assert probe["first_after_title"] == "claims"


def test_the_probe_sees_errors(tmp_path: Path) -> None:
    """The checks above can fail: a broken image, a fetch and a console error are all caught."""
    page = render_html(empty_report()).replace("<style>", "<style>@import url('http://example.invalid/a.css');")
    extra = '<img alt="broken" src="data:image/png;base64,AAAA"><script>console.error("probe-check")</script>'
    probe, stderr = _open(tmp_path, page, extra)
    assert probe["images"] == 1 and probe["decoded"] == 0
    assert probe["resources"] and "example.invalid" in probe["resources"][0]
    assert "probe-check" in probe["errors"]
    assert any("probe-check" in line for line in _console_lines(stderr))
