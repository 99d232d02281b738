"""The design documents as suites (``suites/claims/*.yaml``): every quick profile validates, every real profile
encodes the document's recipe and finds its data in the real layouts (or says exactly which weights to fetch), and
one quick suite runs end to end with its claims first in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UserError
from harness.suite.check import check_claims, check_datasets, check_suite
from harness.suite.loader import load_suite, suite_profiles

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "suites" / "claims").glob("*.yaml"))
NAMES = [p.stem for p in SUITES]


def test_one_suite_per_design_document():
    assert NAMES == ["000", "001", "002", "003", "004"]
    for path in SUITES:
        assert suite_profiles(path) == ["quick"]


@pytest.mark.parametrize("path", SUITES, ids=NAMES)
def test_quick_profile_validates(path, capsys):
    assert main(["validate", str(path), "--profile", "quick"]) == 0
    out = capsys.readouterr().out
    assert f"{path} (profile quick): OK" in out


@pytest.fixture(scope="module")
def real_root(tmp_path_factory) -> Path:
    """A data root with the real datasets' folder names, holding the synthetic data in the real formats (the image
    folder of 000 as DICOM)."""
    pytest.importorskip("pydicom", reason="the real profile of 000 reads DICOM: pip install 'xmbench[dicom]'")
    from harness.data.synthetic import generate

    syn = tmp_path_factory.mktemp("synthetic")
    generate(syn, images=40, size=32, dicom=True)
    root = tmp_path_factory.mktemp("data-root")
    for name, target in {
        "coco": syn,
        "vqa": syn,
        "flickr30k": syn / "flickr30k",
        "medical": syn / "imagefolder_dicom",
        "imagefolder": syn / "imagefolder",
    }.items():
        (root / name).symlink_to(target, target_is_directory=True)
    return root


@pytest.mark.parametrize("path", SUITES, ids=NAMES)
def test_real_profile_finds_its_data_and_names_the_weights_to_fetch(path, real_root):
    suite = load_suite(path)
    assert suite.profile is None
    check_datasets(suite, real_root, str(path))
    check_claims(suite, str(path))
    assert suite.claims, "every document's suite declares its claims"
    with pytest.raises(UserError) as err:  # no pretrained weights here: the exact fetch command
        check_suite(suite, str(path), real_root, build=False)
    assert "are not available offline. Fetch them on a connected machine: `hf download timm/" in str(err.value)


def _suite(name: str):
    return load_suite(ROOT / "suites" / "claims" / f"{name}.yaml")


def test_000_encodes_the_document():
    s = _suite("000")
    assert (s.hardware.precision, s.train.lr, s.train.schedule, s.train.warmup_steps) == ("fp16", 5e-5, "cosine", 500)
    assert s.train.grad_accum > 1 and s.train.eps == 1e-8
    xbert = s.models["xbert"].params
    assert (xbert["fusion"], xbert["fusion_heads"]) == ("cross_attention", 8)
    assert xbert["image_encoder"]["drop_path"] == 0.1 and xbert["text_encoder"]["dropout"] == 0.1
    assert s.datasets["medical"].kind == "imagefolder" and s.tasks["detection"].type == "detection"
    kinds = [(c.kind, c.amount) for c in s.claims]
    assert kinds == [("delta", 3.2), ("value", 98.7)]


def test_002_encodes_the_document():
    s = _suite("002")
    assert (s.image.size, s.image.interpolation, s.image.resize, s.text.max_length) == (224, "bicubic", "squash", 128)
    fused = s.models["fused"].params
    assert (fused["fusion"], fused["fusion_heads"]) == ("two_token", 8)
    assert [(c.kind, c.amount, c.relative) for c in s.claims] == [("delta", 15.0, True), ("delta", 15.0, False)]
    assert s.tasks["coco"].type == "multilabel"


def test_003_encodes_the_document():
    s = _suite("003")
    task = s.tasks["retrieval"]
    assert (task.temperature, task.learn_temperature, s.train.grad_clip) == (0.1, False, 1.0)
    assert s.train.lr == 1e-3
    assert s.train.lr * s.train.lr_mult.image == pytest.approx(2e-5)
    assert s.train.lr * s.train.lr_mult.text == pytest.approx(2e-5)
    [claim] = s.claims
    assert claim.kind == "order" and claim.order == ("cross_attention", "early", "late")
    fusions = [s.models[m].params["fusion"] for m in claim.order]
    assert fusions == ["cross_attention", "single_stream", "concat"]


def test_004_encodes_the_document():
    s = _suite("004")
    assert s.models["clip_vit"].quantize == "dynamic_int8"
    assert {t.type for t in s.tasks.values()} == {"retrieval", "zero_shot", "classification"}
    assert s.tasks["zero_shot"].trained_by == "retrieval_coco"
    assert all(s.tasks[t].learn_temperature for t in ("retrieval_flickr", "retrieval_coco"))
    assert [(c.kind, c.amount, c.max_drop) for c in s.claims] == [("smaller", 75.0, None), ("smaller", 75.0, 1.0)]


def test_quick_suite_002_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(ROOT / "suites" / "claims" / "002.yaml"), "--profile", "quick", "--out", str(out)]) == 0
    md = (out / "report.md").read_text().splitlines()
    sections = [line for line in md if line.startswith("## ")]
    assert sections[0] == "## Claims and verdicts"
    assert "Profile: quick" in "\n".join(md[:5])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"] == "quick"
    claims = summary["claims"]
    assert [(c["kind"], c["relative"], c["claimed_delta"]) for c in claims] == [
        ("delta", True, 15.0),
        ("delta", False, 15.0),
    ]
    for c in claims:
        assert c["verdict"] in ("supported", "contradicted", "inconclusive")
        lo, hi = c["ci"]
        assert lo <= c["measured_delta"] <= hi
    runs = list((out / "runs" / "coco").glob("*/seed*/metrics.json"))
    assert len(runs) == 4 and len(summary["runs"]) == 4
