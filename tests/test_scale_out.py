"""Scale-out: data-parallel runs under torchrun (gloo on CPU) and ``--shard I/N`` into one results folder.

Every test runs real ``xmbench run`` processes (``python -m harness``), as a user or a Slurm array would."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.shard import Shard, assign

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

TINY_VIT = {
    "type": "timm",
    "image_encoder": {
        "name": "vit_tiny_patch16_224",
        "pretrained": False,
        "args": {"patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0},
    },
}


def _suite(tmp_path: Path, name: str, **changes) -> Path:
    suite = {
        "name": name,
        "seeds": [0],
        "hardware": {"device": "cpu", "precision": "fp32", "workers": 0, "deterministic": True, "threads": 1},
        # checkpoint_every exercises the checkpoints under DDP (every rank's generators gathered, rank 0 writes)
        "train": {
            "steps": 6,
            "batch_size": 8,
            "global_batch": 16,
            "lr": 1.0e-3,
            "eval_every": 3,
            "checkpoint_every": 2,
        },
        "image": {"size": 32},
        # 155 images: a test split of 19 that does not divide by 2 ranks
        "synthetic": {"images": 155, "seed": 0, "size": 32},
        "datasets": {"shapes": {"kind": "imagefolder", "path": "@synthetic"}},
        "models": {"vit": TINY_VIT},
        "tasks": {"cls": {"type": "classification", "dataset": "shapes", "models": ["vit"]}},
    }
    suite.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _xmbench(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, env=_env(), capture_output=True, text=True, **kw
    )


def _record(out: Path, pattern: str = "runs/cls/vit/seed0-*/metrics.json") -> dict:
    (path,) = out.glob(pattern)
    return json.loads(path.read_text())


def _predictions(out: Path) -> list[dict]:
    (path,) = out.glob("runs/cls/vit/seed0-*/predictions.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


# ------------------------------------------------------------------------------------------------ torchrun (DDP)
def test_two_process_gloo_run_killed_and_resumed_matches_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    suite = _suite(tmp_path, "ddp")
    one = _xmbench("run", str(suite), "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    argv = [*TORCHRUN, "-m", "harness", "run", str(suite), "--out", str(tmp_path / "two")]
    # first killed in the middle of step 5 (SIGKILL, tests/train/runner_models.py), after the step-4 checkpoint ...
    kill = {**_env(), "XMBENCH_TEST_KILL_AT_STEP": "5"}
    killed = subprocess.run([*argv, "--plugin", "tests.train.runner_models"], cwd=ROOT, env=kill, capture_output=True)
    assert killed.returncode != 0
    assert not list((tmp_path / "two").glob("runs/cls/vit/seed0-*/metrics.json"))
    # ... then started again: it resumes from the checkpoint with every rank's generators
    two = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 data-parallel processes (gloo)" in two.stderr
    r1, r2 = _record(tmp_path / "one"), _record(tmp_path / "two")
    # the same global batch of 16: one process accumulates 2 micro-batches of 8, two processes take 8 each
    assert r1["notes"]["batch"] == {**r2["notes"]["batch"], "world_size": 1, "grad_accum": 2}
    assert r2["notes"]["batch"]["world_size"] == 2 and r2["notes"]["batch"]["effective_batch"] == 16
    assert r2["env"]["world_size"] == 2 and r1["env"]["world_size"] == 1
    assert r1["timings"]["train_samples"] == r2["timings"]["train_samples"] == 6 * 16
    assert r2["timings"]["resumed_from_step"] == 4 and r1["timings"]["resumed_from_step"] is None
    assert r1["fingerprint"] != r2["fingerprint"]  # the world size is part of a run's identity
    for name in ("top1", "top5"):
        assert r2["metrics"][name] == pytest.approx(r1["metrics"][name], abs=1e-9)
        assert r2["val_metrics"][name] == pytest.approx(r1["val_metrics"][name], abs=1e-9)
    assert r2["timings"]["final_loss"] == pytest.approx(r1["timings"]["final_loss"], rel=1e-5)
    # the training curves agree step by step (float summation order aside)
    logs = [
        [json.loads(x) for x in next(out.glob("runs/cls/vit/seed0-*/log.jsonl")).read_text().splitlines()]
        for out in (tmp_path / "one", tmp_path / "two")
    ]
    losses = [[row["loss"] for row in log if "loss" in row] for log in logs]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    # the sharded evaluation scored each of the 19 test images exactly once, in order, with the same predictions
    p1, p2 = _predictions(tmp_path / "one"), _predictions(tmp_path / "two")
    assert len(p2) == r2["data"]["eval_examples"] == 19
    assert [p["id"] for p in p2] == [p["id"] for p in p1]
    assert [p["top5"] for p in p2] == [p["top5"] for p in p1]
    assert "World size: 2" in (tmp_path / "two" / "report.md").read_text()


def test_global_batch_that_does_not_divide_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from harness.cli import main

    suite = _suite(tmp_path, "bad-global", train={"steps": 2, "batch_size": 8, "global_batch": 20})
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "train.global_batch: 20 is not a multiple of train.batch_size x world size = 8 x 1 = 8" in line


# ------------------------------------------------------------------------------------------------------- shards
SHARD_SUITE = {
    "seeds": [0, 1, 2],
    "train": {"steps": 8, "batch_size": 16, "lr": 1.0e-3},
    "models": {
        "vit": TINY_VIT,
        "vit_wide": {
            **TINY_VIT,
            "image_encoder": {
                **TINY_VIT["image_encoder"],
                "args": {"patch_size": 8, "embed_dim": 64, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0},
            },
        },
    },
    "tasks": {"cls": {"type": "classification", "dataset": "shapes", "models": ["vit", "vit_wide"]}},
}


def _metrics(out: Path) -> list[tuple]:
    with (out / "results.csv").open() as f:
        return sorted(
            (r["task"], r["model"], r["seed"], r["metric"], r["value"], r["fingerprint"]) for r in csv.DictReader(f)
        )


def test_three_concurrent_shards_cover_every_run_once_and_report_like_one_process(tmp_path: Path) -> None:
    from harness.cli import main

    suite = _suite(tmp_path, "sharded", **SHARD_SUITE)
    assert main(["run", str(suite), "--out", str(tmp_path / "single")]) == 0  # the single-process reference
    out = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "harness", "run", str(suite), "--out", str(out), "--shard", f"{i}/3"],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    logs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-1500:] for _, e in logs]
    counts = [int(e.split(f"shard {i}/3: ")[1].split(" of ")[0]) for i, (_, e) in enumerate(logs)]
    assert sum(counts) == 6 and all(c >= 1 for c in counts)
    # every run exactly once: one folder per run, trained by exactly one shard ("done <run>" lines)
    trained = [line.split("done ")[1].split(" in ")[0] for _, e in logs for line in e.splitlines() if " done " in line]
    assert sorted(trained) == sorted(f"cls/{m}/seed{s}" for m in ("vit", "vit_wide") for s in (0, 1, 2))
    assert len(list(out.glob("runs/cls/*/seed*-*/metrics.json"))) == 6
    report = _xmbench("report", str(suite), "--out", str(out))
    assert report.returncode == 0, report.stderr[-2000:]
    assert _metrics(out) == _metrics(tmp_path / "single")
    s1 = json.loads((tmp_path / "single" / "summary.json").read_text())
    s2 = json.loads((out / "summary.json").read_text())
    for key in ("winners", "comparisons", "runs", "claims", "missing", "failed"):
        assert s2[key] == s1[key], key
    strip = lambda rows: [{k: v for k, v in r.items() if k != "cost"} for r in rows]  # noqa: E731 (timings differ)
    assert strip(s2["rows"]) == strip(s1["rows"])


def test_a_killed_shard_rerun_only_redoes_its_unfinished_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from harness.cli import main

    suite = _suite(tmp_path, "killed", **{**SHARD_SUITE, "train": {"steps": 30, "batch_size": 16, "lr": 1.0e-3}})
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness", "run", str(suite), "--out", str(out), "--shard", "0/2"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(out.glob("runs/cls/*/seed*-*/metrics.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the shard ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/cls/*/seed*-*/metrics.json")}
    again = _xmbench("run", str(suite), "--out", str(out), "--shard", "0/2")
    assert again.returncode == 0, again.stderr[-2000:]
    mine = int(again.stderr.split("shard 0/2: ")[1].split(" of ")[0])  # the shard's runs (balanced by cost)
    assert 1 <= len(finished) < mine
    assert f"reusing {len(finished)} finished run(s)" in again.stderr
    assert again.stderr.count("done cls/") == mine - len(finished), again.stderr[-3000:]
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/cls/*/seed*-*/metrics.json")}
    assert {k: after[k] for k in finished} == finished  # finished runs untouched
    assert len(after) == mine  # all of the shard's runs, and none of shard 1/2's
    capsys.readouterr()
    assert main(["run", str(suite), "--out", str(out), "--shard", "1/2", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert f"shard 1/2: {6 - mine} run(s)" in dry and f"{6 - mine} to run" in dry


# --------------------------------------------------------------------------------------------- the assignment
class _Spec:
    def __init__(self, fp: str, upstream: str | None = None) -> None:
        self.fingerprint = fp
        self.upstream = {"fingerprint": upstream} if upstream else None


def test_assignment_balances_cost_and_keeps_a_zero_shot_run_with_its_trainer() -> None:
    runs = [_Spec("a"), _Spec("b"), _Spec("c"), _Spec("d"), _Spec("z", upstream="d")]
    costs = {"a": 10.0, "b": 7.0, "c": 5.0, "d": 2.0, "z": 1.0}
    owner = assign(runs, costs, 2)
    assert owner["z"] == owner["d"]
    load = [sum(costs[f] for f in owner if owner[f] == i) for i in range(2)]
    assert sorted(load) == [12.0, 13.0]  # LPT: a | b, c | d+z -> 10 + 3 vs 7 + 5
    assert assign(list(reversed(runs)), costs, 2) == owner  # independent of the order runs are listed in


@pytest.mark.parametrize(
    ("text", "error"),
    [("3/3", "0 <= I < N"), ("1/0", "0 <= I < N"), ("a/b", "expected I/N"), ("2", "expected I/N")],
)
def test_bad_shard_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, text: str, error: str) -> None:
    from harness.cli import main

    with pytest.raises(ValueError, match=error):
        Shard.parse(text)
    with pytest.raises(SystemExit) as exit_:  # argparse's error, one line (harness/cli.py)
        main(["run", str(_suite(tmp_path, "s")), "--shard", text, "--dry-run"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert error in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ the recipes
DOC = ROOT / "docs" / "scale-out.md"


def _blocks(language: str) -> list[str]:
    import re

    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


FILL = {  # the recipes' variables, filled in with values of the right kind
    "${SLURM_ARRAY_TASK_ID}": "0",
    "${N}": "4",
    "$SUITE": "suites/smoke.yaml",
    "$OUT": "/tmp/out",
    "$HEAD": "localhost",
    "{SUITE}": "suites/smoke.yaml",
    "{DATA}": "/data",
    "{OUT}": "/tmp/out",
    "{index}": "0",
    "{SHARDS}": "4",
}


def _xmbench_argv(command: str) -> list[str]:
    """The xmbench arguments of one shell or Python command line, with its variables filled in."""
    import shlex

    for name, value in FILL.items():
        command = command.replace(name, value)
    assert "$" not in command and "{" not in command, command
    argv = shlex.split(command)
    if "-m" in argv and argv[argv.index("-m") + 1] == "xmbench":  # torchrun ... -m xmbench ...
        return argv[argv.index("-m") + 2 :]
    return argv[argv.index("xmbench") + 1 :]


def _check_command(command: str) -> str:
    from harness.cli import build_parser

    argv = _xmbench_argv(command)
    args = build_parser().parse_args(argv)  # an unknown subcommand or flag exits (SystemExit) here
    assert callable(args.func)
    return argv[0]


def test_the_sbatch_script_parses_and_names_commands_that_exist(tmp_path: Path) -> None:
    (script,) = [b for b in _blocks("bash") if "#SBATCH" in b]
    assert "#SBATCH --array=0-3" in script and "--shard" in script
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    lines = [line for line in script.splitlines() if line.startswith("xmbench ")]
    assert [_check_command(line) for line in lines] == ["run"]
    other = [line for b in _blocks("bash") for line in b.splitlines() if "xmbench" in line and "#SBATCH" not in b]
    used = {_check_command(line.split("--wrap ")[-1].strip('"') if "--wrap" in line else line) for line in other}
    assert used == {"run", "report"}  # the torchrun recipes and the merged report


def test_the_submitit_example_parses_and_names_commands_that_exist() -> None:
    import ast

    (code,) = _blocks("python")
    tree = ast.parse(code)
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert {"AutoExecutor", "Checkpointable", "map_array", "update_parameters"} <= names
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    commands = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in parts
    ]
    commands += [
        "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}" for v in n.values)
        for n in ast.walk(tree)
        if isinstance(n, ast.JoinedStr)
    ]
    xm = [c for c in commands if c.startswith("xmbench ")]
    assert sorted(_check_command(c) for c in xm) == ["report", "run"]
    assert any("--shard {index}/{SHARDS}" in c for c in xm)
