"""A suite with one claim of each kind (points, relative, absolute, ordering) through the real report builder, from
run folders with constructed per-example evidence: the verdicts in report.md's claims table and in summary.json's
``claims`` (``kind``, ``part_of``, ``label``); an ordering is one row followed by one row per adjacent pair."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from harness.report.markdown import render_markdown
from harness.report.model import build_report
from harness.results.collect import PlanResults
from harness.results.record import RunRecord
from harness.stats.evidence import EVIDENCE, classification_evidence
from harness.suite.schema import Suite

N = 1000  # test images, each its own cluster
# correct test images per seed: top-1 is 100 * count / N
COUNTS = {"vit": [495, 500, 505], "res": [545, 550, 555], "xbert": [595, 600, 605]}  # means 50, 55, 60
KINDS = {"vit": "image", "res": "image", "xbert": "cross_modal"}

SUITE = Suite.model_validate(
    yaml.safe_load("""
name: kinds
seeds: [0, 1, 2]
baseline: vit
train: {steps: 10}
datasets:
  shapes-cls: {kind: imagefolder, path: "@synthetic"}
models:
  vit: {type: timm}
  res: {type: timm}
  xbert: {type: xbert, fusion: cross_attention}
tasks:
  classify: {type: classification, dataset: shapes-cls, models: [vit, res, xbert]}
claims:
  - {model: xbert, baseline: vit, task: classify, delta: 5, source: "points"}
  - {model: xbert, baseline: vit, task: classify, delta: "30%", source: "relative"}
  - {model: xbert, task: classify, value: 61, tolerance: 1, source: "absolute"}
  - {order: [xbert, res, vit], task: classify, source: "ordering"}
""")
)


def _record(model: str, seed: int, out: Path) -> RunRecord:
    folder = f"runs/classify/{model}/seed{seed}-x"
    correct = COUNTS[model][seed]
    ids = np.arange(N)
    evidence = classification_evidence(ids, ids, np.zeros(N, dtype=np.int64), np.where(ids < correct, 0, 1))
    (out / folder).mkdir(parents=True)
    (out / folder / EVIDENCE).write_bytes(evidence.to_bytes())
    return RunRecord.from_json(
        {
            "status": "ok",
            "folder": folder,
            "model_type": SUITE.models[model].type,
            "main_metric": "top1",
            "suite": "kinds",
            "task": "classify",
            "task_type": "classification",
            "dataset": "shapes-cls",
            "model": model,
            "kind": KINDS[model],
            "seed": seed,
            "run_id": f"classify/{model}/seed{seed}",
            "fingerprint": f"{model}{seed}",
            "metrics": {"top1": 100.0 * correct / N, "top5": 100.0},
            "env": {"torch": "2.5.1", "device": "cpu"},
            "timings": {"train_seconds": 1.0, "train_samples_per_s": 10.0},
            "cost": {"params": 1000, "trainable_params": 1000},
        }
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("kinds")
    records = [_record(m, s, out) for m in COUNTS for s in range(3)]
    return build_report(SUITE, PlanResults(records), out, datetime(2026, 1, 1, tzinfo=UTC), replicates=2_000)


def test_summary_json_claims(report) -> None:
    claims = report.summary_json()["claims"]
    got = [(c["label"], c["kind"], c["part_of"], c["verdict"]) for c in claims]
    assert got == [
        ("1", "delta", None, "supported"),  # +10 points, claimed +5
        ("2", "delta", None, "contradicted"),  # +20%, claimed +30%
        ("3", "value", None, "inconclusive"),  # 60 ± 2.87 (99% t over 3 seeds) holds 61 - 1 = 60
        ("4", "order", None, "supported"),
        ("4.1", "pair", 3, "supported"),
        ("4.2", "pair", 3, "supported"),
    ]
    points, relative, absolute, order, first, second = claims
    assert points["measured_delta"] == pytest.approx(10.0) and points["relative"] is False
    assert relative["measured_delta"] == pytest.approx(20.0) and relative["relative"] is True
    assert absolute["measured_delta"] == pytest.approx(60.0) and absolute["claimed_delta"] == 61.0
    assert order["measured_delta"] is None and order["text"] == "xbert > res > vit on classify in top1"
    assert (first["model"], first["baseline"], second["model"], second["baseline"]) == ("xbert", "res", "res", "vit")
    assert first["measured_delta"] == pytest.approx(5.0) and second["measured_delta"] == pytest.approx(5.0)
    assert all(c["p_adjusted"] < 0.05 for c in (first, second))
    # one family: m = 2 deltas + 1 absolute + 2 pairs = 5, every CI at 1 - 0.05 / 5 = 99%
    assert "99% CI" in points["note"] and "99% CI" in absolute["note"]
    lo, hi = stats.t.interval(0.99, df=2, loc=60.0, scale=0.5 / np.sqrt(3))  # seeds 59.5, 60, 60.5
    assert absolute["ci"] == pytest.approx([lo, hi], abs=1e-4)
    assert absolute["p_value"] == 1.0  # the mean sits on the threshold 61 - 1
    # Holm over the 5 tests by hand: four bootstrap p-values at the floor 1 / 2001, and 1.0
    assert [c["p_value"] for c in (points, relative, first, second)] == pytest.approx([1 / 2001] * 4, abs=1e-6)
    assert [c["p_adjusted"] for c in (points, relative, first, second)] == pytest.approx([5 / 2001] * 4, abs=1e-6)


def test_markdown_claims_table(report) -> None:
    md = render_markdown(report)
    section = md.split("## Claims and verdicts\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    rows = [r for r in rows if not set(r) <= set("|-: ")]
    labels = [r.split("|")[1].strip() for r in rows]
    assert labels == ["1", "2", "3", "4", "4.1", "4.2"]
    verdicts = [r.split("|")[3] for r in rows]
    words = ["supported", "contradicted", "inconclusive", "supported", "supported", "supported"]
    for cell, word in zip(verdicts, words, strict=True):
        assert word in cell
    assert "xbert > res > vit on classify in top1" in rows[3] and "see its pairs" in rows[3]
    assert "| xbert > res |" in rows[4] and "| res > vit |" in rows[5]
    assert "+20.00" in rows[1] and "% rel." in rows[1]
