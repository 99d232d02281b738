"""VQA v2 in its published layout, the answer vocabulary and soft targets.

VQA root (the official zips extracted in one folder)::

    ROOT/v2_OpenEnded_mscoco_{SPLIT}_questions.json     (also found under ROOT/questions/ or ROOT/annotations/)
    ROOT/v2_mscoco_{SPLIT}_annotations.json             (absent for test-dev2015 / test2015)
    IMAGES/{train2014,val2014,test2015}/COCO_{dir}_{image_id:012d}.jpg   IMAGES = the dataset's ``images`` or ROOT
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections import Counter
from pathlib import Path

import numpy as np

from harness.data import formats
from harness.data.images import safe_join
from harness.data.issues import SampleIssues
from harness.data.records import DATASET_HINT, VqaSplit, first_with, index_unique
from harness.errors import UserError

SUBDIRS = ("", "questions", "annotations", "Questions", "Annotations")


def vqa_files(root: Path, split: str) -> tuple[Path, Path | None]:
    """Locate the questions file (required) and annotations file (None for unannotated test splits)."""
    q_name, a_name = f"v2_OpenEnded_mscoco_{split}_questions.json", f"v2_mscoco_{split}_annotations.json"
    q = next((root / d / q_name for d in SUBDIRS if (root / d / q_name).is_file()), None)
    if q is None:
        raise UserError(
            f"{root}: VQA v2 questions file {q_name} not found (looked in {root} and its questions/ and annotations/ "
            "folders). Download it from https://visualqa.org/download.html and extract it there"
        )
    a = next((root / d / a_name for d in SUBDIRS if (root / d / a_name).is_file()), None)
    if a is None and not split.startswith("test"):
        raise UserError(
            f"{root}: VQA v2 annotations file {a_name} not found for split {split!r}; extract it next to {q}"
        )
    return q, a


def image_dir(split: str) -> str:
    """COCO image folder of a VQA split (test-dev2015 questions use test2015 images)."""
    return "test2015" if split.startswith("test") else split


def load_vqa(root: Path, images_root: Path, split: str, issues: SampleIssues) -> VqaSplit:
    """Questions (+ annotations when the split has them), validated and joined by question id.

    Both files are parsed against the schemas of :mod:`harness.data.formats` (a malformed file is an error whatever
    ``on_bad_sample`` says). Per-question problems are bad samples: a repeated question id, a question without
    annotation or on another image, answers the official accuracy cannot score (not exactly 10, missing or repeated
    ``answer_id``: :func:`~harness.data.formats.vqa_answers_problem`), a missing image file.
    """
    q_path, a_path = vqa_files(root, split)
    questions = formats.read(q_path, formats.VQA_QUESTIONS, DATASET_HINT).questions
    ann_by_q = _annotations(a_path, issues) if a_path is not None else None
    folder = image_dir(split)
    out = VqaSplit([], [], [], [], [], [] if ann_by_q is not None else None, [], [], [])
    seen_q: set[int] = set()
    rows: dict[int, int | None] = {}
    for q in questions:
        qid, img = q.question_id, q.image_id
        sample = f"question id {qid}"
        if qid in seen_q:
            issues.bad(q_path, sample, "duplicate question id")
            continue
        seen_q.add(qid)
        ann = None
        if ann_by_q is not None:
            ann = ann_by_q.get(qid)
            if ann is None:
                issues.bad(a_path, sample, f"question (from {q_path.name}) has no annotation")
                continue
            if ann.image_id != img:
                issues.bad(a_path, sample, f"annotation says image id {ann.image_id}, the question says {img}")
                continue
            problem = formats.vqa_answers_problem(ann.answers)
            if problem is not None:
                issues.bad(a_path, sample, problem)
                continue
        if img not in rows:
            rel = f"{folder}/COCO_{folder}_{img:012d}.jpg"
            path = safe_join(images_root, rel, str(q_path))
            if path.is_file():
                rows[img] = len(out.paths)
                out.image_ids.append(img)
                out.paths.append(path)
            else:
                rows[img] = None
                issues.bad(q_path, f"image id {img}", f"image file {rel} is missing (looked in {images_root})")
        if rows[img] is None:
            continue
        out.question_ids.append(qid)
        out.image_index.append(rows[img])
        out.questions.append(q.question)
        if ann is not None:
            out.answers.append([a.answer for a in ann.answers])
            out.answer_types.append(ann.answer_type)
            out.question_types.append(ann.question_type)
            out.mc_answers.append(ann.multiple_choice_answer)
    if ann_by_q is not None:
        for qid in sorted(set(ann_by_q) - seen_q)[:50]:
            issues.bad(a_path, f"question id {qid}", f"annotation for a question that is not in {q_path.name}")
    else:
        out.answer_types = out.question_types = out.mc_answers = None
    return out


def _annotations(a_path: Path, issues: SampleIssues) -> dict[int, formats.VqaAnnotation]:
    anns = formats.read(a_path, formats.VQA_ANNOTATIONS, DATASET_HINT).annotations
    return index_unique(anns, operator.attrgetter("question_id"), "question id", "duplicate annotation", a_path, issues)


def find_images_root(root: Path, images: Path | None, split: str) -> Path:
    """The folder that holds ``{train2014,val2014,test2015}/``: the dataset's ``images``, else ROOT, ROOT/images,
    ROOT/coco, ROOT/coco/images, ROOT/../coco or ROOT/../coco/images."""
    folder = image_dir(split)
    candidates = (
        [images]
        if images is not None
        else [
            root,
            root / "images",
            root / "coco",
            root / "coco" / "images",
            root.parent / "coco",
            root.parent / "coco" / "images",
        ]
    )
    found = first_with(candidates, folder)
    if found is not None:
        return found
    looked = ", ".join(str(c / folder) for c in candidates)
    raise UserError(
        f"{root}: COCO images for VQA split {split!r} not found (looked for {looked}); put or symlink the COCO "
        f"{folder}/ folder there, or set the dataset's 'images' to the folder that contains {folder}/"
    )


def build_answer_vocab(split: VqaSplit, min_count: int = 9, top_k: int | None = None) -> list[str]:
    """Normalised ``multiple_choice_answer`` strings seen at least ``min_count`` times (or the ``top_k`` most frequent).

    Order: descending frequency, then alphabetical, so the vocabulary is deterministic.
    """
    from harness.metrics.vqa import normalize_answer

    if split.mc_answers is None:
        raise UserError("cannot build an answer vocabulary from a split without annotations")
    counts = Counter(normalize_answer(a) for a in split.mc_answers)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab = [a for a, _ in ranked[:top_k]] if top_k else [a for a, c in ranked if c >= min_count]
    if not vocab:
        raise UserError(
            f"answer vocabulary is empty: no answer occurs {min_count}+ times in {len(split.mc_answers)} questions; "
            "lower answer_min_count or set answer_top_k"
        )
    return vocab


def vocab_fingerprint(vocab: list[str]) -> str:
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]


def soft_targets(answers: list[list[str]], vocab: list[str]) -> np.ndarray:
    """(N, A) float32 soft scores: 0.3 / 0.6 / 0.9 / 1.0 for 1 / 2 / 3 / 4+ matching (normalised) human answers."""
    from harness.metrics.vqa import normalize_answer

    index = {a: i for i, a in enumerate(vocab)}
    out = np.zeros((len(answers), len(vocab)), dtype=np.float32)
    cache: dict[str, str] = {}
    for n, human in enumerate(answers):
        counts = Counter(cache.setdefault(a, normalize_answer(a)) for a in human)
        for ans, c in counts.items():
            j = index.get(ans)
            if j is not None:
                out[n, j] = (0.0, 0.3, 0.6, 0.9)[c] if c < 4 else 1.0
    return out
