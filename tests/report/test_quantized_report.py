"""The report's quantised-evaluation rows, from constructed run records and evidence files: sizes, ratios, the
accuracy change with its matched-seed CI, latency medians, and how a failed INT8 pass is shown."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.report.quantized import HEADER, cells, quantized_rows
from harness.stats.evidence import classification_evidence

N = 200


def _write(folder: Path, name: str, correct: int) -> None:
    ids = np.arange(N)
    ev = classification_evidence(ids, ids, np.zeros(N, dtype=np.int64), np.where(ids < correct, 0, 1))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(ev.to_bytes())


def _record(tmp: Path, seed: int, fp32_right: int, int8_right: int, bs1: tuple[float, float]) -> SimpleNamespace:
    folder = f"runs/cls/vit/seed{seed}"
    _write(tmp / folder, "evidence.npz", fp32_right)
    _write(tmp / folder, "evidence_int8.npz", int8_right)
    quantized = {
        "engine": "x86",
        "disk_bytes": {"fp32": 4_000_000, "int8": 1_100_000},
        "memory_bytes": {"fp32": 3_900_000, "int8": 1_000_000},
        "disk_ratio": 0.275,
        "linear_fraction": 0.97,
        "metrics_fp32": {"top1": 100.0 * fp32_right / N},
        "metrics": {"top1": 100.0 * int8_right / N},
        "evidence": {"fp32": "evidence.npz", "int8": "evidence_int8.npz"},
        "latency_ms": {"bs1": {"fp32": bs1[0], "int8": bs1[1]}},
    }
    return SimpleNamespace(seed=seed, folder=folder, quantized=quantized)


def test_rows_by_hand(tmp_path):
    records = [
        _record(tmp_path, 0, 150, 148, (2.0, 1.0)),  # -1.0 point
        _record(tmp_path, 1, 160, 157, (3.0, 1.0)),  # -1.5 points
        _record(tmp_path, 2, 140, 138, (4.0, 1.0)),  # -1.0 point
    ]
    [row] = quantized_rows({("cls", "vit"): records}, {"cls": "top1"}, tmp_path, replicates=2_000)
    assert (row.task, row.model, row.metric, row.seeds) == ("cls", "vit", "top1", 3)
    assert row.disk_mb == pytest.approx((4.0, 1.1)) and row.disk_ratio == pytest.approx(0.275)
    assert row.smaller_pct == pytest.approx(72.5)
    assert row.memory_ratio == pytest.approx(1.0 / 3.9)
    assert row.fp32 == pytest.approx(75.0) and row.int8 == pytest.approx(73.833333, abs=1e-5)
    assert row.change == pytest.approx(-3.5 / 3)
    lo, hi = row.ci95
    assert lo <= row.change <= hi and hi < 0  # every seed lost accuracy: the matched-seed CI excludes 0
    assert "drawn together" in row.ci_method
    assert row.latency_ms["bs1"] == (3.0, 1.0) and row.speedup["bs1"] == pytest.approx(3.0)
    text = cells(row)
    assert len(text) == len(HEADER)
    assert text[3] == "4 → 1.1" and text[4] == "72.5%" and text[6] == "97%"
    assert text[10].startswith("-1.17 [") and text[11] == "3 → 1 (×3.00)"
    assert row.to_json()["smaller_pct"] == 72.5


def test_failed_int8_pass_is_shown(tmp_path):
    failed = SimpleNamespace(seed=0, folder="runs/x", quantized={"error": "RuntimeError: no engine"})
    [row] = quantized_rows({("cls", "vit"): [failed]}, {"cls": "top1"}, tmp_path, replicates=100)
    assert row.seeds == 0 and row.errors == ("seed 0: RuntimeError: no engine",)
    assert cells(row)[3] == "seed 0: RuntimeError: no engine"


def test_missing_evidence_gives_no_ci(tmp_path):
    r = _record(tmp_path, 0, 150, 148, (1.0, 1.0))
    (tmp_path / r.folder / "evidence_int8.npz").unlink()
    [row] = quantized_rows({("cls", "vit"): [r]}, {"cls": "top1"}, tmp_path, replicates=100)
    assert row.change == pytest.approx(-1.0) and row.ci95 is None
    assert row.ci_method.startswith("no CI")
