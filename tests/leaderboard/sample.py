"""Constructed leaderboard rows for the renderer and browser tests (no training)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from harness.leaderboard.board import Board, BoardKey, Excluded, Leaderboard, Row, _board, comparability
from harness.report.model import Cell

SPEC = {
    "dataset_fingerprint": "3f1c0a9b8d7e6f5a4b3c2d1e0f",
    "splits": ["train", "test"],
    "task_type": "classification",
    "numerics_version": 2,
    "hardware": {"precision": "fp32", "device": "cpu"},
    "train": {"epochs": 6, "steps": None, "batch_size": 64, "lr": 0.001, "lr_mult": {"image": 1.0, "text": 1.0}},
    "image": {"size": 32, "resize": "squash"},
    "text": None,
    "task_spec": {"type": "classification", "dataset": "shapes-cls", "prompt": "what shape?", "train_split": None},
}


def spec(**train) -> dict:
    out = {**SPEC, "train": {**SPEC["train"], **train}}
    return out


def row(model: str, mean: float, ci: tuple[float, float] | None, source: str = "runs/a", settings=None, **kw) -> Row:
    n = kw.pop("n", 3)
    values = tuple([mean] * n)
    cell = Cell(mean, ci, "t over seeds" if ci else "none: 1 seed, no per-example evidence", 0.0, n, values)
    folder = Path(source)
    return Row(
        source=source,
        folder=folder,
        suite="s",
        task="classify",
        task_type="classification",
        model=model,
        kind="image",
        model_type="timm",
        metric="top1",
        higher_is_better=kw.pop("higher_is_better", True),
        cell=cell,
        seeds=tuple(range(n)),
        settings=settings if settings is not None else comparability(SPEC),
        tuned=kw.pop("tuned", frozenset()),
        run_folders=tuple(f"runs/classify/{model}/seed{s}-0123456789" for s in range(n)),
        fingerprints=tuple(f"{source}-{model}-{s}" for s in range(n)),
        report=folder / "report.html",
        params=25_557_032,
        gflops=4.1,
        samples_per_s=812.0,
        precision="fp32",
        **kw,
    )


def board(rows: list[Row]) -> Board:
    return _board(BoardKey("shapes-cls", "classify", "top1"), rows)


def leaderboard() -> Leaderboard:
    """Five rows: two that overlap at the top, one clearly last, one trained 1 epoch (marked), one without a CI."""
    rows = [
        row("vit", 80.0, (78.0, 82.0)),
        row("resnet", 81.0, (79.5, 82.5)),
        row("bert", 40.0, (38.0, 42.0)),
        row("xbert-1ep", 90.0, (89.0, 91.0), source="runs/b", settings=comparability(spec(epochs=1))),
        row("clip", 60.0, None, n=1),
    ]
    excluded = [Excluded("runs/a", "classify", "dual", "seed 1 failed: loss is nan at step 3")]
    return Leaderboard(
        [board(rows)],
        excluded,
        ["runs/a", "runs/b"],
        datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        ["a note"],
    )
