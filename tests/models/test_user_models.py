"""User models: registered by a plug-in the user names on the command line (``--plugin MODULE``) or by an installed
package's entry points, then checked, fingerprinted and reported like the built-in families. A suite only names
registered types: naming a module never imports it."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main

CLS_TASK = {"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit", "mine"]}}
PLUGIN = ["--plugin", "tests.models.user_models"]


def _suite(tiny_suite, type_: str, args: dict | None = None) -> Path:
    models = {
        "vit": {
            "type": "timm",
            "image_encoder": {
                "name": "vit_tiny_patch16_224",
                "args": {"patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2},
            },
        },
        "mine": {"type": type_, **({"args": args} if args else {})},
    }
    return tiny_suite(seeds=[0], models=models, tasks=CLS_TASK, train={"steps": 2, "batch_size": 8})


@pytest.mark.parametrize("name", ["mean_colour", "MeanColour"])
def test_user_model_runs_and_is_reported(tiny_suite, tmp_path: Path, name: str) -> None:
    path = _suite(tiny_suite, name, {"width": 4})
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), *PLUGIN]) == 0
    df = pd.read_csv(out / "results.csv")
    assert set(df["model"]) == {"vit", "mine"} and set(df[df["model"] == "mine"]["kind"]) == {"image"}
    spec = json.loads(next((out / "runs" / "cls" / "mine").rglob("spec.json")).read_text())
    assert spec["model_type"] == name
    assert spec["model_source"] == f"tests.models.user_models:{name}"
    assert spec["model_params"] == {"args": {"width": 4}}
    metrics = json.loads(next((out / "runs" / "cls" / "mine").rglob("metrics.json")).read_text())
    assert metrics["cost"]["params"] == 3 * 4 + 4 + 4 * 4 + 4  # proj + linear head over 4 classes
    assert "| mine |" in (out / "report.md").read_text()


def test_user_model_arguments_change_the_fingerprint(tiny_suite) -> None:
    from harness.models import load_plugins
    from harness.suite import load_suite
    from harness.suite.check import check_suite

    load_plugins(["tests.models.user_models"])
    configs = []
    for width in (4, 6):
        path = _suite(tiny_suite, "mean_colour", {"width": width})
        configs.append(check_suite(load_suite(path), path)["mine"].config.model_dump())
    assert configs[0] != configs[1]


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("wrong_shape", None, "forward(batch) must return {'pooled': tensor of shape (2, 5)}, but got (2, 8)"),
        ("mean_colour", {"depth": 3}, "model type 'mean_colour' (tests.models.user_models:mean_colour) rejected"),
    ],
)
def test_user_model_errors(tiny_suite, tmp_path: Path, capsys, name, args, message) -> None:
    path = _suite(tiny_suite, name, args)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), *PLUGIN]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress log: one line
    assert err.startswith("xmbench: error: ") and message in err, err


def test_a_suite_naming_a_module_imports_nothing(tiny_suite, tmp_path: Path, monkeypatch, capsys) -> None:
    """``type: "pkg.mod:factory"`` used to import pkg.mod (with its side effects) before any check."""
    marker = tmp_path / "imported"
    (tmp_path / "sneaky.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef x(ctx):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for type_ in ("sneaky:x", "sneaky", "this:x"):
        path = _suite(tiny_suite, type_)
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert f"models.mine.type: unknown model type {type_!r}" in err[0]
        registered = err[0].split("Registered: ")[1].split(".")[0].split(", ")
        assert {"bert", "dual", "timm", "xbert"} <= set(registered) and "--plugin MODULE" in err[0]
    assert not marker.exists()
    assert "sneaky" not in sys.modules and "this" not in sys.modules


def test_plugin_flag_registers_and_reports_import_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "undeclared_plugin.py").write_text(
        textwrap.dedent(
            """
            from harness.models import user_model

            @user_model("undeclared")
            def undeclared(ctx):
                return None
            """
        )
    )
    assert main(["list", "models", "--plugin", "no_such_plugin_module"]) == 2
    assert "--plugin no_such_plugin_module: cannot import it" in capsys.readouterr().err
    assert main(["list", "models", "--plugin", "undeclared_plugin"]) == 2
    err = capsys.readouterr().err
    assert "--plugin undeclared_plugin: importing it failed" in err and "must declare kind" in err
    assert main(["list", "models", "--plugin", "tests.models.user_models"]) == 0
    out = capsys.readouterr().out
    assert "mean_colour" in out and "[tests.models.user_models:mean_colour]" in out
    assert "xbert" in out and "[baselines.crossmodal:build_xbert]" in out


def test_builtin_families_come_from_entry_points() -> None:
    import importlib.metadata

    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="xmbench.models")}
    assert eps == {
        "timm": "baselines.vision:build_timm",
        "bert": "baselines.text:build_bert",
        "dual": "baselines.dual:build_dual",
        "xbert": "baselines.crossmodal:build_xbert",
    }
