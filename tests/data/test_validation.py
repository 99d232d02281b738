"""Validation at load, before any training: every kind of bad dataset gets exit 2 and a message naming the file and
the offending id; earlier finished runs are untouched. With ``on_bad_sample: skip`` the same problems are skipped,
counted and listed in the report."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from tests.conftest import TINY_BERT, TINY_VIT


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.data.synthetic import generate

    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, images=40, seed=0, size=32)
    return root


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _first_val_image(root: Path) -> str:
    return sorted((root / "val2014").glob("*.jpg"))[0].name


def _drop_annotation(root: Path) -> None:
    _edit_json(root / "v2_mscoco_val2014_annotations.json", lambda d: d["annotations"].pop(0))


def _duplicate_question(root: Path) -> None:
    _edit_json(root / "v2_OpenEnded_mscoco_val2014_questions.json", lambda d: d["questions"].append(d["questions"][0]))


def _unknown_caption(root: Path) -> None:
    _edit_json(
        root / "annotations" / "captions_val2014.json",
        lambda d: d["annotations"].append({"id": 987654, "image_id": 999999, "caption": "a red circle"}),
    )


def _no_iscrowd(root: Path) -> None:
    _edit_json(root / "annotations" / "instances_val2014.json", lambda d: d["annotations"][0].pop("iscrowd"))


def _corrupt_image(root: Path) -> None:
    (root / "val2014" / _first_val_image(root)).write_bytes(b"\xff\xd8 this is not a jpeg")


def _missing_image(root: Path) -> None:
    (root / "val2014" / _first_val_image(root)).unlink()


def _missing_file(root: Path) -> None:
    (root / "v2_mscoco_val2014_annotations.json").unlink()


# (id, task, corruption, expected parts of the one-line message)
CASES = [
    ("missing-file", "vqa", _missing_file, ["VQA v2 annotations file v2_mscoco_val2014_annotations.json not found"]),
    (
        "missing-image",
        "vqa",
        _missing_image,
        [
            "v2_OpenEnded_mscoco_val2014_questions.json: image id 29: image file "
            "val2014/COCO_val2014_000000000029.jpg is missing"
        ],
    ),
    (
        "duplicate-id",
        "vqa",
        _duplicate_question,
        ["v2_OpenEnded_mscoco_val2014_questions.json: question id 29000: duplicate question id"],
    ),
    (
        "question-without-annotation",
        "vqa",
        _drop_annotation,
        [
            "v2_mscoco_val2014_annotations.json: question id 29000: question "
            "(from v2_OpenEnded_mscoco_val2014_questions.json) has no annotation"
        ],
    ),
    (
        "caption-of-unknown-image",
        "ret",
        _unknown_caption,
        ["captions_val2014.json: caption id 987654: caption of unknown image id 999999"],
    ),
    ("undecodable-image", "vqa", _corrupt_image, ["COCO_val2014_000000000029.jpg: cannot decode image"]),
    ("no-iscrowd", "ml", _no_iscrowd, ["instances_val2014.json: annotation id", "has no 'iscrowd' field"]),
]

TASKS = {
    "vqa": {"type": "vqa", "dataset": "vqa", "models": ["xbert"], "answer_min_count": 1},
    "ret": {
        "type": "retrieval",
        "dataset": "coco",
        "models": ["xbert"],
        "train_split": "train2014",
        "eval_split": "val2014",
        "k_test": 2,
        "embed_dim": 8,
    },
    "ml": {"type": "multilabel", "dataset": "coco", "models": ["vit"]},
}


def _suite(tmp_path: Path, root: Path, task: str, policy: str = "error", seeds: tuple[int, ...] = (0,)) -> Path:
    suite = {
        "name": "bad",
        "seeds": list(seeds),
        "hardware": {"device": "cpu", "threads": 2},
        "train": {"steps": 2, "batch_size": 8},
        "image": {"size": 16},
        "text": {"tokenizer": "wordpiece", "vocab_size": 120, "max_length": 16},
        "datasets": {
            "vqa": {"kind": "vqa2", "path": str(root), "on_bad_sample": policy},
            "coco": {"kind": "coco", "path": str(root), "on_bad_sample": policy},
        },
        "models": {
            "vit": {"type": "timm", "image_encoder": TINY_VIT},
            "xbert": {"type": "xbert", "image_encoder": TINY_VIT, "text_encoder": TINY_BERT},
        },
        "tasks": {task: TASKS[task]},
    }
    path = tmp_path / f"{task}-{policy}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("task", "corrupt", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_dataset_stops_before_training(synth: Path, tmp_path: Path, capsys, task, corrupt, expected) -> None:
    root = tmp_path / "data"
    shutil.copytree(synth, root)
    out = tmp_path / "out"
    # a finished run from earlier, on the intact data
    assert main(["run", str(_suite(tmp_path, root, task)), "--out", str(out)]) == 0
    before = _tree_digest(out)
    capsys.readouterr()
    corrupt(root)
    # A second seed must train (a run whose data is intact and already finished is reused without reading images).
    assert main(["run", str(_suite(tmp_path, root, task, seeds=(0, 1))), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]  # progress lines come before the error line
    assert line.startswith("xmbench: error: "), err
    for part in expected:
        assert part in line, line
    assert _tree_digest(out) == before


@pytest.mark.parametrize(
    ("task", "corrupt"),
    [(c[1], c[2]) for c in CASES if c[0] != "missing-file"],
    ids=[c[0] for c in CASES if c[0] != "missing-file"],
)
def test_skip_counts_and_lists_bad_samples(synth: Path, tmp_path: Path, task, corrupt) -> None:
    root = tmp_path / "data"
    shutil.copytree(synth, root)
    corrupt(root)
    out = tmp_path / "out"
    assert main(["run", str(_suite(tmp_path, root, task, policy="skip")), "--out", str(out)]) == 0
    skipped = json.loads(next((out / "runs").rglob("skipped.json")).read_text())
    assert skipped["count"] >= 1 and len(skipped["samples"]) == skipped["count"]
    md = (out / "report.md").read_text()
    assert "## Skipped samples" in md and f"**{skipped['count']} sample(s) skipped**" in md
    assert skipped["samples"][0] in md


def test_missing_file_is_not_skippable(synth: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    shutil.copytree(synth, root)
    _missing_file(root)
    assert main(["run", str(_suite(tmp_path, root, "vqa", policy="skip")), "--out", str(tmp_path / "out")]) == 2
    assert "v2_mscoco_val2014_annotations.json not found" in capsys.readouterr().err
