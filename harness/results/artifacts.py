"""What a finished run left beside its record, read for reports: per-example evidence and the training log.

Both are optional to a reader: a run made before evidence existed, or whose file is damaged, simply has none (the
report then falls back to what the records hold and says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.results.record import RunRecord
from harness.results.store import LOG
from harness.stats.evidence import EVIDENCE, Evidence


def load_evidence(out_dir: Path, record: RunRecord) -> Evidence | None:
    """The run's ``evidence.npz``, or None when it has none or it cannot be read."""
    return load_evidence_file(out_dir / record.folder / EVIDENCE)


def load_evidence_file(path: Path) -> Evidence | None:
    """An evidence file (``evidence.npz``, ``evidence_int8.npz``, ...), or None when it is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return Evidence.load(path)
    except ValueError:
        return None


@dataclass(frozen=True)
class Curve:
    """The training log of one run: optimiser steps, training loss and learning rate, and the val split's
    selection metric at each val evaluation (``best_step``: the state the test split was scored with)."""

    task: str
    model: str
    seed: int
    steps: tuple[int, ...]
    loss: tuple[float, ...]
    lr: tuple[float, ...]
    val_metric: str | None = None
    val_steps: tuple[int, ...] = ()
    val_values: tuple[float, ...] = ()
    best_step: int | None = None


def load_curve(out_dir: Path, record: RunRecord) -> Curve | None:
    """The run's learning curve from ``log.jsonl`` (lines that cannot be read are skipped)."""
    from harness.jsonio import loads

    path = out_dir / record.folder / LOG
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    steps, loss, lr, val_steps, val_values = [], [], [], [], []
    val_metric = (record.selection or {}).get("metric")
    for line in lines:
        try:
            row = loads(line)
            step = int(row["step"])
            if row.get("split") == "val":
                val_metric = val_metric or row.get("select")
                val_values.append(float(row["metrics"][val_metric]))
                val_steps.append(step)
                continue
            value = float(row["loss"])
        except (ValueError, KeyError, TypeError):
            continue
        steps.append(step)
        loss.append(value)
        lr.append(float(row.get("lr") or 0.0))
    if not steps:
        return None
    return Curve(
        record.task,
        record.model,
        record.seed,
        tuple(steps),
        tuple(loss),
        tuple(lr),
        val_metric if val_steps else None,
        tuple(val_steps),
        tuple(val_values),
        (record.selection or {}).get("step"),
    )
