"""pytest plug-in (entry point ``pytest11``): the CI gate as a fixture, for model repositories.

::

    def test_no_regression(xmbench_check):
        xmbench_check("suites/smoke.yaml", "reports/baselines/smoke.json")

``xmbench_check(suite, baseline, *, out=None, data_root=None, false_alarm=None)`` runs the suite (once per test
session and suite file; finished runs in ``out`` are reused as by ``xmbench run``), checks its results against the
baseline file, and fails the test with the regression table when a gated metric regressed, or when the check cannot
be made (a malformed or missing baseline, another suite, a metric in one and not the other, a failed run). It
returns the :class:`harness.gate.check.CheckResult` when the check passes.

Loading the plug-in imports nothing heavy: torch and the models are imported when the fixture runs a suite.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _text(result: Any, title: str) -> str:
    from rich.console import Console

    from harness.gate.render import print_check

    console = Console(file=io.StringIO(), width=160, record=True, color_system=None, highlight=False)
    print_check(result, console, title=title)
    return console.export_text()


@pytest.fixture(scope="session")
def xmbench_check(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """Run a suite and check it against a baseline file; fails the test on a regression (see the module doc)."""
    done: dict[tuple[Path, Path | None], Path] = {}

    def run(
        suite: str | Path,
        baseline: str | Path,
        *,
        out: str | Path | None = None,
        data_root: str | Path | None = None,
        false_alarm: float | None = None,
    ) -> Any:
        from harness.cli import main
        from harness.errors import UserError
        from harness.gate.baseline import read_baseline
        from harness.gate.check import check
        from harness.results.folder import open_results

        suite = Path(suite)
        key = (suite.resolve(), Path(out).resolve() if out else None)
        if key not in done:
            folder = Path(out) if out else tmp_path_factory.mktemp("xmbench") / suite.stem
            argv = ["run", str(suite), "--out", str(folder)]
            if data_root is not None:
                argv += ["--data-root", str(data_root)]
            code = main(argv)
            if code != 0:
                pytest.fail(f"xmbench run {suite} exited with code {code} (its error is printed above)", pytrace=False)
            done[key] = folder
        try:
            result = check(read_baseline(Path(baseline)), open_results(done[key]), str(baseline), false_alarm)
        except UserError as exc:
            pytest.fail(f"xmbench check: {exc}", pytrace=False)
        if result.exit_code != 0:
            pytest.fail(_text(result, f"xmbench check {suite} against {baseline}"), pytrace=False)
        return result

    return run
