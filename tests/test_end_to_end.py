"""A tiny suite end to end (a few optimiser steps per run): run folders, results.csv, report.md, report.html."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.cli import main

REQUIRED_COLUMNS = ["suite", "task", "task_type", "dataset", "model", "kind", "seed", "split", "metric", "value"]


def test_results_csv_shape(tiny_run: Path) -> None:
    df = pd.read_csv(tiny_run / "results.csv")
    assert list(df.columns[: len(REQUIRED_COLUMNS)]) == REQUIRED_COLUMNS
    runs = {(t, m, s) for t, m, s in df[["task", "model", "seed"]].itertuples(index=False)}
    expected = {
        (t, m, s)
        for t, ms in {"vqa": ["vit", "bert", "xbert"], "cls": ["vit", "xbert"], "ret": ["xbert"]}.items()
        for m in ms
        for s in (0, 1)
    }
    assert runs == expected
    assert set(df["split"]) == {"test", "val"}  # test: scored once with the state selected on val
    assert set(df["task_type"]) == {"vqa", "classification", "retrieval"}
    assert set(df["kind"]) == {"image", "text", "cross_modal"}
    per_task = df.groupby("task")["metric"].agg(set).to_dict()
    assert {"top1", "top5"} <= per_task["cls"]
    assert {"vqa_accuracy"} <= per_task["vqa"]
    assert {"txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean"} <= per_task["ret"]
    assert df["value"].between(0, 100).all()
    # one row per (run, split, metric)
    assert not df.duplicated(["task", "model", "seed", "split", "metric"]).any()


def test_run_folders(tiny_run: Path) -> None:
    folders = sorted((tiny_run / "runs").glob("*/*/*"))
    assert len(folders) == 12
    for folder in folders:
        spec = json.loads((folder / "spec.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["fingerprint"] == spec["fingerprint"]
        assert folder.name.endswith(spec["fingerprint"][:10])
        assert metrics["status"] == "ok"
        assert metrics["timings"]["train_samples_per_s"] > 0
        assert metrics["timings"]["steps"] == 3
        assert metrics["timings"]["wall_seconds"] >= metrics["timings"]["train_seconds"] > 0
        assert spec["train"]["lr"] == (2e-3 if spec["model"] == "bert" else 1e-3)
        assert metrics["cost"]["params"] >= metrics["cost"]["trainable_params"] > 0
        assert metrics["cost"]["forward_flops_per_sample"] > 0
        assert metrics["env"]["torch"] == torch.__version__
        assert (folder / "predictions.jsonl").is_file()
        log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        assert log[-1]["step"] == 3


def test_report_markdown(tiny_run: Path) -> None:
    md = (tiny_run / "report.md").read_text()
    for task in ("vqa", "cls", "ret"):
        assert f"## Task `{task}`" in md
    vqa_section = md.split("## Task `vqa`")[1].split("## ")[0]
    rows = [line for line in vqa_section.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| model | kind | vqa_accuracy")
    assert [r.split("|")[1].strip().rstrip(" ★") for r in rows[1:]] == ["vit", "bert", "xbert"]
    assert "Δ vqa_accuracy vs vit" in rows[0]
    assert "| baseline |" in rows[1]
    assert sum("★" in r for r in rows[1:]) >= 1
    # mean [95% CI] over two seeds
    assert re.search(r"\d+\.\d\d \[-?\d+\.\d\d, \d+\.\d\d\]", vqa_section)
    # the per-model override is declared in the suite and shown in the report
    assert "| bert | lr | 0.001 | 0.002 |" in md


def test_report_html_is_self_contained(tiny_run: Path) -> None:
    html = (tiny_run / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in html
    assert not re.search(r"(src|href)=['\"]https?://", html)
    assert "<script" not in html


def test_rerun_reuses_finished_runs(tiny_run: Path, capsys: pytest.CaptureFixture) -> None:
    suite = tiny_run.parent / "tiny.yaml"
    before = (tiny_run / "results.csv").read_text()
    mtimes = {p: p.stat().st_mtime_ns for p in (tiny_run / "runs").rglob("metrics.json")}
    assert main(["run", str(suite), "--out", str(tiny_run)]) == 0
    assert "12 reused" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (tiny_run / "runs").rglob("metrics.json")} == mtimes
    assert (tiny_run / "results.csv").read_text() == before


def test_report_command_rebuilds_from_disk(tiny_run: Path) -> None:
    suite = tiny_run.parent / "tiny.yaml"
    (tiny_run / "report.md").unlink()
    assert main(["report", str(suite), "--out", str(tiny_run)]) == 0
    assert "## Task `vqa`" in (tiny_run / "report.md").read_text()


def test_nan_loss_fails_one_run_and_keeps_others(tiny_suite, tmp_path: Path, monkeypatch, capsys) -> None:
    from harness.tasks.vqa import VqaTask

    path = tiny_suite(
        seeds=[0],
        tasks={"vqa": {"type": "vqa", "dataset": "shapes-vqa", "models": ["bert", "xbert"], "answer_min_count": 1}},
    )
    out = tmp_path / "out"
    original = VqaTask.loss

    def loss(self, model, head, batch):
        value = original(self, model, head, batch)
        return value * float("nan") if model.kind == "cross_modal" else value

    monkeypatch.setattr(VqaTask, "loss", loss)
    assert main(["run", str(path), "--out", str(out)]) == 1  # a run failed: exit 1, every failure listed
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2].startswith("xmbench: failed: vqa/xbert/seed0: non-finite loss (nan) at step 1/3")
    assert err[-1].startswith("xmbench: 1 of 2 runs failed")
    assert "Traceback" not in "\n".join(err)
    assert len(list((out / "runs").rglob("error.json"))) == 1
    assert len(list((out / "runs").rglob("metrics.json"))) == 1
    assert "## Failed runs" in (out / "report.md").read_text()


def test_bf16_autocast_on_cpu(tiny_suite, tmp_path: Path) -> None:
    path = tiny_suite(
        seeds=[0],
        hardware={"device": "cpu", "precision": "bf16"},
        train={"steps": 2, "batch_size": 8, "allow_overrides": ["lr"]},
        tasks={"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["xbert"]}},
    )
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    spec = json.loads(next((out / "runs").rglob("spec.json")).read_text())
    assert spec["hardware"]["precision"] == "bf16" and spec["device"] == "cpu"


def test_fp16_needs_cuda(tiny_suite, tmp_path: Path, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = tiny_suite(hardware={"device": "cpu", "precision": "fp16"})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "hardware.precision: fp16 needs a CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs").exists()


def test_same_suite_twice_gives_identical_numbers(tiny_suite, tmp_path: Path) -> None:
    """Seeded and deterministic: two fresh runs of the same suite agree to the last digit."""
    path = tiny_suite(
        seeds=[3],
        train={"steps": 4, "batch_size": 8, "allow_overrides": ["lr"]},
        tasks={"vqa": {"type": "vqa", "dataset": "shapes-vqa", "models": ["xbert"], "answer_min_count": 1}},
    )
    frames = []
    for out in ("a", "b"):
        assert main(["run", str(path), "--out", str(tmp_path / out)]) == 0
        frames.append(pd.read_csv(tmp_path / out / "results.csv"))
        log = (next((tmp_path / out / "runs").rglob("log.jsonl"))).read_text().splitlines()
        frames.append(pd.DataFrame([row["loss"] for row in map(json.loads, log) if "loss" in row]))
    pd.testing.assert_frame_equal(frames[0], frames[2])
    pd.testing.assert_frame_equal(frames[1], frames[3])
