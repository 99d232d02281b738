"""The leaderboard renderers on constructed rows: Markdown rows and marks, relative links, the long-format CSV."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import UserError
from harness.leaderboard import check_outputs, write_leaderboard
from harness.leaderboard.html import render_html
from harness.leaderboard.render import CSV_COLUMNS, render_csv, render_markdown
from tests.leaderboard import sample


def _table_rows(md: str, first_header: str = "| rank |") -> list[list[str]]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_markdown_rows_ranks_and_marks() -> None:
    md = render_markdown(sample.leaderboard(), Path("."))
    rows = _table_rows(md)
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        ("1–3", "resnet", "81.00 [79.50, 82.50]", "3"),
        ("1–3", "vit", "80.00 [78.00, 82.00]", "3"),
        ("1–4", "clip", "60.00", "1"),
        ("3–4", "bert", "40.00 [38.00, 42.00]", "3"),
        ("not ranked", "xbert-1ep", "90.00 [89.00, 91.00]", "3"),
    ]
    assert [r[8] for r in rows] == ["as the board"] * 4 + ["**differs: epochs 1 vs 6**"]
    assert rows[0][5:8] == ["25.56", "4.1", "812"]  # params (M), GFLOPs/sample, samples/s
    assert "## Not on the board" in md and "| runs/a | classify | dual | seed 1 failed: loss is nan at step 3 |" in md
    assert "Board settings: dataset 3f1c0a9b8d7e, split train/test" in md and "epochs 6" in md
    assert "- a note" in md


def test_links_are_relative_to_the_written_file(tmp_path: Path) -> None:
    lb = sample.leaderboard()
    for b in lb.boards:
        for r in b.rows:
            r.folder = tmp_path / r.source
            r.report = r.folder / "report.html"
    md = render_markdown(lb, tmp_path / "site")
    resnet = next(r for r in _table_rows(md) if r[1] == "resnet")
    assert "[report](../runs/a/report.html)" in resnet[9]
    assert "[seed 2](../runs/a/runs/classify/resnet/seed2-0123456789)" in resnet[9]
    assert 'href="../runs/b/report.html"' in render_html(lb, tmp_path / "site")


def test_csv_is_long_format_one_row_per_seed() -> None:
    df = pd.read_csv(io.StringIO(render_csv(sample.leaderboard(), Path("."))))
    assert list(df.columns) == CSV_COLUMNS
    assert len(df) == 3 + 3 + 3 + 3 + 1  # seeds of resnet, vit, bert, xbert-1ep, clip
    vit = df[df.model == "vit"]
    assert vit.seed.tolist() == [0, 1, 2] and set(vit["mean"]) == {80.0} and set(vit.ci_low) == {78.0}
    assert set(vit["rank"]) == {"1–3"} and set(vit.rank_best) == {1} and set(vit.rank_worst) == {3}
    marked = df[df.model == "xbert-1ep"]
    assert not marked.comparable.any() and set(marked.differences) == {"epochs 1 vs 6"}
    assert marked.rank_best.isna().all() and marked["rank"].isna().all()
    clip = df[df.model == "clip"]
    assert clip.ci_low.isna().all() and clip.n_seeds.tolist() == [1]
    # What a pandas user does with it: the mean over seeds per model reproduces the board's column.
    means = df.groupby("model")["value"].mean().to_dict()
    assert means == {"bert": 40.0, "clip": 60.0, "resnet": 81.0, "vit": 80.0, "xbert-1ep": 90.0}
    assert df.run_folder.iloc[0] == "runs/a/runs/classify/resnet/seed0-0123456789"


def test_html_marks_the_row_with_other_settings() -> None:
    page = render_html(sample.leaderboard())
    assert page.count('<tr class="differs">') == 1
    assert "differs: epochs 1 vs 6" in page
    assert "<script src" not in page and "<link" not in page and "http" not in page.split("<script>")[0]


def test_write_picks_the_format_from_the_suffix(tmp_path: Path) -> None:
    lb = sample.leaderboard()
    for name in ("board.md", "board.html", "board.csv"):
        write_leaderboard(lb, tmp_path / "out" / name)
    assert (tmp_path / "out" / "board.md").read_text().startswith("# xmbench leaderboard")
    assert (tmp_path / "out" / "board.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "out" / "board.csv").read_text().startswith("dataset,task,")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["board.csv", "board.html", "board.md"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(UserError, match=r"--out board.txt: unknown format '.txt'; name the file .md, .html or .csv"):
        check_outputs([Path("board.md"), Path("board.txt")])
