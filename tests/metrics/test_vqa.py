"""VQA accuracy: normalisation quirks by hand, the official fixture, legacy mode, a reference port on random data."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest

from harness.errors import UserError
from harness.metrics import normalize_answer, vqa_accuracy, vqa_question_scores
from harness.metrics.vqa import CONTRACTIONS, NUMBER_WORDS, PUNCTUATION

from .reference_vqa import LegacyVQAEval, OfficialVQAEval

OFFICIAL = OfficialVQAEval()
LEGACY = LegacyVQAEval()


def test_tables_match_official_source() -> None:
    # sha256 of json.dumps(sorted(contractions.items())) computed from the dict literal in GT-Vision-Lab/VQA vqaEval.py
    # (current version, ASCII apostrophes): 120 entries.
    digest = hashlib.sha256(json.dumps(sorted(CONTRACTIONS.items())).encode()).hexdigest()
    assert len(CONTRACTIONS) == 120
    assert digest == "3e5960526f62912d3b70896069c43c13d7c21be38d50ca28efbb9095b499454f"
    assert tuple(OFFICIAL.punct) == PUNCTUATION
    assert OFFICIAL.manualMap == NUMBER_WORDS
    assert "'" not in PUNCTUATION and ":" not in PUNCTUATION and "." not in PUNCTUATION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # period at the end (not followed by a digit) deleted; "two" -> "2"
        ("Two dogs.", "2 dogs"),
        # period followed by a digit kept
        ("3.5", "3.5"),
        ("2.", "2"),
        # "e." and "g." periods deleted, "1.5" kept
        ("e.g. 1.5", "eg 1.5"),
        ("a.b.c", "abc"),
        # '-' and '!' have no adjacent space in the original -> replaced by a space
        ("T-shirt!", "t shirt"),
        # '-': the ORIGINAL has "- " somewhere -> every '-' is deleted, so "gray-blue" merges; ',' likewise (", ")
        ("black- white, gray-blue", "black white grayblue"),
        # digit-comma-digit anywhere -> ALL punctuation deleted (also the '-' of t-shirts)
        ("1,000 t-shirts", "1000 tshirts"),
        ("1,2", "12"),
        # no digit-comma-digit, no space next to ',' -> replaced by a space
        ("yes,no", "yes no"),
        # '(' -> space (no "( " / " (" in the original); ')' -> deleted (") " in the original); article "a" dropped
        ("(a) dog's", "dog's"),
        # '+', '=', '?' -> spaces; "a" dropped
        ("a+b=c?", "b c"),
        # " ?" in the original -> deleted
        ("what ?", "what"),
        # apostrophe and colon are not in the punctuation list
        ("10:30", "10:30"),
        ("o'clock", "o'clock"),
        ("it's", "it's"),
        ("its", "its"),
        # contractions (word level, after lower-casing)
        ("dont", "don't"),
        ("Dont", "don't"),
        ("Im", "im"),  # the table's "Im" key can never match (text is lower-cased first)
        ("somebody'd", "somebodyd"),  # the table maps this one backwards
        # number words (incl. "none" -> "0"), articles a/an/the
        ("None", "0"),
        ("the one", "1"),
        ("An apple", "apple"),
        ("ten", "10"),
        ("twenty", "twenty"),
        # Unicode digits count as digits for the period rule (Python 3 `\d`)
        ("٣.٥", "٣.٥"),
        # whitespace collapsed by split/join
        ("  big   dog ", "big dog"),
    ],
)
def test_normalize_answer_hand_cases(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected
    assert OFFICIAL.processDigitArticle(OFFICIAL.processPunctuation(text)) == expected


def test_at_most_32_periods_deleted() -> None:
    # re.UNICODE (== 32) is passed as `count` to periodStrip.sub: 40 periods -> 32 deleted, 8 kept.
    assert normalize_answer("x" + "." * 40) == "x" + "." * 8
    assert normalize_answer("." * 32) == ""


def test_strip_happens_before_the_punctuation_rule() -> None:
    # With the leading space, " -" is in the text, so every '-' is deleted; stripped first, '-' becomes a space.
    assert normalize_answer(" -red-blue") == "redblue"
    assert normalize_answer("-red-blue") == "red blue"
    answers = [" -red-blue"] * 4 + ["green"] * 6
    # official: answers disagree -> strip + normalise -> 4 x "red blue"; M = 4 matches -> every answer sees >= 3: 1.0
    # legacy: answers never stripped, punctuation only -> " redblue" (leading space kept) -> M = 0 -> 0.0
    assert vqa_question_scores(["red blue"], [answers]).tolist() == [1.0]
    assert vqa_question_scores(["red blue"], [answers], mode="legacy").tolist() == [0.0]


@pytest.mark.parametrize(
    ("n_match", "expected"),
    [
        (0, 0.0),
        # M=1: the matching answer sees 0 others -> 0; 9 others see 1 -> 1/3 each: (9 * 1/3) / 10 = 0.3
        (1, 0.3),
        # M=2: 2 x min(1, 1/3) + 8 x min(1, 2/3) = 2/3 + 16/3 = 6 -> 0.6
        (2, 0.6),
        # M=3: 3 x 2/3 + 7 x 1 = 9 -> 0.9
        (3, 0.9),
        # M=4: 4 x min(1, 3/3) + 6 x 1 = 10 -> 1.0
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_per_question_arithmetic(n_match: int, expected: float) -> None:
    answers = ["cat"] * n_match + ["dog", "bird", "cow", "pig", "hen", "fox", "owl", "ant", "bee", "elk"][
        : 10 - n_match
    ]
    (score,) = vqa_question_scores(["cat"], [answers]).tolist()
    assert score == pytest.approx(expected, abs=1e-12)


def test_official_unanimous_answers_are_not_normalised() -> None:
    # 10 x "2": unanimous -> only stripped, so "two" != "2" (0) while the legacy evaluator normalises the
    # prediction "two" -> "2" (100).
    assert vqa_question_scores(["two"], [["2"] * 10]).tolist() == [0.0]
    assert vqa_question_scores(["two"], [["2"] * 10], mode="legacy").tolist() == [1.0]
    # "Yes" vs 10 x "yes": official 0 (no lower-casing), legacy 1.0.
    assert vqa_question_scores(["Yes"], [["yes"] * 10]).tolist() == [0.0]
    assert vqa_question_scores(["Yes"], [["yes"] * 10], mode="legacy").tolist() == [1.0]
    # Unanimity is judged after stripping: "yes" and "yes\n" are the same answer -> no normalisation -> "Yes" is 0.
    assert vqa_question_scores(["Yes"], [["yes", "yes\n"] * 5]).tolist() == [0.0]
    assert vqa_question_scores([" yes\t"], [["yes", "yes\n"] * 5]).tolist() == [1.0]


def test_legacy_compares_answers_case_sensitively() -> None:
    # 8 x "Yes" + 2 x "yes": legacy applies only the punctuation rule to the answers, so only the 2 "yes" match the
    # normalised prediction "yes": M=2 -> 0.6. Official normalises all 10 -> M=10 -> 1.0.
    answers = ["Yes"] * 8 + ["yes"] * 2
    assert vqa_question_scores(["yes"], [answers], mode="legacy").tolist() == pytest.approx([0.6], abs=1e-12)
    assert vqa_question_scores(["yes"], [answers]).tolist() == [1.0]


def test_variable_number_of_answers() -> None:
    # 1 answer: it has no "other" answers -> 0. 3 identical answers: each sees 2 matches -> 2/3.
    scores = vqa_question_scores(["a dog", "dog", "dog"], [["dog"], ["dog"] * 3, ["dog"] * 13])
    assert scores.tolist() == pytest.approx([0.0, 2 / 3, 1.0], abs=1e-12)


def test_vqa_accuracy_rounding_and_types() -> None:
    preds = ["yes", "no", "2", "red"]
    answers = [["yes"] * 10, ["yes"] * 10, ["2"] * 9 + ["3"], ["red"] * 2 + ["blue"] * 8]
    # scores: 1, 0, 1 (M=9), 0.6 (M=2) -> overall 2.6 / 4 = 65.0; yes/no: 1/2 -> 50.0; number 100.0; other 60.0
    out = vqa_accuracy(preds, answers, ["yes/no", "yes/no", "number", "other"], ["is", "is", "how many", "what"])
    assert out["overall"] == 65.0
    assert out["perAnswerType"] == {"yes/no": 50.0, "number": 100.0, "other": 60.0}
    assert list(out["perAnswerType"]) == ["yes/no", "number", "other"]  # order of first appearance
    assert out["perQuestionType"] == {"is": 50.0, "how many": 100.0, "what": 60.0}
    # 1 of 3 correct: 100 / 3 = 33.333... -> 33.33; 2 of 3 -> 66.67
    assert vqa_accuracy(["a", "b", "c"], [["a"] * 10, ["x"] * 10, ["y"] * 10])["overall"] == 33.33
    assert vqa_accuracy(["a", "b", "c"], [["a"] * 10, ["b"] * 10, ["y"] * 10])["overall"] == 66.67
    assert vqa_accuracy(["a"], [["a"] * 10]) == {"overall": 100.0, "perAnswerType": {}, "perQuestionType": {}}


def test_official_fixture(fixtures_dir) -> None:
    vqa_dir = fixtures_dir / "vqa"
    annotations = json.loads((vqa_dir / "v2_sample_annotations.json").read_text())["annotations"]
    questions = json.loads((vqa_dir / "v2_sample_questions.json").read_text())["questions"]
    expected = json.loads((vqa_dir / "v2_sample_expected_official.json").read_text())
    by_id = {a["question_id"]: a for a in annotations}
    assert {q["question_id"] for q in questions} == set(by_id) == {int(k) for k in expected}
    preds, answers, want = [], [], []
    for qid, cases in expected.items():
        gt = [a["answer"] for a in by_id[int(qid)]["answers"]]
        for pred, pct in cases.items():
            preds.append(pred)
            answers.append(gt)
            want.append(pct)
    got = vqa_question_scores(preds, answers) * 100
    assert got.tolist() == pytest.approx(want, abs=1e-9)
    assert [OFFICIAL.question_accuracy(p, a) * 100 for p, a in zip(preds, answers)] == pytest.approx(want, abs=1e-9)


_POOL = [
    "Two", "two", "two.", "2", " 2", "2\n", "3", "three", "a dog", "dog", "the dog", "dog.", "Dog", "dogs", "yes",
    "Yes", "yes ", "no", "no ", "No.", "it's", "its", "it s", "dont", "don't", "t-shirt", "t shirt", "T-Shirt!",
    "tshirt", "1,000", "1000", "1 000", "none", "0", "zero", "3.5", "3. 5", "red-blue", " -red-blue", "red blue",
    "(a) cat", "cat", "an apple", "apple", "what ?", "what", "e.g. 1.5", "eg 1.5", "black and white", "black & white",
    "",
]  # fmt: skip


def _random_cases(rng: random.Random, n_questions: int) -> tuple[list[str], list[list[str]], list[str], list[str]]:
    preds, answers, a_types, q_types = [], [], [], []
    for _ in range(n_questions):
        k = rng.choice([10, 10, 10, 10, 3, 1, 5])
        support = rng.sample(_POOL, rng.choice([1, 1, 2, 3, 4]))  # few distinct answers -> unanimous cases are common
        answers.append([rng.choice(support) for _ in range(k)])
        preds.append(rng.choice(support + rng.sample(_POOL, 2)))
        a_types.append(rng.choice(["yes/no", "number", "other"]))
        q_types.append(rng.choice(["how many", "what color is the", "is the", "what"]))
    return preds, answers, a_types, q_types


@pytest.mark.parametrize("mode", ["official", "legacy"])
def test_matches_reference_port_on_random_cases(mode: str) -> None:
    reference = OFFICIAL if mode == "official" else LEGACY
    preds, answers, a_types, q_types = _random_cases(random.Random(1234), 3000)
    want_summary = reference.evaluate(preds, answers, a_types, q_types)
    want = np.array(reference.accQA)
    got = vqa_question_scores(preds, answers, mode=mode)
    assert np.array_equal(got, want)  # bit-identical, not approximately equal
    assert len(set(want.tolist())) > 5  # the cases exercise many score values
    assert vqa_accuracy(preds, answers, a_types, q_types, mode=mode) == want_summary


def test_input_errors() -> None:
    with pytest.raises(UserError, match="Expected `mode` to be one of 'official', 'legacy', but got 'strict'"):
        vqa_question_scores(["a"], [["a"]], mode="strict")
    with pytest.raises(UserError, match=r"one entry per prediction \(2\), but got 1"):
        vqa_question_scores(["a", "b"], [["a"]])
    with pytest.raises(UserError, match="at least one answer"):
        vqa_question_scores(["a"], [[]])
    with pytest.raises(UserError, match="Expected every prediction to be a str, but got int"):
        vqa_question_scores([2], [["2"]])
    with pytest.raises(UserError, match="list of answer strings, but got str"):
        vqa_question_scores(["a"], ["a"])
    with pytest.raises(UserError, match=r"`answer_types` to have one entry per question \(1\)"):
        vqa_accuracy(["a"], [["a"]], answer_types=["x", "y"])
    with pytest.raises(UserError, match="at least one question"):
        vqa_accuracy([], [])
