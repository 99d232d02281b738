"""``xmbench leaderboard`` on real (tiny) results folders: a second suite trained with fewer steps is marked with
what differs, failed and stale runs stay off the board, bad input exits 2 with one line."""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.leaderboard.board import rank_groups
from tests.conftest import TINY_SUITE, run_suite_dict


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory, xm_cache: Path) -> Path:
    """The tiny suite's cls task, xbert only, trained 2 steps instead of 3: same data, same everything else."""
    suite = copy.deepcopy(TINY_SUITE)
    suite["name"] = "tiny-short"
    suite["baseline"] = None
    suite["train"]["steps"] = 2
    suite["tasks"] = {"cls": {**suite["tasks"]["cls"], "models": ["xbert"]}}
    suite["datasets"] = {"shapes-cls": suite["datasets"]["shapes-cls"]}
    return run_suite_dict(suite, tmp_path_factory.mktemp("short"), xm_cache)


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(path.read_text()), keep_default_na=True)


def _summary_rows(results: Path) -> dict[tuple[str, str, str], dict]:
    data = json.loads((results / "summary.json").read_text())
    return {(r["task"], r["model"], r["metric"]): r for r in data["rows"]}


def test_a_row_trained_with_other_settings_is_marked(tiny_run: Path, short_run: Path, tmp_path: Path, capsys) -> None:
    md, csv, html = (tmp_path / "site" / f"board.{s}" for s in ("md", "csv", "html"))
    args = ["leaderboard", str(tiny_run), str(short_run), "--out", str(md), "--out", str(csv), "--out", str(html)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"wrote {md}" in out and "1 row(s) with other settings than their board's (marked, not ranked)" in out

    df = _csv(csv)
    cls = df[(df.task == "cls") & (df.metric == "top1")]
    rows = cls.drop_duplicates(["source", "model"]).set_index(["source", "model"])
    assert set(rows.index) == {(str(tiny_run), "vit"), (str(tiny_run), "xbert"), (str(short_run), "xbert")}
    short = rows.loc[(str(short_run), "xbert")]
    assert not short.comparable and short.differences == "steps 2 vs 3" and pd.isna(short.rank_best)
    assert rows.loc[(str(tiny_run), "xbert")].comparable and rows.loc[(str(tiny_run), "vit")].comparable
    assert all(seeds == [0, 1] for seeds in cls.groupby(["source", "model"]).seed.apply(list))

    # The mean and CI of each row are those of the folder's own report; ranks follow the rank-group rule on them.
    summary = _summary_rows(tiny_run)
    ranked = rows[rows.comparable]
    for (_source, model), r in ranked.iterrows():
        s = summary[("cls", model, "top1")]
        assert r["mean"] == pytest.approx(s["mean"], abs=1e-6) and [r.ci_low, r.ci_high] == pytest.approx(s["ci95"])
    expected = rank_groups([(r.ci_low, r.ci_high) for _, r in ranked.iterrows()])
    assert [(r.rank_best, r.rank_worst) for _, r in ranked.iterrows()] == expected

    # bert's lr is a per-model override its suite allows: shown, not a difference.
    bert = df[(df.task == "vqa") & (df.model == "bert")].iloc[0]
    assert bert.comparable and pd.isna(bert.differences)

    text = md.read_text()
    assert "**differs: steps 2 vs 3**" in text and "as the board; tuned: lr 0.002" in text
    link = next(line for line in text.splitlines() if "| xbert |" in line and "steps 2 vs 3" in line)
    target = link.split("[seed 0](")[1].split(")")[0]
    assert (md.parent / target / "metrics.json").is_file()
    assert '<tr class="differs">' in html.read_text()


def test_failed_and_stale_runs_never_appear(tiny_run: Path, tmp_path: Path, capsys) -> None:
    results = tmp_path / "results"
    shutil.copytree(tiny_run, results)
    seed1 = next((results / "runs" / "cls" / "vit").glob("seed1-*"))
    (seed1 / "metrics.json").write_text("{broken")
    # A stale folder (not in the plan: another fingerprint) with a flattering number.
    seed0 = next((results / "runs" / "cls" / "xbert").glob("seed0-*"))
    stale = seed0.with_name("seed0-0000000000")
    shutil.copytree(seed0, stale)
    metrics = json.loads((stale / "metrics.json").read_text())
    metrics["metrics"]["top1"] = 99.75
    (stale / "metrics.json").write_text(json.dumps(metrics))

    csv = tmp_path / "board.csv"
    md = tmp_path / "board.md"
    assert main(["leaderboard", str(results), "--out", str(csv), "--out", str(md)]) == 0
    capsys.readouterr()
    df = _csv(csv)
    cls = df[df.task == "cls"]
    assert set(cls.model) == {"xbert"}  # vit has a failed seed: off the board
    assert 99.75 not in set(df.value) and "seed0-0000000000" not in csv.read_text()
    assert cls.value.tolist() == pytest.approx(_summary_rows(tiny_run)[("cls", "xbert", "top1")]["values"])
    text = md.read_text()
    assert "## Not on the board" in text
    line = next(x for x in text.splitlines() if x.startswith(f"| {results} | cls | vit |"))
    assert "seed 1 failed" in line


def test_the_same_folder_twice_is_shown_once(tiny_run: Path, tmp_path: Path, capsys) -> None:
    copy_ = tmp_path / "copy"
    shutil.copytree(tiny_run, copy_)
    csv = tmp_path / "board.csv"
    assert main(["leaderboard", str(tiny_run), str(copy_), "--out", str(csv)]) == 0
    capsys.readouterr()
    df = _csv(csv)
    assert set(df.source) == {str(tiny_run)}


def test_printing_without_out(tiny_run: Path, capsys) -> None:
    assert main(["leaderboard", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "top1 on shapes-cls (task cls)" in out and "board settings: dataset" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda tmp, run: ["leaderboard", str(tmp / "nope")],
            "nope: no such results folder; pass the --out folder of `xmbench run`",
        ),
        (lambda tmp, run: ["leaderboard", str(run), "--out", str(tmp / "b.txt")], "unknown format '.txt'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tiny_run: Path, tmp_path: Path, capsys, make, message) -> None:
    assert main(make(tmp_path, tiny_run)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "b.txt").exists()


def test_a_folder_with_nothing_finished_exits_2(tiny_run: Path, tmp_path: Path, capsys) -> None:
    results = tmp_path / "results"
    shutil.copytree(tiny_run, results)
    for metrics in (results / "runs").glob("*/*/*/metrics.json"):
        metrics.unlink()
    assert main(["leaderboard", str(results)]) == 2
    err = capsys.readouterr().err
    assert "no finished (task, model) to put on a board" in err and "run the suites to the end first" in err
