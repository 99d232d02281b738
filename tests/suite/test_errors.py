"""Every way a suite can be wrong gets one line naming the file, the key path and the value (table-driven)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harness.errors import UserError
from harness.suite import load_suite
from harness.suite.check import check_suite
from tests.conftest import TINY_BERT as BERT
from tests.conftest import TINY_VIT as VIT

BASE = {
    "name": "t",
    "seeds": [0],
    "baseline": "vit",
    "train": {"steps": 2, "batch_size": 4},
    "datasets": {
        "shapes-vqa": {"kind": "vqa2", "path": "@synthetic"},
        "shapes-cls": {"kind": "imagefolder", "path": "@synthetic"},
    },
    "models": {
        "vit": {"type": "timm", "image_encoder": VIT},
        "bert": {"type": "bert", "text_encoder": BERT},
        "xbert": {"type": "xbert", "fusion": "cross_attention", "image_encoder": VIT, "text_encoder": BERT},
    },
    "tasks": {
        "vqa": {"type": "vqa", "dataset": "shapes-vqa", "models": ["vit", "bert", "xbert"], "blind_baselines": True},
        "cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit", "xbert"]},
    },
}


def _set(d: dict, path: str, value) -> dict:
    d = copy.deepcopy(d)
    keys = path.split(".")
    node = d
    for k in keys[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


_DELETE = object()

# (id, suite dict or raw text, expected substrings of the one-line message)
CASES = [
    ("seeds-type", _set(BASE, "seeds", "zero"), ["seeds: expected a list, got a string 'zero'"]),
    ("lr-type", _set(BASE, "train.lr", "fast"), ["train.lr: expected a number, got the string 'fast'"]),
    # strict mode: no quoted numbers, no booleans for numbers, no floats for ints
    (
        "lr-quoted",
        # (yaml.safe_dump writes the string 1e-3 unquoted, YAML 1.1 having no such float: quote it by hand)
        yaml.safe_dump(_set(BASE, "train.lr", 0.5), sort_keys=False).replace("lr: 0.5", "lr: '1e-3'"),
        ["train.lr: expected a number, got the string '1e-3' (write it without quotes)"],
    ),
    (
        "batch-size-quoted",
        _set(BASE, "train.batch_size", "64"),
        ["train.batch_size: expected an integer, got the string '64' (write it without quotes)"],
    ),
    (
        "batch-size-bool",
        _set(BASE, "train.batch_size", True),
        ["train.batch_size: expected an integer, got the boolean True"],
    ),
    ("lr-bool", _set(BASE, "train.lr", False), ["train.lr: expected a number, got the boolean False"]),
    (
        "batch-size-float",
        _set(BASE, "train.batch_size", 2.0),
        ["train.batch_size: expected an integer, got the float 2.0 (write 2)"],
    ),
    ("seeds-bool", _set(BASE, "seeds", [True]), ["seeds[0]: expected an integer, got the boolean True"]),
    ("seed-negative", _set(BASE, "seeds", [-1]), ["seeds[0]: a seed must be an integer in 0..4294967295", "got -1"]),
    (
        "seed-too-big",
        _set(BASE, "seeds", [2**32]),
        ["seeds[0]: a seed must be an integer in 0..4294967295", "got 4294967296"],
    ),
    (
        "bool-quoted",
        _set(BASE, "hardware", {"deterministic": "true"}),
        ["hardware.deterministic: expected true or false, got the string 'true' (write it without quotes)"],
    ),
    (
        "bool-yes",
        _set(BASE, "hardware", {"deterministic": "yes"}),
        ["hardware.deterministic: expected true or false, got the string 'yes'", "write true or false"],
    ),
    (
        "year-quoted",
        _set(BASE, "datasets.coco", {"kind": "coco", "path": "@synthetic", "year": "2017"}),
        ["datasets.coco.year: expected one of: 2014 or 2017, got the string '2017' (write it without quotes)"],
    ),
    (
        "name-number",
        _set(BASE, "description", 2024),
        ["description: expected a string, got the integer 2024 (put it in quotes)"],
    ),
    ("lr-inf", _set(BASE, "train.lr", float("inf")), ["train.lr: input should be a finite number, got inf"]),
    ("mean-short", _set(BASE, "image", {"mean": [0.5, 0.5]}), ["image.mean: expected 3 items, got 2: [0.5, 0.5]"]),
    ("unknown-key", _set(BASE, "train.lrr", 0.1), ["train.lrr: unknown key 'lrr'. Did you mean: 'lr'?"]),
    (
        "unknown-top-key",
        _set(_set(BASE, "seed", [0]), "seeds", _DELETE),
        ["seed: unknown key 'seed'. Did you mean: 'seeds'?"],
    ),
    ("missing-train", _set(BASE, "train", _DELETE), ["train: missing required key 'train'"]),
    (
        "precision",
        _set(BASE, "hardware", {"precision": "fp64"}),
        ["hardware.precision: 'fp64' is not allowed.", "Expected one of: 'fp32', 'bf16' or 'fp16'"],
    ),
    ("device", _set(BASE, "hardware", {"device": "gpu"}), ["hardware.device: expected 'auto', 'cpu'", "'gpu'"]),
    ("epochs-and-steps", _set(BASE, "train.epochs", 3), ["train: set exactly one of 'epochs' or 'steps'"]),
    ("task-type", _set(BASE, "tasks.vqa.type", "vqa2"), ["tasks.vqa.type: unknown type 'vqa2'. Did you mean: 'vqa'?"]),
    (
        "task-key",
        _set(BASE, "tasks.vqa.answer_min_cnt", 3),
        ["tasks.vqa.answer_min_cnt: unknown key 'answer_min_cnt'. Did you mean: 'answer_min_count'"],
    ),
    (
        "dataset-kind",
        _set(BASE, "datasets.shapes-vqa.kind", "vqa"),
        ["datasets.shapes-vqa.kind: unknown kind 'vqa'. Did you mean: 'vqa2'?"],
    ),
    ("bad-name", _set(BASE, "tasks", {"my task": BASE["tasks"]["vqa"]}), ["invalid name 'my task'"]),
    (
        "model-ref",
        _set(BASE, "tasks.vqa.models", ["vit", "xbrt"]),
        ["tasks.vqa.models[1]: unknown model 'xbrt'. Did you mean: 'xbert'"],
    ),
    (
        "dataset-ref",
        _set(BASE, "tasks.vqa.dataset", "shapes-vq"),
        ["tasks.vqa.dataset: unknown dataset 'shapes-vq'. Did you mean: 'shapes-vqa'"],
    ),
    ("baseline-ref", _set(BASE, "baseline", "resnet"), ["baseline: unknown model 'resnet'"]),
    (
        "model-type",
        _set(BASE, "models.xbert.type", "xbret"),
        ["models.xbert.type: unknown model type 'xbret'. Did you mean: 'xbert'"],
    ),
    (
        "fusion-value",
        _set(BASE, "models.xbert.fusion", "crossattention"),
        ["models.xbert.fusion: 'crossattention' is not allowed. Did you mean: 'cross_attention'?"],
    ),
    (
        "family-key",
        _set(BASE, "models.xbert.fusion_layer", 2),
        ["models.xbert.fusion_layer: unknown key 'fusion_layer'. Did you mean: 'fusion_layers'"],
    ),
    (
        "timm-name",
        _set(BASE, "models.vit.image_encoder", {**VIT, "name": "vit_tiny_patch16_22"}),
        [
            "models.vit.image_encoder.name: unknown timm model 'vit_tiny_patch16_22'.",
            "Did you mean: 'vit_tiny_patch16_224'",
        ],
    ),
    (
        "encoder-missing",
        _set(BASE, "models.vit.image_encoder", _DELETE),
        ["models.vit.image_encoder: missing required key 'image_encoder'"],
    ),
    (
        "override-not-allowed",
        _set(BASE, "models.vit.train", {"lr": 0.1}),
        ["models.vit.train.lr: per-model override of 'lr' is not allowed", "train.allow_overrides"],
    ),
    ("override-unknown", _set(BASE, "models.vit.train", {"lrr": 0.1}), ["models.vit.train: unknown train key 'lrr'"]),
    (
        "vqa-image-only",
        _set(BASE, "tasks.vqa.blind_baselines", False),
        [
            "tasks.vqa.models[0]: model 'vit' cannot run this task: an image-only model never sees the question",
            "set blind_baselines: true",
        ],
    ),
    (
        "vqa-dual",
        _set(
            _set(BASE, "models.clip", {"type": "dual", "image_encoder": VIT, "text_encoder": BERT}),
            "tasks.vqa.models",
            ["clip"],
        ),
        ["tasks.vqa.models[0]: model 'clip' cannot run this task: a dual encoder has no fusion"],
    ),
    (
        "pairing",
        _set(BASE, "tasks.cls.models", ["vit", "bert"]),
        ["tasks.cls.models[1]: model 'bert' cannot run this task: classification needs image input"],
    ),
    (
        "retrieval-pairing",
        _set(
            _set(BASE, "datasets.coco", {"kind": "coco", "path": "@synthetic"}),
            "tasks.ret",
            {"type": "retrieval", "dataset": "coco", "models": ["xbert", "vit"]},
        ),
        ["tasks.ret.models[1]: model 'vit' cannot run this task: retrieval needs an image tower and a text tower"],
    ),
    (
        "task-dataset-kind",
        _set(BASE, "tasks.cls.dataset", "shapes-vqa"),
        ["tasks.cls: a classification task cannot use dataset 'shapes-vqa' of kind 'vqa2'"],
    ),
    (
        "dataset-path",
        _set(BASE, "datasets.shapes-vqa.path", "/nonexistent/vqa"),
        ["datasets.shapes-vqa.path: '/nonexistent/vqa' does not exist"],
    ),
    ("duplicate-seeds", _set(BASE, "seeds", [0, 0]), ["seeds: seeds must be unique, got [0, 0]"]),
    ("models-twice", _set(BASE, "tasks.vqa.models", ["vit", "vit"]), ["tasks.vqa.models: model names listed twice"]),
    ("top-level-list", "- a\n- b\n", ["the top level must be a mapping"]),
    ("yaml-syntax", "name: t\nseeds: [0, 1\ntrain: {steps: 2}\n", ["YAML syntax error at line 3"]),
    ("duplicate-key", "seeds: [0]\nseeds: [1]\n", ["duplicate key 'seeds' (first on line 1)"]),
    ("empty", "\n  \n", ["suite file is empty"]),
    ("only-comment", "# nothing here\n", ["suite file is empty"]),
]


def _write(tmp_path: Path, content) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


def test_base_suite_is_valid(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE)
    models = check_suite(load_suite(path), path, tmp_path)
    assert sorted(models) == ["bert", "vit", "xbert"]
    assert models["xbert"].family.kind == "cross_modal"


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_suite_message(tmp_path: Path, content, expected: list[str]) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(UserError) as info:
        check_suite(load_suite(path), path, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    for part in expected:
        assert part in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"suite file not found"):
        load_suite(tmp_path / "nope.yaml")


def test_yaml_never_runs_code(tmp_path: Path) -> None:
    path = _write(tmp_path, "seeds: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(UserError, match=r"line 1, column 8: tag '!!python/object/apply:os.system' is not allowed"):
        load_suite(path)


def test_override_allowed_and_recorded(tmp_path: Path) -> None:
    suite = _set(_set(BASE, "train.allow_overrides", ["lr"]), "models.vit.train", {"lr": 0.01})
    path = _write(tmp_path, suite)
    models = check_suite(load_suite(path), path, tmp_path)
    assert models["vit"].train.lr == 0.01
    assert models["vit"].overrides == {"lr": 0.01}
    assert models["bert"].train.lr == BASE["train"].get("lr", 1e-4)


def test_int_for_float_is_fine(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, _set(_set(BASE, "train.lr", 1), "image", {"mean": [0, 1, 0]})))
    assert suite.train.lr == 1.0 and isinstance(suite.train.lr, float)
    assert suite.image.mean == (0.0, 1.0, 0.0)
    assert suite.seeds == (0,)


def test_suite_is_frozen(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, BASE))
    with pytest.raises(Exception, match="frozen"):
        suite.train.lr = 1.0  # type: ignore[misc]
