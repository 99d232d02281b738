"""``xmbench validate`` catches what ``run`` would fail on: every model is built once on the meta device (config
typos, bad timm arguments), baselines a task does not run, dataset layouts, code that comes with weights, and the
README's own example."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from tests.conftest import TINY_BERT, TINY_VIT

ROOT = Path(__file__).resolve().parents[2]


def _err(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("xmbench: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"models__bert__text_encoder": {"config": {**TINY_BERT["config"], "hiden_size": 48}}},
            "models.bert.text_encoder.config.hiden_size: unknown BertConfig key 'hiden_size'. Did you mean: "
            "'hidden_size'",
        ),
        (
            {"models__vit__image_encoder": {**TINY_VIT, "args": {**TINY_VIT["args"], "embed_dm": 16}}},
            "models.vit.image_encoder.args: timm model 'vit_tiny_patch16_224' does not take the argument 'embed_dm'. "
            "Did you mean: 'embed_dim'",
        ),
        (
            {"models__xbert__fusion_heads": 3},
            "models.xbert: building the 'xbert' model failed: ValueError: Expected `fusion_heads` to divide the text "
            "width 32, but got 3",
        ),
        (
            {"models__xbert__image_encoder": {**TINY_VIT, "args": {**TINY_VIT["args"], "num_heads": 3}}},
            "models.xbert: building the 'xbert' model failed: AssertionError: dim should be divisible by num_heads",
        ),
    ],
    ids=["bert-config-typo", "timm-argument", "fusion-heads", "timm-assert"],
)
def test_validate_builds_every_model(tiny_suite, capsys, change, expected) -> None:
    path = tiny_suite(**change)
    assert main(["validate", str(path)]) == 2
    err = _err(capsys)
    assert f"{path}: " in err and expected in err, err


def test_a_bert_config_typo_is_not_silently_ignored_by_run(tiny_suite, tmp_path, capsys) -> None:
    path = tiny_suite(models__bert__text_encoder={"config": {**TINY_BERT["config"], "hiden_size": 48}})
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "unknown BertConfig key 'hiden_size'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {
                "tasks": {"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["xbert"]}},
                "baseline": "vit",
            },
            "tasks.cls: the baseline 'vit' (the suite's baseline) is not one of this task's models ['xbert']",
        ),
        (
            {
                "tasks": {
                    "cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit"], "baseline": "xbert"}
                }
            },
            "tasks.cls: the baseline 'xbert' (tasks.cls.baseline) is not one of this task's models ['vit']",
        ),
    ],
    ids=["suite-baseline", "task-baseline"],
)
def test_a_baseline_the_task_does_not_run_is_an_error(tiny_suite, capsys, change, expected) -> None:
    path = tiny_suite(**change)
    assert main(["validate", str(path)]) == 2
    err = _err(capsys)
    assert expected in err and "set tasks.cls.baseline: null for a task without a baseline" in err


def test_explicit_null_baseline_means_none(tiny_suite, capsys) -> None:
    tasks = {"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["xbert"], "baseline": None}}
    path = tiny_suite(tasks=tasks, baseline="vit")
    assert main(["validate", str(path)]) == 0


def _imagefolder(root: Path, classes: list[str]) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(root / split / c / "a.png")
    return root


@pytest.mark.parametrize(
    ("make", "dataset", "expected"),
    [
        (
            lambda r: _imagefolder(r / "folder", ["cat"]),
            {"kind": "imagefolder", "path": "folder"},
            "classification needs at least 2 classes, found 1 (['cat'])",
        ),
        (
            lambda r: (r / "folder").mkdir(),
            {"kind": "imagefolder", "path": "folder"},
            "no class folders",
        ),
        (
            lambda r: shutil.rmtree(_imagefolder(r / "folder", ["cat", "dog"]) / "test"),
            {"kind": "imagefolder", "path": "folder"},
            "has the split folder(s) ['train'] but a layout with split folders needs train/ and val/ or test/",
        ),
        (
            lambda r: shutil.rmtree(r / "coco" / "annotations"),
            {"kind": "coco", "path": "coco"},
            "retrieval split 'train' needs dataset_coco.json (Karpathy) or coco_karpathy_train.json (LAVIS)",
        ),
        (
            lambda r: shutil.rmtree(r / "coco" / "val2014"),
            {"kind": "coco", "path": "coco"},
            "image folder val2014/ not found",
        ),
        (
            lambda r: (r / "coco" / "v2_mscoco_val2014_annotations.json").unlink(),
            {"kind": "vqa2", "path": "coco"},
            "VQA v2 annotations file v2_mscoco_val2014_annotations.json not found",
        ),
        (
            lambda r: None,
            {"kind": "vqa2", "path": "nowhere"},
            "datasets.d.path: 'nowhere' does not exist",
        ),
    ],
    ids=["one-class", "no-classes", "only-train", "no-annotations", "no-images", "no-vqa-annotations", "no-path"],
)
def test_validate_checks_the_dataset_layout(tiny_suite, tmp_path, capsys, make, dataset, expected) -> None:
    from harness.data.synthetic import generate

    data = tmp_path / "data"
    generate(data / "coco", images=20, seed=0, size=32)
    (data / "coco" / "dataset_coco.json").unlink()  # use the LAVIS files for retrieval
    make(data)
    task_type = {"imagefolder": "classification", "coco": "retrieval", "vqa2": "vqa"}[dataset["kind"]]
    task = {"type": task_type, "dataset": "d", "models": ["xbert"], "baseline": None}
    path = tiny_suite(datasets={"d": dataset}, tasks={"t": task})
    assert main(["validate", str(path), "--data-root", str(data)]) == 2
    err = _err(capsys)
    assert expected in err, err


def _hub_repo(hub: Path, repo: str, files: dict[str, bytes] | Path) -> Path:
    """A Hugging Face cache entry as `hf download` leaves it: refs/main -> snapshots/<commit>/files."""
    base = hub / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / ("0" * 40)
    if isinstance(files, Path):
        shutil.copytree(files, snap)
    else:
        snap.mkdir(parents=True)
        for name, data in files.items():
            (snap / name).write_bytes(data)
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / "main").write_text("0" * 40)
    return snap


def _tiny_bert_folder(path: Path, auto_map: bool = False) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = path.parent / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "colour", "?"]) + "\n")
    BertModel(BertConfig(vocab_size=8, **TINY_BERT["config"]), add_pooling_layer=False).save_pretrained(path)
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(path)
    if auto_map:
        cfg = json.loads((path / "config.json").read_text())
        cfg["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
        (path / "config.json").write_text(json.dumps(cfg))
        (path / "modeling_evil.py").write_text(f"open({str(path / 'ran')!r}, 'w').write('code ran')\n")
    return path


def test_the_readme_example_suite_validates(tmp_path: Path) -> None:
    """The suite shown in the README, as written, with its data and a stand-in Hugging Face cache."""
    from harness.data.synthetic import generate

    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Writing a suite\n\n```yaml\n(.*?)```", text, re.S).group(1)
    suite = tmp_path / "my-suite.yaml"
    suite.write_text(block)
    data = tmp_path / "data"
    generate(data / "vqa", images=40, seed=0, size=32)
    hub = tmp_path / "hf" / "hub"
    _hub_repo(hub, "bert-base-uncased", _tiny_bert_folder(tmp_path / "bert"))
    _hub_repo(hub, "timm/resnet50.a1_in1k", {"model.safetensors": b"stand-in: validate does not read weights"})
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "XMBENCH_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "harness", "validate", str(suite), "--data-root", str(data)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "OK — suite 'my-suite': 1 task(s), 3 model(s) built, 3 seed(s) -> 9 run(s)" in done.stdout
    # the same example without the weights says what to fetch
    shutil.rmtree(hub / "models--timm--resnet50.a1_in1k")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "`hf download timm/resnet50.a1_in1k model.safetensors`" in done.stderr


def test_custom_code_in_a_model_folder_is_refused(tiny_suite, tmp_path: Path, capsys) -> None:
    folder = _tiny_bert_folder(tmp_path / "evil", auto_map=True)
    for key, text_encoder in (
        ("models.bert.text_encoder.name", {"name": str(folder)}),
        ("models.bert.text_encoder.name", {"name": str(folder), "pretrained": True}),
    ):
        path = tiny_suite(models__bert__text_encoder=text_encoder)
        for command in ("validate", "run"):
            assert main([command, str(path), "--out", str(tmp_path / "out")][: 2 if command == "validate" else 4]) == 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert f"{key}: {str(folder)!r} names custom code in" in err and "auto_map: modeling_evil.EvilModel" in err
    path = tiny_suite(text={"tokenizer": str(folder), "max_length": 16})
    assert main(["validate", str(path)]) == 2
    assert "text.tokenizer: " in capsys.readouterr().err
    assert not (folder / "ran").exists()


def test_transformers_never_gets_trust_remote_code(monkeypatch, tmp_path: Path) -> None:
    """Belt and braces: every transformers loader is called with trust_remote_code=False."""
    import transformers

    from harness.data.text import load_tokenizer
    from harness.models.encoders import create_text_model
    from harness.models.specs import TextEncoderSpec
    from harness.suite.schema import TextSpec

    seen = []
    for cls in (transformers.AutoConfig, transformers.AutoModel, transformers.AutoTokenizer):
        for name in ("from_pretrained", "from_config"):
            original = getattr(cls, name, None)
            if original is None:
                continue

            def spy(*args, _original=original, **kwargs):
                seen.append(kwargs.get("trust_remote_code", "absent"))
                return _original(*args, **kwargs)

            monkeypatch.setattr(cls, name, spy)
    folder = _tiny_bert_folder(tmp_path / "bert")
    create_text_model(TextEncoderSpec(name=str(folder), pretrained=True), None, 0, 16, "t")
    create_text_model(TextEncoderSpec(name=str(folder)), None, 0, 16, "t")
    load_tokenizer(TextSpec(tokenizer=str(folder)))
    assert seen and set(seen) == {False}, seen


def test_validate_imports_only_what_the_models_need(tiny_suite) -> None:
    """A text-only suite never imports timm; an image-only one never imports transformers' models. (transformers
    itself imports torchvision and dynamo, so a text-only suite still pays for those.)"""
    cases = {
        "text": ({"bert": {"type": "bert", "text_encoder": TINY_BERT}}, "vqa", "shapes-vqa"),
        "image": ({"vit": {"type": "timm", "image_encoder": TINY_VIT}}, "classification", "shapes-cls"),
    }
    probe = (
        "import sys; from harness.cli import main; rc = main(['validate', sys.argv[1]]); "
        "print(rc, 'timm' in sys.modules, 'torchvision' in sys.modules, 'transformers.modeling_utils' in sys.modules)"
    )
    got = {}
    for name, (models, task_type, dataset) in cases.items():
        task = {"type": task_type, "dataset": dataset, "models": list(models), "baseline": None}
        path = tiny_suite(models=models, tasks={"t": task}, baseline=None)
        done = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=ROOT, capture_output=True, text=True)
        got[name] = done.stdout.split("\n")[-2]
        path.unlink()
    assert got == {"text": "0 False True True", "image": "0 True True False"}


def test_validate_reads_yaml_written_for_the_example(tmp_path: Path) -> None:
    """The README example's numbers are numbers (YAML 1.2), not strings."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Writing a suite\n\n```yaml\n(.*?)```", text, re.S).group(1)
    from harness.suite.loader import read_yaml

    path = tmp_path / "s.yaml"
    path.write_text(block)
    data = read_yaml(path)
    assert data["train"]["lr"] == 1e-4 and isinstance(data["train"]["lr"], float)
    assert yaml.safe_load(block)["train"]["lr"] == "1e-4"  # what PyYAML's YAML 1.1 reading would have given


