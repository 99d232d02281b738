"""The GPU switches of the hardware block (tf32, channels_last, compile): off by default and out of the fingerprint
when off, applied when on. Their speed is a GPU question (docs/performance.md); on CPU the tests check that each
switch is applied and leaves the numbers within float tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from harness.cli import main
from harness.plan import _hardware_json
from harness.suite.schema import HardwareSpec
from harness.tasks.base import Batcher

RESNET = {
    "type": "timm",
    "image_encoder": {
        "name": "resnet18",
        "pretrained": False,
        "args": {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 8},
    },
}


def _suite(tmp_path: Path, name: str, **hardware) -> Path:
    suite = {
        "name": name,
        "seeds": [0],
        "hardware": {
            "device": "cpu",
            "precision": "fp32",
            "workers": 0,
            "deterministic": True,
            "threads": 1,
            **hardware,
        },
        "train": {"steps": 4, "batch_size": 16, "lr": 1.0e-3, "validation": False},
        "image": {"size": 32},
        "synthetic": {"images": 120, "seed": 0, "size": 32},
        "datasets": {"shapes": {"kind": "imagefolder", "path": "@synthetic"}},
        "models": {"r": RESNET},
        "tasks": {"cls": {"type": "classification", "dataset": "shapes", "models": ["r"]}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _run(tmp_path: Path, name: str, **hardware) -> dict:
    out = tmp_path / name
    assert main(["run", str(_suite(tmp_path, name, **hardware)), "--out", str(out)]) == 0
    (path,) = out.glob("runs/cls/r/seed0-*/metrics.json")
    return json.loads(path.read_text())


def test_switches_are_off_by_default_and_in_the_fingerprint_only_when_on() -> None:
    off = _hardware_json(HardwareSpec())
    assert not {"tf32", "channels_last", "compile"} & set(off)
    on = _hardware_json(HardwareSpec(tf32=True, channels_last=True))
    assert on["tf32"] is True and on["channels_last"] is True and "compile" not in on


def test_channels_last_batches_and_the_same_numbers(tmp_path: Path) -> None:
    batcher = Batcher((0.5,) * 3, (0.5,) * 3, torch.device("cpu"))
    batcher.channels_last = True
    x = batcher.images(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    plain, last = _run(tmp_path, "plain"), _run(tmp_path, "last", channels_last=True)
    assert plain["fingerprint"] != last["fingerprint"]
    assert last["timings"]["final_loss"] == pytest.approx(plain["timings"]["final_loss"], rel=1e-4)
    assert last["metrics"] == pytest.approx(plain["metrics"], abs=1e-6)


def test_tf32_switch_sets_the_backends() -> None:
    from harness.train.precision import apply_switches

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        apply_switches(HardwareSpec(tf32=True))
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        apply_switches(HardwareSpec())
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_compile_switch_compiles_the_encoders_in_place_with_the_same_numbers(tmp_path: Path) -> None:
    # aot_eager: dynamo's graph capture and AOT autograd, without inductor's C++ code generation (a minute on CPU)
    plain, compiled = _run(tmp_path, "eager"), _run(tmp_path, "compiled", compile="aot_eager")
    assert compiled["notes"]["compiled"] == ["image"]
    assert compiled["timings"]["final_loss"] == pytest.approx(plain["timings"]["final_loss"], rel=1e-4)
    assert compiled["metrics"] == pytest.approx(plain["metrics"], abs=1e-6)
