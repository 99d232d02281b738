"""``xmbench score``: score prediction files in the official formats, without training anything.

Each function reads files (JSON through the schemas of :mod:`harness.data.formats`, the same the dataset loaders use;
.npy arrays numeric and finite), checks that they line up (ids, shapes), and calls the same metric code the runner
uses. Every problem is a one-line :class:`UserError` naming the file and the record.
Only numpy (and pycocotools for detection) is imported: scoring a VQA v2-sized file is a short process.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.data import formats
from harness.errors import UserError
from harness.metrics.finite import NonFiniteError, first_non_finite


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


class _Strict:
    """The ``issues`` of a scorer: every bad sample is an error (there is nothing to skip when scoring)."""

    def bad(self, file: str | Path, sample: str, reason: str) -> None:
        raise UserError(f"{file}: {sample}: {reason}")


def _npy(path: Path, what: str, ndim: int) -> np.ndarray:
    """A numeric .npy array of ``ndim`` dimensions, without NaN or ±inf; a one-line error otherwise."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the {what} (.npy) itself")
    if not path.is_file():
        raise UserError(f"{path}: {what} not found; check the path")
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what} ({exc.strerror or exc}); check its permissions") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise UserError(f"{path}: {what} is empty (0 bytes); save the array with numpy.save")
        _check_npy_header(fh, size, path, what)
        try:
            arr = np.load(fh, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(
                f"{path}: {what} is not a readable numeric .npy array ({exc}); save it with numpy.save"
            ) from None
    if not isinstance(arr, np.ndarray):  # an .npz archive
        raise UserError(f"{path}: {what} is an .npz archive, not one .npy array; save the array with numpy.save")
    if arr.ndim != ndim:
        raise UserError(f"{path}: expected a {ndim}-D {what}, got shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "fiub":
        raise UserError(f"{path}: expected numbers in {what}, got dtype {arr.dtype}")
    where = first_non_finite(arr)
    if where is not None:
        raise UserError(f"{path}: {where}; a {what} must hold finite numbers")
    return arr


def _check_npy_header(fh: Any, size: int, path: Path, what: str) -> None:
    """Read the .npy header and refuse a file whose data cannot be what the header says (a truncated file, or a
    tiny file whose header claims terabytes: numpy would try to allocate them first); rewinds ``fh``."""
    magic = fh.read(6)
    fh.seek(0)
    if magic[:2] == b"PK":
        return  # an .npz archive: np.load opens it, and the caller refuses it with its own message
    if magic != b"\x93NUMPY":
        raise UserError(
            f"{path}: {what} is not a readable numeric .npy array (no .npy header: not a file written by numpy.save); "
            "save it with numpy.save"
        )
    try:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            return  # np.load names the versions it reads
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise UserError(
            f"{path}: {what} is not a readable numeric .npy array (broken .npy header: {exc}); save it with numpy.save"
        ) from None
    finally:
        header_end = fh.tell()
        fh.seek(0)
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise UserError(
            f"{path}: {what} is not a readable numeric .npy array (invalid shape {shape} in its header); save it with "
            "numpy.save"
        )
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if dtype.kind != "O" and needed > size - header_end:
        raise UserError(
            f"{path}: {what} is not a readable numeric .npy array (its header says shape {tuple(shape)}, "
            f"{needed:,} bytes of {dtype}, but the file holds {size - header_end:,} bytes of data: truncated or "
            "corrupt); save it again with numpy.save"
        )


@contextlib.contextmanager
def _names_file(path: Path, *others: Path) -> Iterator[None]:
    """Turn a metric's refusal (non-finite scores, nothing to score) into an error naming the file: ``path``, unless
    the message already starts with one of the files."""
    try:
        yield
    except NonFiniteError as exc:
        raise UserError(f"{path}: {exc}") from exc
    except UserError as exc:
        if any(str(exc).startswith(str(p)) for p in (path, *others)):
            raise
        raise UserError(f"{path}: {exc}") from exc


def _ids(ids: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in list(ids)[:limit])
    return f"{shown}{', ...' if len(ids) > limit else ''} ({len(ids)} in all)"


def _first_repeat(values: list) -> Any:
    seen: set = set()
    return next(v for v in values if v in seen or seen.add(v))


def score_vqa(questions: Path, annotations: Path, results: Path, mode: str = "official") -> dict[str, Any]:
    """Official VQA accuracy of a results file ``[{"question_id", "answer"}]`` against questions + annotations.

    Every annotation must have exactly 10 answers with distinct ``answer_id``s (the official formula's assumption,
    :func:`harness.data.formats.vqa_answers_problem`); each question id appears once in each file.
    """
    with gc_paused():
        return _score_vqa(questions, annotations, results, mode)


def _score_vqa(questions: Path, annotations: Path, results: Path, mode: str) -> dict[str, Any]:
    from harness.metrics.vqa import vqa_accuracy

    qs, chosen = _vqa_ground_truth(questions, annotations)
    predictions = _vqa_predictions(results, [q.question_id for q in qs], questions)
    with _names_file(results, questions, annotations):
        return vqa_accuracy(
            predictions,
            [[a.answer for a in ann.answers] for ann in chosen],
            [ann.answer_type for ann in chosen],
            [ann.question_type for ann in chosen],
            mode=mode,
        )


def _vqa_ground_truth(questions: Path, annotations: Path) -> tuple[list[Any], list[Any]]:
    """The questions (file order) and, for each, its checked annotation."""
    qs = formats.read(questions, formats.VQA_QUESTIONS).questions
    anns = formats.read(annotations, formats.VQA_ANNOTATIONS).annotations
    bad = formats.first_vqa_answers_problem(anns)
    if bad is not None:
        raise UserError(f"{annotations}: question id {anns[bad[0]].question_id}: {bad[1]}")
    by_q = {a.question_id: a for a in anns}
    if len(by_q) != len(anns):
        qid = _first_repeat([a.question_id for a in anns])
        raise UserError(f"{annotations}: question id {qid} has two annotations")
    qids = [q.question_id for q in qs]
    if not qids:
        raise UserError(f"{questions}: 'questions' is empty; there is nothing to score")
    if len(set(qids)) != len(qids):
        raise UserError(f"{questions}: question id {_first_repeat(qids)} appears twice")
    missing_ann = [q for q in qids if q not in by_q]
    if missing_ann:
        raise UserError(f"{annotations}: no annotation for question ids {_ids(missing_ann)} of {questions.name}")
    return list(qs), [by_q[q] for q in qids]


def _vqa_predictions(results: Path, qids: list[int], questions: Path) -> list[str]:
    """The answers of a results file in the order of ``qids``; it must answer exactly those questions, once each."""
    res = formats.read(results, formats.VQA_RESULTS)
    answers = {r.question_id: r.answer for r in res}
    if len(answers) != len(res):
        qid = _first_repeat([r.question_id for r in res])
        raise UserError(f"{results}: question id {qid} is answered twice")
    missing = [q for q in qids if q not in answers]
    extra = sorted(answers.keys() - set(qids))
    if missing or extra:
        parts = ([f"missing answers for question ids {_ids(missing)}"] if missing else []) + (
            [f"answers for question ids not in {questions.name}: {_ids(extra)}"] if extra else []
        )
        raise UserError(f"{results}: {'; '.join(parts)}; the results must answer exactly the questions file")
    return [answers[q] for q in qids]


def retrieval_ground_truth(annotations: Path, split: str | None) -> tuple[list[list[int]], list[int]]:
    """(img2txt, txt2img) from a LAVIS eval file (``[{"image", "caption": [..]}]``) or a Karpathy file + split.

    Images follow file order; texts are numbered consecutively in file order.
    """
    from harness.data.coco import karpathy_entries, karpathy_key, lavis_captions

    data = formats.read(annotations, formats.RETRIEVAL_ANNOTATIONS)
    if isinstance(data, dict):  # Karpathy
        if split is None:
            raise UserError(f"{annotations}: a Karpathy file holds several splits; pass --split (e.g. test)")
        entries = karpathy_entries(data, {split}, annotations)
        names = [f"image {karpathy_key(e)!r}" for e in entries]
        captions = [[s["raw"] for s in e.get("sentences", [])] for e in entries]
    else:
        if split is not None:
            raise UserError(f"{annotations}: --split applies to Karpathy files; this LAVIS eval file is one split")
        if not lavis_captions(data, annotations):
            raise UserError(
                f"{annotations}: this is a LAVIS train file (one caption per entry); scoring needs the eval format "
                '[{"image": ..., "caption": [...]}] (e.g. coco_karpathy_test.json)'
            )
        names = [f"[{i}] (image {e['image']!r})" for i, e in enumerate(data)]
        captions = [list(e["caption"]) for e in data]
    img2txt, txt2img = [], []
    for i, caps in enumerate(captions):
        if not caps:
            raise UserError(f"{annotations}: {names[i]} has no captions")
        img2txt.append(list(range(len(txt2img), len(txt2img) + len(caps))))
        txt2img.extend([i] * len(caps))
    return img2txt, txt2img


def score_retrieval(
    annotations: Path, scores: Path, scores_t2i: Path | None = None, split: str | None = None, ties: str = "pessimistic"
) -> dict[str, float]:
    """ALBEF/LAVIS recall of a score matrix (images × texts) [and an optional texts × images matrix]."""
    from harness.metrics.retrieval import retrieval_recall

    img2txt, txt2img = retrieval_ground_truth(annotations, split)
    i2t, t2i = _retrieval_matrices(annotations, scores, scores_t2i, len(img2txt), len(txt2img))
    with _names_file(scores if scores_t2i is None else scores_t2i):
        return retrieval_recall(i2t, img2txt, txt2img, t2i, ties=ties)


def score_multilabel(annotations: Path, scores: Path, mode: str = "nonint") -> dict[str, Any]:
    """mAP of scores (images in ascending id × categories in ascending id) against ``instances_*.json``."""
    from harness.metrics.average_precision import average_precision

    ids, categories, targets = _multilabel_ground_truth(annotations)
    s = _multilabel_scores(annotations, scores, len(ids), len(categories))
    with _names_file(scores, annotations):
        ap = average_precision(s, targets, mode=mode)
    names = {i: c["name"] for i, c in enumerate(categories)}
    return {
        "mAP": ap["mAP"],
        "mode": mode,
        "num_classes": len(categories),
        "num_classes_excluded": ap["num_classes_excluded"],
        "excluded_classes": [names[i] for i in ap["excluded_classes"]],
        "per_class": {names[int(i)]: v for i, v in ap["per_class"].items()},
    }


def _multilabel_ground_truth(annotations: Path) -> tuple[list[int], list[dict], np.ndarray]:
    """Image ids (ascending), categories (ascending id) and the (images, categories) multi-hot targets."""
    from harness.data.coco import labels_of_instances, multi_hot

    data = formats.read(annotations, formats.COCO_INSTANCES)
    images, labels, categories = labels_of_instances(data, str(annotations), _Strict())
    ids = sorted(images)
    if not ids:
        raise UserError(f"{annotations}: 'images' is empty; there is nothing to score")
    targets = multi_hot(ids, labels, len(categories))
    if not targets.any():
        raise UserError(
            f"{annotations}: no image has a label ('annotations' names no category of its images); mAP needs at "
            "least one positive"
        )
    return ids, categories, targets


def _multilabel_scores(annotations: Path, scores: Path, n_images: int, n_categories: int) -> np.ndarray:
    s = _npy(scores, "score matrix", 2)
    if s.shape != (n_images, n_categories):
        raise UserError(
            f"{scores}: expected shape (images, categories) = ({n_images}, {n_categories}): rows are "
            f"images in ascending id, columns categories in ascending id; got {tuple(s.shape)}"
        )
    return s


def score_detection(annotations: Path, results: Path, iscrowd_default: int | None = None) -> dict[str, Any]:
    """pycocotools COCOeval (bbox): all 12 stats. Both files are read with the schemas of :mod:`harness.data.formats`
    (boxes of 4 finite numbers, finite scores)."""
    from harness.metrics.detection import coco_detection_stats

    with _names_file(results, annotations):
        return coco_detection_stats(annotations, results, iscrowd_default=iscrowd_default)


def score_classification(scores: Path, labels: Path, topk: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracy of scores (N × C) against integer labels (N,)."""
    from harness.metrics.topk import topk_accuracy

    s, y = _classification_inputs(scores, labels)
    with _names_file(scores):
        return topk_accuracy(s, y, topk=tuple(topk))


def _classification_inputs(scores: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    s = _npy(scores, "score matrix", 2)
    y = _npy(labels, "labels", 1)
    if 0 in s.shape:
        raise UserError(
            f"{scores}: the score matrix has shape {tuple(s.shape)}; it needs a row per sample and a column per class"
        )
    if y.shape[0] != s.shape[0]:
        raise UserError(f"{labels}: expected {s.shape[0]} labels (one per row of {scores.name}), got {y.shape[0]}")
    if y.dtype.kind not in "iu":
        raise UserError(f"{labels}: expected integer class indices, got dtype {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= s.shape[1]):
        raise UserError(
            f"{labels}: class indices must be in 0..{s.shape[1] - 1} (the columns of {scores.name}), "
            f"got {int(y.min())}..{int(y.max())}"
        )
    return s, y


# -- two prediction files: a paired comparison (``--against``) ----------------------------------------------------

DEFAULT_METRIC = {"vqa": "vqa_accuracy", "classification": "top1", "retrieval": "r_mean", "multilabel": "mAP"}


def compare_vqa(
    questions: Path,
    annotations: Path,
    results: Path,
    against: Path,
    mode: str = "official",
    **options: Any,
) -> dict[str, Any]:
    """Paired comparison of two VQA results files (model a = ``results``, model b = ``against``); the clusters are
    the questions' images (``image_id`` of the questions file). See :func:`_compare` for ``options``."""
    from harness.metrics.vqa import vqa_question_scores
    from harness.stats.evidence import vqa_evidence

    with gc_paused():
        qs, chosen = _vqa_ground_truth(questions, annotations)
        qids = [q.question_id for q in qs]
        answers = [[a.answer for a in ann.answers] for ann in chosen]
        types = [ann.answer_type for ann in chosen]
        evidences = []
        for path in (results, against):
            predictions = _vqa_predictions(path, qids, questions)
            with _names_file(path, questions, annotations):
                scores = vqa_question_scores(predictions, answers, mode=mode)
            evidences.append(vqa_evidence(qids, [q.image_id for q in qs], scores, types))
    return _compare("vqa", evidences[0], evidences[1], **options)


def compare_classification(
    scores: Path,
    labels: Path,
    against: Path,
    clusters: Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Paired comparison of two score matrices (N × C) against the same labels; each row is its own cluster unless
    ``clusters`` (a .npy of one label per row, e.g. the image id) groups them."""
    from harness.metrics.topk import topk_ranks
    from harness.stats.evidence import classification_evidence

    s, y = _classification_inputs(scores, labels)
    b = _npy(against, "score matrix", 2)
    if b.shape != s.shape:
        raise UserError(
            f"{against}: expected shape {tuple(s.shape)} like {scores.name} (the same examples and classes), "
            f"got {tuple(b.shape)}"
        )
    groups: Any = np.arange(len(y))
    if clusters is not None:
        groups = _npy(clusters, "cluster labels", 1)
        if groups.shape[0] != len(y):
            raise UserError(
                f"{clusters}: expected {len(y)} cluster labels (one per row of {scores.name}), got {groups.shape[0]}"
            )
    ids = np.arange(len(y))
    with _names_file(scores):
        rank_a = topk_ranks(s, y)
    with _names_file(against):
        rank_b = topk_ranks(b, y)
    ev_a = classification_evidence(ids, groups.tolist(), y, rank_a)
    ev_b = classification_evidence(ids, groups.tolist(), y, rank_b)
    return _compare("classification", ev_a, ev_b, **options)


def compare_retrieval(
    annotations: Path,
    scores: Path,
    against: Path,
    scores_t2i: Path | None = None,
    against_t2i: Path | None = None,
    split: str | None = None,
    ties: str = "pessimistic",
    **options: Any,
) -> dict[str, Any]:
    """Paired comparison of two retrieval score matrices (images × texts, optional texts × images); the clusters are
    the images of the annotation file (an image's captions go with it)."""
    from harness.metrics.retrieval import retrieval_ranks
    from harness.stats.evidence import retrieval_evidence

    img2txt, txt2img = retrieval_ground_truth(annotations, split)
    evidences = []
    for i2t_path, t2i_path in ((scores, scores_t2i), (against, against_t2i)):
        i2t, t2i = _retrieval_matrices(annotations, i2t_path, t2i_path, len(img2txt), len(txt2img))
        with _names_file(i2t_path if t2i_path is None else t2i_path):
            ranks = retrieval_ranks(i2t, img2txt, txt2img, t2i, ties=ties)
        evidences.append(retrieval_evidence(range(len(img2txt)), txt2img, ranks))
    return _compare("retrieval", evidences[0], evidences[1], **options)


def compare_multilabel(
    annotations: Path, scores: Path, against: Path, mode: str = "nonint", **options: Any
) -> dict[str, Any]:
    """Paired comparison of two multi-label score matrices (mAP); the clusters are the images (one row each)."""
    from harness.stats.evidence import multilabel_evidence

    if mode != "nonint":
        raise UserError(
            f"--mode {mode}: --against compares the default mAP (--mode nonint) only; drop --mode to compare"
        )
    ids, categories, targets = _multilabel_ground_truth(annotations)
    s = _multilabel_scores(annotations, scores, len(ids), len(categories))
    b = _npy(against, "score matrix", 2)
    if b.shape != s.shape:
        raise UserError(
            f"{against}: expected shape (images, categories) = {tuple(s.shape)} like {scores.name}, "
            f"got {tuple(b.shape)}"
        )
    ev_a = multilabel_evidence(ids, ids, s, targets)
    ev_b = multilabel_evidence(ids, ids, b, targets)
    return _compare("multilabel", ev_a, ev_b, **options)


def _retrieval_matrices(
    annotations: Path, scores: Path, scores_t2i: Path | None, n_img: int, n_txt: int
) -> tuple[np.ndarray, np.ndarray | None]:
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
    return i2t, t2i


def _compare(
    kind: str,
    ev_a: Any,
    ev_b: Any,
    metric: str | None = None,
    claim_delta: str | None = None,
    replicates: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"metric", "a", "b", "delta", "ci95", "p_value", "n_clusters", "replicates"}`` (+ ``"verdict"`` and
    ``"claim"`` with ``claim_delta``; + ``"mcnemar"`` for top1 and vqa_accuracy): the paired bootstrap of
    :func:`harness.stats.paired.compare`, ``delta = a - b`` in points."""
    from harness.stats.claims import ClaimSpec, judge, parse_delta
    from harness.stats.paired import compare

    metric = metric or DEFAULT_METRIC[kind]
    known = {"mAP"} if ev_a.needs_rows else {*ev_a.ratios(), *ev_a.derived}
    if metric not in known:
        raise UserError(f"--metric {metric}: not a metric of {kind} predictions; use one of {', '.join(sorted(known))}")
    claim = None
    if claim_delta is not None:
        try:
            claim = parse_delta(claim_delta)
        except ValueError as exc:
            raise UserError(f"--claim-delta: {exc}") from None
    result = None
    if claim is not None:
        spec = ClaimSpec("a", "b", kind, metric, claim[0], relative=claim[1], source="--claim-delta")
        result = judge([(spec, [ev_a], [ev_b])], replicates=replicates, seed=seed)[0]
    c = result.comparison if result is not None and not result.claim.relative else None
    if c is None:
        c = compare([ev_a], [ev_b], metric, replicates=replicates, seed=seed)
    out: dict[str, Any] = {
        "metric": metric,
        "a": c.a,
        "b": c.b,
        "delta": c.delta,
        "ci95": list(c.ci[0.95]),
        "p_value": c.p_value,
        "n_clusters": c.n_clusters,
        "replicates": c.replicates,
    }
    if c.mcnemar is not None:
        out["mcnemar"] = {"b": c.mcnemar.b, "c": c.mcnemar.c, "p_value": c.mcnemar.p_value}
    if result is not None:
        out["verdict"] = result.verdict
        out["claim"] = {
            "delta": result.claim.delta,
            "relative": result.claim.relative,
            "measured": result.measured,
            "ci": list(result.ci),
            "mde": result.mde,
            "examples_needed": result.examples_needed,
            "note": result.note,
        }
    return out


def print_comparison(result: dict[str, Any], title: str) -> None:
    """The short table of ``xmbench score ... --against`` without ``--json``."""
    from rich.console import Console
    from rich.table import Table

    lo, hi = result["ci95"]
    table = Table(title=title)
    table.add_column(result["metric"])
    table.add_column("value", justify="right")
    table.add_row("a (first file)", f"{result['a']:.2f}")
    table.add_row("b (--against)", f"{result['b']:.2f}")
    table.add_row("delta a - b (points)", f"{result['delta']:+.2f}")
    table.add_row("95% CI", f"[{lo:+.2f}, {hi:+.2f}]")
    table.add_row("p-value", f"{result['p_value']:.4g}")
    table.add_row("clusters / replicates", f"{result['n_clusters']} / {result['replicates']}")
    if "mcnemar" in result:
        m = result["mcnemar"]
        table.add_row("McNemar: only a / only b right", f"{m['b']} / {m['c']}, p = {m['p_value']:.4g}")
    if "verdict" in result:
        claim = result["claim"]
        amount = f"{claim['delta']:+g}%" if claim["relative"] else f"{claim['delta']:+g} points"
        table.add_row(f"claim: a beats b by {amount}", result["verdict"])
    console = Console(highlight=False)
    console.print(table)
    if "verdict" in result:
        console.print(result["claim"]["note"])
