"""Scoring speed goals of ``xmbench score``.

Run: ``.venv/bin/python -m pytest benchmarks/test_score_speed.py --benchmark-only -q -s``

* VQA: scoring a VQA v2-sized results file (214,354 questions, 10 human answers each, realistic answer repetition and
  surface variants) with ``xmbench score vqa`` as a whole process must be at least 10x faster than a straightforward
  whole-process port of the official evaluator (``benchmarks/reference_vqa_score.py``), and give the same number. Runs
  alternate (ours, reference, ours, ...); the goal holds for the median ratio (``XMBENCH_VQA_PAIRS`` pairs, default 3).
* Retrieval: recall on a 5,000 x 25,000 score matrix in under 1 s on 2 cores, with extra memory bounded by a chunk.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from benchmarks._timing import before_checkout

ROOT = Path(__file__).resolve().parents[1]
N_QUESTIONS = 214_354  # VQA v2 val2014
VQA_GOAL = 10.0
RETRIEVAL_GOAL_S = 1.0

WORDS = [
    "yes",
    "no",
    "2",
    "1",
    "3",
    "white",
    "red",
    "blue",
    "black",
    "green",
    "dog",
    "cat",
    "frisbee",
    "tennis",
    "pizza",
    "kitchen",
    "man",
    "woman",
    "umbrella",
    "skateboard",
    "left",
    "right",
    "table",
    "sitting",
    "standing",
    "baseball",
    "surfing",
    "snow",
    "water",
    "grass",
    "bus",
    "train",
    "clock",
    "phone",
    "wood",
    "brown",
    "yellow",
]
VARIANTS = [
    lambda a: a,
    lambda a: a.capitalize(),
    lambda a: a + ".",
    lambda a: "the " + a,
    lambda a: " " + a,
    lambda a: a.replace("2", "two").replace("3", "three"),
]


def _answer_pool(rng: random.Random) -> list[str]:
    """About 20k distinct canonical answers: single words, pairs, numbers (Zipf-like use below)."""
    pool = list(WORDS) + [str(i) for i in range(100)]
    while len(pool) < 20_000:
        pool.append(" ".join(rng.sample(WORDS, rng.choice([1, 2, 2, 3]))) + rng.choice(["", "s", " one", "'s"]))
    return pool


@pytest.fixture(scope="module")
def vqa_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    rng = random.Random(0)
    pool = _answer_pool(rng)
    weights = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(pool))))  # cumulative: Zipf-like use
    types = [
        ("what color is the", "other"),
        ("is there a", "yes/no"),
        ("how many", "number"),
        ("what is the", "other"),
        ("is the", "yes/no"),
        ("what", "other"),
    ]
    questions, annotations, results = [], [], []
    canon = rng.choices(pool, cum_weights=weights, k=N_QUESTIONS)
    for n in range(N_QUESTIONS):
        qid = (n // 3 + 1) * 1000 + n % 3
        qtype, atype = rng.choice(types)
        truth = canon[n]
        agree = rng.random()
        answers = []
        for k in range(10):
            if rng.random() < 0.3 + 0.7 * agree:
                a = truth if agree > 0.7 else rng.choice(VARIANTS)(truth)
            else:
                a = rng.choices(pool, cum_weights=weights)[0]
            answers.append({"answer": a, "answer_confidence": "yes", "answer_id": k + 1})
        questions.append({"image_id": n // 3 + 1, "question": f"{qtype} ?", "question_id": qid})
        annotations.append(
            {
                "question_id": qid,
                "image_id": n // 3 + 1,
                "question_type": qtype,
                "answer_type": atype,
                "multiple_choice_answer": truth,
                "answers": answers,
            }
        )
        pred = truth if rng.random() < 0.6 else rng.choices(pool, cum_weights=weights)[0]
        results.append({"question_id": qid, "answer": rng.choice(VARIANTS)(pred)})
    folder = tmp_path_factory.mktemp("vqa_v2_sized")
    paths = (folder / "questions.json", folder / "annotations.json", folder / "results.json")
    paths[0].write_text(json.dumps({"questions": questions}))
    paths[1].write_text(json.dumps({"annotations": annotations}))
    paths[2].write_text(json.dumps(results))
    return paths


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, check=True, timeout=1800, env={**os.environ, **(env or {})}
    )
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def test_vqa_score_whole_process(benchmark, vqa_files: tuple[Path, Path, Path]) -> None:
    """Whole processes, same files, same number printed; interleaved (ours, reference, ours, reference, ...) so that
    load from other users of a shared machine hits both sides alike. The ratio of each pair is reported as the median
    and range over ``XMBENCH_VQA_PAIRS`` pairs (default 3)."""
    q, a, r = (str(p) for p in vqa_files)
    ours = [sys.executable, "-m", "harness", "score", "vqa", "--questions", q, "--annotations", a, "--results", r]
    ours.append("--json")
    reference = [sys.executable, str(ROOT / "benchmarks" / "reference_vqa_score.py"), q, a, r]
    pairs: list[tuple[float, float]] = []
    before = before_checkout()  # $XMBENCH_BEFORE: another checkout, timed in the same alternation
    before_s: list[float] = []

    def pair() -> dict:
        ours_s, result = _run(ours)
        ref_s, ref = _run(reference)
        assert result["overall"] == ref["overall"]
        pairs.append((ours_s, ref_s))
        if before is not None:
            seconds, old = _run(ours, env={"PYTHONPATH": str(before)})
            assert old["overall"] == ref["overall"]
            before_s.append(seconds)
        return result

    rounds = int(os.environ.get("XMBENCH_VQA_PAIRS", "3"))
    result = benchmark.pedantic(pair, rounds=rounds, iterations=1, warmup_rounds=0)
    if not benchmark.enabled:
        return
    ratios = sorted(ref_s / ours_s for ours_s, ref_s in pairs)
    ratio = statistics.median(ratios)
    ours_med = statistics.median(o for o, _ in pairs)
    ref_med = statistics.median(f for _, f in pairs)
    benchmark.extra_info.update(
        questions=N_QUESTIONS,
        xmbench_s=[round(o, 2) for o, _ in pairs],
        reference_s=[round(f, 2) for _, f in pairs],
        ratio_median=round(ratio, 1),
        ratio_range=[round(ratios[0], 1), round(ratios[-1], 1)],
        overall=result["overall"],
    )
    print(
        f"\nVQA scoring, whole process, {N_QUESTIONS:,} questions, {len(pairs)} interleaved pairs: xmbench "
        f"{ours_med:.2f} s, straightforward port {ref_med:.2f} s (medians) -> {ratio:.1f}x "
        f"[{ratios[0]:.1f}-{ratios[-1]:.1f}]; overall {result['overall']} in both"
    )
    if before_s:
        old = sorted(f / b for (_, f), b in zip(pairs, before_s, strict=True))
        benchmark.extra_info.update(before_s=[round(b, 2) for b in before_s])
        print(
            f"before ({before}): {statistics.median(before_s):.2f} s -> {statistics.median(old):.1f}x "
            f"[{old[0]:.1f}-{old[-1]:.1f}] the port"
        )
    assert ratio >= VQA_GOAL


def test_retrieval_recall_5k_by_25k(benchmark) -> None:
    from harness.metrics.retrieval import retrieval_recall

    rng = np.random.default_rng(0)
    n_img, n_txt = 5_000, 25_000
    scores = rng.standard_normal((n_img, n_txt), dtype=np.float32)
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(n_img)]
    txt2img = [t // 5 for t in range(n_txt)]
    for i in range(n_img):  # make the task non-trivial: boost the true captions a little
        scores[i, 5 * i : 5 * i + 5] += 2.0
    result = benchmark.pedantic(
        lambda: retrieval_recall(scores, img2txt, txt2img), rounds=5, iterations=1, warmup_rounds=1
    )
    tracemalloc.start()
    retrieval_recall(scores, img2txt, txt2img)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if not benchmark.enabled:
        return
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        seconds=round(median, 3),
        peak_extra_mb=round(peak / 2**20, 1),
        matrix_mb=round(scores.nbytes / 2**20, 1),
        r_mean=round(result["r_mean"], 2),
    )
    print(
        f"\nretrieval recall 5k x 25k: {median:.3f} s median; extra memory peak {peak / 2**20:.1f} MB "
        f"(matrix {scores.nbytes / 2**20:.0f} MB)"
    )
    assert median < RETRIEVAL_GOAL_S
    assert peak < 0.25 * scores.nbytes  # a chunk and the index arrays, never a copy of the matrix
