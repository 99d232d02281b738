"""Whole-process speed of ``xmbench validate`` and of the smoke suite, side by side with references.

Run: ``.venv/bin/python -m pytest benchmarks/test_cli_speed.py --benchmark-only -q -s``

* ``validate``: the smoke suite (image and text models), an image-only and a text-only suite, each against a bare
  ``python -c pass`` (the floor of any process). Since issue 9, validate builds every model on the meta device and
  imports only the model families a suite names: a text-only suite never imports timm, an image-only suite never
  imports transformers' models.
* ``smoke``: ``xmbench run suites/smoke.yaml`` from an empty cache and an empty output folder (data synthesis
  included), the README's main job.

With ``XMBENCH_BEFORE=/path/to/another/checkout`` each measurement also runs that checkout's code (``python -m harness``
with it first on ``PYTHONPATH``) alternately with this one, and prints the ratio with its range. Nothing is asserted
about time: these are measurements.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from benchmarks._timing import ROOT, alternate, before_checkout, ratio, summary

VALIDATE_ROUNDS = 5


def _suites(folder: Path) -> dict[str, Path]:
    smoke = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())
    out = {"smoke": ROOT / "suites" / "smoke.yaml"}
    for name, models, task in (
        ("image-only", ["vit"], "classify"),
        ("text-only", ["bert"], "vqa"),
    ):
        suite = {**smoke, "name": name, "baseline": models[0]}
        suite["models"] = {m: smoke["models"][m] for m in models}
        suite["tasks"] = {task: {**smoke["tasks"][task], "models": models}}
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        out[name] = path
    return out


def _sides(argv_tail: list[str], env: dict[str, str]) -> dict[str, tuple[list[str], dict[str, str]]]:
    sides = {"now": ([sys.executable, "-m", "harness", *argv_tail], env)}
    before = before_checkout()
    if before is not None:
        sides["before"] = ([sys.executable, "-m", "harness", *argv_tail], {**env, "PYTHONPATH": str(before)})
    return sides


@pytest.mark.parametrize("suite", ["smoke", "image-only", "text-only"])
def test_validate_whole_process(benchmark, suite: str, tmp_path: Path) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    path = _suites(tmp_path)[suite]
    sides = _sides(["validate", str(path)], {})
    sides["python -c pass"] = ([sys.executable, "-c", "pass"], {})
    times = alternate(sides, VALIDATE_ROUNDS)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    mid, lo, hi = ratio(times["now"], times["python -c pass"])
    line = f"\nvalidate {suite}: {summary(times['now'])}; {mid:.0f}x [{lo:.0f}-{hi:.0f}] a bare python -c pass"
    info = {"validate_s": summary(times["now"]), "x_python_pass": round(mid, 1)}
    if "before" in times:
        b_mid, b_lo, b_hi = ratio(times["before"], times["now"])
        line += f"; before: {summary(times['before'])}, before/now {b_mid:.2f} [{b_lo:.2f}-{b_hi:.2f}]"
        info["before_s"] = summary(times["before"])
        info["before_over_now"] = round(b_mid, 2)
    benchmark.extra_info.update(info)
    print(line)


def test_smoke_suite_whole_process(benchmark) -> None:
    """One round each (minutes): empty cache, empty output folder."""
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    with tempfile.TemporaryDirectory() as tmp:
        sides = {}
        for name, (argv, env) in _sides(["run", str(ROOT / "suites" / "smoke.yaml")], {}).items():
            env = {**(env or {}), "XMBENCH_CACHE": str(Path(tmp) / f"cache-{name}")}
            sides[name] = ([*argv, "--out", str(Path(tmp) / f"out-{name}")], env)
        times = alternate(sides, 1)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    line = f"\nsmoke suite, empty cache: now {times['now'][0]:.1f} s"
    if "before" in times:
        line += f", before {times['before'][0]:.1f} s (before/now {times['before'][0] / times['now'][0]:.2f})"
    benchmark.extra_info.update({k: round(v[0], 1) for k, v in times.items()})
    print(line)
