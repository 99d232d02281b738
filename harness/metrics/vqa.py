"""VQA accuracy with the exact semantics of the official GT-Vision-Lab/VQA evaluator.

Two variants are offered (see ``docs/metrics.md`` for the full list of conventions):

* ``mode="official"`` -- the current ``vqaEval.py`` of GT-Vision-Lab/VQA: the prediction and every ground-truth
  answer are stripped of ``\\n``/``\\t``/surrounding whitespace; *only if* the stripped answers are not all identical,
  every answer and the prediction are normalised (punctuation rule, then lower-case, number words to digits, articles
  dropped, contraction table).
* ``mode="legacy"`` -- the older evaluator still shipped by LAVIS/ALBEF (``lavis/common/vqa_tools/vqa_eval.py``): the
  prediction is always stripped and fully normalised; the answers are never stripped and, only when they are not all
  identical, get the punctuation rule only (no lower-casing, no number words, no articles).

Per question, with ``n`` ground-truth answers (10 in VQA v2) of which ``M`` equal the prediction, the official loop
scores answer ``i`` as ``min(1, matches among the other n - 1 answers / 3)`` and averages over ``i``. We compute the
same number in closed form from the pattern of matching positions, and look the float up in a table built with the
official summation order, so the result is bit-identical to the straightforward loop (not merely close).

This module needs only numpy.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Hashable, Sequence

import numpy as np

from harness.errors import UserError

__all__ = ["normalize_answer", "vqa_accuracy", "vqa_question_scores"]

MODES = ("official", "legacy")

# ---------------------------------------------------------------------------------------------------------------------
# Normalisation tables (the data of the official evaluator, current version with ASCII apostrophes).
# ---------------------------------------------------------------------------------------------------------------------

# Punctuation handled by the punctuation rule (the period has its own regex below). Apostrophe and colon are NOT in the
# current list (they were in a 2015 version of the evaluator).
PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip

# Number words mapped to digits, word by word, after lower-casing ("none" counts as a number word: it becomes "0").
NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip

ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# Word-level contraction table, applied after lower-casing. Keys with capitals ("Im", "Ive", "Id've", "I'dve") can never
# match (the text is lower-cased first) and "somebody'd" maps to "somebodyd": both quirks are part of the metric.
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't",
    "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd", "howll": "how'll",
    "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd",
    "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't",
    "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've",
    "she'dve": "she'd've", "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're", "theres": "there's", "theyd": "they'd",
    "theyd've": "they'd've", "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've",
    "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd",
    "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
    "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}  # fmt: skip

# The official regex is "(?!<=\d)(\.)(?!\d)"; its first group is a negative *lookahead* for "<=digit" (a typo for a
# lookbehind) that always succeeds before a ".", so the rule is simply "a period not followed by a digit". `\d` is the
# Unicode digit class (Python 3 str patterns), as in the official code.
_PERIOD = re.compile(r"\.(?!\d)")
# The official code passes ``re.UNICODE`` (== 32) as the third positional argument of ``Pattern.sub``, which is the
# ``count``: at most 32 periods are deleted, the rest are kept.
_PERIOD_MAX_DELETIONS = int(re.UNICODE)
# A digit-comma-digit anywhere in the (original) text switches every punctuation mark to "delete" instead of "space".
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_PUNCT_OR_PERIOD = frozenset(PUNCTUATION) | {"."}

_CACHE_SIZE = 1 << 18


def _process_punctuation(text: str) -> str:
    """The official ``processPunctuation``: every test looks at the ORIGINAL text, replacements chain on the output."""
    if _PUNCT_OR_PERIOD.isdisjoint(text):
        return text
    out = text
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    for p in PUNCTUATION:
        # Replacements only delete characters or add spaces, so a mark absent from the original stays absent.
        if p in text:
            delete = delete_all or (p + " ") in text or (" " + p) in text
            out = out.replace(p, "" if delete else " ")
    return _PERIOD.sub("", out, count=_PERIOD_MAX_DELETIONS)


# Number words and contraction keys are disjoint, articles are in neither, and the digits number words map to are not
# contraction keys: one lookup per word is equivalent to the official "number word, drop article, contraction" chain.
_WORD_MAP = {**CONTRACTIONS, **NUMBER_WORDS}
assert len(_WORD_MAP) == len(CONTRACTIONS) + len(NUMBER_WORDS)
assert not (ARTICLES & _WORD_MAP.keys()) and not (set(NUMBER_WORDS.values()) & CONTRACTIONS.keys())


def _process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: lower-case, split on whitespace, number words, articles, contractions."""
    return " ".join([_WORD_MAP.get(w, w) for w in text.lower().split() if w not in ARTICLES])


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _normalize(s: str) -> str:
    return _process_digit_article(_process_punctuation(s))


