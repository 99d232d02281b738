"""Fingerprints that travel: the same suite planned in fresh processes, with different hash seeds and empty caches
(as on a new machine or in CI), gets the same fingerprints, so finished runs are found and reused; and it trains to
the same numbers."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import TINY_SUITE

ROOT = Path(__file__).resolve().parents[1]


def _suite(tmp_path: Path) -> Path:
    suite = copy.deepcopy(TINY_SUITE)
    suite["seeds"] = [0]
    suite["tasks"]["vqa"]["models"] = ["bert", "xbert"]
    suite["tasks"]["vqa"]["baseline"] = None
    suite["tasks"]["cls"]["models"] = ["vit"]
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _xmbench(tmp_path: Path, hash_seed: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "XMBENCH_CACHE": str(tmp_path / f"cache-{hash_seed}")}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_same_fingerprints_and_numbers_in_fresh_processes(tmp_path: Path) -> None:
    path = _suite(tmp_path)
    plans, metrics = [], []
    for hash_seed in ("0", "4242"):
        out = tmp_path / f"out-{hash_seed}"
        done = _xmbench(tmp_path, hash_seed, "plan", str(path), "--out", str(out), "--json")
        assert done.returncode == 0, done.stderr
        plans.append({r["run_id"]: r["fingerprint"] for r in json.loads(done.stdout)["runs"]})
        done = _xmbench(tmp_path, hash_seed, "run", str(path), "--out", str(out))
        assert done.returncode == 0, done.stderr
        metrics.append(
            {
                p.parent.relative_to(out).as_posix(): json.loads(p.read_text())["metrics"]
                for p in sorted((out / "runs").rglob("metrics.json"))
            }
        )
    assert set(plans[0]) == {"vqa/bert/seed0", "vqa/xbert/seed0", "cls/vit/seed0", "ret/xbert/seed0"}
    assert plans[0] == plans[1]
    assert metrics[0] == metrics[1] and len(metrics[0]) == 4  # same folders (fingerprints), same numbers
    # the second machine's results are reused by the first: nothing left to run
    done = _xmbench(tmp_path, "99", "run", str(path), "--out", str(tmp_path / "out-4242"))
    assert done.returncode == 0 and "4 reused" in " ".join(done.stderr.split())
