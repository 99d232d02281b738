"""User models named as ``package.module:factory``: checked, fingerprinted and reported like built-in families."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main

CLS_TASK = {"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit", "mine"]}}


def _suite(tiny_suite, factory: str, args: dict | None = None) -> Path:
    models = {
        "vit": {
            "type": "timm",
            "image_encoder": {
                "name": "vit_tiny_patch16_224",
                "args": {"patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2},
            },
        },
        "mine": {"type": f"tests.models.user_models:{factory}", **({"args": args} if args else {})},
    }
    return tiny_suite(seeds=[0], models=models, tasks=CLS_TASK, train={"steps": 2, "batch_size": 8})


@pytest.mark.parametrize("factory", ["mean_colour", "MeanColour"])
def test_user_model_runs_and_is_reported(tiny_suite, tmp_path: Path, factory: str) -> None:
    path = _suite(tiny_suite, factory, {"width": 4})
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df["model"]) == {"vit", "mine"} and set(df[df["model"] == "mine"]["kind"]) == {"image"}
    spec = json.loads(next((out / "runs" / "cls" / "mine").rglob("spec.json")).read_text())
    assert spec["model_type"] == f"tests.models.user_models:{factory}"
    assert spec["model_params"] == {"args": {"width": 4}}
    metrics = json.loads(next((out / "runs" / "cls" / "mine").rglob("metrics.json")).read_text())
    assert metrics["model_facts"]["params"] == 3 * 4 + 4 + 4 * 4 + 4  # proj + linear head over 4 classes
    assert "| mine |" in (out / "report.md").read_text()


def test_user_model_arguments_change_the_fingerprint(tiny_suite, tmp_path: Path) -> None:
    from harness.suite import load_suite
    from harness.suite.check import check_suite

    folders = []
    for width in (4, 6):
        path = _suite(tiny_suite, "mean_colour", {"width": width})
        models = check_suite(load_suite(path), path)
        folders.append(models["mine"].config.model_dump())
    assert folders[0] != folders[1]


@pytest.mark.parametrize(
    ("factory", "args", "message"),
    [
        ("nothing_here", None, "module 'tests.models.user_models' has no attribute 'nothing_here'"),
        ("undeclared", None, "must declare kind (one of image, text, dual_encoder, cross_modal) and modalities"),
        ("wrong_shape", None, "forward(batch) must return {'pooled': tensor of shape (2, 5)}, but got (2, 8)"),
        ("mean_colour", {"depth": 3}, "factory 'tests.models.user_models:mean_colour' rejected its args"),
    ],
)
def test_user_model_errors(tiny_suite, tmp_path: Path, capsys, factory, args, message) -> None:
    path = _suite(tiny_suite, factory, args)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("xmbench: error: ") and message in err, err


def test_unknown_module(tiny_suite, capsys) -> None:
    path = tiny_suite(
        models={"m": {"type": "no_such_pkg.mod:factory"}},
        tasks={"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["m"]}},
    )
    assert main(["validate", str(path)]) == 2
    assert "cannot import module 'no_such_pkg.mod'" in capsys.readouterr().err