def normalize_answer(s: str) -> str:
    """Normalise one answer exactly as the official evaluator (``processPunctuation`` then ``processDigitArticle``).

    This does not include the ``\\n``/``\\t``/surrounding-whitespace strip that the evaluator applies first (see
    :func:`vqa_question_scores`); since the punctuation rule looks for ``" " + p`` in the text, stripping first can
    change the result.

    Args:
        s: The answer string.

    Returns:
        The normalised answer, e.g. ``"Two dogs."`` -> ``"2 dogs"``, ``"T-shirt!"`` -> ``"t shirt"``.
    """
    if not isinstance(s, str):
        raise UserError(f"Expected an answer to be a str, but got {type(s).__name__} {s!r}")
    return _normalize(s)


def _strip(s: str) -> str:
    if "\n" in s or "\t" in s:
        s = s.replace("\n", " ").replace("\t", " ")
    return s.strip()


# ---------------------------------------------------------------------------------------------------------------------
# Per-question scores
# ---------------------------------------------------------------------------------------------------------------------


def _loop_score(n: int, matches: Sequence[bool]) -> float:
    """The official per-question arithmetic for one pattern of matching answers, in the official summation order."""
    total = sum(matches)
    # Answer i is compared with the n - 1 OTHER answers: it sees `total - 1` matches if it matches itself, else `total`.
    per_answer = [min(1, float(total - 1 if m else total) / 3) for m in matches]
    return float(sum(per_answer)) / len(per_answer)


@functools.lru_cache(maxsize=4096)
def _score_table(n: int) -> np.ndarray | None:
    """Scores for every bit pattern of ``n`` matches (``n <= 12``); ``None`` for larger ``n`` (computed lazily)."""
    if n > 12:
        return None
    table = np.empty(1 << n, dtype=np.float64)
    for mask in range(1 << n):
        table[mask] = _loop_score(n, [(mask >> i) & 1 == 1 for i in range(n)])
    return table


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise UserError(f"Expected `mode` to be one of {', '.join(repr(m) for m in MODES)}, but got {mode!r}")


def _check_strings(values: Sequence[object], what: str) -> None:
    for v in values:
        if not isinstance(v, str):
            raise UserError(f"Expected every {what} to be a str, but got {type(v).__name__} {v!r}")


