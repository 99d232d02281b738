"""The frozen-encoder feature cache: computed once per (encoder weights, data, preprocessing), reused across seeds
and runs, and giving the numbers the uncached frozen encoder gives."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml

from harness.cli import main
from tests.conftest import TINY_SUITE, TINY_VIT


@pytest.fixture(scope="module")
def vit_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny timm ViT saved to disk: the stand-in for pretrained hub weights."""
    import timm

    torch.manual_seed(123)
    model = timm.create_model(TINY_VIT["name"], pretrained=False, img_size=16, num_classes=0, **TINY_VIT["args"])
    path = tmp_path_factory.mktemp("weights") / "vit.pth"
    torch.save(model.state_dict(), path)
    return path


def _probe_suite(tmp_path: Path, weights: Path | None, name: str = "probe.yaml", **train) -> Path:
    suite = copy.deepcopy(TINY_SUITE)
    encoder = {**TINY_VIT, **({"pretrained": True, "checkpoint": str(weights)} if weights else {})}
    suite.update(seeds=[0, 1], baseline=None, claims=[])
    suite["models"] = {"probe": {"type": "timm", "image_encoder": encoder}}
    suite["train"] = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "freeze_encoders_epochs": 2, **train}
    suite["tasks"] = {"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["probe"]}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _notes(out: Path) -> dict[int, dict]:
    records = [json.loads(p.read_text()) for p in (out / "runs").rglob("metrics.json")]
    return {r["seed"]: r for r in records}


def test_features_are_computed_once_and_reused_across_seeds(tmp_path: Path, vit_weights: Path) -> None:
    from harness.train import features

    features._STORE = None
    out = tmp_path / "out"
    assert main(["run", str(_probe_suite(tmp_path, vit_weights)), "--out", str(out)]) == 0
    runs = _notes(out)
    a, b = runs[0]["notes"]["feature_cache"], runs[1]["notes"]["feature_cache"]
    assert a["reused"] is False and b["reused"] is True and a["key"] == b["key"]
    assert features.store().misses == 1 and features.store().hits == 1  # encoded once, for both seeds
    assert a["images"] == 40  # train, val and test images of the synthetic image folder, once each

    # another process (here: a fresh store) finds the entry on disk
    features._STORE = None
    out2 = tmp_path / "again"
    assert main(["run", str(_probe_suite(tmp_path, vit_weights, lr=2e-2)), "--out", str(out2)]) == 0
    assert all(r["notes"]["feature_cache"]["reused"] for r in _notes(out2).values())
    assert features.store().misses == 0 and features.store().disk_hits == 1

    # without the cache the frozen encoder runs at every step: the same numbers
    out3 = tmp_path / "uncached"
    path = _probe_suite(tmp_path, vit_weights, name="off.yaml", feature_cache=False)
    assert main(["run", str(path), "--out", str(out3)]) == 0
    for seed, record in _notes(out3).items():
        assert record["notes"]["feature_cache"] == {"off": "train.feature_cache is false"}
        cached = runs[seed]
        assert record["metrics"] == pytest.approx(cached["metrics"], abs=1e-6)
        assert record["timings"]["final_loss"] == pytest.approx(cached["timings"]["final_loss"], rel=1e-5)


def test_an_encoder_initialised_from_the_seed_is_not_shared(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(_probe_suite(tmp_path, None)), "--out", str(out)]) == 0
    runs = _notes(out)
    keys = {seed: r["notes"]["feature_cache"] for seed, r in runs.items()}
    assert keys[0]["key"] != keys[1]["key"] and not keys[1]["reused"]  # other weights, other features


def test_augmentation_turns_the_cache_off_and_says_why(tmp_path: Path, vit_weights: Path) -> None:
    path = _probe_suite(tmp_path, vit_weights)
    suite = yaml.safe_load(path.read_text())
    suite["image"]["augment"] = "crop_flip"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    note = _notes(out)[0]["notes"]["feature_cache"]
    assert note == {"off": "image.augment is 'crop_flip': augmented pixels differ at every step"}
