"""The ``xmbench_check`` fixture (the ``pytest11`` entry point): it passes on unchanged results and fails a test with
the regression table on a degraded model."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from harness.cli import main


def test_the_plugin_is_registered_for_pytest() -> None:
    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "xmbench"]
    assert ep.value == "harness.pytest_plugin"


@pytest.fixture
def tiny_baseline(tiny_run: Path, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    assert main(["baseline", "update", str(tiny_run), "--out", str(path)]) == 0
    return path


def test_the_fixture_passes_on_unchanged_results(xmbench_check, tiny_run: Path, tiny_baseline: Path) -> None:
    result = xmbench_check(tiny_run.parent / "tiny.yaml", tiny_baseline, out=tiny_run)
    assert result.exit_code == 0 and not result.regressed and len(result.rows) > 10


def test_the_fixture_fails_the_test_with_the_regression_table(
    xmbench_check, tiny_run: Path, tiny_baseline: Path
) -> None:
    data = json.loads(tiny_baseline.read_text())
    values = data["metrics"]["vqa/xbert/vqa_accuracy"]["values"]
    data["metrics"]["vqa/xbert/vqa_accuracy"]["values"] = {k: v + 30 for k, v in values.items()}
    tiny_baseline.write_text(json.dumps(data))
    with pytest.raises(pytest.fail.Exception) as failed:
        xmbench_check(tiny_run.parent / "tiny.yaml", tiny_baseline, out=tiny_run)
    message = str(failed.value)
    assert "REGRESSED: vqa/xbert/vqa_accuracy" in message
    row = next(line for line in message.splitlines() if line.startswith("vqa/xbert/vqa_accuracy"))
    assert "-30.00" in row and "regressed" in row


def test_the_fixture_fails_on_a_malformed_baseline(xmbench_check, tiny_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(pytest.fail.Exception, match=r"xmbench check: .*bad\.json: not a readable baseline"):
        xmbench_check(tiny_run.parent / "tiny.yaml", bad, out=tiny_run)
