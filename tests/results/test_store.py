"""Run folders: atomic files with normal permissions, the per-run lock (held, released, left behind by a killed
process), and run records that are corrupt or hold non-numbers read as failed runs."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.results.record import RunRecord, Timings, read_record, write_record
from harness.results.store import FILE_MODE, RunLock, atomic_write_json

ROOT = Path(__file__).resolve().parents[2]


def _record(**changes) -> RunRecord:
    base = {
        "run_id": "vqa/xbert/seed0",
        "folder": "runs/vqa/xbert/seed0-abc",
        "fingerprint": "abc",
        "suite": "s",
        "task": "vqa",
        "task_type": "vqa",
        "dataset": "d",
        "model": "xbert",
        "kind": "cross_modal",
        "model_type": "xbert",
        "seed": 0,
        "status": "ok",
        "metrics": {"vqa_accuracy": 55.5},
        "main_metric": "vqa_accuracy",
    }
    return RunRecord.from_json({**base, **changes})


def test_files_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~umask == FILE_MODE
    assert not list(tmp_path.glob(".a.json.*"))  # no temporary file left behind


def test_record_round_trip_and_states(tmp_path: Path) -> None:
    assert read_record(tmp_path) is None  # neither file: incomplete
    rec = _record(timings={"train_seconds": 1.5, "steps": 3})
    write_record(tmp_path, rec)
    back = read_record(tmp_path, "abc")
    assert back == rec and back.timings == Timings(train_seconds=1.5, steps=3)
    failed = _record(status="failed", metrics={}, error="non-finite loss")
    write_record(tmp_path, failed)  # a failed attempt replaces the finished file
    assert not (tmp_path / "metrics.json").exists()
    assert read_record(tmp_path).error == "non-finite loss"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "corrupt run record"),
        ("", "corrupt run record"),
        ('{"run_id": "x"}', "missing key 'folder'"),
        ("__NAN__", "metric 'vqa_accuracy' is nan, not a finite number"),
        ("__INF__", "metric 'vqa_accuracy' is inf, not a finite number"),
        ("__STR__", "metric 'vqa_accuracy' is '55.5', not a number"),
        ("__FAILED__", "status is 'failed' in a finished-run file"),
        ("__OTHER_FP__", "its fingerprint does not match the folder"),
    ],
)
def test_corrupt_or_non_finite_metrics_read_as_failed(tmp_path: Path, content: str, reason: str) -> None:
    good = _record().to_json()
    text = {
        "__NAN__": json.dumps({**good, "metrics": {"vqa_accuracy": float("nan")}}),
        "__INF__": json.dumps({**good, "metrics": {"vqa_accuracy": float("inf")}}),
        "__STR__": json.dumps({**good, "metrics": {"vqa_accuracy": "55.5"}}),
        "__FAILED__": json.dumps({**good, "status": "failed"}),
        "__OTHER_FP__": json.dumps({**good, "fingerprint": "zzz"}),
    }.get(content, content)
    (tmp_path / "spec.json").write_text(json.dumps({"task": "vqa", "model": "xbert", "seed": 0, "fingerprint": "abc"}))
    (tmp_path / "metrics.json").write_text(text)
    rec = read_record(tmp_path, "abc")
    assert rec is not None and rec.status == "failed" and not rec.ok
    assert reason in rec.error and "metrics.json" in rec.error and "delete the file to re-run" in rec.error
    assert rec.run_id == "vqa/xbert/seed0"


def test_a_finished_record_never_holds_a_non_finite_metric(tmp_path: Path) -> None:
    rec = RunRecord(**{**_record().__dict__, "metrics": {"vqa_accuracy": float("nan")}})
    with pytest.raises(ValueError, match="non-finite metric"):
        write_record(tmp_path, rec)
    assert not (tmp_path / "metrics.json").exists()


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path / "run"), RunLock(tmp_path / "run")
    assert first.acquire()
    assert not second.acquire()  # flock conflicts between open files, even in one process
    assert f"pid {os.getpid()}" in second.holder() and first.looks_held()
    first.release()
    assert not RunLock(tmp_path / "run").looks_held()
    assert second.acquire() and second.left_behind() is None  # released cleanly: nothing to take over
    second.release()


_HOLDER = """
import sys, time
from pathlib import Path
from harness.results.store import RunLock
lock = RunLock(Path(sys.argv[1]))
assert lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_lock_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "run")], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        lock = RunLock(tmp_path / "run")
        assert not lock.acquire() and f"pid {proc.pid}" in lock.holder()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not RunLock(tmp_path / "run").looks_held()  # the holder is gone
    lock = RunLock(tmp_path / "run")
    deadline = time.monotonic() + 10
    while not lock.acquire():  # the kernel drops a dead process's flock at once; allow for a slow reap
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lock.left_behind().startswith(f"pid {proc.pid} on ")
    lock.release()
