"""``xmbench check``, ``baseline update`` and ``compare`` on a real (tiny) results folder: exit codes 0, 1 and 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main


@pytest.fixture
def results(tiny_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(tiny_run, out)
    return out


@pytest.fixture
def baseline(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    path = tmp_path / "baseline.json"
    assert main(["baseline", "update", str(results), "--out", str(path)]) == 0
    assert f"wrote {path}: suite 'tiny'" in capsys.readouterr().out
    return path


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _check(capsys, results: Path, baseline: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["check", str(results), "--baseline", str(baseline), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_baseline_file_holds_seeds_suite_and_tolerances(results: Path, baseline: Path) -> None:
    data = json.loads(baseline.read_text())
    summary = json.loads((results / "summary.json").read_text())
    assert (data["suite"], data["suite_fingerprint"]) == ("tiny", summary["suite_fingerprint"])
    entry = data["metrics"]["vqa/xbert/vqa_accuracy"]
    row = next(r for r in summary["rows"] if (r["task"], r["model"], r["metric"]) == ("vqa", "xbert", "vqa_accuracy"))
    assert [entry["values"][k] for k in ("0", "1")] == pytest.approx(row["values"], abs=1e-4)
    assert entry["gate"] is True and entry["tolerance"] == "noise" and entry["sampling_se"] > 0
    assert data["metrics"]["vqa/xbert/vqa_yesno"]["gate"] is False  # sub-metrics: reported, not gated
    assert baseline.read_text().count("\n") > 50  # one value per line: diff-friendly


def test_unchanged_results_pass(results: Path, baseline: Path, capsys) -> None:
    code, out, _ = _check(capsys, results, baseline)
    assert code == 0 and "PASS: no gated metric regressed" in out
    code, out, _ = _check(capsys, results, baseline, "--json")
    data = json.loads(out)
    assert (code, data["verdict"], data["regressed"], data["problems"]) == (0, "pass", [], [])
    assert {r["key"] for r in data["rows"] if r["gate"]} == {
        "vqa/vit/vqa_accuracy",
        "vqa/bert/vqa_accuracy",
        "vqa/xbert/vqa_accuracy",
        "cls/vit/top1",
        "cls/xbert/top1",
        "ret/xbert/r_mean",
    }
    assert data["per_metric_level"] == pytest.approx(0.01 / 6)


def test_a_degraded_model_fails(results: Path, baseline: Path, capsys) -> None:
    # The baseline says xbert was 30 points better than the results show: exactly what a broken model looks like.
    def better(d):
        for k, v in d["metrics"]["vqa/xbert/vqa_accuracy"]["values"].items():
            d["metrics"]["vqa/xbert/vqa_accuracy"]["values"][k] = v + 30

    _edit(baseline, better)
    code, out, _ = _check(capsys, results, baseline)
    assert code == 1
    assert "REGRESSED: vqa/xbert/vqa_accuracy" in out
    line = next(x for x in out.splitlines() if x.startswith("vqa/xbert/vqa_accuracy"))
    assert "-30.00" in line and "regressed" in line and "noise: -" in line
    data = json.loads(_check(capsys, results, baseline, "--json")[1])
    assert data["verdict"] == "regressed" and data["regressed"] == ["vqa/xbert/vqa_accuracy"]


def test_tolerances_are_kept_on_update(results: Path, baseline: Path, capsys) -> None:
    def settle(d):
        d["metrics"]["cls/vit/top1"]["tolerance"] = {"abs": 0.5}
        d["metrics"]["vqa/bert/vqa_yesno"]["gate"] = True
        d["false_alarm"] = 0.05

    _edit(baseline, settle)
    assert main(["baseline", "update", str(results), "--out", str(baseline)]) == 0
    assert "(tolerances and gate flags kept)" in capsys.readouterr().out
    data = json.loads(baseline.read_text())
    assert data["metrics"]["cls/vit/top1"]["tolerance"] == {"abs": 0.5}
    assert data["metrics"]["vqa/bert/vqa_yesno"]["gate"] is True and data["false_alarm"] == 0.05


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["metrics"].pop("cls/xbert/top5"), "has no cls/xbert/top5 (the results have it): update the "),
        (
            lambda d: d["metrics"].__setitem__("cls/xbert/f1", d["metrics"]["cls/xbert/top1"]),
            "the results lack cls/xbert/f1",
        ),
        (lambda d: d.__setitem__("suite", "other"), "made for another suite (suite 'tiny', baseline for 'other'"),
        (lambda d: d.__setitem__("suite_fingerprint", "0" * 64), "made for another suite"),
    ],
)
def test_a_check_that_cannot_be_made_exits_2(results, baseline, capsys, change, message) -> None:
    _edit(baseline, change)
    code, _, err = _check(capsys, results, baseline)
    assert code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    if "update the" in message:
        assert f"xmbench baseline update {results} --out {baseline}" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable baseline"),
        ('{"format": "xmbench-baseline", "version": 1}', "suite: None must be a non-empty string"),
        ("[1, 2]", "(top level): [1, 2] is not an object"),
        ('{"format": "something-else"}', "format: 'something-else' is not 'xmbench-baseline'"),
    ],
)
def test_a_malformed_baseline_exits_2(results, tmp_path, capsys, content, message) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, out, err = _check(capsys, results, bad)
    assert code == 2 and message in err and str(bad) in err and err.count("\n") == 1
    code, out, err = _check(capsys, results, bad, "--json")
    assert code == 2 and json.loads(out)["verdict"] == "error"


def test_a_bad_tolerance_names_its_key(results, baseline, capsys) -> None:
    _edit(baseline, lambda d: d["metrics"]["cls/vit/top1"].__setitem__("tolerance", {"abs": -1}))
    code, _, err = _check(capsys, results, baseline)
    assert code == 2 and "metrics.cls/vit/top1.tolerance: {'abs': -1} is not a tolerance" in err


def test_a_missing_baseline_exits_2(results, tmp_path, capsys) -> None:
    code, _, err = _check(capsys, results, tmp_path / "nope.json")
    assert code == 2 and "baseline file not found; create it with `xmbench baseline update" in err


def test_a_failed_run_exits_2(results, baseline, capsys) -> None:
    metrics = next((results / "runs" / "vqa" / "xbert").glob("seed0-*")) / "metrics.json"
    metrics.write_text("{broken")
    code, _out, err = _check(capsys, results, baseline)
    assert code == 2 and "vqa/xbert/seed0 failed" in err


def test_a_folder_that_is_not_results_exits_2(tmp_path, baseline, capsys) -> None:
    code, _, err = _check(capsys, tmp_path, baseline)
    assert code == 2 and "summary.json: missing" in err


def test_compare_a_folder_with_itself(results, capsys) -> None:
    assert main(["compare", str(results), str(results), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["key"]: r for r in data["differences"]}
    assert rows["vqa/xbert/vqa_accuracy"]["delta"] == 0.0
    assert rows["vqa/xbert/vqa_accuracy"]["ci95"] == [0.0, 0.0]
    assert rows["vqa/xbert/vqa_accuracy"]["n_clusters"] > 0
    assert data["check"]["verdict"] == "pass"
