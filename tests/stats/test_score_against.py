"""``xmbench score KIND ... --against B``: the paired comparison of two prediction files, its numbers against the
single-file scores and hand counts, and every bad input as one line (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main

N_IMAGES = 40
QUESTIONS_PER_IMAGE = 3
CATEGORIES = 4


def _json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Valid file pairs for every kind: a better model (``*_a``) and a worse one (``*_b``)."""
    rng = np.random.default_rng(0)
    f: dict[str, Path] = {}
    # VQA: 40 images x 3 questions, 10 answers each ("yes" from 6 humans, "no" from 4).
    qids = list(range(1, N_IMAGES * QUESTIONS_PER_IMAGE + 1))
    image_of = {q: 1000 + (q - 1) // QUESTIONS_PER_IMAGE for q in qids}
    f["questions"] = _json(
        tmp_path / "questions.json",
        {"questions": [{"question_id": q, "image_id": image_of[q], "question": "Is it?"} for q in qids]},
    )
    answers = [
        {"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(["yes"] * 6 + ["no"] * 4)
    ]
    anns = [
        {
            "question_id": q,
            "image_id": image_of[q],
            "question_type": "is it",
            "answer_type": "yes/no",
            "multiple_choice_answer": "yes",
            "answers": answers,
        }
        for q in qids
    ]
    f["annotations"] = _json(tmp_path / "annotations.json", {"annotations": anns})
    f["vqa_a"] = _json(tmp_path / "a.json", [{"question_id": q, "answer": "yes" if q % 4 else "x"} for q in qids])
    f["vqa_b"] = _json(tmp_path / "b.json", [{"question_id": q, "answer": "yes" if q % 2 else "no"} for q in qids])
    f["vqa_short"] = _json(tmp_path / "short.json", [{"question_id": q, "answer": "yes"} for q in qids[:-1]])
    # Classification: 200 rows, 5 classes, rows grouped 4 by 4 into 50 images.
    y = rng.integers(0, 5, 200)
    np.save(tmp_path / "y.npy", y)
    f["y"] = tmp_path / "y.npy"
    for name, hit in (("cls_a", 0.8), ("cls_b", 0.6)):
        s = rng.random((200, 5))
        s[np.arange(200), y] += np.where(rng.random(200) < hit, 2.0, -2.0)
        np.save(tmp_path / f"{name}.npy", s)
        f[name] = tmp_path / f"{name}.npy"
    np.save(tmp_path / "groups.npy", np.repeat(np.arange(50), 4))
    np.save(tmp_path / "groups_short.npy", np.arange(199))
    np.save(tmp_path / "groups_2d.npy", np.zeros((200, 2)))
    np.save(tmp_path / "cls_narrow.npy", rng.random((200, 4)))
    # Retrieval: LAVIS eval file, 30 images x 5 captions.
    f["lavis"] = _json(
        tmp_path / "coco_karpathy_test.json",
        [{"image": f"val2014/{i}.jpg", "caption": [f"c{i}-{k}" for k in range(5)]} for i in range(30)],
    )
    own = np.repeat(np.eye(30), 5, axis=1)  # (30, 150): 1 where the caption belongs to the image
    np.save(tmp_path / "ret_a.npy", own * 1.5 + rng.random((30, 150)))
    np.save(tmp_path / "ret_b.npy", own * 0.5 + rng.random((30, 150)))
    np.save(tmp_path / "ret_t2i_b.npy", (own * 0.5 + rng.random((30, 150))).T)
    np.save(tmp_path / "ret_bad.npy", rng.random((30, 149)))
    # Multi-label: 60 images x 4 categories.
    targets = rng.random((60, CATEGORIES)) < 0.3
    targets[0] = True
    f["instances"] = _json(
        tmp_path / "instances.json",
        {
            "images": [{"id": 500 + i, "file_name": f"{i}.jpg"} for i in range(60)],
            "categories": [{"id": c + 1, "name": f"cat{c}"} for c in range(CATEGORIES)],
            "annotations": [
                {
                    "id": k,
                    "image_id": 500 + int(i),
                    "category_id": int(c) + 1,
                    "bbox": [0, 0, 1, 1],
                    "area": 1.0,
                    "iscrowd": 0,
                }
                for k, (i, c) in enumerate(zip(*np.nonzero(targets), strict=True))
            ],
        },
    )
    np.save(tmp_path / "ml_a.npy", targets + rng.random((60, CATEGORIES)))
    np.save(tmp_path / "ml_b.npy", rng.random((60, CATEGORIES)))
    np.save(tmp_path / "ml_bad.npy", rng.random((60, CATEGORIES + 1)))
    f.update({p.stem: p for p in tmp_path.glob("*.npy") if p.stem not in f})
    return f


def _json_out(capsys, argv: list[str]) -> dict:
    assert main(["score", *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _vqa(f: dict[str, Path], results: Path) -> list[str]:
    return [
        "vqa",
        "--questions",
        str(f["questions"]),
        "--annotations",
        str(f["annotations"]),
        "--results",
        str(results),
    ]


def test_vqa_against(files, capsys) -> None:
    a = _json_out(capsys, _vqa(files, files["vqa_a"]))["overall"]
    b = _json_out(capsys, _vqa(files, files["vqa_b"]))["overall"]
    # "yes" matches 6 of 10 humans: accuracy 1; a answers "x" on every 4th question, b "no" (4 humans: also 1) on
    # every 2nd: a = 75%, b = 100%.
    assert (a, b) == (75.0, 100.0)
    out = _json_out(capsys, [*_vqa(files, files["vqa_a"]), "--against", str(files["vqa_b"]), "--replicates", "2000"])
    assert set(out) == {"metric", "a", "b", "delta", "ci95", "p_value", "n_clusters", "replicates", "mcnemar"}
    assert (out["metric"], out["a"], out["b"], out["delta"]) == ("vqa_accuracy", 75.0, 100.0, -25.0)
    assert (out["n_clusters"], out["replicates"]) == (N_IMAGES, 2000)  # clusters are the questions' images
    assert out["ci95"][0] < -25 < out["ci95"][1] < 0 and out["p_value"] == 1 / 2001
    assert out["mcnemar"]["b"] == 0 and out["mcnemar"]["c"] == 30  # only b is right on the 30 "x" questions
    same = _json_out(capsys, [*_vqa(files, files["vqa_a"]), "--against", str(files["vqa_a"]), "--replicates", "500"])
    assert (same["delta"], same["ci95"], same["p_value"]) == (0.0, [0.0, 0.0], 1.0)


def test_vqa_claims(files, capsys) -> None:
    argv = [*_vqa(files, files["vqa_b"]), "--against", str(files["vqa_a"]), "--replicates", "2000"]
    out = _json_out(capsys, [*argv, "--claim-delta", "20"])
    assert out["delta"] == 25.0 and out["verdict"] == "supported"
    assert out["claim"]["delta"] == 20.0 and not out["claim"]["relative"] and out["claim"]["ci"] == out["ci95"]
    rel = _json_out(capsys, [*argv, "--claim-delta", "50%"])  # 100 / 75 - 1 = +33%: less than claimed
    assert rel["delta"] == 25.0 and rel["verdict"] == "contradicted"
    assert rel["claim"]["relative"] and rel["claim"]["measured"] == pytest.approx(100 / 3)
    assert rel["claim"]["ci"][1] < 50 and "lies below the claimed +50%" in rel["claim"]["note"]


def test_classification_against(files, capsys) -> None:
    base = ["classification", "--scores", str(files["cls_a"]), "--labels", str(files["y"])]
    a = _json_out(capsys, base)["top1"]
    b = _json_out(capsys, ["classification", "--scores", str(files["cls_b"]), "--labels", str(files["y"])])["top1"]
    out = _json_out(capsys, [*base, "--against", str(files["cls_b"]), "--replicates", "2000"])
    assert (out["a"], out["b"], out["delta"], out["n_clusters"]) == (a, b, a - b, 200)  # each row its own cluster
    ranks = [
        np.argsort(-np.load(files[k]), axis=1, kind="stable")[:, 0] == np.load(files["y"]) for k in ("cls_a", "cls_b")
    ]
    assert (out["mcnemar"]["b"], out["mcnemar"]["c"]) == (
        int((ranks[0] & ~ranks[1]).sum()),
        int((~ranks[0] & ranks[1]).sum()),
    )
    grouped = _json_out(
        capsys, [*base, "--against", str(files["cls_b"]), "--clusters", str(files["groups"]), "--replicates", "2000"]
    )
    assert grouped["n_clusters"] == 50 and grouped["delta"] == out["delta"]
    top5 = _json_out(capsys, [*base, "--against", str(files["cls_b"]), "--metric", "top5", "--replicates", "100"])
    assert (top5["metric"], top5["delta"], "mcnemar" in top5) == ("top5", 0.0, False)  # 5 classes: top-5 is 100%


def test_retrieval_and_multilabel_against(files, capsys) -> None:
    ret = ["retrieval", "--annotations", str(files["lavis"])]
    a = _json_out(capsys, [*ret, "--scores", str(files["ret_a"])])["r_mean"]
    b = _json_out(capsys, [*ret, "--scores", str(files["ret_b"]), "--scores-t2i", str(files["ret_t2i_b"])])["r_mean"]
    out = _json_out(
        capsys,
        [
            *ret,
            "--scores",
            str(files["ret_a"]),
            "--against",
            str(files["ret_b"]),
            "--against-t2i",
            str(files["ret_t2i_b"]),
        ],
    )
    assert (out["metric"], out["n_clusters"], "mcnemar" in out) == ("r_mean", 30, False)
    assert (out["a"], out["b"]) == pytest.approx((a, b)) and out["delta"] == pytest.approx(a - b)
    assert out["ci95"][0] > 0  # the matched captions score 1.5 above noise against 0.5

    ml = ["multilabel", "--annotations", str(files["instances"])]
    a = _json_out(capsys, [*ml, "--scores", str(files["ml_a"])])["mAP"]
    b = _json_out(capsys, [*ml, "--scores", str(files["ml_b"])])["mAP"]
    out = _json_out(
        capsys, [*ml, "--scores", str(files["ml_a"]), "--against", str(files["ml_b"]), "--replicates", "200"]
    )
    assert (out["a"], out["b"], out["n_clusters"], out["replicates"]) == (a, b, 60, 200)
    assert out["ci95"][0] > 0


def test_table_without_json(files, capsys) -> None:
    argv = [*_vqa(files, files["vqa_b"]), "--against", str(files["vqa_a"]), "--replicates", "500", "--claim-delta", "3"]
    assert main(["score", *argv]) == 0
    text = capsys.readouterr().out
    for part in (
        "b.json against a.json",
        "vqa_accuracy",
        "+25.00",
        "95% CI",
        "claim: a beats b by +3 points",
        "supported",
    ):
        assert part in text, text


VQA = ["vqa", "--questions", "{questions}", "--annotations", "{annotations}", "--results", "{vqa_a}"]
CLS = ["classification", "--scores", "{cls_a}", "--labels", "{y}"]
RET = ["retrieval", "--annotations", "{lavis}", "--scores", "{ret_a}"]
ML = ["multilabel", "--annotations", "{instances}", "--scores", "{ml_a}"]
# (id, argv with {file} placeholders, expected message parts)
ERRORS = [
    (
        "vqa-against-missing-answer",
        [*VQA, "--against", "{vqa_short}"],
        ["short.json: missing answers for question ids 120 (1 in all)"],
    ),
    (
        "vqa-against-no-file",
        [*VQA, "--against", "/nonexistent/b.json"],
        ["/nonexistent/b.json: VQA results file not found"],
    ),
    (
        "cls-against-shape",
        [*CLS, "--against", "{cls_narrow}"],
        ["cls_narrow.npy: expected shape (200, 5) like cls_a.npy (the same examples and classes), got (200, 4)"],
    ),
    (
        "cls-clusters-length",
        [*CLS, "--against", "{cls_b}", "--clusters", "{groups_short}"],
        ["groups_short.npy: expected 200 cluster labels (one per row of cls_a.npy), got 199"],
    ),
    (
        "cls-clusters-2d",
        [*CLS, "--against", "{cls_b}", "--clusters", "{groups_2d}"],
        ["groups_2d.npy: expected a 1-D cluster labels"],
    ),
    (
        "ret-against-shape",
        [*RET, "--against", "{ret_bad}"],
        ["ret_bad.npy: expected shape (images, texts) = (30, 150) from coco_karpathy_test.json"],
    ),
    (
        "ret-against-t2i-shape",
        [*RET, "--against", "{ret_b}", "--against-t2i", "{ret_b}"],
        ["ret_b.npy: expected shape (texts, images) = (150, 30), got (30, 150)"],
    ),
    ("ml-against-shape", [*ML, "--against", "{ml_bad}"], ["ml_bad.npy: expected shape (images, categories) = (60, 4)"]),
    (
        "ml-against-mode",
        [*ML, "--against", "{ml_b}", "--mode", "voc"],
        ["--mode voc: --against compares the default mAP (--mode nonint) only"],
    ),
    (
        "claim-delta-bad",
        [*CLS, "--against", "{cls_b}", "--claim-delta", "abc"],
        ["--claim-delta: expected points (3.2) or a relative gain with a percent sign (15%), got 'abc'"],
    ),
    (
        "metric-unknown",
        [*CLS, "--against", "{cls_b}", "--metric", "mAP"],
        ["--metric mAP: not a metric of classification predictions; use one of top1, top5"],
    ),
    (
        "claim-without-against",
        [*CLS, "--claim-delta", "3"],
        ["--claim-delta applies to a paired comparison; add --against"],
    ),
    ("clusters-without-against", [*CLS, "--clusters", "{groups}"], ["--clusters applies to a paired comparison"]),
    ("t2i-without-against", [*RET, "--against-t2i", "{ret_b}"], ["--against-t2i applies to a paired comparison"]),
    ("metric-without-against", [*ML, "--metric", "mAP"], ["--metric applies to a paired comparison"]),
]


@pytest.mark.parametrize(("argv", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_inputs_are_one_line(files, capsys, argv: list[str], expected: list[str]) -> None:
    args = [a.format(**{k: str(v) for k, v in files.items()}) if a.startswith("{") else a for a in argv]
    assert main(["score", *args, "--json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and len(err.splitlines()) == 1 and err.startswith("xmbench: error: "), err
    for part in expected:
        assert part in err, err


def test_score_against_does_not_import_torch(files) -> None:
    code = (
        "import sys; from harness.cli import main; rc = main(['score', 'vqa', '--questions', sys.argv[1], "
        "'--annotations', sys.argv[2], '--results', sys.argv[3], '--against', sys.argv[4], '--replicates', '100', "
        "'--claim-delta', '1', '--json']); print('torch' in sys.modules, rc, file=sys.stderr)"
    )
    argv = [str(files[k]) for k in ("questions", "annotations", "vqa_a", "vqa_b")]
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=root, timeout=120)
    assert res.stderr.strip().splitlines()[-1] == "False 0"
    assert json.loads(res.stdout)["verdict"] == "contradicted"  # a is 25 points below b
