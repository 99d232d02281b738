"""A straightforward whole-process port of the official VQA evaluation (GT-Vision-Lab/VQA), for the speed benchmark.

Usage: python benchmarks/reference_vqa_score.py QUESTIONS ANNOTATIONS RESULTS  -> prints {"overall": ...} as JSON.

It loads the three files as the official ``VQA``/``VQAEval`` classes do (index annotations and questions by question
id, check that the results answer exactly the annotated questions) and runs the official per-question loop
(``tests/metrics/reference_vqa.py: OfficialVQAEval``: normalise every answer of every question, 10 x 9 comparisons).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.metrics.reference_vqa import OfficialVQAEval


def main(questions: str, annotations: str, results: str) -> None:
    with open(questions) as fh:
        qs = {q["question_id"]: q for q in json.load(fh)["questions"]}
    with open(annotations) as fh:
        anns = {a["question_id"]: a for a in json.load(fh)["annotations"]}
    with open(results) as fh:
        res = {r["question_id"]: r for r in json.load(fh)}
    assert set(res) == set(anns) == set(qs), "Results do not correspond to current VQA set."
    qids = list(anns)
    out = OfficialVQAEval().evaluate(
        [res[q]["answer"] for q in qids],
        [[a["answer"] for a in anns[q]["answers"]] for q in qids],
        [anns[q]["answer_type"] for q in qids],
        [anns[q]["question_type"] for q in qids],
    )
    print(json.dumps({"overall": out["overall"]}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
