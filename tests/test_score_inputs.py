"""Malformed inputs to ``xmbench score``: every bad file is exit 2 and ONE line naming the file and the record.

One table per mechanism: (bad content, expected message) for each JSON format (schemas of ``harness.data.formats``),
the .npy readers, non-finite numbers in every scorer, and the VQA annotations the official formula does not assume
(checked against a literal run of the official loop on the same answer dicts).
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.metrics.vqa import vqa_accuracy
from tests.conftest import find_fixtures
from tests.metrics.reference_vqa import OfficialVQAEval

FIX = find_fixtures()
VQA_Q = json.loads((FIX / "vqa" / "v2_sample_questions.json").read_text())
VQA_A = json.loads((FIX / "vqa" / "v2_sample_annotations.json").read_text())
QIDS = [q["question_id"] for q in VQA_Q["questions"]]
INSTANCES = json.loads((FIX / "coco" / "instances_val2014_100.json").read_text())
ANN5 = INSTANCES["annotations"][5]
DETS = json.loads((FIX / "coco" / "instances_val2014_fakebbox100_results.json").read_text())
KARPATHY = {
    "images": [
        {
            "filepath": "val2014",
            "filename": f"{i}.jpg",
            "split": "test",
            "cocoid": 10 + i,
            "sentences": [{"raw": f"c{i}-{k}"} for k in range(n)],
        }
        for i, n in enumerate((5, 5, 6))
    ]
}
LAVIS = [{"image": f"val2014/{i}.jpg", "caption": [f"c{i}-{k}" for k in range(n)]} for i, n in enumerate((5, 5, 6))]


def _json_bytes(data) -> bytes:
    return json.dumps(data).encode()


def _edit(data, fn: Callable) -> bytes:
    """``data`` changed in place by ``fn`` (its return value is ignored), as JSON bytes."""
    data = copy.deepcopy(data)
    fn(data)
    return _json_bytes(data)


def _files(tmp_path: Path) -> dict[str, Path]:
    """A valid file set for every scorer."""
    files = {
        "questions": tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json",
        "annotations": tmp_path / "v2_mscoco_val2014_annotations.json",
        "results": tmp_path / "results.json",
        "instances": tmp_path / "instances_val2014.json",
        "dets": tmp_path / "detections.json",
        "karpathy": tmp_path / "dataset_coco.json",
        "lavis": tmp_path / "coco_karpathy_test.json",
        "s": tmp_path / "scores.npy",
        "t2i": tmp_path / "scores_t2i.npy",
        "ml": tmp_path / "ml.npy",
        "cls": tmp_path / "cls.npy",
        "y": tmp_path / "y.npy",
    }
    files["questions"].write_bytes(_json_bytes(VQA_Q))
    files["annotations"].write_bytes(_json_bytes(VQA_A))
    files["results"].write_bytes(_json_bytes([{"question_id": q, "answer": "yes"} for q in QIDS]))
    files["instances"].write_bytes(_json_bytes(INSTANCES))
    files["dets"].write_bytes(_json_bytes(DETS))
    files["karpathy"].write_bytes(_json_bytes(KARPATHY))
    files["lavis"].write_bytes(_json_bytes(LAVIS))
    rng = np.random.default_rng(0)
    np.save(files["s"], rng.random((3, 16)))
    np.save(files["t2i"], rng.random((16, 3)))
    np.save(files["ml"], rng.random((100, 80)))
    np.save(files["cls"], rng.random((4, 3)))
    np.save(files["y"], np.array([0, 1, 2, 1]))
    return files


COMMANDS = {
    "vqa": ["vqa", "--questions", "{questions}", "--annotations", "{annotations}", "--results", "{results}"],
    "multilabel": ["multilabel", "--annotations", "{instances}", "--scores", "{ml}"],
    "detection": ["detection", "--annotations", "{instances}", "--results", "{dets}"],
    "karpathy": ["retrieval", "--annotations", "{karpathy}", "--split", "test", "--scores", "{s}"],
    "lavis": ["retrieval", "--annotations", "{lavis}", "--scores", "{s}", "--scores-t2i", "{t2i}"],
    "classification": ["classification", "--scores", "{cls}", "--labels", "{y}"],
}


def _run(capsys, files: dict[str, Path], command: str) -> str:
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in COMMANDS[command]]
    assert main(["score", *argv, "--json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and len(err.splitlines()) == 1 and err.startswith("xmbench: error: "), err
    assert "internal error" not in err and "on_bad_sample" not in err
    return err


def test_the_valid_file_set_scores(tmp_path: Path, capsys) -> None:
    files = _files(tmp_path)
    for command in COMMANDS:
        argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in COMMANDS[command]]
        assert main(["score", *argv, "--json"]) == 0, capsys.readouterr().err
    capsys.readouterr()


def _answers(ann: dict) -> list[dict]:
    return ann["annotations"][1]["answers"]


# (id, command, file, new content, expected message after "<file>: ")
JSON_CASES = [
    # VQA questions
    (
        "q-missing-key",
        "vqa",
        "questions",
        _edit(VQA_Q, lambda d: d["questions"][2].pop("image_id")),
        "questions[2]: missing key 'image_id' (question_id 2)",
    ),
    (
        "q-id-string",
        "vqa",
        "questions",
        _edit(VQA_Q, lambda d: d["questions"][1].update(question_id="1")),
        'questions[1].question_id: expected an integer, got "1" (image_id 1)',
    ),
    (
        "q-not-an-object",
        "vqa",
        "questions",
        _json_bytes(VQA_Q["questions"]),
        "expected an object, got a list; is this a VQA questions file? Expected {",
    ),
    (
        "q-repeated",
        "vqa",
        "questions",
        _edit(VQA_Q, lambda d: d["questions"].append(d["questions"][1])),
        "question id 1 appears twice",
    ),
    # VQA annotations
    (
        "a-answers-string",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"][2].update(answers="yes")),
        'annotations[2].answers: expected a list, got "yes" (question_id 2)',
    ),
    (
        "a-answer-missing-answer",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"][0]["answers"][3].pop("answer")),
        "annotations[0].answers[3]: missing key 'answer' (question_id 262148000)",
    ),
    (
        "a-answer-id-float",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"][3]["answers"][0].update(answer_id=1.0)),
        "annotations[3].answers[0].answer_id: expected an integer, got 1.0 (question_id 3)",
    ),
    (
        "a-no-answer-type",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"][1].pop("answer_type")),
        "annotations[1]: missing key 'answer_type' (question_id 1)",
    ),
    (
        "a-no-answers",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"][4].pop("answers")),
        "question id 4: annotation has no answers",
    ),
    (
        "a-nine-answers",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"][3]["answers"].pop()),
        "question id 3: annotation has 9 answers; the official VQA accuracy assumes exactly 10",
    ),
    (
        "a-eleven-answers",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: _answers(d).append(dict(_answers(d)[0], answer_id=11))),
        "question id 1: annotation has 11 answers",
    ),
    (
        "a-no-answer-id",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"][4]["answers"][3].pop("answer_id")),
        "question id 4: answers[3]: missing key 'answer_id'; the official VQA accuracy tells the 10 answers apart",
    ),
    (
        "a-repeated-answer-id",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: _answers(d)[5].update(answer_id=_answers(d)[4]["answer_id"])),
        "question id 1: answers[5] repeats answer_id 5 of answers[4]",
    ),
    (
        "a-two-annotations",
        "vqa",
        "annotations",
        _edit(VQA_A, lambda d: d["annotations"].append(d["annotations"][2])),
        "question id 2 has two annotations",
    ),
    (
        "a-nan-in-unread-key",
        "vqa",
        "annotations",
        _json_bytes(VQA_A).replace(b'"answer_confidence": "yes"', b'"answer_confidence": NaN', 1),
        "annotations[0].answers[0].answer_confidence is NaN (question_id 262148000); use finite JSON numbers",
    ),
    (
        "a-latin1",
        "vqa",
        "annotations",
        '{"annotations": ["caf\u00e9"]}'.encode("latin-1"),
        "VQA annotations file is not UTF-8 text (byte 21, line 1); save it as UTF-8 JSON",
    ),
    ("a-empty", "vqa", "annotations", b"", "VQA annotations file is empty (0 bytes)"),
    ("a-truncated", "vqa", "annotations", _json_bytes(VQA_A)[:500], "VQA annotations file is not valid JSON (line 1:"),
    # VQA results
    (
        "r-answer-number",
        "vqa",
        "results",
        _json_bytes([{"question_id": q, "answer": 5 if q == 3 else "yes"} for q in QIDS]),
        "[3].answer: expected a string, got 5 (question_id 3)",
    ),
    (
        "r-id-bool",
        "vqa",
        "results",
        _json_bytes([{"question_id": True, "answer": "yes"}]),
        "[0].question_id: expected an integer, got true",
    ),
    # COCO instances (multilabel and detection read the same schema)
    (
        "i-no-categories",
        "multilabel",
        "instances",
        _edit(INSTANCES, lambda d: d.pop("categories")),
        "missing key 'categories'; is this a COCO instances file? Expected {",
    ),
    (
        "i-bbox-3",
        "multilabel",
        "instances",
        _edit(INSTANCES, lambda d: d["annotations"][5]["bbox"].pop()),
        f"annotations[5].bbox: expected a list of at least 4 entries, got {json.dumps(ANN5['bbox'][:3])} "
        f"(id {ANN5['id']})",
    ),
    (
        "i-category-string",
        "detection",
        "instances",
        _edit(INSTANCES, lambda d: d["annotations"][0].update(category_id="1")),
        f'annotations[0].category_id: expected an integer, got "1" (id {INSTANCES["annotations"][0]["id"]})',
    ),
    (
        "i-no-file-name",
        "multilabel",
        "instances",
        _edit(INSTANCES, lambda d: d["images"][3].pop("file_name")),
        f"images[3]: missing key 'file_name' (id {INSTANCES['images'][3]['id']})",
    ),
    (
        "i-no-area",
        "detection",
        "instances",
        _edit(INSTANCES, lambda d: d["annotations"][2].pop("area")),
        f"annotations[2]: missing key 'area' (id {INSTANCES['annotations'][2]['id']})",
    ),
    (
        "i-empty-categories",
        "multilabel",
        "instances",
        _edit(INSTANCES, lambda d: d.update(categories=[])),
        "'categories' is empty",
    ),
    (
        "i-unknown-category",
        "multilabel",
        "instances",
        _edit(INSTANCES, lambda d: d["annotations"][7].update(category_id=999)),
        f"annotation id {INSTANCES['annotations'][7]['id']}: has unknown category id 999",
    ),
    # COCO detection results
    (
        "d-bbox-3",
        "detection",
        "dets",
        _edit(DETS, lambda d: d[4]["bbox"].pop()),
        f"[4].bbox: expected a list of at least 4 entries, got {json.dumps(DETS[4]['bbox'][:3])} "
        f"(image_id {DETS[4]['image_id']})",
    ),
    (
        "d-bbox-5",
        "detection",
        "dets",
        _edit(DETS, lambda d: d[4]["bbox"].append(1)),
        "[4].bbox: expected a list of at most 4 entries",
    ),
    (
        "d-score-string",
        "detection",
        "dets",
        _edit(DETS, lambda d: d[17].update(score="high")),
        f'[17].score: expected a number, got "high" (image_id {DETS[17]["image_id"]})',
    ),
    (
        "d-not-a-list",
        "detection",
        "dets",
        _json_bytes({"annotations": DETS}),
        "expected a list, got an object; is this a detection results file? Expected the official results format",
    ),
    ("d-empty-list", "detection", "dets", b"[]", "expected a non-empty list of detections, got []"),
    # Karpathy dataset_*.json
    (
        "k-no-raw",
        "karpathy",
        "karpathy",
        _edit(KARPATHY, lambda d: d["images"][0]["sentences"][1].pop("raw")),
        "images[0].sentences[1]: missing key 'raw' (cocoid 10)",
    ),
    (
        "k-no-split",
        "karpathy",
        "karpathy",
        _edit(KARPATHY, lambda d: d["images"][1].pop("split")),
        "images[1]: missing key 'split' (cocoid 11)",
    ),
    (
        "k-no-sentences",
        "karpathy",
        "karpathy",
        _edit(KARPATHY, lambda d: d["images"][2].pop("sentences")),
        "image 12 has no captions",
    ),
    (
        "k-images-not-a-list",
        "karpathy",
        "karpathy",
        _json_bytes({"images": {"a": 1}}),
        'images: expected a list, got {"a": 1}',
    ),
    # LAVIS eval files
    (
        "l-caption-number",
        "lavis",
        "lavis",
        _edit(LAVIS, lambda d: d[1].update(caption=3)),
        "[1].caption: expected a string or a list, got 3 (image 'val2014/1.jpg')",
    ),
    (
        "l-no-image",
        "lavis",
        "lavis",
        _edit(LAVIS, lambda d: d[0].pop("image")),
        "[0]: missing key 'image'",
    ),
    (
        "l-train-format",
        "lavis",
        "lavis",
        _json_bytes([{"image": "a.jpg", "caption": "x", "image_id": "coco_1"}]),
        "this is a LAVIS train file (one caption per entry)",
    ),
    (
        "l-mixed",
        "lavis",
        "lavis",
        _edit(LAVIS, lambda d: d[2].update(caption="one")),
        "[2] has a single caption but [0] has a caption list; the file mixes the train and eval formats",
    ),
    (
        "l-no-captions",
        "lavis",
        "lavis",
        _edit(LAVIS, lambda d: d[1].update(caption=[])),
        "[1] (image 'val2014/1.jpg') has no captions",
    ),
    ("l-empty", "lavis", "lavis", b"[]", "the LAVIS retrieval annotation file is empty"),
]


@pytest.mark.parametrize(
    ("command", "target", "content", "expected"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES]
)
def test_malformed_json_is_one_line(tmp_path: Path, capsys, command, target, content: bytes, expected: str) -> None:
    files = _files(tmp_path)
    files[target].write_bytes(content)
    err = _run(capsys, files, command)
    assert f"xmbench: error: {files[target]}: {expected}" in err, err


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _with(value: float, shape: tuple[int, int], at: tuple[int, int]) -> bytes:
    arr = np.random.default_rng(1).random(shape)
    arr[at] = value
    return _npy_bytes(arr)


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros((3, 16)))
    return buf.getvalue()


# (id, command, file, content, expected message after "<file>: ")
NPY_CASES = [
    ("empty", "karpathy", "s", b"", "score matrix is empty (0 bytes); save the array with numpy.save"),
    (
        "truncated",
        "karpathy",
        "s",
        _npy_bytes(np.zeros((3, 16)))[:200],
        "score matrix is not a readable numeric .npy array",
    ),
    ("not-npy", "karpathy", "s", b"images,texts\n1,2\n", "score matrix is not a readable numeric .npy array"),
    (
        "pickled",
        "karpathy",
        "s",
        _npy_bytes(np.array([{"a": 1}], dtype=object)),
        "score matrix is not a readable numeric .npy array (Object arrays cannot be loaded",
    ),
    ("npz", "karpathy", "s", _npz(), "score matrix is an .npz archive, not one .npy array"),
    ("3-d", "karpathy", "s", _npy_bytes(np.zeros((3, 16, 1))), "expected a 2-D score matrix, got shape (3, 16, 1)"),
    ("strings", "karpathy", "s", _npy_bytes(np.full((3, 16), "x")), "expected numbers in score matrix, got dtype <U1"),
    (
        "ret-inf",
        "karpathy",
        "s",
        _with(np.inf, (3, 16), (1, 7)),
        "row 1, column 7 is inf; a score matrix must hold finite numbers",
    ),
    ("ret-t2i-neg-inf", "lavis", "t2i", _with(-np.inf, (16, 3), (9, 2)), "row 9, column 2 is -inf"),
    ("ml-nan", "multilabel", "ml", _with(np.nan, (100, 80), (42, 3)), "row 42, column 3 is NaN"),
    ("cls-inf", "classification", "cls", _with(np.inf, (4, 3), (3, 0)), "row 3, column 0 is inf"),
    (
        "cls-labels-2d",
        "classification",
        "y",
        _npy_bytes(np.zeros((4, 1), int)),
        "expected a 1-D labels, got shape (4, 1)",
    ),
]


@pytest.mark.parametrize(
    ("command", "target", "content", "expected"), [c[1:] for c in NPY_CASES], ids=[c[0] for c in NPY_CASES]
)
def test_bad_npy_is_one_line(tmp_path: Path, capsys, command, target, content: bytes, expected: str) -> None:
    files = _files(tmp_path)
    files[target].write_bytes(content)
    err = _run(capsys, files, command)
    assert f"xmbench: error: {files[target]}: {expected}" in err, err


@pytest.mark.parametrize("target", ["annotations", "s"])
def test_folder_instead_of_file(tmp_path: Path, capsys, target: str) -> None:
    files = _files(tmp_path)
    files[target].unlink()
    files[target].mkdir()
    err = _run(capsys, files, "vqa" if target == "annotations" else "karpathy")
    assert f"{files[target]}: is a folder; give the " in err


def test_unreadable_files(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, which ignores file modes: simulate the operating system's refusal.
    files = _files(tmp_path)
    real_open = Path.open

    def refuse(path: Path, *args, **kwargs):
        if path.name in (files["annotations"].name, files["s"].name):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)  # Path.read_bytes opens through Path.open
    err = _run(capsys, files, "vqa")
    assert f"{files['annotations']}: cannot read the VQA annotations file (Permission denied); check its" in err
    err = _run(capsys, files, "karpathy")
    assert f"{files['s']}: cannot read the score matrix (Permission denied); check its permissions" in err


# ---------------------------------------------------------------------------------------------------------------------
# Non-finite numbers in detection results (the JSON tokens Python's json accepts, and overflowing literals)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "name"),
    [("NaN", "NaN"), ("Infinity", "inf"), ("-Infinity", "-inf"), ("1e999", "inf"), ("-1e999", "-inf")],
)
@pytest.mark.parametrize("key", ["bbox", "score"])
def test_detection_non_finite_tokens(tmp_path: Path, capsys, token: str, name: str, key: str) -> None:
    files = _files(tmp_path)
    dets = copy.deepcopy(DETS)
    marker = 123456.5
    if key == "bbox":
        dets[17]["bbox"][2] = marker
    else:
        dets[17]["score"] = marker
    files["dets"].write_bytes(_json_bytes(dets).replace(str(marker).encode(), token.encode()))
    assert json.loads(files["dets"].read_text())  # Python's json module reads these files without complaint
    err = _run(capsys, files, "detection")
    where = "[17].bbox[2]" if key == "bbox" else "[17].score"
    assert f"{files['dets']}: {where} is {name} (image_id {DETS[17]['image_id']}); use finite JSON numbers" in err


# ---------------------------------------------------------------------------------------------------------------------
# VQA annotations the official formula does not assume: refused, with an independent computation of why
# ---------------------------------------------------------------------------------------------------------------------


def _official_on_raw(answers: list[dict], prediction: str) -> float:
    """GT-Vision-Lab ``vqaEval.evaluate`` for one question, literally, on the annotation file's own answer dicts:
    normalisation in place, then "the other answers" found by dict inequality."""
    ev = OfficialVQAEval()
    answers = copy.deepcopy(answers)
    for a in answers:
        a["answer"] = a["answer"].replace("\n", " ").replace("\t", " ").strip()
    res = prediction.replace("\n", " ").replace("\t", " ").strip()
    if len({a["answer"] for a in answers}) > 1:
        for a in answers:
            a["answer"] = ev.processDigitArticle(ev.processPunctuation(a["answer"]))
        res = ev.processDigitArticle(ev.processPunctuation(res))
    acc = []
    for gt in answers:
        others = [item for item in answers if item != gt]
        acc.append(min(1, float(len([item for item in others if item["answer"] == res])) / 3))
    return float(sum(acc)) / len(acc)


def _vqa_files(tmp_path: Path, answers: list[dict]) -> dict[str, Path]:
    files = _files(tmp_path)
    anns = copy.deepcopy(VQA_A)
    anns["annotations"][3]["answers"] = answers  # question id 3, "Is it sunny?"
    files["annotations"].write_bytes(_json_bytes(anns))
    return files


NO_IDS = [{"answer": "yes", "answer_confidence": "yes"} for _ in range(10)]
SAME_IDS = [{"answer": "yes", "answer_confidence": "yes", "answer_id": 1} for _ in range(10)]
NINE = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(["yes"] * 3 + ["no"] * 6)]
# (id, answers of question 3, official evaluator on these dicts, the formula on 10 distinct entries, message)
REFUSED = [
    # without ids the 10 dicts are equal: each answer's "others" is empty -> 0 matches, while 10 distinct "yes" give 1
    ("no-answer-ids", NO_IDS, 0.0, 1.0, "answers[0]: missing key 'answer_id'"),
    ("one-answer-id", SAME_IDS, 0.0, 1.0, "answers[1] repeats answer_id 1 of answers[0]"),
    # 9 answers, 3 match: each match sees 2 of the other 8 (2/3), each other answer sees 3 (1): (3 * 2/3 + 6) / 9. Not
    # a VQA v2 question (10 annotators): 3 matches out of 10 would be 0.9.
    ("nine-answers", NINE, 8 / 9, 8 / 9, "annotation has 9 answers; the official VQA accuracy assumes exactly 10"),
]


@pytest.mark.parametrize(
    ("answers", "official", "distinct", "expected"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_vqa_refuses_what_the_official_formula_does_not_assume(
    tmp_path: Path, capsys, answers: list[dict], official: float, distinct: float, expected: str
) -> None:
    # The official evaluator's literal loop on these very dicts, against the hand-worked numbers ...
    assert _official_on_raw(answers, "yes") == pytest.approx(official)
    # ... and what the formula on distinct entries (harness.metrics) would have printed: the file is refused instead.
    assert vqa_accuracy(["yes"], [[a["answer"] for a in answers]])["overall"] == round(100 * distinct, 2)
    files = _vqa_files(tmp_path, answers)
    err = _run(capsys, files, "vqa")
    assert f"{files['annotations']}: question id 3: {expected}" in err


def test_vqa_with_ten_distinct_ids_matches_the_literal_official_loop(tmp_path: Path, capsys) -> None:
    # Same answers as the refused cases, made valid: every number equals the literal official loop on the same dicts.
    answers = [
        {"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(["yes"] * 3 + ["no"] * 7)
    ]
    files = _vqa_files(tmp_path, answers)
    predictions = {262148000: "down", 1: "2", 2: "zero", 3: "yes", 4: "a shirt"}
    files["results"].write_bytes(_json_bytes([{"question_id": q, "answer": a} for q, a in predictions.items()]))
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in COMMANDS["vqa"]]
    assert main(["score", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    anns = {a["question_id"]: a for a in json.loads(files["annotations"].read_text())["annotations"]}
    per_q = [_official_on_raw(anns[q]["answers"], predictions[q]) for q in QIDS]
    assert per_q[3] == pytest.approx(0.9)  # 3 of 10 say "yes": (3 * 2/3 + 7 * 1) / 10
    assert out["overall"] == round(100 * float(sum(per_q)) / len(per_q), 2)


def test_fixture_and_synthetic_vqa_have_ten_answers_with_ids(tmp_path: Path) -> None:
    from harness.data import formats
    from harness.data.synthetic import generate

    generate(tmp_path / "synth", images=20, seed=0, size=32)
    paths = [FIX / "vqa" / "v2_sample_annotations.json", *sorted((tmp_path / "synth").glob("v2_mscoco_*.json"))]
    assert len(paths) >= 3
    for path in paths:
        anns = formats.read(path, formats.VQA_ANNOTATIONS).annotations
        assert anns and formats.first_vqa_answers_problem(anns) is None


def test_vqa_batch_check_agrees_with_the_per_record_rule() -> None:
    from harness.data import formats

    rng = np.random.default_rng(0)
    anns = []
    for q in range(300):
        n = int(rng.choice([10, 10, 10, 9, 11, 0]))
        ids = [int(i) for i in rng.integers(1, 40, size=n)] if rng.random() < 0.3 else list(range(1, n + 1))
        answers = [formats.VqaAnswer("yes", None if rng.random() < 0.01 else i) for i in ids]
        anns.append(formats.VqaAnnotation(q, 1, "what", "other", "yes", answers))
    for start in range(0, 300, 7):
        part = anns[start:]
        expected = next(
            ((i, p) for i, a in enumerate(part) if (p := formats.vqa_answers_problem(a.answers)) is not None), None
        )
        assert formats.first_vqa_answers_problem(part) == expected