def vqa_question_scores(
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]],
    mode: str = "official",
) -> np.ndarray:
    """Per-question VQA accuracy in [0, 1] (unrounded), bit-identical to the official evaluator's loop.

    Args:
        predictions: One predicted answer string per question.
        answers: For each question, its ground-truth answer strings (10 in VQA v2; any number >= 1 is accepted). They
            are treated as distinct entries, as in the official annotation files where every answer has its own
            ``answer_id``.
        mode: ``"official"`` (current GT-Vision-Lab/VQA evaluator) or ``"legacy"`` (LAVIS/ALBEF copy).

    Returns:
        A float64 array of shape ``(len(predictions),)``.

    Raises:
        UserError: On an unknown mode, a length mismatch, a question without answers, or a non-string answer.
    """
    _check_mode(mode)
    if isinstance(predictions, str) or isinstance(answers, str):
        raise UserError("Expected `predictions` and `answers` to be sequences (one entry per question), but got a str")
    predictions = list(predictions)
    answers = list(answers)
    n_q = len(predictions)
    if len(answers) != n_q:
        raise UserError(f"Expected `answers` to have one entry per prediction ({n_q}), but got {len(answers)} entries")
    if n_q == 0:
        return np.zeros(0, dtype=np.float64)
    for a in answers:
        # type() fast path first: isinstance against the Sequence ABC is slow at 200k questions.
        if type(a) not in (list, tuple) and (isinstance(a, str) or not isinstance(a, Sequence)):
            raise UserError(
                f"Expected each entry of `answers` to be a list of answer strings, but got {type(a).__name__} {a!r}"
            )

    lengths = np.fromiter(map(len, answers), dtype=np.int64, count=n_q)
    if lengths.min() == 0:
        q = int(np.argmin(lengths))
        raise UserError(f"Expected every question to have at least one answer, but question #{q} has none")

    # Distinct raw strings -> int ids (every distinct string is stripped/normalised once).
    flat = list(itertools.chain.from_iterable(answers))
    try:
        raw_answers = list(dict.fromkeys(flat))
        raw_preds = list(dict.fromkeys(predictions))
    except TypeError as exc:  # unhashable entries
        raise UserError(f"Expected answers and predictions to be str, but got an unhashable value ({exc})") from None
    _check_strings(raw_answers, "answer")
    _check_strings(raw_preds, "prediction")
    answer_index = {s: i for i, s in enumerate(raw_answers)}
    pred_index = {s: i for i, s in enumerate(raw_preds)}
    answer_ids = np.fromiter(map(answer_index.__getitem__, flat), dtype=np.int64, count=len(flat))
    pred_ids = np.fromiter(map(pred_index.__getitem__, predictions), dtype=np.int64, count=n_q)

    # Canonical strings -> int codes, shared by answers and predictions so that equality is an int comparison.
    codes: dict[str, int] = {}

    def code(s: str) -> int:
        return codes.setdefault(s, len(codes))

    def plain_and_normalised(strings: list[str], full: bool) -> tuple[np.ndarray, np.ndarray]:
        plain = np.empty(len(strings), dtype=np.int64)
        norm = np.empty(len(strings), dtype=np.int64)
        for i, s in enumerate(strings):
            if full:  # stripped, and stripped + fully normalised
                s = _strip(s)
                plain[i], norm[i] = code(s), code(_normalize(s))
            else:  # legacy answers: raw, and punctuation rule only (no strip)
                plain[i], norm[i] = code(s), code(_process_punctuation(s))
        return plain, norm

    if mode == "official":
        # Unanimity is decided on the stripped answers; if unanimous compare stripped strings, else normalised ones.
        ans_plain, ans_norm = plain_and_normalised(raw_answers, full=True)
        pred_plain, pred_norm = plain_and_normalised(raw_preds, full=True)
    else:
        # Legacy: unanimity on the raw answers; unanimous answers are compared raw, otherwise punctuation-processed.
        # The prediction is always stripped and fully normalised.
        ans_plain, ans_norm = plain_and_normalised(raw_answers, full=False)
        pred_norm = plain_and_normalised(raw_preds, full=True)[1]
        pred_plain = pred_norm

    flat_plain = ans_plain[answer_ids]
    flat_norm = ans_norm[answer_ids]
    q_plain = pred_plain[pred_ids]
    q_norm = pred_norm[pred_ids]
    offsets = np.zeros(n_q, dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])

    scores = np.empty(n_q, dtype=np.float64)
    for n in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == n)
        cols = offsets[rows, None] + np.arange(n)
        plain = flat_plain[cols]
        norm = flat_norm[cols]
        unanimous = (plain == plain[:, :1]).all(axis=1)
        match = np.where(
            unanimous[:, None], plain == q_plain[rows, None], norm == q_norm[rows, None]
        )  # (rows, n) bool: answer j equals the prediction
        table = _score_table(n)
        if table is not None:
            masks = match @ (np.int64(1) << np.arange(n, dtype=np.int64))
            scores[rows] = table[masks]
        else:  # more than 12 answers per question: group identical patterns, score each pattern once
            patterns, inverse = np.unique(match, axis=0, return_inverse=True)
            values = np.array([_loop_score(n, p.tolist()) for p in patterns], dtype=np.float64)
            scores[rows] = values[inverse.reshape(-1)]
    return scores


