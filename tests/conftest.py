"""Shared fixtures: an isolated cache (synthetic data, tokenizers) and a tiny suite that trains in seconds."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

TINY_VIT = {"name": "vit_tiny_patch16_224", "args": {"patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}}
TINY_BERT = {"config": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}}

TINY_SUITE = {
    "name": "tiny",
    "description": "A few optimiser steps per run, for tests.",
    "seeds": [0, 1],
    "baseline": "vit",
    "hardware": {"device": "cpu", "precision": "fp32", "threads": 2},
    "train": {"steps": 3, "batch_size": 16, "lr": 1e-3, "warmup_ratio": 0.3, "allow_overrides": ["lr"]},
    "image": {"size": 16},
    "text": {"tokenizer": "wordpiece", "vocab_size": 120, "max_length": 16},
    "synthetic": {"images": 40, "seed": 0, "size": 32},
    "datasets": {
        "shapes-vqa": {"kind": "vqa2", "path": "@synthetic"},
        "shapes-cls": {"kind": "imagefolder", "path": "@synthetic"},
        "shapes-coco": {"kind": "coco", "path": "@synthetic"},
    },
    "models": {
        "vit": {"type": "timm", "image_encoder": TINY_VIT},
        "bert": {"type": "bert", "text_encoder": TINY_BERT, "train": {"lr": 2e-3}},
        "xbert": {"type": "xbert", "fusion": "cross_attention", "image_encoder": TINY_VIT, "text_encoder": TINY_BERT},
    },
    "tasks": {
        "vqa": {
            "type": "vqa",
            "dataset": "shapes-vqa",
            "models": ["vit", "bert", "xbert"],
            "answer_min_count": 1,
            "blind_baselines": True,
        },
        "cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit", "xbert"]},
        "ret": {
            "type": "retrieval",
            "dataset": "shapes-coco",
            "models": ["xbert"],
            "baseline": None,
            "k_test": 4,
            "embed_dim": 16,
        },
    },
}


_ROOT = Path(__file__).resolve().parents[1]


def find_fixtures() -> Path:
    """``shared/fixtures`` beside the checkout (CI and the dev layout) or inside it (device copies)."""
    for candidate in (_ROOT.parent / "shared" / "fixtures", _ROOT / "shared" / "fixtures"):
        if candidate.is_dir():
            return candidate
    pytest.skip(
        f"needs ../shared/fixtures (real public annotation files), expected at {_ROOT.parent / 'shared' / 'fixtures'}; "
        "CI has it beside the checkout, a plain clone does not",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return find_fixtures()


@pytest.fixture(scope="session")
def xm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xmbench-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(xm_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's ~/.cache/xmbench from tests."""
    monkeypatch.setenv("XMBENCH_CACHE", str(xm_cache))


def run_suite_dict(suite: dict, root: Path, cache: Path, name: str = "suite.yaml") -> Path:
    """Write ``suite`` to ``root/name``, ``xmbench run`` it into ``root/out`` with the test cache; returns the output
    folder (for session- and module-scoped fixtures, which cannot use the autouse cache fixture)."""
    from harness.cli import main

    path = root / name
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XMBENCH_CACHE", str(cache))
        assert main(["run", str(path), "--out", str(root / "out")]) == 0
    return root / "out"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, xm_cache: Path) -> Path:
    """TINY_SUITE run once per test session (``tiny.yaml`` beside the output folder); tests that change the folder
    work on a copy."""
    return run_suite_dict(TINY_SUITE, tmp_path_factory.mktemp("e2e"), xm_cache, "tiny.yaml")


@pytest.fixture
def tiny_suite(tmp_path: Path):
    """Write a (possibly modified) copy of TINY_SUITE and return its path."""

    def write(**changes) -> Path:
        suite = copy.deepcopy(TINY_SUITE)
        if "tasks" in changes and "baseline" not in changes:  # keep the suite baseline only where every task runs it
            runs_vit = all("vit" in t.get("models", []) for t in changes["tasks"].values())
            changes["baseline"] = "vit" if runs_vit else None
        for key, value in changes.items():
            node = suite
            parts = key.split("__")
            for p in parts[:-1]:
                node = node[p]
            node[parts[-1]] = value
        path = tmp_path / f"{suite['name']}.yaml"
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        return path

    return write
