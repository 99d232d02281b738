"""The HTML report in a real browser (headless Chromium from the distribution's ``chromium`` package): it loads
without network, every plot decodes, and the sections a reader relies on are there."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.report.html import render_html
from harness.report.model import build_report
from harness.results.collect import OtherFolder, PlanResults
from tests.report.test_render import SUITE, _record

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
]
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs headless Chromium: install the distribution's package (apt-get install chromium)"
)

PROBE = """
<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const out = {
    images: imgs.length,
    decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    resources: performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('data:')),
  };
  document.body.setAttribute('data-probe', JSON.stringify(out));
});
</script>
"""


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    records = [
        _record("clip", "dual_encoder", 0, {"r_mean": 50.0, "txt_r1": 10.0}),
        _record("xb", "cross_modal", 0, {"r_mean": 40.0, "txt_r1": 15.0}),
    ]
    results = PlanResults(
        records, missing=["ret/clip/seed1"], other=[OtherFolder("runs/ret/xb/seed9-x", "ret/xb/seed9", "older")]
    )
    page = render_html(build_report(SUITE, results, datetime(2026, 1, 1, tzinfo=UTC)))
    assert "<script" not in page  # the report itself has none; the probe below is the test's own
    (tmp_path / "report.html").write_text(page.replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            (tmp_path / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    marker = 'data-probe="'
    assert marker in done.stdout, done.stdout[-2000:]
    raw = done.stdout.split(marker, 1)[1].split('"', 1)[0]
    probe = json.loads(raw.replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["images"] == 1 and probe["decoded"] == 1  # the task plot, a data: URI PNG
    assert probe["resources"] == []  # nothing fetched from anywhere
    assert probe["headings"][:2] == ["Settings shared by every pairing", "Task ret: retrieval on coco"]
    assert "Runs without a result" in probe["headings"] and "Not part of this plan" in probe["headings"]
