"""Dataset kinds end to end through DataSource: LAVIS/BLIP files, COCO 2017, Flickr30k, image-root discovery,
fingerprints, and switching a suite from synthetic to real data by changing only ``path``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.data import coco
from harness.data.issues import SampleIssues
from harness.data.sources import DataSource, Splits
from harness.errors import UserError
from harness.suite.schema import CocoDataset, Flickr30kDataset, Vqa2Dataset


def _blank(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.data.synthetic import generate

    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, images=40, seed=1, size=32)
    return root


def test_lavis_eval_and_train_formats(tmp_path: Path) -> None:
    for name in ("val2014/a.jpg", "val2014/b.jpg", "train2014/c.jpg"):
        _blank(tmp_path / name)
    eval_file = tmp_path / "coco_karpathy_test.json"
    eval_file.write_text(
        json.dumps(
            [
                {"image": "val2014/a.jpg", "caption": ["a 0", "a 1"]},
                {"image": "val2014/b.jpg", "caption": ["b 0", "b 1", "b 2"]},
            ]
        )
    )
    split = coco.load_lavis(eval_file, tmp_path, SampleIssues("d"))
    assert split.texts == ["a 0", "a 1", "b 0", "b 1", "b 2"]
    assert split.img2txt == [[0, 1], [2, 3, 4]] and split.txt2img == [0, 0, 1, 1, 1]
    train_file = tmp_path / "coco_karpathy_train.json"
    train_file.write_text(
        json.dumps(
            [
                {"image": "train2014/c.jpg", "caption": "c 0", "image_id": "coco_3"},
                {"image": "val2014/a.jpg", "caption": "a 0", "image_id": "coco_1"},
                {"image": "train2014/c.jpg", "caption": "c 1", "image_id": "coco_3"},
            ]
        )
    )
    split = coco.load_lavis(train_file, tmp_path, SampleIssues("d"))
    assert split.image_ids == ["coco_3", "coco_1"] and split.img2txt == [[0, 1], [2]]
    assert split.texts == ["c 0", "c 1", "a 0"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(UserError, match=r"bad.json: expected a list, got an object; is this a LAVIS retrieval"):
        coco.load_lavis(bad, tmp_path, SampleIssues("d"))


def test_lavis_layout_is_found_when_there_is_no_karpathy_file(synth: Path, tmp_path: Path) -> None:
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "val", "test"):
        shutil.copy(synth / "annotations" / f"coco_karpathy_{split}.json", root / "annotations")
    (root / "images").symlink_to(synth, target_is_directory=True)  # LAVIS keeps images under images/
    source = DataSource("coco", CocoDataset(kind="coco", path=str(root)), root)
    lavis = source.load("retrieval", "test")
    karpathy = DataSource("k", CocoDataset(kind="coco", path=str(synth)), synth).load("retrieval", "test")
    assert lavis.texts == karpathy.texts and lavis.img2txt == karpathy.img2txt
    assert [p.name for p in lavis.paths] == [p.name for p in karpathy.paths]
    # LAVIS train already contains restval
    train = source.load("retrieval", "train")
    assert len(train.paths) == len(
        DataSource("k", CocoDataset(kind="coco", path="x"), synth).load("retrieval", "train").paths
    )


def test_restval_folding(synth: Path) -> None:
    folded = DataSource("c", CocoDataset(kind="coco", path="x"), synth).load("retrieval", "train")
    plain = DataSource("c", CocoDataset(kind="coco", path="x", fold_restval=False), synth).load("retrieval", "train")
    manifest = json.loads((synth / "xmbench_synthetic.json").read_text())
    karpathy = manifest["counts"]["karpathy"]
    assert len(plain.paths) == karpathy["train"]
    assert len(folded.paths) == karpathy["train"] + karpathy["restval"]


def test_flickr30k_karpathy_and_lavis(synth: Path, tmp_path: Path) -> None:
    root = synth / "flickr30k"
    test = DataSource("f", Flickr30kDataset(kind="flickr30k", path="x"), root).load("retrieval", "test")
    assert all(p.parent.name == "flickr30k-images" for p in test.paths)
    only_lavis = tmp_path / "flickr"
    shutil.copytree(root / "annotations", only_lavis / "annotations")
    (only_lavis / "flickr30k-images").symlink_to(root / "flickr30k-images", target_is_directory=True)
    lavis = DataSource("f", Flickr30kDataset(kind="flickr30k", path="x"), only_lavis).load("retrieval", "test")
    assert lavis.texts == test.texts and [p.name for p in lavis.paths] == [p.name for p in test.paths]


def test_coco_2017_layout_through_the_karpathy_file(synth: Path, tmp_path: Path) -> None:
    root = tmp_path / "coco2017"
    shutil.copy(synth / "dataset_coco.json", root / "dataset_coco.json") if root.exists() else None
    root.mkdir()
    shutil.copy(synth / "dataset_coco.json", root / "dataset_coco.json")
    entries = json.loads((synth / "dataset_coco.json").read_text())["images"]
    for i, e in enumerate(entries):  # 2017 re-split: same images, new folders and names
        folder = "val2017" if i % 3 == 0 else "train2017"
        (root / folder).mkdir(exist_ok=True)
        shutil.copy(synth / e["filepath"] / e["filename"], root / folder / f"{e['cocoid']:012d}.jpg")
    source = DataSource("c", CocoDataset(kind="coco", path="x", year=2017), root)
    test = source.load("retrieval", "test")
    k2014 = DataSource("c", CocoDataset(kind="coco", path="x"), synth).load("retrieval", "test")
    assert test.image_ids == k2014.image_ids and test.texts == k2014.texts
    assert {p.parent.name for p in test.paths} <= {"train2017", "val2017"}
    splits = source.splits("multilabel")
    assert splits.names == ("train2017", "train2017[held-out 10%]", "val2017")  # no val annotations: held out


def test_vqa_images_found_beside_the_questions(synth: Path, tmp_path: Path) -> None:
    root = tmp_path / "vqa"
    root.mkdir()
    for f in synth.glob("v2_*.json"):
        shutil.copy(f, root)
    with pytest.raises(UserError, match=r"COCO images for VQA split 'val2014' not found.*set the dataset's 'images'"):
        DataSource("v", Vqa2Dataset(kind="vqa2", path="x"), root).load("vqa", "val2014")
    (tmp_path / "coco").symlink_to(synth, target_is_directory=True)  # ROOT/../coco, a common layout
    split = DataSource("v", Vqa2Dataset(kind="vqa2", path="x"), root).load("vqa", "val2014")
    assert split.paths[0].parent.name == "val2014"


def test_fingerprint_follows_annotations_and_image_list(synth: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(synth, root)

    def fp() -> str:
        return DataSource("v", Vqa2Dataset(kind="vqa2", path="x"), root).fingerprint(
            "vqa", Splits("train2014", None, "val2014", 0.1)
        )

    first = fp()
    assert fp() == first  # stable
    # files this task does not read do not matter
    (root / "annotations" / "captions_val2014.json").write_text("{}")
    assert fp() == first
    ann = root / "v2_mscoco_val2014_annotations.json"
    data = json.loads(ann.read_text())
    data["annotations"][0]["multiple_choice_answer"] = "purple"
    ann.write_text(json.dumps(data))
    assert fp() != first


def test_switch_from_synthetic_to_a_directory_by_changing_only_path(tmp_path: Path, xm_cache: Path) -> None:
    """The same suite on '@synthetic' and on the same files in a directory gives identical numbers: the synthetic
    data goes through the very loaders that read real COCO, Flickr30k and VQA v2 folders."""
    from harness.cli import main
    from tests.conftest import TINY_BERT, TINY_VIT

    synthetic = {"images": 40, "seed": 2, "size": 32}
    copy = tmp_path / "copy"
    assert main(["data", "synth", "--out", str(copy), "--images", "40", "--seed", "2", "--size", "32"]) == 0
    results = {}
    for label, paths in {
        "synthetic": ("@synthetic",) * 3,
        "directory": (str(copy), str(copy / "flickr30k"), str(copy)),
    }.items():
        suite = {
            "name": label,
            "seeds": [0],
            "hardware": {"device": "cpu", "threads": 2},
            "train": {"steps": 2, "batch_size": 8},
            "image": {"size": 16},
            "text": {"tokenizer": "wordpiece", "vocab_size": 120, "max_length": 16},
            "synthetic": synthetic,
            "datasets": {
                "coco": {"kind": "coco", "path": paths[0]},
                "flickr": {"kind": "flickr30k", "path": paths[1]},
                "vqa": {"kind": "vqa2", "path": paths[2]},
            },
            "models": {"xbert": {"type": "xbert", "image_encoder": TINY_VIT, "text_encoder": TINY_BERT}},
            "tasks": {
                "coco": {"type": "retrieval", "dataset": "coco", "models": ["xbert"], "k_test": 2, "embed_dim": 8},
                "flickr": {"type": "retrieval", "dataset": "flickr", "models": ["xbert"], "k_test": 2, "embed_dim": 8},
                "vqa": {"type": "vqa", "dataset": "vqa", "models": ["xbert"], "answer_min_count": 1},
            },
        }
        path = tmp_path / f"{label}.yaml"
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        out = tmp_path / label
        assert main(["run", str(path), "--out", str(out)]) == 0
        frame = pd.read_csv(out / "results.csv")
        results[label] = frame[["task", "model", "seed", "metric", "value"]]
    pd.testing.assert_frame_equal(results["synthetic"], results["directory"])


def test_vqa_test_dev_writes_the_official_results_file(synth: Path, tmp_path: Path) -> None:
    from harness.cli import main
    from tests.conftest import TINY_BERT, TINY_VIT

    root = tmp_path / "vqa"
    shutil.copytree(synth, root)
    questions = json.loads((root / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    questions["data_subtype"] = "test-dev2015"
    (root / "v2_OpenEnded_mscoco_test-dev2015_questions.json").write_text(json.dumps(questions))
    (root / "test2015").mkdir()
    for image in (root / "val2014").glob("*.jpg"):
        shutil.copy(image, root / "test2015" / image.name.replace("val2014", "test2015"))
    suite = {
        "name": "testdev",
        "seeds": [0],
        "hardware": {"device": "cpu", "threads": 2},
        "train": {"steps": 2, "batch_size": 8},
        "image": {"size": 16},
        "text": {"tokenizer": "wordpiece", "vocab_size": 120, "max_length": 16},
        "datasets": {"vqa": {"kind": "vqa2", "path": str(root)}},
        "models": {"xbert": {"type": "xbert", "image_encoder": TINY_VIT, "text_encoder": TINY_BERT}},
        "tasks": {
            "vqa": {
                "type": "vqa",
                "dataset": "vqa",
                "models": ["xbert"],
                "answer_min_count": 1,
                "eval_split": "test-dev2015",
            }
        },
    }
    path = tmp_path / "testdev.yaml"
    path.write_text(yaml.safe_dump(suite))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    results = json.loads(next((out / "runs").rglob("vqa_results.json")).read_text())
    assert [r["question_id"] for r in results] == [q["question_id"] for q in questions["questions"]]
    assert set(results[0]) == {"question_id", "answer"}
    vocab = json.loads(next((out / "runs").rglob("answer_vocab.json")).read_text())
    assert all(r["answer"] in vocab for r in results)
    assert json.loads(next((out / "runs").rglob("metrics.json")).read_text())["metrics"] == {}
    assert "## Results files for submission" in (out / "report.md").read_text()


def test_held_out_val_is_whole_images_and_the_same_in_any_file_order(synth: Path, tmp_path: Path) -> None:
    src = DataSource("v", Vqa2Dataset(kind="vqa2", path="x"), synth)
    splits = src.splits("vqa", val_fraction=0.25)
    train, val, test = src.records("vqa", splits)
    full = src.load("vqa", "train2014")
    assert len(val.paths) == round(0.25 * len(full.paths))  # a quarter of the images...
    assert set(train.paths).isdisjoint(val.paths) and set(train.paths) | set(val.paths) == set(full.paths)
    assert len(train.questions) + len(val.questions) == len(full.questions)  # ...with every question about them
    assert test.paths == src.load("vqa", "val2014").paths
    # shuffled annotation files hold out exactly the same images
    root = tmp_path / "shuffled"
    shutil.copytree(synth, root)
    for name in ("v2_OpenEnded_mscoco_train2014_questions.json", "v2_mscoco_train2014_annotations.json"):
        data = json.loads((root / name).read_text())
        key = "questions" if "questions" in name else "annotations"
        data[key].reverse()
        (root / name).write_text(json.dumps(data))
    other = DataSource("v", Vqa2Dataset(kind="vqa2", path="x"), root)
    _, val2, _ = other.records("vqa", other.splits("vqa", val_fraction=0.25))
    assert sorted(p.name for p in val2.paths) == sorted(p.name for p in val.paths)


def test_default_splits_per_kind(synth: Path) -> None:
    vqa = DataSource("v", Vqa2Dataset(kind="vqa2", path="x"), synth).splits("vqa")
    assert vqa.names == ("train2014", "train2014[held-out 10%]", "val2014")  # VQA: held-out part of train
    coco = DataSource("c", CocoDataset(kind="coco", path="x"), synth)
    assert coco.splits("retrieval").names == ("train", "val", "test")  # Karpathy
    raw = coco.splits("retrieval", "train2014", test="val2014")
    assert raw.val is None and raw.val_fraction == 0.1  # raw captions files have no val split
    with pytest.raises(UserError, match="val_split is 'test', the same as its test_split"):
        coco.splits("retrieval", val="test")
