"""``xmbench score``: score prediction files in the official formats, without training anything.

Each function reads files, checks that they line up (ids, shapes), and calls the same metric code the runner uses.
Only numpy (and pycocotools for detection) is imported: scoring a VQA v2-sized file is a short process.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.records import read_json
from harness.errors import UserError


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small acyclic objects are built (JSON of a VQA v2
    annotation file): it halves the parse time. Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _json(path: Path, what: str) -> Any:
    return read_json(path, what, hint="check the path")


def _npy(path: Path, what: str, ndim: int) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: {what} is not a numeric .npy array ({exc}); save it with numpy.save") from exc
    if arr.ndim != ndim:
        raise UserError(f"{path}: expected a {ndim}-D {what}, got shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "fiub":
        raise UserError(f"{path}: expected numbers in {what}, got dtype {arr.dtype}")
    return arr


def _ids(ids: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in list(ids)[:limit])
    return f"{shown}{', ...' if len(ids) > limit else ''} ({len(ids)} in all)"


def score_vqa(questions: Path, annotations: Path, results: Path, mode: str = "official") -> dict[str, Any]:
    """Official VQA accuracy of a results file ``[{"question_id", "answer"}]`` against questions + annotations."""
    with gc_paused():
        return _score_vqa(questions, annotations, results, mode)


def _score_vqa(questions: Path, annotations: Path, results: Path, mode: str) -> dict[str, Any]:
    from harness.metrics.vqa import vqa_accuracy

    q_data = _json(questions, "VQA questions file")
    a_data = _json(annotations, "VQA annotations file")
    if not isinstance(q_data, dict) or not isinstance(q_data.get("questions"), list):
        raise UserError(f"{questions}: expected {{'questions': [...]}} (v2_OpenEnded_mscoco_*_questions.json)")
    if not isinstance(a_data, dict) or not isinstance(a_data.get("annotations"), list):
        raise UserError(f"{annotations}: expected {{'annotations': [...]}} (v2_mscoco_*_annotations.json)")
    by_q = {a["question_id"]: a for a in a_data["annotations"]}
    qids = [q["question_id"] for q in q_data["questions"]]
    missing_ann = [q for q in qids if q not in by_q]
    if missing_ann:
        raise UserError(f"{annotations}: no annotation for question ids {_ids(missing_ann)} of {questions.name}")
    res = _json(results, "results file")
    if not isinstance(res, list) or not all(isinstance(r, dict) and {"question_id", "answer"} <= set(r) for r in res):
        raise UserError(f'{results}: expected the official results format [{{"question_id": ..., "answer": ...}}]')
    answers: dict[int, str] = {}
    for r in res:
        if r["question_id"] in answers:
            raise UserError(f"{results}: question id {r['question_id']} is answered twice")
        if not isinstance(r["answer"], str):
            raise UserError(f"{results}: the answer to question id {r['question_id']} is not a string")
        answers[r["question_id"]] = r["answer"]
    expected = set(qids)
    missing = [q for q in qids if q not in answers]
    extra = sorted(set(answers) - expected)
    if missing or extra:
        parts = ([f"missing answers for question ids {_ids(missing)}"] if missing else []) + (
            [f"answers for question ids not in {questions.name}: {_ids(extra)}"] if extra else []
        )
        raise UserError(f"{results}: {'; '.join(parts)}; the results must answer exactly the questions file")
    anns = [by_q[q] for q in qids]
    return vqa_accuracy(
        [answers[q] for q in qids],
        [[a["answer"] for a in ann["answers"]] for ann in anns],
        [ann["answer_type"] for ann in anns],
        [ann["question_type"] for ann in anns],
        mode=mode,
    )


def retrieval_ground_truth(annotations: Path, split: str | None) -> tuple[list[list[int]], list[int]]:
    """(img2txt, txt2img) from a LAVIS eval file (``[{"image", "caption": [..]}]``) or a Karpathy file + split.

    Images follow file order; texts are numbered consecutively in file order.
    """
    data = _json(annotations, "retrieval annotation file")
    if isinstance(data, dict) and isinstance(data.get("images"), list):  # Karpathy
        if split is None:
            raise UserError(f"{annotations}: a Karpathy file holds several splits; pass --split (e.g. test)")
        captions = [[s["raw"] for s in e.get("sentences", [])] for e in data["images"] if e.get("split") == split]
        if not captions:
            found = sorted({str(e.get("split")) for e in data["images"]})
            raise UserError(f"{annotations}: no images in split {split!r}; the file has splits {found}")
    elif (
        isinstance(data, list)
        and data
        and all(isinstance(e, dict) and isinstance(e.get("caption"), list) for e in data)
    ):
        if split is not None:
            raise UserError(f"{annotations}: --split applies to Karpathy files; this LAVIS eval file is one split")
        captions = [list(e["caption"]) for e in data]
    else:
        raise UserError(
            f'{annotations}: expected the LAVIS eval format [{{"image": ..., "caption": [...]}}] or a '
            "Karpathy dataset_*.json"
        )
    img2txt, txt2img = [], []
    for i, caps in enumerate(captions):
        if not caps:
            raise UserError(f"{annotations}: image {i} (in file order) has no captions")
        img2txt.append(list(range(len(txt2img), len(txt2img) + len(caps))))
        txt2img.extend([i] * len(caps))
    return img2txt, txt2img


def score_retrieval(
    annotations: Path, scores: Path, scores_t2i: Path | None = None, split: str | None = None, ties: str = "pessimistic"
) -> dict[str, float]:
    """ALBEF/LAVIS recall of a score matrix (images × texts) [and an optional texts × images matrix]."""
    from harness.metrics.retrieval import retrieval_recall

    img2txt, txt2img = retrieval_ground_truth(annotations, split)
    n_img, n_txt = len(img2txt), len(txt2img)
    i2t = _npy(scores, "score matrix", 2)
    if i2t.shape != (n_img, n_txt):
        raise UserError(
            f"{scores}: expected shape (images, texts) = ({n_img}, {n_txt}) from {annotations.name} "
            f"(texts numbered in file order), got {tuple(i2t.shape)}"
        )
    t2i = None
    if scores_t2i is not None:
        t2i = _npy(scores_t2i, "text-to-image score matrix", 2)
        if t2i.shape != (n_txt, n_img):
            raise UserError(
                f"{scores_t2i}: expected shape (texts, images) = ({n_txt}, {n_img}), got {tuple(t2i.shape)}"
            )
    return retrieval_recall(i2t, img2txt, txt2img, t2i, ties=ties)


def score_multilabel(annotations: Path, scores: Path, mode: str = "nonint") -> dict[str, Any]:
    """mAP of scores (images in ascending id × categories in ascending id) against ``instances_*.json``."""
    from harness.data.coco import instance_labels, multi_hot
    from harness.data.issues import SampleIssues
    from harness.metrics.average_precision import average_precision

    data = _json(annotations, "COCO instances file")
    if not isinstance(data, dict):
        raise UserError(f"{annotations}: expected a COCO instances file")
    images, labels, categories = instance_labels(data, str(annotations), SampleIssues("score"))
    ids = sorted(images)
    s = _npy(scores, "score matrix", 2)
    if s.shape != (len(ids), len(categories)):
        raise UserError(
            f"{scores}: expected shape (images, categories) = ({len(ids)}, {len(categories)}): rows are "
            f"images in ascending id, columns categories in ascending id; got {tuple(s.shape)}"
        )
    ap = average_precision(s, multi_hot(ids, labels, len(categories)), mode=mode)
    names = {i: c["name"] for i, c in enumerate(categories)}
    return {
        "mAP": ap["mAP"],
        "mode": mode,
        "num_classes": len(categories),
        "num_classes_excluded": ap["num_classes_excluded"],
        "excluded_classes": [names[i] for i in ap["excluded_classes"]],
        "per_class": {names[int(i)]: v for i, v in ap["per_class"].items()},
    }


def score_detection(annotations: Path, results: Path, iscrowd_default: int | None = None) -> dict[str, Any]:
    """pycocotools COCOeval (bbox): all 12 stats."""
    from harness.metrics.detection import coco_detection_stats

    return coco_detection_stats(annotations, results, iscrowd_default=iscrowd_default)


def score_classification(scores: Path, labels: Path, topk: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy of scores (N × C) against integer labels (N,)."""
    from harness.metrics.topk import topk_accuracy

    s = _npy(scores, "score matrix", 2)
    y = _npy(labels, "labels", 1)
    if y.shape[0] != s.shape[0]:
        raise UserError(f"{labels}: expected {s.shape[0]} labels (one per row of {scores.name}), got {y.shape[0]}")
    if y.dtype.kind not in "iu":
        raise UserError(f"{labels}: expected integer class indices, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= s.shape[1]):
        raise UserError(
            f"{labels}: class indices must be in 0..{s.shape[1] - 1} (the columns of {scores.name}), "
            f"got {int(y.min())}..{int(y.max())}"
        )
    return topk_accuracy(s, y, topk=tuple(topk))
