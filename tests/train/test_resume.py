"""Exact resume: a run killed with SIGKILL mid-training and started again ends with exactly the metrics, the val
scores and the training losses of an uninterrupted run (CPU, deterministic).

The suite exercises every piece of state a checkpoint must hold: dropout (torch's RNG), random-crop-and-flip
augmentation (the augmentation generator), the data order across an epoch boundary, fused AdamW state, the cosine
schedule with warmup, val evaluations with best-state selection before and after the kill, and a cross-modal model
next to an image-only one.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import TINY_SUITE

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "tests.train.runner_models"


def _suite() -> dict:
    suite = copy.deepcopy(TINY_SUITE)
    suite["seeds"] = [0]
    suite["train"].update({"steps": 9, "eval_every": 2, "checkpoint_every": 3, "batch_size": 8})
    suite["image"]["augment"] = "crop_flip"
    suite["tasks"] = {
        "vqa": {"type": "vqa", "dataset": "shapes-vqa", "models": ["xbert"], "baseline": None, "answer_min_count": 1}
    }
    suite["baseline"] = None
    suite["text"]["vocab_size"] = 120
    return suite


def _run(suite_path: Path, out: Path, cache: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "XMBENCH_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("XMBENCH_TEST_KILL_AT_STEP", None)
    if kill_at is not None:
        env["XMBENCH_TEST_KILL_AT_STEP"] = str(kill_at)
    cmd = [sys.executable, "-m", "harness", "run", str(suite_path), "--out", str(out), "--plugin", PLUGIN]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _record(out: Path) -> dict:
    (path,) = out.glob("runs/vqa/xbert/seed0-*/metrics.json")
    return json.loads(path.read_text())


def _losses(out: Path) -> list[tuple[int, float]]:
    (path,) = out.glob("runs/vqa/xbert/seed0-*/log.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_sigkill_then_resume_gives_the_uninterrupted_metrics(tmp_path: Path, xm_cache: Path) -> None:
    suite_path = tmp_path / "resume.yaml"
    suite_path.write_text(yaml.safe_dump(_suite(), sort_keys=False))

    plain = _run(suite_path, tmp_path / "plain", xm_cache)
    assert plain.returncode == 0, plain.stderr[-2000:]

    killed = _run(suite_path, tmp_path / "killed", xm_cache, kill_at=8)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (folder,) = (tmp_path / "killed").glob("runs/vqa/xbert/seed0-*")
    assert not (folder / "metrics.json").exists()
    ckpts = sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "step-0000006.pt"]  # keep: 1 pruned step 3

    resumed = _run(suite_path, tmp_path / "killed", xm_cache)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _record(tmp_path / "plain"), _record(tmp_path / "killed")
    assert b["timings"]["resumed_from_step"] == 6 and a["timings"]["resumed_from_step"] is None
    assert a["metrics"] == b["metrics"]  # exactly equal, not approximately
    assert a["val_metrics"] == b["val_metrics"]
    assert a["selection"]["step"] == b["selection"]["step"]
    assert a["timings"]["final_loss"] == b["timings"]["final_loss"]
    assert _losses(tmp_path / "plain") == _losses(tmp_path / "killed")  # the log continues where it stopped
    # finished: the resume checkpoints are gone, the best state (the one scored on test) is kept
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["best.pt"]