def test_scoring_on_the_training_split_is_refused(tiny_suite, capsys) -> None:
    task = {"type": "vqa", "dataset": "shapes-vqa", "models": ["bert"], "train_split": "val2014"}
    path = tiny_suite(tasks={"vqa": {**task, "eval_split": "val2014"}})
    assert main(["validate", str(path)]) == 2
    assert "tasks.vqa: train_split and test_split are both 'val2014'" in _err(capsys)


CLAIM = {"model": "xbert", "baseline": "vit", "task": "cls", "delta": 3.2}


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ({**CLAIM, "task": "clss"}, "claims[0].task: unknown task 'clss'. Did you mean: 'cls'?"),
        ({**CLAIM, "model": "bert"}, "claims[0].model: 'bert' is not one of the models of task 'cls' ['vit', 'xbert']"),
        ({**CLAIM, "baseline": "xbert"}, "claims[0]: model and baseline are both 'xbert'"),
        ({**CLAIM, "metric": "top2"}, "claims[0].metric: a classification task has no metric 'top2'."),
        ({**CLAIM, "delta": "15"}, "claims[0].delta: expected points as a number (delta: 3.2) or a relative gain"),
        ({**CLAIM, "delta": "fifteen%"}, "claims[0].delta: expected points as a number"),
        ({**CLAIM, "delta": float("nan")}, "claims[0].delta"),
        ({**CLAIM, "soruce": "x"}, "claims[0].soruce: unknown key 'soruce'. Did you mean: 'source'?"),
    ],
    ids=["task", "model", "same", "metric", "quoted-number", "bad-percent", "nan", "key"],
)
def test_bad_claims(tiny_suite, capsys, claim, expected) -> None:
    path = tiny_suite(claims=[claim])
    assert main(["validate", str(path)]) == 2
    err = _err(capsys)
    assert expected in err, err


def test_claims_are_data(tiny_suite) -> None:
    from harness.suite import load_suite

    path = tiny_suite(claims=[CLAIM, {**CLAIM, "delta": "15%", "metric": "top5", "source": "doc 000"}])
    claims = load_suite(path).claims
    assert (claims[0].amount, claims[0].relative, claims[0].metric) == (3.2, False, None)
    assert (claims[1].amount, claims[1].relative, claims[1].metric) == (15.0, True, "top5")
    assert claims[1].describe("top5") == "xbert beats vit on cls by +15% (relative) of top5"
