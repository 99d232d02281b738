"""The CI gate's false-alarm and detection rates on the smoke suite, measured (``docs/ci.md``).

Run: ``.venv/bin/python -m pytest benchmarks/test_gate_rates.py --benchmark-only -q -s`` (about 12 minutes on 2
cores; ``XMBENCH_GATE_NULL_RUNS`` sets the number of unchanged runs, default 5).

1. A baseline from the smoke suite with seeds 0-3 (``xmbench baseline update``), exactly as
   ``reports/baselines/smoke.json`` is made.
2. "A commit that changed nothing": the smoke suite with seed pairs the baseline did not use ([4, 5], [6, 7], ...),
   each checked against the baseline. The gate must pass on every one.
3. "A clearly worse model": the same suite trained for 1 and for 2 of its 6 epochs (seeds [4, 5]); the gate must
   fail on each.

Every run is a whole ``xmbench run`` and ``xmbench check --json`` process, as in CI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "smoke.yaml"
BASE_SEEDS = [0, 1, 2, 3]
NULL_RUNS = int(os.environ.get("XMBENCH_GATE_NULL_RUNS", "5"))
DEGRADED = [("1 of 6 epochs", 1), ("2 of 6 epochs", 2)]


def _variant(folder: Path, seeds: list[int], epochs: int | None = None) -> Path:
    text = SUITE.read_text()
    text = re.sub(r"(?m)^seeds: \[.*\]$", f"seeds: {seeds}", text)
    if epochs is not None:
        text = re.sub(r"(?m)^  epochs: \d+$", f"  epochs: {epochs}", text)
    path = folder / f"smoke-{'-'.join(map(str, seeds))}-e{epochs or 6}.yaml"
    path.write_text(text)
    return path


def _xmbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xmbench", *args], capture_output=True, text=True, cwd=ROOT)


def _run(suite: Path, out: Path) -> None:
    done = _xmbench("run", str(suite), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]


def _check(out: Path, baseline: Path) -> tuple[int, dict]:
    done = _xmbench("check", str(out), "--baseline", str(baseline), "--json")
    return done.returncode, json.loads(done.stdout)


def test_false_alarm_and_detection_rates(benchmark, tmp_path: Path) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    lines: list[str] = []

    def measure() -> dict:
        t0 = time.perf_counter()
        base_out = tmp_path / "base"
        _run(_variant(tmp_path, BASE_SEEDS), base_out)
        baseline = tmp_path / "smoke.json"
        done = _xmbench("baseline", "update", str(base_out), "--out", str(baseline))
        assert done.returncode == 0, done.stderr
        committed = ROOT / "reports" / "baselines" / "smoke.json"
        if committed.is_file():
            same = json.loads(committed.read_text())["metrics"] == json.loads(baseline.read_text())["metrics"]
            lines.append(f"baseline (seeds {BASE_SEEDS}) equals the committed one: {same}")
        outcome = {"null": [], "degraded": []}
        for i in range(NULL_RUNS):
            seeds = [4 + 2 * i, 5 + 2 * i]
            out = tmp_path / f"null{i}"
            _run(_variant(tmp_path, seeds), out)
            code, report = _check(out, baseline)
            worst = max(report["rows"], key=lambda r: -(r["change"] or 0) / (r["threshold"] or 1) if r["gate"] else -9)
            outcome["null"].append(code)
            lines.append(
                f"unchanged, seeds {seeds}: exit {code}; largest gated drop relative to its tolerance: {worst['key']} "
                f"{worst['change']:+.2f} vs -{worst['threshold']:.2f}"
            )
        for name, epochs in DEGRADED:
            out = tmp_path / f"deg{epochs}"
            _run(_variant(tmp_path, [4, 5], epochs), out)
            code, report = _check(out, baseline)
            outcome["degraded"].append(code)
            lines.append(f"degraded ({name}), seeds [4, 5]: exit {code}; regressed: {', '.join(report['regressed'])}")
        lines.append(f"({time.perf_counter() - t0:.0f} s)")
        return outcome

    outcome = benchmark.pedantic(measure, rounds=1, iterations=1)
    print()
    print("\n".join(lines))
    passes = sum(c == 0 for c in outcome["null"])
    caught = sum(c == 1 for c in outcome["degraded"])
    print(f"false alarms: {len(outcome['null']) - passes} of {len(outcome['null'])} unchanged runs")
    print(f"detected: {caught} of {len(outcome['degraded'])} degraded runs")
    assert passes == len(outcome["null"]), "the gate raised a false alarm on an unchanged model"
    assert caught == len(outcome["degraded"]), "the gate missed a clearly worse model"
