"""A results folder is never corrupted or mixed: concurrent processes split the work through per-run locks, a report
holds exactly the runs of the current plan, and a corrupt or non-finite record is a failed run, never a silent gap."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from harness.cli import main
from harness.results.store import RunLock

ROOT = Path(__file__).resolve().parents[1]
CLS = {"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit", "xbert"]}}


def _cls_suite(tiny_suite, **changes) -> Path:
    return tiny_suite(tasks=CLS, train={"steps": 2, "batch_size": 8, "allow_overrides": ["lr"]}, **changes)


def _done_lines(text: str) -> list[str]:
    return [line.split()[line.split().index("done") + 1] for line in text.splitlines() if " done " in f" {line} "]


def test_two_concurrent_runs_write_every_run_exactly_once(tiny_suite, tmp_path: Path, xm_cache: Path) -> None:
    path = tiny_suite(seeds=[0, 1], tasks=CLS, train={"steps": 8, "batch_size": 16, "allow_overrides": ["lr"]})
    out = tmp_path / "out"
    env = {**os.environ, "XMBENCH_CACHE": str(xm_cache), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "harness", "run", str(path), "--out", str(out)]
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # both processes plan and prepare at the same time, then race for the runs
    second = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [o[1][-2000:] for o in outputs]
    trained = [_done_lines(err) for _, err in outputs]
    every = sorted(trained[0] + trained[1])
    planned = sorted(f"cls/{m}/seed{s}" for m in ("vit", "xbert") for s in (0, 1))
    assert every == planned, trained  # each run trained by exactly one of the two processes
    for folder in sorted((out / "runs").glob("*/*/*")):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert (
            metrics["status"] == "ok"
            and metrics["fingerprint"] == json.loads((folder / "spec.json").read_text())["fingerprint"]
        )
        log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        log = [r for r in log if r.get("split") != "val"]  # training lines (val evaluations share their step)
        assert [r["step"] for r in log] == sorted({r["step"] for r in log}) and log[0]["step"] == 1  # one attempt
        assert json.loads((folder / ".lock").read_text())["released"] is True
    assert len(list((out / "runs").glob("*/*/*"))) == 4
    df = pd.read_csv(out / "results.csv")  # the last process to finish reports every run
    assert len(df[(df["metric"] == "top1") & (df["split"] == "test")]) == 4


def test_a_run_claimed_by_a_live_process_is_skipped(tiny_suite, tmp_path: Path, capsys) -> None:
    from harness.runner import plan_suite
    from harness.suite import load_suite

    path = _cls_suite(tiny_suite, seeds=[0])
    out = tmp_path / "out"
    from rich.console import Console

    plan = plan_suite(load_suite(path), path, Path("."), Console(quiet=True), build=False)
    held = next(s for s in plan.runs if s.model == "vit")
    lock = RunLock(out / held.folder)
    assert lock.acquire()
    try:
        assert main(["run", str(path), "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert f"skipping cls/vit/seed0: claimed by pid {os.getpid()} on {socket.gethostname()}" in " ".join(
            err.split()
        )
        assert not (out / held.folder / "metrics.json").exists()
        md = (out / "report.md").read_text()
        assert "- `cls/vit/seed0`: in progress" in md
    finally:
        lock.release()
    assert main(["run", str(path), "--out", str(out)]) == 0  # released: now it runs
    assert (out / held.folder / "metrics.json").is_file()


def test_a_claim_left_by_a_dead_process_is_taken_over(tiny_suite, tmp_path: Path, capsys) -> None:
    path = _cls_suite(tiny_suite, seeds=[0])
    out = tmp_path / "out"
    assert main(["plan", str(path), "--out", str(out), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+0000"}
    lock_file = out / runs[0]["folder"] / ".lock"
    lock_file.parent.mkdir(parents=True)
    lock_file.write_text(json.dumps(dead))  # what a SIGKILLed run leaves: a lock file nobody holds
    assert main(["run", str(path), "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"{runs[0]['run_id']}: taking over the claim left by pid {dead['pid']}" in err
    assert (out / runs[0]["folder"] / "metrics.json").is_file()


def test_report_holds_exactly_the_current_plan(tiny_suite, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    old = _cls_suite(tiny_suite, seeds=[0, 1])
    assert main(["run", str(old), "--out", str(out)]) == 0
    old_top1 = (
        pd.read_csv(out / "results.csv")
        .query("metric == 'top1' and model == 'vit' and split == 'test'")["value"]
        .tolist()
    )
    # The suite changes: vit gets another learning rate (a new config), and seed 1 is dropped.
    new = tiny_suite(
        seeds=[0],
        tasks=CLS,
        train={"steps": 2, "batch_size": 8, "allow_overrides": ["lr"]},
        models={
            "vit": {"type": "timm", "image_encoder": _vit(), "train": {"lr": 5e-4}},
            "xbert": _xbert(),
        },
    )
    assert main(["report", str(new), "--out", str(out)]) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df["model"]) == {"xbert"} and set(df["seed"]) == {0}  # the stale vit runs are not averaged in
    md = (out / "report.md").read_text()
    assert "- `cls/vit/seed0`: missing" in md
    other = md.split("## Not part of this plan")[1]
    assert other.count("| `runs/cls/vit/seed") == 2 and other.count("| `runs/cls/xbert/seed1-") == 1
    assert "an older configuration" in other and "its model or seed is not in the current suite" in other
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing"] == ["cls/vit/seed0"] and len(summary["not_part_of_this_plan"]) == 3
    assert main(["run", str(new), "--out", str(out)]) == 0  # trains the new vit; the old folders stay
    df = pd.read_csv(out / "results.csv")
    new_top1 = df.query("metric == 'top1' and model == 'vit' and split == 'test'")["value"].tolist()
    assert len(new_top1) == 1 and len(list((out / "runs" / "cls" / "vit").iterdir())) == 3
    assert len(old_top1) == 2


def test_corrupt_or_nan_metrics_are_failed_runs(tiny_suite, tmp_path: Path, capsys) -> None:
    path = _cls_suite(tiny_suite, seeds=[0, 1])
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    folders = {f.parent.name + "/" + f.name.split("-")[0]: f for f in (out / "runs").glob("cls/*/*")}
    (folders["vit/seed0"] / "metrics.json").write_text('{"truncated": ')
    nan = json.loads((folders["xbert/seed1"] / "metrics.json").read_text())
    nan["metrics"]["top1"] = float("nan")
    (folders["xbert/seed1"] / "metrics.json").write_text(json.dumps(nan))  # the bare NaN token
    assert main(["report", str(path), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    failed = md.split("## Failed runs")[1].split("##")[0]
    assert "| cls/vit/seed0 |" in failed and "corrupt run record" in failed
    assert "| cls/xbert/seed1 |" in failed and "metric 'top1' is nan, not a finite number" in failed
    df = pd.read_csv(out / "results.csv")
    assert sorted(df.query("metric == 'top1' and split == 'test'")["run_id"]) == ["cls/vit/seed1", "cls/xbert/seed0"]
    rows = [line for line in md.splitlines() if line.startswith(("| vit", "| xbert"))]
    assert all(line.rstrip().endswith("| 1 |") for line in rows), rows  # one seed each, said so
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out)]) == 0  # the two broken runs are trained again
    assert "2 reused" in " ".join(capsys.readouterr().err.split())
    assert len(pd.read_csv(out / "results.csv").query("metric == 'top1' and split == 'test'")) == 4


def _vit() -> dict:
    from tests.conftest import TINY_VIT

    return TINY_VIT


def _xbert() -> dict:
    from tests.conftest import TINY_SUITE

    return TINY_SUITE["models"]["xbert"]
