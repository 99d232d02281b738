"""The dataset loaders read the same schemas as ``xmbench score`` (``harness.data.formats``): a malformed file is an
error whatever ``on_bad_sample`` says; per-record problems (including VQA answers the official accuracy cannot score)
are bad samples: an error under ``on_bad_sample: error``, skipped and counted under ``skip``."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.data import coco, formats, vqa
from harness.data.issues import SampleIssues
from harness.data.records import read_json
from harness.errors import UserError
from tests.conftest import TINY_BERT, TINY_VIT, find_fixtures

FIX = find_fixtures()
ANN_NAME = "v2_mscoco_val2014_annotations.json"
Q_NAME = "v2_OpenEnded_mscoco_val2014_questions.json"


def _blank(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (128, 128, 128)).save(path)


@pytest.fixture
def vqa_root(tmp_path: Path) -> Path:
    shutil.copy(FIX / "vqa" / "v2_sample_questions.json", tmp_path / Q_NAME)
    shutil.copy(FIX / "vqa" / "v2_sample_annotations.json", tmp_path / ANN_NAME)
    for image_id in (262148, 1, 2):
        _blank(tmp_path / "val2014" / f"COCO_val2014_{image_id:012d}.jpg")
    return tmp_path


def _edit(path: Path, fn: Callable) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _ann(qid: int) -> Callable[[dict], dict]:
    return lambda d: next(a for a in d["annotations"] if a["question_id"] == qid)


# (id, edit of the annotations, question id, reason)
BAD_ANSWERS = [
    ("nine", lambda d: _ann(3)(d)["answers"].pop(), 3, "annotation has 9 answers; the official VQA accuracy assumes"),
    ("none", lambda d: _ann(3)(d).update(answers=[]), 3, "annotation has no answers"),
    ("no-key", lambda d: _ann(2)(d).pop("answers"), 2, "annotation has no answers"),
    ("no-answer-id", lambda d: _ann(4)(d)["answers"][7].pop("answer_id"), 4, "answers[7]: missing key 'answer_id'"),
    (
        "repeated-answer-id",
        lambda d: _ann(1)(d)["answers"][9].update(answer_id=1),
        1,
        "answers[9] repeats answer_id 1 of answers[0]",
    ),
]


@pytest.mark.parametrize(("edit", "qid", "reason"), [b[1:] for b in BAD_ANSWERS], ids=[b[0] for b in BAD_ANSWERS])
def test_vqa_answers_are_bad_samples(vqa_root: Path, edit, qid: int, reason: str) -> None:
    _edit(vqa_root / ANN_NAME, edit)
    with pytest.raises(UserError) as info:
        vqa.load_vqa(vqa_root, vqa_root, "val2014", SampleIssues("vqa"))
    message = str(info.value)
    assert message.startswith(f"{vqa_root / ANN_NAME}: question id {qid}: {reason}")
    assert "set datasets.vqa.on_bad_sample: skip" in message and "\n" not in message
    issues = SampleIssues("vqa", "skip")
    split = vqa.load_vqa(vqa_root, vqa_root, "val2014", issues)
    assert split.question_ids == [q for q in (262148000, 1, 2, 3, 4) if q != qid]
    assert [s.sample for s in issues.skipped] == [f"question id {qid}"]
    assert issues.skipped[0].reason.startswith(reason)
    assert all(len(a) == 10 for a in split.answers)


# (id, file, edit, expected message after "<file>: ")
STRUCTURAL = [
    (
        "question-without-text",
        Q_NAME,
        lambda d: d["questions"][1].pop("question"),
        "questions[1]: missing key 'question' (question_id 1)",
    ),
    (
        "answers-a-string",
        ANN_NAME,
        lambda d: d["annotations"][0].update(answers="yes"),
        'annotations[0].answers: expected a list, got "yes" (question_id 262148000)',
    ),
    (
        "answer-a-number",
        ANN_NAME,
        lambda d: d["annotations"][2]["answers"][4].update(answer=2),
        "annotations[2].answers[4].answer: expected a string, got 2 (question_id 2)",
    ),
    (
        "annotations-missing",
        ANN_NAME,
        lambda d: d.pop("annotations"),
        "missing key 'annotations'; is this a VQA annotations file? Expected",
    ),
]


@pytest.mark.parametrize("policy", ["error", "skip"])
@pytest.mark.parametrize(("name", "edit", "expected"), [s[1:] for s in STRUCTURAL], ids=[s[0] for s in STRUCTURAL])
def test_malformed_vqa_files_stop_under_any_policy(vqa_root: Path, name: str, edit, expected: str, policy: str) -> None:
    _edit(vqa_root / name, edit)
    with pytest.raises(UserError) as info:
        vqa.load_vqa(vqa_root, vqa_root, "val2014", SampleIssues("vqa", policy))
    assert str(info.value).startswith(f"{vqa_root / name}: {expected}")


KARPATHY = {
    "images": [
        {"filepath": "val2014", "filename": "a.jpg", "split": "test", "cocoid": 10, "sentences": [{"raw": "a"}]},
        {"filepath": "val2014", "filename": "b.jpg", "split": "test", "cocoid": 11, "sentences": [{"raw": "b"}]},
    ]
}


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_karpathy_without_sentences_is_a_bad_sample_but_a_bad_sentence_is_not(tmp_path: Path) -> None:
    for e in KARPATHY["images"]:
        _blank(tmp_path / e["filepath"] / e["filename"])
    data = copy.deepcopy(KARPATHY)
    data["images"][0].pop("sentences")
    path = _write(tmp_path / "dataset_coco.json", data)
    with pytest.raises(UserError, match=r"dataset_coco.json: image 10: has no sentences; fix the dataset"):
        coco.load_karpathy(path, tmp_path, {"test"}, SampleIssues("d"))
    issues = SampleIssues("d", "skip")
    assert coco.load_karpathy(path, tmp_path, {"test"}, issues).image_ids == [11]
    assert len(issues.skipped) == 1
    data["images"][1]["sentences"] = [{"tokens": ["b"]}]
    _write(path, data)
    with pytest.raises(
        UserError, match=r"dataset_coco.json: images\[1\].sentences\[0\]: missing key 'raw' \(cocoid 11\)"
    ):
        coco.load_karpathy(path, tmp_path, {"test"}, SampleIssues("d", "skip"))


def test_karpathy_locate_gets_the_entry_as_a_dict(tmp_path: Path) -> None:
    _blank(tmp_path / "x" / "10.jpg")
    _blank(tmp_path / "x" / "11.jpg")
    path = _write(tmp_path / "dataset_coco.json", KARPATHY)
    seen = []

    def locate(e: dict) -> str:
        seen.append(e)
        return f"x/{e['cocoid']}.jpg"

    assert coco.load_karpathy(path, tmp_path, {"test"}, SampleIssues("d"), locate=locate).image_ids == [10, 11]
    assert seen[0] == {
        "filepath": "val2014",
        "filename": "a.jpg",
        "split": "test",
        "cocoid": 10,
        "sentences": [{"raw": "a"}],
    }


LAVIS = [{"image": "val2014/a.jpg", "caption": ["a", "b"]}, {"image": "val2014/b.jpg", "caption": ["c"]}]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d[1].update(caption=7),
            r"\[1\]\.caption: expected a string or a list, got 7 \(image 'val2014/b.jpg'\)",
        ),
        (
            lambda d: d[1].update(caption="c"),
            r"\[1\] has a single caption but \[0\] has a caption list; the file mixes",
        ),
        (lambda d: d[0].update(image_id=1.5), r"\[0\]\.image_id: expected an integer or a string, got 1.5"),
    ],
    ids=["caption-number", "mixed", "image-id-float"],
)
def test_malformed_lavis_files_stop(tmp_path: Path, edit, expected: str) -> None:
    data = copy.deepcopy(LAVIS)
    edit(data)
    path = _write(tmp_path / "coco_karpathy_test.json", data)
    with pytest.raises(UserError, match=rf"coco_karpathy_test.json: {expected}"):
        coco.load_lavis(path, tmp_path, SampleIssues("d", "skip"))


def test_malformed_coco_files_stop(tmp_path: Path) -> None:
    instances = json.loads((FIX / "coco" / "instances_val2014_100.json").read_text())
    bad = copy.deepcopy(instances)
    bad["annotations"][2]["bbox"][1] = float("nan")
    path = _write(tmp_path / "instances_val2014.json", bad)  # json.dumps writes the token NaN
    ann_id = instances["annotations"][2]["id"]
    with pytest.raises(
        UserError, match=rf"annotations\[2\]\.bbox\[1\] is NaN \(id {ann_id}\); use finite JSON numbers"
    ):
        coco.load_instances(path, tmp_path, "val2014", SampleIssues("d", "skip"))
    bad = copy.deepcopy(instances)
    del bad["categories"]
    _write(path, bad)
    with pytest.raises(UserError, match=r"missing key 'categories'; is this a COCO instances file\?"):
        coco.load_instances(path, tmp_path, "val2014", SampleIssues("d", "skip"))
    captions = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 5, "image_id": 1}]}
    path = _write(tmp_path / "captions_val2014.json", captions)
    with pytest.raises(UserError, match=r"captions_val2014.json: annotations\[0\]: missing key 'caption' \(id 5\)"):
        coco.load_captions(path, tmp_path, "val2014", SampleIssues("d", "skip"))


def test_instance_labels_validates_a_dict_without_changing_it() -> None:
    data = json.loads((FIX / "coco" / "instances_val2014_100.json").read_text())
    before = copy.deepcopy(data)
    images, _, categories = coco.instance_labels(data, "gt", SampleIssues("t"))
    assert len(images) == 100 and len(categories) == 80 and data == before
    data["annotations"][0]["image_id"] = "x"
    with pytest.raises(UserError, match=r'^gt: annotations\[0\]\.image_id: expected an integer, got "x" \(id \d+\)$'):
        coco.instance_labels(data, "gt", SampleIssues("t"))


def test_read_json_refuses_what_is_not_json_numbers_or_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b'{"x": [1, Infinity]}')
    with pytest.raises(UserError, match=r"a.json: x\[1\] is inf; use finite JSON numbers"):
        read_json(tmp_path / "a.json", "settings file")
    (tmp_path / "b.json").write_bytes('{"x": "é"}'.encode("utf-16"))
    with pytest.raises(UserError, match=r"b.json: settings file is not UTF-8 text \(byte 0, line 1\)"):
        read_json(tmp_path / "b.json", "settings file")
    (tmp_path / "c.json").write_bytes(b'\xef\xbb\xbf{"x": 1}')  # a UTF-8 byte-order mark is fine, as for json.load
    assert read_json(tmp_path / "c.json", "settings file") == {"x": 1}


def test_schemas_keep_only_the_declared_keys() -> None:
    raw = json.dumps(
        {"annotations": [json.loads((FIX / "vqa" / "v2_sample_annotations.json").read_text())["annotations"][0]]}
    )
    ann = formats.decode(raw.encode(), formats.VQA_ANNOTATIONS, "a.json").annotations[0]
    assert ann.question_id == 262148000 and len(ann.answers) == 10
    assert not hasattr(ann.answers[0], "answer_confidence")


def _suite(tmp_path: Path, policy: str) -> Path:
    suite = {
        "name": "fmt",
        "seeds": [0],
        "hardware": {"device": "cpu", "threads": 2},
        "train": {"steps": 2, "batch_size": 8},
        "image": {"size": 16},
        "text": {"tokenizer": "wordpiece", "vocab_size": 120, "max_length": 16},
        "datasets": {"vqa": {"kind": "vqa2", "path": str(tmp_path / "data"), "on_bad_sample": policy}},
        "models": {"xbert": {"type": "xbert", "image_encoder": TINY_VIT, "text_encoder": TINY_BERT}},
        "tasks": {"vqa": {"type": "vqa", "dataset": "vqa", "models": ["xbert"], "answer_min_count": 1}},
    }
    path = tmp_path / f"fmt-{policy}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.mark.slow
def test_runner_refuses_or_skips_a_question_with_nine_answers(tmp_path: Path, capsys) -> None:
    from harness.data.synthetic import generate

    generate(tmp_path / "data", images=20, seed=0, size=32)
    path = tmp_path / "data" / ANN_NAME
    qid = json.loads(path.read_text())["annotations"][0]["question_id"]
    _edit(path, lambda d: d["annotations"][0]["answers"].pop())
    assert main(["run", str(_suite(tmp_path, "error")), "--out", str(tmp_path / "out1")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"xmbench: error: {path}: question id {qid}: annotation has 9 answers"), line
    assert main(["run", str(_suite(tmp_path, "skip")), "--out", str(tmp_path / "out2")]) == 0
    skipped = json.loads(next((tmp_path / "out2" / "runs").rglob("skipped.json")).read_text())
    assert skipped["count"] == 1 and skipped["samples"][0].startswith(f"{path}: question id {qid}: annotation has 9")
