"""Loaders on files in the exact published formats: real COCO/VQA fixtures, hand-written Karpathy files, and the
synthetic dataset read through the same code."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from harness.data import coco, imagefolder, vqa
from harness.data.image_cache import decode_images
from harness.data.images import safe_join
from harness.data.issues import SampleIssues
from harness.errors import UserError
from tests.conftest import find_fixtures

FIXTURES = find_fixtures()


def _blank(path: Path, size: tuple[int, int] = (8, 6)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (128, 128, 128)).save(path)


def _issues(policy: str = "error") -> SampleIssues:
    return SampleIssues("d", policy)


@pytest.fixture
def vqa_root(tmp_path: Path) -> Path:
    """The VQA fixture under the official file names of the val2014 split, with blank COCO images."""
    shutil.copy(FIXTURES / "vqa" / "v2_sample_questions.json", tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json")
    shutil.copy(FIXTURES / "vqa" / "v2_sample_annotations.json", tmp_path / "v2_mscoco_val2014_annotations.json")
    for image_id in (262148, 1, 2):
        _blank(tmp_path / "val2014" / f"COCO_val2014_{image_id:012d}.jpg")
    return tmp_path


def test_vqa_fixture_loads(vqa_root: Path) -> None:
    split = vqa.load_vqa(vqa_root, vqa_root, "val2014", _issues())
    assert split.question_ids == [262148000, 1, 2, 3, 4]
    assert split.image_ids == [262148, 1, 2]
    assert split.image_index == [0, 1, 1, 2, 2]
    assert split.paths[0] == vqa_root / "val2014" / "COCO_val2014_000000262148.jpg"
    assert all(len(a) == 10 for a in split.answers)
    assert split.answer_types[0] == "other" and split.question_types[0] == "where is the"


def test_vqa_soft_targets_from_counts(vqa_root: Path) -> None:
    split = vqa.load_vqa(vqa_root, vqa_root, "val2014", _issues())
    vocab = vqa.build_answer_vocab(split, min_count=1)
    targets = vqa.soft_targets(split.answers, vocab)
    raw = json.loads((vqa_root / "v2_mscoco_val2014_annotations.json").read_text())["annotations"][0]
    from harness.metrics.vqa import normalize_answer

    counts: dict[str, int] = defaultdict(int)
    for a in raw["answers"]:
        counts[normalize_answer(a["answer"])] += 1
    table = {1: 0.3, 2: 0.6, 3: 0.9}
    for answer, j in ((a, vocab.index(a)) for a in vocab):
        expected = 0.0 if counts[answer] == 0 else table.get(counts[answer], 1.0)
        assert targets[0, j] == pytest.approx(expected)


def test_vqa_answer_vocab_threshold(vqa_root: Path) -> None:
    split = vqa.load_vqa(vqa_root, vqa_root, "val2014", _issues())
    with pytest.raises(UserError, match="answer vocabulary is empty: no answer occurs 9\\+ times in 5 questions"):
        vqa.build_answer_vocab(split, min_count=9)
    assert len(vqa.build_answer_vocab(split, min_count=1, top_k=2)) == 2


def test_vqa_question_without_annotation(vqa_root: Path) -> None:
    path = vqa_root / "v2_mscoco_val2014_annotations.json"
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["question_id"] != 3]
    path.write_text(json.dumps(data))
    with pytest.raises(
        UserError,
        match=r"annotations.json: question id 3: question \(from v2_OpenEnded_mscoco_val2014_questions.json\) ",
    ):
        vqa.load_vqa(vqa_root, vqa_root, "val2014", _issues())


def test_vqa_missing_questions_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"v2_OpenEnded_mscoco_train2014_questions\.json not found"):
        vqa.load_vqa(tmp_path, tmp_path, "train2014", _issues())


def test_vqa_test_split_without_annotations(vqa_root: Path) -> None:
    shutil.copy(
        vqa_root / "v2_OpenEnded_mscoco_val2014_questions.json",
        vqa_root / "v2_OpenEnded_mscoco_test-dev2015_questions.json",
    )
    for image_id in (262148, 1, 2):
        _blank(vqa_root / "test2015" / f"COCO_test2015_{image_id:012d}.jpg")
    split = vqa.load_vqa(vqa_root, vqa_root, "test-dev2015", _issues())
    assert split.answers is None
    assert split.paths[0].name == "COCO_test2015_000000262148.jpg"


def test_coco_instances_fixture_multilabel(tmp_path: Path) -> None:
    path = FIXTURES / "coco" / "instances_val2014_100.json"
    raw = json.loads(path.read_text())
    for im in raw["images"]:  # blank images of the listed sizes
        _blank(tmp_path / "val2014" / im["file_name"], (im["width"], im["height"]))
    split = coco.load_instances(path, tmp_path, "val2014", _issues())
    assert split.targets.shape == (100, 80)
    assert split.category_ids == sorted(c["id"] for c in raw["categories"])
    assert split.category_ids[0] == 1 and split.category_ids[-1] == 90
    assert split.ids == sorted(im["id"] for im in raw["images"])
    # independent computation: the set of category ids per image
    truth: dict[int, set[int]] = defaultdict(set)
    for ann in raw["annotations"]:
        truth[ann["image_id"]].add(ann["category_id"])
    for row, image_id in enumerate(split.ids):
        assert {split.category_ids[j] for j in np.flatnonzero(split.targets[row])} == truth[image_id]
    assert split.paths[0].parent == tmp_path / "val2014"
    images = decode_images(split.paths[:3], 16)
    assert tuple(images.shape) == (3, 3, 16, 16) and int(images[0, 0, 0, 0]) == 128


def test_coco_without_iscrowd_is_explained(tmp_path: Path) -> None:
    path = FIXTURES / "coco" / "coco_sample_no_iscrowd.json"
    for im in json.loads(path.read_text())["images"]:
        _blank(tmp_path / "val2014" / im["file_name"])
    with pytest.raises(UserError, match=r"coco_sample_no_iscrowd.json: annotation id \d+: has no 'iscrowd' field"):
        coco.load_instances(path, tmp_path, "val2014", _issues())
    issues = _issues("skip")
    split = coco.load_instances(path, tmp_path, "val2014", issues)
    assert len(split.ids) == 3 and len(issues.skipped) == sum(
        1 for a in json.loads(path.read_text())["annotations"] if "iscrowd" not in a
    )


KARPATHY = {
    "dataset": "coco",
    "images": [
        {
            "filepath": "val2014",
            "filename": "a.jpg",
            "imgid": 0,
            "split": "test",
            "cocoid": 10,
            "sentences": [{"raw": f"a {i}", "tokens": ["a"], "imgid": 0, "sentid": i} for i in range(5)],
        },
        {
            "filepath": "train2014",
            "filename": "b.jpg",
            "imgid": 1,
            "split": "train",
            "cocoid": 11,
            "sentences": [{"raw": "b 0", "tokens": ["b"], "imgid": 1, "sentid": 5}],
        },
        {
            "filepath": "val2014",
            "filename": "c.jpg",
            "imgid": 2,
            "split": "restval",
            "cocoid": 12,
            "sentences": [{"raw": "c 0", "tokens": ["c"], "imgid": 2, "sentid": 6}],
        },
        {
            "filepath": "val2014",
            "filename": "d.jpg",
            "imgid": 3,
            "split": "test",
            "cocoid": 13,
            "sentences": [{"raw": f"d {i}", "tokens": ["d"], "imgid": 3, "sentid": 7 + i} for i in range(6)],
        },
    ],
}


def _karpathy_images(root: Path) -> None:
    for e in KARPATHY["images"]:
        _blank(root / e["filepath"] / e["filename"])


def test_karpathy_splits_and_text_numbering(tmp_path: Path) -> None:
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps(KARPATHY))
    _karpathy_images(tmp_path)
    test = coco.load_karpathy(path, tmp_path, {"test"}, _issues())
    assert test.image_ids == [10, 13]
    assert test.texts[:2] == ["a 0", "a 1"] and len(test.texts) == 11
    assert test.img2txt == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]]
    assert test.txt2img == [0] * 5 + [1] * 6
    assert test.paths[1] == tmp_path / "val2014" / "d.jpg"
    train = coco.load_karpathy(path, tmp_path, {"train", "restval"}, _issues())
    assert train.image_ids == [11, 12]
    assert coco.load_karpathy(path, tmp_path, {"train"}, _issues()).image_ids == [11]
    with pytest.raises(UserError, match=r"no images in split\(s\) \['val'\]; the file has splits"):
        coco.load_karpathy(path, tmp_path, {"val"}, _issues())


def test_annotation_file_names_stay_inside_root(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="resolves outside the data root"):
        safe_join(tmp_path, "../../etc/passwd", "ann.json")
    data = dict(KARPATHY, images=[dict(KARPATHY["images"][0], filepath="..", filename="../secret.jpg")])
    (tmp_path / "dataset_coco.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="outside the data root"):
        coco.load_karpathy(tmp_path / "dataset_coco.json", tmp_path, {"test"}, _issues())


def _png(path: Path, color=(255, 0, 0)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), color).save(path)


def test_imagefolder_stratified_split_is_deterministic(tmp_path: Path) -> None:
    for c in ("cat", "dog"):
        for i in range(10):
            _png(tmp_path / c / f"{i}.png")
    splits = {s: imagefolder.load_imagefolder(tmp_path, s, (0.6, 0.2, 0.2), seed=3) for s in ("train", "val", "test")}
    assert [len(splits[s].paths) for s in ("train", "val", "test")] == [12, 4, 4]
    assert sorted(set(splits["val"].labels)) == [0, 1] and splits["train"].classes == ["cat", "dog"]
    all_paths = [p for s in splits.values() for p in s.paths]
    assert len(set(all_paths)) == 20
    again = imagefolder.load_imagefolder(tmp_path, "val", (0.6, 0.2, 0.2), seed=3)
    assert again.paths == splits["val"].paths
    other = imagefolder.load_imagefolder(tmp_path, "val", (0.6, 0.2, 0.2), seed=4)
    assert other.paths != splits["val"].paths


def test_imagefolder_with_split_folders(tmp_path: Path) -> None:
    _png(tmp_path / "train" / "a" / "1.png")
    _png(tmp_path / "train" / "b" / "1.png")
    _png(tmp_path / "test" / "b" / "2.jpg")
    split = imagefolder.load_imagefolder(tmp_path, "test", (0.7, 0.15, 0.15), 0)
    assert split.labels == [1] and split.classes == ["a", "b"] and split.ids == ["test/b/2.jpg"]


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"bad.jpg: cannot decode image"):
        decode_images([bad], 8)


def test_synthetic_data_through_the_real_loaders(tmp_path: Path) -> None:
    from harness.data.synthetic import generate

    root = tmp_path / "synth"
    generate(root, images=40, seed=0, size=32)
    train = vqa.load_vqa(root, root, "train2014", _issues())
    assert len(train.question_ids) == 3 * len(train.image_ids) == 3 * 28
    assert all(len(a) == 10 for a in train.answers)
    images = decode_images(train.paths, 16)
    assert tuple(images.shape) == (28, 3, 16, 16)
    inst = coco.load_instances(root / "annotations" / "instances_val2014.json", root, "val2014", _issues())
    assert inst.targets.shape == (12, 5) and inst.targets[:, -1].sum() == 0  # 'star' never appears
    caps = coco.load_captions(root / "annotations" / "captions_val2014.json", root, "val2014", _issues())
    assert all(len(t) == 5 for t in caps.img2txt)
    kp = coco.load_karpathy(root / "dataset_coco.json", root, {"test"}, _issues())
    assert set(kp.image_ids) <= set(caps.image_ids)
    cls = imagefolder.load_imagefolder(root / "imagefolder", "train", (0.7, 0.15, 0.15), 0)
    assert cls.classes == ["circle", "cross", "square", "triangle"]
