"""Whole-process timing, side by side: commands run alternately (a, b, a, b, ...) in one session, so that the
machine's noise hits every side alike; results are medians with their range."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> float:
    """Seconds of one whole process; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=3600
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds


def alternate(sides: Mapping[str, tuple[list[str], Mapping[str, str] | None]], rounds: int) -> dict[str, list[float]]:
    """``rounds`` timings of each side, interleaved."""
    out: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, (argv, env) in sides.items():
            out[name].append(timed(argv, env))
    return out


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} s [{min(times):.2f}-{max(times):.2f}]"


def ratio(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """Median ratio num/den with the range over the paired rounds."""
    pairs = [a / b for a, b in zip(num, den, strict=True)]
    return statistics.median(pairs), min(pairs), max(pairs)


def before_checkout() -> Path | None:
    """``$XMBENCH_BEFORE``: another checkout of xmbench (e.g. ``git worktree add /tmp/before <commit>``) to time side
    by side with this one, in the same session and the same virtualenv."""
    path = os.environ.get("XMBENCH_BEFORE")
    return Path(path).resolve() if path else None
