"""Leaderboard renderers: Markdown, CSV (long format, one row per seed), the terminal; HTML is in ``html.py``.

Every renderer draws the same columns from :func:`cells`; links are relative to the file written, so that a board
committed beside its results folders keeps working.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from harness.leaderboard.board import Board, Leaderboard, Row
from harness.report import format as f

HEADER = ["rank", "model", "from", "mean [95% CI]", "seeds", "params (M)", "GFLOPs/sample", "train samples/s",
          "settings"]  # fmt: skip
NOT_RANKED = "not ranked"
RANK_RULE = (
    "Rank groups: a row's best rank is 1 + the rows whose 95% CI lies entirely above its own; its worst rank is the "
    "number of ranked rows minus those entirely below. Rows whose CIs overlap share ranks. Only rows with the board's "
    "settings are ranked; a row with other settings is marked with what differs."
)
CSV_COLUMNS = [
    "dataset", "task", "task_type", "metric", "higher_is_better", "model", "kind", "model_type", "suite", "source",
    "seed", "value", "mean", "ci_low", "ci_high", "ci_method", "n_seeds", "rank", "rank_best", "rank_worst",
    "comparable", "differences", "precision", "params", "gflops_per_sample", "train_samples_per_s", "fingerprint",
    "dataset_fingerprint", "run_folder", "report",
]  # fmt: skip


def link(target: Path, base: Path | None) -> str:
    """``target`` relative to the folder ``base`` (as a URL path); the path itself without a base."""
    if base is None:
        return str(target)
    try:
        rel = os.path.relpath(Path(target).resolve(), Path(base).resolve())
    except ValueError:  # another drive (Windows)
        rel = str(Path(target).resolve())
    return Path(rel).as_posix()


def settings_text(row: Row) -> str:
    """``as the board``, or ``differs: epochs 1 vs 6``; then any per-model tuning its suite allows (``tuned: lr
    0.002``)."""
    text = "as the board" if row.comparable else "differs: " + "; ".join(row.differences)
    if row.tuned:
        text += "; tuned: " + ", ".join(f"{k} {row.settings[k]}" for k in sorted(row.tuned) if k in row.settings)
    return text


def cells(row: Row) -> list[str]:
    """The text of one row, in :data:`HEADER` order."""
    return [
        row.rank_text() or NOT_RANKED,
        row.model,
        row.source,
        f.mean_ci(row.cell.mean, row.ci),
        str(row.cell.n_seeds),
        f.num(row.params / 1e6, 2) if row.params else f.MISSING,
        f.sig(row.gflops, 3),
        f.num(row.samples_per_s, 0),
        settings_text(row),
    ]


HEADLINE = ("dataset", "split", "metric convention", "precision", "epochs", "steps", "batch_size", "lr",
            "weight_decay", "schedule", "image.size")  # fmt: skip


def board_settings(board: Board, full: bool = False) -> str:
    """``dataset 3f1c…, split train/test, precision fp32, epochs 6, ...``: the board's majority settings (the
    headline keys, or every key with ``full``)."""
    keys = [k for k in board.majority if full or k in HEADLINE]
    shown = ", ".join(f"{k} {board.majority[k]}" for k in keys)
    rest = len(board.majority) - len(keys)
    return shown + (f" (and {rest} more keys)" if rest else "")


def direction(board: Board) -> str:
    return "higher is better" if board.higher_is_better else "lower is better"


# -- Markdown --------------------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(lb: Leaderboard, base: Path | None = None) -> str:
    lines = [f"# {_md(lb.title)}", ""]
    lines.append(
        f"{len(lb.sources)} results folder(s), {len(lb.boards)} board(s); generated {f.generated_at(lb.generated)}. "
        "Mean over seeds [95% CI], in percent."
    )
    lines += ["", RANK_RULE, ""]
    for board in lb.boards:
        lines += [f"## {_md(board.key.title())}", ""]
        lines.append(f"{board.task_type}, {direction(board)}. Board settings: {_md(board_settings(board))}.")
        lines += ["", f"<details><summary>all {len(board.majority)} settings</summary>", ""]
        lines += [f"{_md(board_settings(board, full=True))}", "", "</details>", ""]
        lines.append("| " + " | ".join([*HEADER, "links"]) + " |")
        lines.append("|" + "|".join(["---:" if h not in ("model", "from", "settings") else ":---" for h in HEADER])
                     + "|:---|")  # fmt: skip
        for row in board.rows:
            text = [_md(c) for c in cells(row)]
            if not row.comparable:
                text[-1] = f"**{text[-1]}**"
            links = []
            if row.report is not None:
                links.append(f"[report]({link(row.report, base)})")
            links += [f"[seed {s}]({link(row.folder / p, base)})" for s, p in zip(row.seeds, row.run_folders)]
            lines.append("| " + " | ".join([*text, " ".join(links)]) + " |")
        lines.append("")
    if lb.excluded:
        lines += ["## Not on the board", "", "| from | task | model | why |", "|:---|:---|:---|:---|"]
        lines += [f"| {_md(e.source)} | {_md(e.task)} | {_md(e.model)} | {_md(e.reason)} |" for e in lb.excluded]
        lines.append("")
    if lb.notes:
        lines += ["## Notes", ""] + [f"- {_md(n)}" for n in lb.notes] + [""]
    return "\n".join(lines)


# -- CSV -------------------------------------------------------------------------------------------------------------


def frame(lb: Leaderboard, base: Path | None = None) -> pd.DataFrame:
    """Long format: one row per (board, row, seed), with the row's summary repeated (``values`` in percent)."""
    records: list[dict[str, Any]] = []
    for board in lb.boards:
        for row in board.rows:
            for seed, value, fp, folder in zip(row.seeds, row.cell.values, row.fingerprints, row.run_folders):
                records.append(
                    {
                        "dataset": board.key.dataset,
                        "task": row.task,
                        "task_type": row.task_type,
                        "metric": row.metric,
                        "higher_is_better": row.higher_is_better,
                        "model": row.model,
                        "kind": row.kind,
                        "model_type": row.model_type,
                        "suite": row.suite,
                        "source": row.source,
                        "seed": seed,
                        "value": value,
                        "mean": row.cell.mean,
                        "ci_low": row.ci[0] if row.ci else None,
                        "ci_high": row.ci[1] if row.ci else None,
                        "ci_method": row.cell.ci_method,
                        "n_seeds": row.cell.n_seeds,
                        "rank": row.rank_text() or None,
                        "rank_best": row.rank[0] if row.rank else None,
                        "rank_worst": row.rank[1] if row.rank else None,
                        "comparable": row.comparable,
                        "differences": "; ".join(row.differences),
                        "precision": row.precision,
                        "params": row.params,
                        "gflops_per_sample": row.gflops,
                        "train_samples_per_s": row.samples_per_s,
                        "fingerprint": fp,
                        "dataset_fingerprint": row.settings.get("dataset"),
                        "run_folder": link(row.folder / folder, base),
                        "report": link(row.report, base) if row.report else None,
                    }
                )
    df = pd.DataFrame.from_records(records, columns=CSV_COLUMNS)
    return df.astype({"rank_best": "Int64", "rank_worst": "Int64", "params": "Int64"})


def render_csv(lb: Leaderboard, base: Path | None = None) -> str:
    return frame(lb, base).to_csv(index=False)


# -- terminal --------------------------------------------------------------------------------------------------------


def print_leaderboard(lb: Leaderboard, console: Any) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    for board in lb.boards:
        table = Table(
            title=f"{board.key.title()}: {direction(board)}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
        )
        for h in HEADER:
            table.add_column(h, justify="left" if h in ("model", "from", "settings") else "right")
        for row in board.rows:
            text = cells(row)
            style = "" if row.comparable else "yellow"
            table.add_row(*text[:-1], Text(text[-1], style=style))
        console.print(table)
        console.print(f"board settings: {board_settings(board)}", highlight=False)
        console.print()
    for e in lb.excluded:
        console.print(Text(f"not on the board: {e.source} {e.task}/{e.model}: {e.reason}", style="red"))
    for note in lb.notes:
        console.print(f"note: {note}", highlight=False)
