"""The runner end to end: model selection on val with one test score, failure isolation (exit 1, every failed run
listed, the suite goes on; ``--fail-fast``), out-of-memory micro-batch halving, ``--tasks/--models/--seeds`` and
``--dry-run``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.cli import main
from tests.conftest import TINY_SUITE

PLUGIN = ["--plugin", "tests.train.runner_models"]


def _write(tmp_path: Path, suite: dict, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _cls_suite(models: dict, seeds=(0,), **train) -> dict:
    suite = copy.deepcopy(TINY_SUITE)
    suite.update(seeds=list(seeds), baseline=None, claims=[])
    suite["models"] = models
    suite["train"] = {"steps": 4, "batch_size": 8, "lr": 1e-2, "schedule": "constant", **train}
    suite["tasks"] = {"cls": {"type": "classification", "dataset": "shapes-cls", "models": list(models)}}
    return suite


def _records(out: Path) -> dict[str, dict]:
    records = {}
    for path in sorted((out / "runs").rglob("*.json")):
        if path.name in ("metrics.json", "error.json"):
            r = json.loads(path.read_text())
            records[r["run_id"]] = r
    return records


def _val_lines(out: Path, run: str) -> list[dict]:
    (log,) = (out / "runs").glob(f"{run}-*/log.jsonl")
    return [r for r in map(json.loads, log.read_text().splitlines()) if r.get("split") == "val"]


# ------------------------------------------------------------------------------------------ best on val, test once
def test_best_on_val_selection_scores_test_once(tmp_path: Path, monkeypatch) -> None:
    from harness.tasks.classification import ClassificationTask

    calls: list[str] = []
    original = ClassificationTask.evaluate

    def evaluate(self, *args, split="test", **kwargs):
        calls.append(split)
        return original(self, *args, split=split, **kwargs)

    monkeypatch.setattr(ClassificationTask, "evaluate", evaluate)
    suite = _cls_suite({"vit": TINY_SUITE["models"]["vit"]}, steps=8, eval_every=2, lr=3e-2)
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, suite)), "--out", str(out)]) == 0
    assert calls == ["val", "val", "val", "val", "test"]  # val at steps 2, 4, 6, 8; test once, at the end

    record = _records(out)["cls/vit/seed0"]
    vals = _val_lines(out, "cls/vit/seed0")
    assert [v["step"] for v in vals] == [2, 4, 6, 8]
    top1 = [v["metrics"]["top1"] for v in vals]
    best = top1.index(max(top1))  # the first of equal bests: later ones must improve strictly
    assert record["selection"]["step"] == vals[best]["step"] and record["selection"]["metric"] == "top1"
    assert record["val_metrics"] == vals[best]["metrics"]

    # Independent check: with a constant learning rate, a run that simply stops at the selected step has the same
    # weights as the selected state, so its (only) val and test scores must be exactly the selected run's.
    stop = _cls_suite({"vit": TINY_SUITE["models"]["vit"]}, steps=record["selection"]["step"], lr=3e-2)
    stop["train"]["eval_every"] = record["selection"]["step"]
    out2 = tmp_path / "stop"
    assert main(["run", str(_write(tmp_path, stop, "stop.yaml")), "--out", str(out2)]) == 0
    short = _records(out2)["cls/vit/seed0"]
    assert short["metrics"] == record["metrics"] and short["val_metrics"] == record["val_metrics"]

    df = pd.read_csv(out / "results.csv")
    assert set(df["split"]) == {"val", "test"}
    test_top1 = df.query("split == 'test' and metric == 'top1'")["value"].item()
    assert test_top1 == pytest.approx(record["metrics"]["top1"], abs=1e-4)


def test_early_stopping_stops_after_patience(tmp_path: Path) -> None:
    suite = _cls_suite(
        {"vit": TINY_SUITE["models"]["vit"]}, steps=40, eval_every=1, early_stopping={"patience": 2, "min_delta": 100}
    )
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, suite)), "--out", str(out)]) == 0
    record = _records(out)["cls/vit/seed0"]
    # min_delta 100 points: nothing after the first evaluation counts as better, so the run stops at step 3
    assert record["selection"]["stopped_early"] is True and record["selection"]["step"] == 1
    assert record["timings"]["steps"] == 3 and record["selection"]["evaluations"] == 3


# ---------------------------------------------------------------------------------------------- failure isolation
def test_failing_runs_do_not_stop_the_suite_and_are_listed(tmp_path: Path, capsys) -> None:
    models = {
        "vit": TINY_SUITE["models"]["vit"],
        "nan": {"type": "saboteur", "args": {"fail": "nan", "at_call": 3}},  # call 1 is the FLOPs count's training step
        "boom": {"type": "saboteur", "args": {"fail": "raise", "at_call": 1}},
    }
    suite = _cls_suite(models)
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, suite)), "--out", str(out), *PLUGIN]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("xmbench:")]
    assert err[0].startswith("xmbench: failed: cls/nan/seed0: non-finite loss (nan) at step 2/4")
    assert err[1].startswith("xmbench: failed: cls/boom/seed0: ValueError: boom from the user's model code (")
    assert "runner_models.py:" in err[1] and err[2].startswith("xmbench: 2 of 3 runs failed")
    records = _records(out)
    assert records["cls/vit/seed0"]["status"] == "ok"  # trained after nothing, and next to two failures
    assert records["cls/boom/seed0"]["status"] == "failed" and "Traceback" in records["cls/boom/seed0"]["traceback"]
    md = (out / "report.md").read_text()
    failed = md.split("## Failed runs")[1]
    assert "| cls/nan/seed0 |" in failed and "| cls/boom/seed0 |" in failed


def test_fail_fast_stops_at_the_first_failure(tmp_path: Path, capsys) -> None:
    models = {"boom": {"type": "saboteur", "args": {"fail": "raise"}}, "vit": TINY_SUITE["models"]["vit"]}
    out = tmp_path / "out"
    path = _write(tmp_path, _cls_suite(models))
    assert main(["run", str(path), "--out", str(out), "--fail-fast", *PLUGIN]) == 1
    err = capsys.readouterr().err
    assert "1 run(s) not started (--fail-fast)" in err
    assert set(_records(out)) == {"cls/boom/seed0"}


def test_out_of_memory_fails_the_run_or_halves_the_micro_batch(tmp_path: Path, capsys) -> None:
    oom = {"type": "saboteur", "args": {"fail": "oom", "oom_above": 2}}
    plain = {"type": "saboteur", "args": {}}
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, _cls_suite({"oom": oom}))), "--out", str(out), *PLUGIN]) == 1
    assert "out of memory at step 1 with micro-batch 8" in _records(out)["cls/oom/seed0"]["error"]
    capsys.readouterr()

    halve = _cls_suite({"oom": oom, "plain": plain}, on_oom="halve_batch")
    out = tmp_path / "halve"
    assert main(["run", str(_write(tmp_path, halve, "halve.yaml")), "--out", str(out), *PLUGIN]) == 0
    records = _records(out)
    adjusted = records["cls/oom/seed0"]["adjustments"]
    assert len(adjusted) == 2 and "micro-batch halved to 2, 4 micro-batches per step" in adjusted[-1]
    assert records["cls/plain/seed0"]["adjustments"] == []
    # the same samples make each optimiser step: the model without memory trouble sees the same losses
    a, b = (_val_lines(out, f"cls/{m}/seed0") for m in ("oom", "plain"))
    assert [v["metrics"]["top1"] for v in a] == [v["metrics"]["top1"] for v in b]
    assert records["cls/oom/seed0"]["timings"]["final_loss"] == pytest.approx(
        records["cls/plain/seed0"]["timings"]["final_loss"], rel=1e-5
    )
    md = (out / "report.md").read_text()
    assert "**Runner adjustments**" in md and "micro-batch halved to 4" in md.split("## Fairness")[1]


def test_out_of_memory_while_building_fails_that_run(tmp_path: Path, monkeypatch, capsys) -> None:
    from harness.tasks.classification import ClassificationTask

    def build_head(self, model, data):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(ClassificationTask, "build_head", build_head)
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, _cls_suite({"vit": TINY_SUITE["models"]["vit"]}))), "--out", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("xmbench:")]
    assert err[0].startswith("xmbench: failed: cls/vit/seed0: out of memory (RuntimeError:")
    assert "lower train.batch_size" in err[0] and "Traceback" not in "\n".join(err)


# ------------------------------------------------------------------------------------------- selecting the work
def test_tasks_models_seeds_select_a_subset_and_dry_run_shows_the_plan(tmp_path: Path, capsys) -> None:
    suite = copy.deepcopy(TINY_SUITE)
    suite["tasks"] = {k: v for k, v in suite["tasks"].items() if k in ("vqa", "cls")}
    path = _write(tmp_path, suite)
    out = tmp_path / "out"
    argv = ["run", str(path), "--out", str(out)]
    assert main([*argv, "--tasks", "cls", "--models", "vit", "--seeds", "1"]) == 0
    assert set(_records(out)) == {"cls/vit/seed1"}
    capsys.readouterr()

    assert main([*argv, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.replace("to run", "to-run").split() for line in lines[1:-1]}
    assert len(rows) == 10 and rows["cls/vit/seed1"][2] == "done"
    assert all(rows[r][2] == "to-run" for r in rows if r != "cls/vit/seed1")
    assert rows["cls/vit/seed0"][3].endswith("s")  # estimated from the finished run of the same model
    assert rows["vqa/bert/seed0"][3] == "—"  # nothing of its size has run yet
    fingerprint = json.loads(next((out / "runs").rglob("spec.json")).read_text())["fingerprint"]
    assert rows["cls/vit/seed1"][1] == fingerprint[:12]
    assert lines[-1].startswith("10 run(s): 1 done, 9 to run; about ") and "nothing was trained" in lines[-1]
    assert set(_records(out)) == {"cls/vit/seed1"}  # --dry-run trained nothing


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tasks", "clss"], "--tasks: unknown task 'clss'"),
        (["--seeds", "7"], "--seeds: unknown seed 7"),
        (["--tasks", "cls", "--models", "bert"], "matches no run of the suite"),
    ],
)
def test_bad_selection_is_one_line_and_exit_2(tmp_path: Path, capsys, flags, message) -> None:
    path = _write(tmp_path, TINY_SUITE)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("xmbench: error: ") and message in err[-1], err


def test_tensorboard_scalars(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    suite = _cls_suite({"vit": TINY_SUITE["models"]["vit"]}, steps=4, eval_every=2)
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, suite)), "--out", str(out), "--tensorboard"]) == 0
    events = EventAccumulator(str(out / "tensorboard" / "cls" / "vit" / "seed0")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/samples_per_s", "val/top1", "val/top5"} <= tags
    assert [e.step for e in events.Scalars("val/top1")] == [2, 4]
    logged = [json.loads(x) for x in next((out / "runs").rglob("log.jsonl")).read_text().splitlines()]
    losses = [r["loss"] for r in logged if "loss" in r]
    assert [round(e.value, 5) for e in events.Scalars("train/loss")] == [round(v, 5) for v in losses]
