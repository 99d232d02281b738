"""Speed of the deterministic WordPiece trainer on a VQA v2 train-sized corpus.

Run: ``.venv/bin/python -m pytest benchmarks/test_wordpiece_speed.py --benchmark-only -q -s``

The corpus imitates VQA v2 train: 443,757 questions of 3-12 words drawn from ~18,000 distinct English-like words
(syllable-built, with shared stems and suffixes) with Zipf frequencies, many questions repeated. Goal: a vocabulary
of 30,000 tokens in seconds (``harness.data.wordpiece.build_vocab``, words counted from the unique questions). The
time of each stage is printed and recorded in ``extra_info``; nothing is asserted about time.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest

from harness.data.wordpiece import SPECIALS, build_vocab, count_words, train_wordpiece

N_QUESTIONS = 443_757  # VQA v2 train2014
N_WORDS = 18_000
VOCAB_SIZE = 30_000

_ONSETS = ["", "b", "bl", "br", "c", "ch", "cl", "cr", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m"]
_ONSETS += ["n", "p", "pl", "pr", "qu", "r", "s", "sh", "sk", "sl", "sp", "st", "t", "th", "tr", "v", "w", "wh", "y"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou", "ie", "y"]
_CODAS = ["", "", "", "n", "r", "s", "t", "l", "ng", "ck", "nd", "st", "m", "rk", "ll", "tch"]
_SUFFIXES = ["", "", "", "", "s", "es", "ing", "ed", "er", "ly", "tion", "ness", "'s"]
_STARTS = ["what", "is", "how", "are", "does", "where", "which", "who", "why", "can", "do", "what color is"]


def vqa_like_questions(n: int = N_QUESTIONS, n_words: int = N_WORDS, seed: int = 0) -> list[str]:
    """``n`` English-like questions over about ``n_words`` distinct words (deterministic for a seed)."""
    rng = random.Random(seed)
    stems: set[str] = set()
    while len(stems) < n_words // 2:
        stems.add(
            "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.randint(1, 3)))
        )
    words = sorted({s + rng.choice(_SUFFIXES) for s in sorted(stems) for _ in range(3)})[:n_words]
    rng.shuffle(words)
    cum_weights = list(itertools.accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(len(words))))
    questions = []
    pool: list[str] = []
    for _ in range(n):
        if pool and rng.random() < 0.35:  # VQA repeats many questions verbatim ("What color is the cat?")
            questions.append(rng.choice(pool))
            continue
        body = rng.choices(words, cum_weights=cum_weights, k=rng.randint(2, 10))
        q = f"{rng.choice(_STARTS)} {' '.join(body)}?".capitalize()
        questions.append(q)
        if len(pool) < 20_000:
            pool.append(q)
    return questions


@pytest.fixture(scope="module")
def questions() -> list[str]:
    return vqa_like_questions()


def test_build_vocab_vqa_v2_sized(benchmark, questions: list[str]) -> None:
    unique = sorted(set(questions))
    t0 = time.perf_counter()
    counts = count_words(unique, lowercase=True)
    t1 = time.perf_counter()
    vocab = train_wordpiece(counts, VOCAB_SIZE)
    t2 = time.perf_counter()
    benchmark.extra_info.update(
        questions=len(questions),
        unique_questions=len(unique),
        distinct_words=len(counts),
        vocab=len(vocab),
        count_words_s=round(t1 - t0, 3),
        train_s=round(t2 - t1, 3),
    )
    print(
        f"\n{len(questions)} questions, {len(unique)} unique, {len(counts)} distinct words -> {len(vocab)} tokens: "
        f"count_words {t1 - t0:.2f} s, train {t2 - t1:.2f} s"
    )
    result = benchmark.pedantic(build_vocab, args=(questions, VOCAB_SIZE), rounds=1, iterations=1)
    assert result == vocab
    assert result[: len(SPECIALS)] == list(SPECIALS) and len(result) <= VOCAB_SIZE
    assert len(set(result)) == len(result)
