"""Per-example evidence: every run's metrics recompute exactly from its stored evidence, and the per-cluster sums
that the bootstrap resamples add up to the same metrics."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from harness.stats.evidence import EVIDENCE, Evidence
from tests.conftest import TINY_SUITE, run_suite_dict


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, xm_cache: Path) -> list[Path]:
    """Every task type the runner trains: VQA, classification, retrieval (with ITM re-ranking) and multi-label."""
    suite = copy.deepcopy(TINY_SUITE)
    suite["seeds"] = [0]
    suite["tasks"]["ml"] = {"type": "multilabel", "dataset": "shapes-coco", "models": ["vit"]}
    suite["tasks"]["ret"]["models"] = ["xbert"]
    out = run_suite_dict(suite, tmp_path_factory.mktemp("evidence"), xm_cache)
    return sorted(p.parent for p in (out / "runs").rglob("metrics.json"))


def test_every_run_has_evidence_that_recomputes_its_metrics_exactly(runs: list[Path]) -> None:
    kinds = set()
    for folder in runs:
        metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
        evidence = Evidence.load(folder / EVIDENCE)
        kinds.add(evidence.task_type)
        assert evidence.recompute() == metrics, folder  # exact: same floats, same rounding
    assert kinds == {"vqa", "classification", "retrieval", "multilabel"}


def test_cluster_sums_add_up_to_the_metrics(runs: list[Path]) -> None:
    for folder in runs:
        metrics = json.loads((folder / "metrics.json").read_text())["metrics"]
        evidence = Evidence.load(folder / EVIDENCE)
        values = {name: 100 * r.num.sum() / r.den.sum() for name, r in evidence.ratios().items()}
        values.update({name: fn(values) for name, fn in evidence.derived.items()})
        if evidence.task_type == "multilabel":
            ones = np.ones(len(evidence.clusters), dtype=np.int64)
            values = evidence.resampled(ones)
        tolerance = 0.005 if evidence.task_type == "vqa" else 1e-9  # VQA's official figures are rounded to 2 places
        assert set(metrics) <= set(values), folder  # (the ITC-stage recalls behind itc_r_mean are extra)
        for name, value in metrics.items():
            assert values[name] == pytest.approx(value, abs=tolerance), (folder, name)


def test_clusters_are_images(runs: list[Path]) -> None:
    vqa = Evidence.load(next(f for f in runs if "/vqa/" in str(f)) / EVIDENCE)
    preds = [json.loads(line) for line in (next(f for f in runs if "/vqa/" in str(f)) / "predictions.jsonl").open()]
    assert [str(p["image_id"]) for p in preds] == vqa.arrays["cluster"].tolist()
    assert len(vqa.clusters) < len(vqa.arrays["cluster"])  # several questions per image
    ret = Evidence.load(next(f for f in runs if "/ret/" in str(f)) / EVIDENCE)
    assert len(ret.arrays["t2i_cluster"]) > len(ret.arrays["i2t_cluster"])  # several captions per image
    assert set(ret.arrays["t2i_cluster"]) == set(ret.arrays["i2t_cluster"]) == set(ret.clusters)
    assert "itc_i2t_rank" in ret.arrays  # the fusion model's ITC stage too


def test_a_malformed_evidence_file_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / EVIDENCE).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable evidence file"):
        Evidence.load(tmp_path / EVIDENCE)
    np.savez(tmp_path / "x.npz", __task_type__=np.array("vqa"), __schema__=np.array(1), cluster=np.array(["1"]))
    with pytest.raises(ValueError, match=r"evidence lacks \['example_id', 'accuracy'"):
        Evidence.load(tmp_path / "x.npz")
