"""The frozen-encoder feature cache on a linear-probe suite, whole process, side by side.

Run: ``.venv/bin/python -m pytest benchmarks/test_feature_cache.py --benchmark-only -q -s``

A linear probe: a ViT encoder from a weights file (the stand-in for pretrained weights), frozen for the whole run
(``freeze_encoders_epochs`` = ``epochs``), a linear head on the image-folder task, 4 seeds. Two sides, interleaved:
``xmbench run`` with the cache (the default: the encoder runs once over the images, and the later seeds reuse the
features) and with ``train.feature_cache: false`` (the frozen encoder runs at every step), each from an empty output
folder and an empty feature cache, with the decoded images already cached, so that both sides decode nothing. It prints
the median whole-process time of each and the ratio with its range, and checks that both sides give the same test
metrics. Nothing is asserted about time: this is a measurement.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from benchmarks._timing import alternate, ratio, summary

ROUNDS = 3
ENCODER = {
    "name": "vit_tiny_patch16_224",
    "args": {"patch_size": 8, "embed_dim": 192, "depth": 6, "num_heads": 3, "mlp_ratio": 4.0},
}
SUITE = {
    "name": "probe",
    "seeds": [0, 1, 2, 3],
    "hardware": {"device": "cpu", "precision": "fp32", "threads": 2},
    "train": {"epochs": 3, "batch_size": 64, "lr": 1e-2, "freeze_encoders_epochs": 3},
    "image": {"size": 64},
    "synthetic": {"images": 600, "seed": 0, "size": 64},
    "datasets": {"shapes": {"kind": "imagefolder", "path": "@synthetic"}},
    "models": {"probe": {"type": "timm", "image_encoder": None}},
    "tasks": {"cls": {"type": "classification", "dataset": "shapes", "models": ["probe"]}},
}


def _write(folder: Path, weights: Path, cache: bool) -> Path:
    suite = copy.deepcopy(SUITE)
    suite["models"]["probe"]["image_encoder"] = {**ENCODER, "pretrained": True, "checkpoint": str(weights)}
    suite["train"]["feature_cache"] = cache
    path = folder / f"probe-{'cache' if cache else 'nocache'}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _metrics(out: Path) -> dict[int, dict]:
    records = [json.loads(p.read_text()) for p in out.rglob("metrics.json")]
    return {r["seed"]: r["metrics"] for r in records}


def test_feature_cache_on_a_linear_probe_suite(benchmark) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    import timm

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model = timm.create_model(ENCODER["name"], pretrained=False, img_size=64, num_classes=0, **ENCODER["args"])
        weights = tmp / "vit.pth"
        torch.save(model.state_dict(), weights)
        cache = tmp / "cache"
        paths = {"cache": _write(tmp, weights, True), "no cache": _write(tmp, weights, False)}
        outs = {name: tmp / f"out-{i}" for i, name in enumerate(paths)}

        def side(name: str) -> tuple[list[str], dict[str, str]]:
            # a fresh output folder and no cached features for each round (the decoded images stay cached)
            script = (
                "import shutil, sys; from harness.cli import main; "
                f"shutil.rmtree({str(outs[name])!r}, ignore_errors=True); "
                f"shutil.rmtree({str(cache / 'features')!r}, ignore_errors=True); "
                f"sys.exit(main(['run', {str(paths[name])!r}, '--out', {str(outs[name])!r}]))"
            )
            return [sys.executable, "-c", script], {"XMBENCH_CACHE": str(cache)}

        sides = {name: side(name) for name in paths}
        alternate({"cache": sides["cache"]}, 1)  # warm: synthesise and decode the images once
        times = alternate(sides, ROUNDS)
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)
        a, b = _metrics(outs["cache"]), _metrics(outs["no cache"])
        assert set(a) == set(b) == {0, 1, 2, 3}
        for seed in a:
            assert a[seed] == pytest.approx(b[seed], abs=1e-6), (seed, a[seed], b[seed])
        mid, lo, hi = ratio(times["no cache"], times["cache"])
        line = (
            f"\nlinear probe, 4 seeds x 3 epochs: cache {summary(times['cache'])}, no cache "
            f"{summary(times['no cache'])}; no-cache / cache {mid:.2f}x [{lo:.2f}-{hi:.2f}] (same test metrics)"
        )
        benchmark.extra_info.update(
            {
                "cache_s": summary(times["cache"]),
                "no_cache_s": summary(times["no cache"]),
                "no_cache_over_cache": round(mid, 2),
            }
        )
        print(line)
        shutil.rmtree(cache, ignore_errors=True)
