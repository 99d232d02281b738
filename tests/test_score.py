"""``xmbench score`` on files in the official formats: numbers checked against independent computations, and every
error as a row of a (bad input, message) table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from tests.conftest import find_fixtures

FIX = find_fixtures()
ROOT = Path(__file__).resolve().parents[1]
VQA_Q = FIX / "vqa" / "v2_sample_questions.json"
VQA_A = FIX / "vqa" / "v2_sample_annotations.json"
COCO_GT = FIX / "coco" / "instances_val2014_100.json"
COCO_DT = FIX / "coco" / "instances_val2014_fakebbox100_results.json"
PUBLISHED = [
    0.5045806987249628,
    0.6969727247299577,
    0.5729816669904824,
    0.5856257209410443,
    0.5193996948036719,
    0.5013978986347466,
    0.38681277964578054,
    0.5936795762842003,
    0.595352982877607,
    0.6398109626113442,
    0.5664205978994309,
    0.5642905982905982,
]


def _score(capsys, *args: str) -> dict:
    assert main(["score", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_vqa_on_the_fixture(tmp_path: Path, capsys) -> None:
    expected = json.loads((FIX / "vqa" / "v2_sample_expected_official.json").read_text())
    for pick in (0, -1):
        results = [{"question_id": int(q), "answer": list(preds)[pick]} for q, preds in expected.items()]
        (tmp_path / "r.json").write_text(json.dumps(results))
        out = _score(
            capsys, "vqa", "--questions", str(VQA_Q), "--annotations", str(VQA_A), "--results", str(tmp_path / "r.json")
        )
        truth = [list(preds.values())[pick] for preds in expected.values()]
        assert out["overall"] == round(sum(truth) / len(truth), 2)
        assert set(out) == {"overall", "perAnswerType", "perQuestionType"}


def test_vqa_legacy_mode_differs_on_unanimous_numbers(tmp_path: Path, capsys) -> None:
    results = [{"question_id": q, "answer": "two" if q == 1 else "x"} for q in (262148000, 1, 2, 3, 4)]
    (tmp_path / "r.json").write_text(json.dumps(results))
    args = ["vqa", "--questions", str(VQA_Q), "--annotations", str(VQA_A), "--results", str(tmp_path / "r.json")]
    official = _score(capsys, *args)
    legacy = _score(capsys, *args, "--mode", "legacy")
    # question 1: ten answers "2", prediction "two": 0 officially (no normalisation when answers agree), 100 legacy
    assert official["perQuestionType"]["how many"] == 0.0
    assert legacy["perQuestionType"]["how many"] == 50.0  # (100 + 0) / 2 over the two "how many" questions


def _retrieval_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """3 images with 5, 5 and 6 captions; hand-ranked scores."""
    ann = [{"image": f"val2014/{i}.jpg", "caption": [f"c{i}-{k}" for k in range(n)]} for i, n in enumerate((5, 5, 6))]
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    karpathy = {
        "images": [
            {"filename": f"{i}.jpg", "split": "test", "sentences": [{"raw": c} for c in e["caption"]]}
            for i, e in enumerate(ann)
        ]
        + [{"filename": "x.jpg", "split": "train", "sentences": [{"raw": "t"}]}]
    }
    (tmp_path / "dataset_coco.json").write_text(json.dumps(karpathy))
    s = np.zeros((3, 16), dtype=np.float32)
    s[0, 0] = 9  # image 0: its caption 0 ranks first -> rank 0
    s[1, 0:5] = 8  # image 1: captions of image 0 rank above all of its own (5..9): best gt rank 5
    s[1, 9] = 1
    s[2, :] = np.arange(16)  # image 2: its captions are 10..15 -> best rank 0
    np.save(tmp_path / "s.npy", s)
    return tmp_path / "ann.json", tmp_path / "dataset_coco.json", tmp_path / "s.npy"


def test_retrieval_hand_ranked(tmp_path: Path, capsys) -> None:
    ann, karpathy, s = _retrieval_files(tmp_path)
    out = _score(capsys, "retrieval", "--annotations", str(ann), "--scores", str(s))
    # image->text ranks: 0, 5, 0 -> R@1 = R@5 = 2/3, R@10 = 3/3
    assert out["txt_r1"] == pytest.approx(200 / 3) and out["txt_r5"] == pytest.approx(200 / 3)
    assert out["txt_r10"] == pytest.approx(100.0)
    same = _score(capsys, "retrieval", "--annotations", str(karpathy), "--split", "test", "--scores", str(s))
    assert same == out
    assert set(out) == {
        "txt_r1",
        "txt_r5",
        "txt_r10",
        "txt_r_mean",
        "img_r1",
        "img_r5",
        "img_r10",
        "img_r_mean",
        "r_mean",
    }
    assert out["r_mean"] == pytest.approx((out["txt_r_mean"] + out["img_r_mean"]) / 2)


def test_multilabel_matches_sklearn(tmp_path: Path, capsys) -> None:
    from sklearn.metrics import average_precision_score

    from harness.data.coco import instance_labels, multi_hot
    from harness.data.issues import SampleIssues

    images, labels, cats = instance_labels(json.loads(COCO_GT.read_text()), "gt", SampleIssues("t"))
    targets = multi_hot(sorted(images), labels, len(cats))
    rng = np.random.default_rng(0)
    scores = np.round(targets * 0.5 + rng.random(targets.shape), 1)  # rounded: many ties
    np.save(tmp_path / "s.npy", scores)
    out = _score(capsys, "multilabel", "--annotations", str(COCO_GT), "--scores", str(tmp_path / "s.npy"))
    with_pos = [j for j in range(targets.shape[1]) if targets[:, j].any()]
    expected = np.mean([average_precision_score(targets[:, j], scores[:, j]) for j in with_pos]) * 100
    assert out["mAP"] == pytest.approx(expected, abs=1e-9)
    assert out["num_classes"] == 80 and out["num_classes_excluded"] == 80 - len(with_pos)


def test_detection_reproduces_the_published_stats(capsys) -> None:
    out = _score(capsys, "detection", "--annotations", str(COCO_GT), "--results", str(COCO_DT))
    assert out["stats"] == pytest.approx(PUBLISHED, abs=1e-12)
    assert out["AP"] == pytest.approx(100 * PUBLISHED[0])


def test_detection_iscrowd_default(capsys, tmp_path: Path) -> None:
    gt = FIX / "coco" / "coco_sample_no_iscrowd.json"
    anns = json.loads(gt.read_text())["annotations"]
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in anns]
    (tmp_path / "d.json").write_text(json.dumps(dets))
    out = _score(
        capsys, "detection", "--annotations", str(gt), "--results", str(tmp_path / "d.json"), "--iscrowd-default", "0"
    )
    assert out["stats"][0] == pytest.approx(1.0)  # perfect detections


def test_classification(tmp_path: Path, capsys) -> None:
    scores = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]])
    np.save(tmp_path / "s.npy", scores)
    np.save(tmp_path / "y.npy", np.array([1, 2, 2, 1]))
    out = _score(
        capsys,
        "classification",
        "--scores",
        str(tmp_path / "s.npy"),
        "--labels",
        str(tmp_path / "y.npy"),
        "--topk",
        "1",
        "2",
    )
    assert out == {"top1": 50.0, "top2": 75.0}


def test_readable_table_without_json(capsys) -> None:
    assert main(["score", "detection", "--annotations", str(COCO_GT), "--results", str(COCO_DT)]) == 0
    text = capsys.readouterr().out
    assert "AP50" in text and "69.6973" in text


def test_score_vqa_does_not_import_torch(tmp_path: Path) -> None:
    results = [{"question_id": q, "answer": "yes"} for q in (262148000, 1, 2, 3, 4)]
    (tmp_path / "r.json").write_text(json.dumps(results))
    code = (
        "import sys; from harness.cli import main; rc = main(['score', 'vqa', '--questions', sys.argv[1], "
        "'--annotations', sys.argv[2], '--results', sys.argv[3], '--json']); "
        "print('torch' in sys.modules, rc, file=sys.stderr)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(VQA_Q), str(VQA_A), str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.stderr.strip().splitlines()[-1] == "False 0"


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    ann, karpathy, s = _retrieval_files(tmp_path)
    files = {"ann": ann, "karpathy": karpathy, "s": s}
    np.save(tmp_path / "s_short.npy", np.zeros((3, 15)))
    np.save(tmp_path / "s_nan.npy", np.full((3, 16), np.nan))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "t2i_wrong.npy", np.zeros((3, 16)))
    np.save(tmp_path / "ml_short.npy", np.zeros((100, 79)))
    np.save(tmp_path / "cls.npy", np.zeros((4, 3)))
    np.save(tmp_path / "y3.npy", np.array([0, 1, 2]))
    np.save(tmp_path / "y_big.npy", np.array([0, 1, 2, 3]))
    np.save(tmp_path / "y_float.npy", np.array([0.0, 1.0, 2.0, 1.0]))
    for name, rows in {
        "missing": [{"question_id": q, "answer": "yes"} for q in (262148000, 1, 2, 3)],
        "extra": [{"question_id": q, "answer": "yes"} for q in (262148000, 1, 2, 3, 4, 99)],
        "twice": [{"question_id": q, "answer": "yes"} for q in (262148000, 1, 2, 3, 4, 4)],
        "nokey": [{"question_id": 1}],
        "notlist": {"results": []},
    }.items():
        (tmp_path / f"r_{name}.json").write_text(json.dumps(rows))
    (tmp_path / "broken.json").write_text("[{")
    files.update({p.stem: p for p in tmp_path.glob("*.npy")})
    files.update({p.stem: p for p in tmp_path.glob("r_*.json")})
    files["broken"] = tmp_path / "broken.json"
    files["fake_results"] = FIX / "vqa" / "OpenEnded_mscoco_train2014_fake_results.json"
    return files


VQA = ["vqa", "--questions", str(VQA_Q), "--annotations", str(VQA_A), "--results"]
# (id, argv with {file} placeholders, expected message parts)
ERRORS = [
    ("vqa-missing-ids", [*VQA, "{r_missing}"], ["missing answers for question ids 4 (1 in all)"]),
    ("vqa-extra-ids", [*VQA, "{r_extra}"], ["answers for question ids not in v2_sample_questions.json: 99"]),
    (
        "vqa-fake-results",
        [*VQA, "{fake_results}"],
        [
            "missing answers for question ids 262148000",
            "answers for question ids not in v2_sample_questions.json: 5, 6",
        ],
    ),
    ("vqa-answered-twice", [*VQA, "{r_twice}"], ["question id 4 is answered twice"]),
    ("vqa-no-answer-key", [*VQA, "{r_nokey}"], ["r_nokey.json: [0]: missing key 'answer' (question_id 1)"]),
    (
        "vqa-not-a-list",
        [*VQA, "{r_notlist}"],
        ["r_notlist.json: expected a list, got an object; is this a VQA results file? Expected the official"],
    ),
    ("vqa-broken-json", [*VQA, "{broken}"], ["broken.json: VQA results file is not valid JSON (line 1"]),
    ("vqa-no-file", [*VQA, "/nonexistent/r.json"], ["/nonexistent/r.json: VQA results file not found"]),
    (
        "vqa-questions-swapped",
        ["vqa", "--questions", str(VQA_A), "--annotations", str(VQA_A), "--results", "{r_missing}"],
        ["v2_sample_annotations.json: missing key 'questions'; is this a VQA questions file?"],
    ),
    (
        "ret-shape",
        ["retrieval", "--annotations", "{ann}", "--scores", "{s_short}"],
        ["expected shape (images, texts) = (3, 16) from ann.json (texts numbered in file order), got (3, 15)"],
    ),
    (
        "ret-t2i-shape",
        ["retrieval", "--annotations", "{ann}", "--scores", "{s}", "--scores-t2i", "{t2i_wrong}"],
        ["expected shape (texts, images) = (16, 3), got (3, 16)"],
    ),
    (
        "ret-nan",
        ["retrieval", "--annotations", "{ann}", "--scores", "{s_nan}"],
        ["s_nan.npy: row 0, column 0 is NaN; a score matrix must hold finite numbers"],
    ),
    (
        "ret-pickle",
        ["retrieval", "--annotations", "{ann}", "--scores", "{obj}"],
        ["obj.npy: score matrix is not a readable numeric .npy array (Object arrays cannot be loaded"],
    ),
    (
        "ret-karpathy-no-split",
        ["retrieval", "--annotations", "{karpathy}", "--scores", "{s}"],
        ["a Karpathy file holds several splits; pass --split"],
    ),
    (
        "ret-unknown-split",
        ["retrieval", "--annotations", "{karpathy}", "--split", "val", "--scores", "{s}"],
        ["no images in split(s) ['val']; the file has splits ['test', 'train']"],
    ),
    (
        "ml-shape",
        ["multilabel", "--annotations", str(COCO_GT), "--scores", "{ml_short}"],
        ["expected shape (images, categories) = (100, 80)", "got (100, 79)"],
    ),
    (
        "det-no-iscrowd",
        ["detection", "--annotations", str(FIX / "coco" / "coco_sample_no_iscrowd.json"), "--results", str(COCO_DT)],
        ["annotation id 1 (the first such) has none", "--iscrowd-default 0"],
    ),
    (
        "cls-length",
        ["classification", "--scores", "{cls}", "--labels", "{y3}"],
        ["expected 4 labels (one per row of cls.npy), got 3"],
    ),
    (
        "cls-range",
        ["classification", "--scores", "{cls}", "--labels", "{y_big}"],
        ["class indices must be in 0..2 (the columns of cls.npy), got 0..3"],
    ),
    (
        "cls-float-labels",
        ["classification", "--scores", "{cls}", "--labels", "{y_float}"],
        ["expected integer class indices, got dtype float64"],
    ),
]


@pytest.mark.parametrize(("argv", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_score_errors(tmp_path: Path, capsys, argv: list[str], expected: list[str]) -> None:
    files = _bad_files(tmp_path)
    args = [a.format(**{k: str(v) for k, v in files.items()}) if a.startswith("{") else a for a in argv]
    assert main(["score", *args, "--json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and len(err.splitlines()) == 1 and err.startswith("xmbench: error: ")
    for part in expected:
        assert part in err, err