# ---------------------------------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------------------------------


def _percent(values: list[float]) -> float:
    """The official ``round(100 * float(sum(acc)) / len(acc), 2)``: sequential Python ``sum``, then round."""
    return round(100 * float(sum(values)) / len(values), 2)


def _per_type(values: np.ndarray, types: Sequence[Hashable], name: str) -> dict[Hashable, float]:
    if isinstance(types, str) or len(types) != len(values):
        got = "a str" if isinstance(types, str) else f"{len(types)} entries"
        raise UserError(f"Expected `{name}` to have one entry per question ({len(values)}), but got {got}")
    try:
        order = {t: i for i, t in enumerate(dict.fromkeys(types))}  # first-appearance order, as the official dicts
    except TypeError as exc:
        raise UserError(f"Expected `{name}` to hold hashable labels (e.g. str), but got {exc}") from None
    codes = np.fromiter(map(order.__getitem__, types), dtype=np.int64, count=len(values))
    by_group = np.argsort(codes, kind="stable")  # keeps question order inside each group
    bounds = np.searchsorted(codes[by_group], np.arange(len(order) + 1))
    grouped = values[by_group]
    return {t: _percent(grouped[bounds[i] : bounds[i + 1]].tolist()) for t, i in order.items()}


def aggregate_vqa_scores(
    scores: np.ndarray | Sequence[float],
    answer_types: Sequence[Hashable] | None = None,
    question_types: Sequence[Hashable] | None = None,
) -> dict[str, object]:
    """Turn per-question scores into the official summary (percent, rounded to 2 decimals, official float order).

    Args:
        scores: Per-question accuracies in [0, 1], in question order.
        answer_types: Optional answer type per question (e.g. ``"yes/no"``).
        question_types: Optional question type per question (e.g. ``"how many"``).

    Returns:
        ``{"overall": float, "perAnswerType": {...}, "perQuestionType": {...}}``; the per-type dicts are in order of
        first appearance (as the official dicts) and empty when the types are not given.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise UserError("Expected at least one question to score, but got 0")
    return {
        "overall": _percent(values.tolist()),
        "perAnswerType": {} if answer_types is None else _per_type(values, answer_types, "answer_types"),
        "perQuestionType": {} if question_types is None else _per_type(values, question_types, "question_types"),
    }


def vqa_accuracy(
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]],
    answer_types: Sequence[Hashable] | None = None,
    question_types: Sequence[Hashable] | None = None,
    mode: str = "official",
) -> dict[str, object]:
    """VQA accuracy as reported by the official evaluator (percent, rounded to 2 decimals).

    Args:
        predictions: One predicted answer string per question.
        answers: For each question, its ground-truth answer strings.
        answer_types: Optional answer type per question (VQA v2: ``"yes/no"``, ``"number"``, ``"other"``).
        question_types: Optional question type per question (VQA v2: 65 types such as ``"what color is the"``).
        mode: ``"official"`` or ``"legacy"`` (see :func:`vqa_question_scores`).

    Returns:
        ``{"overall": float, "perAnswerType": {type: float}, "perQuestionType": {type: float}}``, each value
        ``round(100 * mean, 2)`` with the mean summed sequentially in the given question order as the official tool.
    """
    scores = vqa_question_scores(predictions, answers, mode=mode)
    return aggregate_vqa_scores(scores, answer_types, question_types)
