"""The command line: help, exit codes, one-line errors, --debug tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _xmbench(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_help_lists_commands() -> None:
    res = _xmbench("--help")
    assert res.returncode == 0
    for command in ("run", "validate", "report", "data", "list"):
        assert command in res.stdout


def test_help_does_not_import_torch() -> None:
    code = "import sys; from harness.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.stdout.strip() == "False"


def test_missing_suite_is_one_line_exit_2(tmp_path: Path) -> None:
    res = _xmbench("validate", str(tmp_path / "missing.yaml"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines == [
        f"xmbench: error: {tmp_path / 'missing.yaml'}: suite file not found; check the path "
        "(suites live in suites/*.yaml)"
    ]
    assert "Traceback" not in res.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseeds: [0\n")
    res = _xmbench("--debug", "validate", str(bad))
    assert res.returncode == 2
    assert "Traceback" in res.stderr
    assert "YAML syntax error at line 3" in res.stderr.strip().splitlines()[-1]


def test_validate_smoke_suite() -> None:
    res = _xmbench("validate", "suites/smoke.yaml")
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout and "10 run(s)" in res.stdout


def test_unknown_model_in_process(tmp_path: Path, tiny_suite, capsys: pytest.CaptureFixture) -> None:
    path = tiny_suite(tasks__vqa__models=["vit", "xbret"])
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xmbench: error: {path}: tasks.vqa.models[1]: unknown model 'xbret'. Did you mean: 'xbert'")
    assert len(err.splitlines()) == 1


def test_data_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--images", "20", "--size", "32"]) == 0
    assert (out / "annotations" / "instances_train2014.json").is_file()
    assert (out / "v2_mscoco_val2014_annotations.json").is_file()
    assert main(["data", "synth", "--out", str(out / "bad"), "--images", "3"]) == 2
    assert "images" in capsys.readouterr().err


def test_python_dash_m_xmbench() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "xmbench", "list", "tasks"], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "vqa" in res.stdout and "main metric: vqa_accuracy" in res.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["run"],
            "xmbench: error: xmbench run: the following arguments are required: suite (see `xmbench run --help`)",
        ),
        (["list", "modles"], "xmbench: error: xmbench list: argument what: invalid choice: 'modles'"),
        (["validate", "s.yaml", "--bogus"], "xmbench: error: xmbench: unrecognized arguments: --bogus"),
    ],
)
def test_command_line_mistakes_are_one_line(argv: list[str], expected: str) -> None:
    res = _xmbench(*argv)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith(expected), res.stderr


def test_data_synth_refuses_a_non_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "synth"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["data", "synth", "--out", str(out), "--images", "20", "--size", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"xmbench: error: {out}: the folder is not empty; choose an empty or new --out, or add --force to write into "
        "it (files with the same names are replaced)"
    )
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert main(["data", "synth", "--out", str(out), "--images", "20", "--size", "32", "--force"]) == 0
    assert (out / "mine.txt").read_text() == "keep me" and (out / "v2_mscoco_val2014_annotations.json").is_file()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (28, "No space left on device; the disk is full; free some space or choose another location (--out)"),
        (30, "Read-only file system; the file system is read-only; choose a writable location (--out)"),
        (13, "Permission denied; check the permissions, or choose another location (--out)"),
    ],
    ids=["full", "read-only", "permission"],
)
def test_an_output_folder_that_cannot_be_written(tiny_suite, tmp_path: Path, monkeypatch, capsys, code, message):
    """Nothing already written is lost: the finished runs are byte-identical afterwards."""
    import hashlib
    import os
    import tempfile

    tasks = {"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit"]}}
    out = tmp_path / "out"
    assert main(["run", str(tiny_suite(seeds=[0], tasks=tasks)), "--out", str(out)]) == 0
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}

    def refuse(*args, dir=None, **kwargs):
        raise OSError(code, os.strerror(code), str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    capsys.readouterr()
    assert main(["run", str(tiny_suite(seeds=[0, 1], tasks=tasks)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("xmbench: error: ") and message in err, err
    assert "Traceback" not in err and str(out) in err
    for path, digest in before.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
