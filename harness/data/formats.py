"""Declarative schemas of the published annotation and result formats, and one reader that parses and validates a
file in one pass.

Every JSON file that ``xmbench score`` and the dataset loaders read goes through :func:`read` with one of the
:class:`Format` objects below. The schemas are ``msgspec`` types: the JSON bytes are parsed straight into the declared
fields (unknown keys are skipped without being built), so a VQA v2 annotation file (214k annotations x 10 answers)
parses and validates about 4x faster than ``json.load`` builds its dicts. The first problem becomes ONE line that
names the file, the location, the problem and the record, e.g.::

    v2_mscoco_val2014_annotations.json: annotations[12].question_type: expected a string, got 3 (question_id 4567)
    results.json: [17].bbox[2] is NaN (image_id 42)

Representation: VQA files decode to ``msgspec.Struct`` objects (attribute access; the fastest form for millions of
answers). COCO-family files decode to plain dicts (``TypedDict``): pycocotools and the Karpathy ``locate`` callbacks
consume dicts. Either way, only the declared keys are kept.

Conventions enforced for every file (see ``docs/metrics.md``):

* UTF-8 JSON (a leading UTF-8 byte-order mark is accepted, as by ``json.load``).
* Numbers are finite: the non-standard tokens ``NaN``, ``Infinity``, ``-Infinity`` (which Python's ``json`` accepts)
  and overflowing literals such as ``1e999`` are refused with their location.
* Integers are JSON integers (``1.0``, ``"1"`` and ``true`` are not ids); floats accept integers.

Keys whose absence the loaders treat as a skippable bad sample (VQA ``answers`` and ``answer_id``, COCO ``iscrowd``,
Karpathy ``sentences``) are optional here and checked per record by the loaders and the scorer
(:func:`vqa_answers_problem`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict

import msgspec
import numpy as np

from harness.errors import UserError

__all__ = [
    "COCO_CAPTIONS",
    "COCO_INSTANCES",
    "DETECTION_RESULTS",
    "KARPATHY",
    "LAVIS",
    "RETRIEVAL_ANNOTATIONS",
    "VQA_ANNOTATIONS",
    "VQA_ANSWERS_PER_QUESTION",
    "VQA_QUESTIONS",
    "VQA_RESULTS",
    "Format",
    "convert",
    "first_vqa_answers_problem",
    "read",
    "read_bytes",
    "vqa_answers_problem",
]

# ---------------------------------------------------------------------------------------------------------------------
# VQA v2 (https://visualqa.org/download.html): Structs, the hot path of `xmbench score vqa`.
# ---------------------------------------------------------------------------------------------------------------------


class VqaQuestion(msgspec.Struct, gc=False):
    question_id: int
    image_id: int
    question: str


class VqaQuestionsFile(msgspec.Struct, gc=False):
    questions: list[VqaQuestion]


class VqaAnswer(msgspec.Struct, gc=False):
    answer: str
    answer_id: int | None = None  # required by vqa_answers_problem (a per-record, skippable problem)
    # answer_confidence is not read by the official accuracy: not declared, so never built.


class VqaAnnotation(msgspec.Struct, gc=False):
    question_id: int
    image_id: int
    question_type: str
    answer_type: str
    multiple_choice_answer: str
    answers: list[VqaAnswer] = []  # none at all: a per-record problem (vqa_answers_problem)


class VqaAnnotationsFile(msgspec.Struct, gc=False):
    annotations: list[VqaAnnotation]


class VqaResult(msgspec.Struct, gc=False):
    question_id: int
    answer: str


# ---------------------------------------------------------------------------------------------------------------------
# COCO (https://cocodataset.org/#format-data), Karpathy splits, LAVIS/BLIP retrieval files: dicts.
# ---------------------------------------------------------------------------------------------------------------------

Box = Annotated[list[float], msgspec.Meta(min_length=4, max_length=4)]  # [x, y, width, height]; a list: pycocotools


class CocoImage(TypedDict):
    id: int
    file_name: str
    width: NotRequired[float]  # detection maps boxes to and from the decoded size with them (else read from the file)
    height: NotRequired[float]


class CocoInstance(TypedDict):
    id: int
    image_id: int
    category_id: int
    bbox: Box
    area: float
    iscrowd: NotRequired[int]  # missing: a bad sample for the loaders, an error (or --iscrowd-default) for detection
    ignore: NotRequired[int]  # read by pycocotools' COCOeval when present


class CocoCategory(TypedDict):
    id: int
    name: str


class CocoInstancesFile(TypedDict):
    images: list[CocoImage]
    annotations: list[CocoInstance]
    categories: list[CocoCategory]


class CocoCaption(TypedDict):
    id: NotRequired[int]
    image_id: int
    caption: str


class CocoCaptionsFile(TypedDict):
    images: list[CocoImage]
    annotations: list[CocoCaption]


class Detection(TypedDict):
    image_id: int
    category_id: int
    bbox: Box
    score: float


class KarpathySentence(TypedDict):
    raw: str


class KarpathyImage(TypedDict):
    split: str
    filename: str
    filepath: NotRequired[str]
    cocoid: NotRequired[int]
    imgid: NotRequired[int]
    sentences: NotRequired[list[KarpathySentence]]  # missing or empty: a bad sample ("has no sentences")


class KarpathyFile(TypedDict):
    images: list[KarpathyImage]


class LavisEntry(TypedDict):
    image: str
    caption: str | list[str]  # train files: one caption per entry; eval files: the list of an image's captions
    image_id: NotRequired[int | str]


# ---------------------------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """A file format: its name in messages, its schema, and the shape shown when a file is not of this format."""

    name: str
    schema: Any
    shape: str


VQA_QUESTIONS = Format(
    "VQA questions file",
    VqaQuestionsFile,
    '{"questions": [{"question_id": int, "image_id": int, "question": str}]} (v2_OpenEnded_mscoco_*_questions.json)',
)
VQA_ANNOTATIONS = Format(
    "VQA annotations file",
    VqaAnnotationsFile,
    '{"annotations": [{"question_id", "image_id", "question_type", "answer_type", "multiple_choice_answer", '
    '"answers": [{"answer": str, "answer_id": int} x 10]}]} (v2_mscoco_*_annotations.json)',
)
VQA_RESULTS = Format(
    "VQA results file", list[VqaResult], 'the official results format [{"question_id": int, "answer": str}]'
)
COCO_INSTANCES = Format(
    "COCO instances file",
    CocoInstancesFile,
    '{"images": [{"id", "file_name"}], "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h], '
    '"area", "iscrowd"}], "categories": [{"id", "name"}]} (instances_*.json)',
)
COCO_CAPTIONS = Format(
    "COCO captions file",
    CocoCaptionsFile,
    '{"images": [{"id", "file_name"}], "annotations": [{"id", "image_id", "caption"}]} (captions_*.json)',
)
DETECTION_RESULTS = Format(
    "detection results file",
    list[Detection],
    'the official results format [{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}]',
)
KARPATHY = Format(
    "Karpathy split file",
    KarpathyFile,
    '{"images": [{"split", "filename", "filepath", "cocoid", "sentences": [{"raw": str}]}]} (dataset_*.json)',
)
LAVIS = Format(
    "LAVIS retrieval annotation file",
    list[LavisEntry],
    '[{"image": str, "caption": [str, ...]}] (eval) or [{"image": str, "caption": str, "image_id": ...}] (train)',
)
RETRIEVAL_ANNOTATIONS = Format(
    "retrieval annotation file",
    list[LavisEntry] | KarpathyFile,
    'the LAVIS eval format [{"image": str, "caption": [str, ...]}] or a Karpathy dataset_*.json',
)

VQA_ANSWERS_PER_QUESTION = 10


def vqa_answers_problem(answers: list[VqaAnswer]) -> str | None:
    """Why a VQA annotation's answers break the official accuracy's assumptions, or None.

    The official loop scores each of the 10 human answers against "the other 9", found by dict inequality, so it
    assumes exactly 10 answers, each with its own ``answer_id``: without ids identical answers are removed together,
    with repeated ids the result depends on ``answer_confidence``.
    """
    if not answers:
        return "annotation has no answers"
    if len(answers) != VQA_ANSWERS_PER_QUESTION:
        return (
            f"annotation has {len(answers)} answers; the official VQA accuracy assumes exactly "
            f"{VQA_ANSWERS_PER_QUESTION} (one per annotator)"
        )
    seen: dict[int, int] = {}
    for k, a in enumerate(answers):
        if a.answer_id is None:
            return (
                f"answers[{k}]: missing key 'answer_id'; the official VQA accuracy tells the "
                f"{VQA_ANSWERS_PER_QUESTION} answers apart by their answer_id"
            )
        if a.answer_id in seen:
            return (
                f"answers[{k}] repeats answer_id {a.answer_id} of answers[{seen[a.answer_id]}]; the official VQA "
                f"accuracy tells the {VQA_ANSWERS_PER_QUESTION} answers apart by their answer_id"
            )
        seen[a.answer_id] = k
    return None


def first_vqa_answers_problem(annotations: list[VqaAnnotation]) -> tuple[int, str] | None:
    """(index, reason) of the first annotation (file order) with a :func:`vqa_answers_problem`, or None.

    Vectorised for VQA v2-sized files: the answer ids of all 10-answer annotations are checked for repeats in one
    numpy pass; only suspects go through :func:`vqa_answers_problem`.
    """
    n = len(annotations)
    if n == 0:
        return None
    lengths = np.fromiter([len(a.answers) for a in annotations], dtype=np.int64, count=n)
    suspect = lengths != VQA_ANSWERS_PER_QUESTION
    try:  # None (a missing answer_id) or an id beyond int64: every annotation goes through the slow check
        ids = np.array([x.answer_id for a in annotations for x in a.answers], dtype=np.int64)
    except (TypeError, OverflowError):
        suspect[:] = True
    else:
        rows = np.flatnonzero(~suspect)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        block = np.sort(ids[starts[rows, None] + np.arange(VQA_ANSWERS_PER_QUESTION)], axis=1)
        suspect[rows] = (block[:, 1:] == block[:, :-1]).any(axis=1)
    for i in np.flatnonzero(suspect).tolist():
        problem = vqa_answers_problem(annotations[i].answers)
        if problem is not None:
            return i, problem
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"


@functools.cache
def _decoder(schema: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(schema)


def read_bytes(path: Path, what: str, hint: str) -> bytes:
    """The bytes of a file; a one-line error when it is missing or unreadable."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the {what} itself")
    if not path.is_file():
        raise UserError(f"{path}: {what} not found; {hint}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what} ({exc.strerror or exc}); check its permissions") from None


def read(path: Path, fmt: Format, hint: str = "check the path") -> Any:
    """Parse and validate a JSON file against ``fmt``; any problem is a one-line :class:`UserError`.

    Args:
        path: The file.
        fmt: One of the formats of this module.
        hint: What to do when the file does not exist.

    Returns:
        The decoded data, holding only the declared keys (Structs for VQA files, dicts and lists otherwise).
    """
    return decode(read_bytes(path, fmt.name, hint), fmt, path)


def decode(raw: bytes, fmt: Format, where: str | Path) -> Any:
    """Parse and validate JSON bytes against ``fmt``; errors name ``where``."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        return _decoder(fmt.schema).decode(raw)
    except msgspec.ValidationError as exc:
        error: msgspec.ValidationError | None = exc
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        error = None
    # Slow path, only for files with a problem: the standard library parser says where the JSON is broken, parses what
    # msgspec refuses but JSON readers accept (NaN, Infinity, lone surrogates) and gives the values for the message.
    data = _parse_with_json(raw, fmt, where)
    if error is None:
        bad = _first_non_finite(data)
        if bad is not None:
            raise UserError(_line(where, fmt, bad, f"is {_number(_at(data, bad))}", data, "; use finite JSON numbers"))
        try:
            return msgspec.convert(data, fmt.schema)
        except msgspec.ValidationError as exc:
            error = exc
    raise UserError(_validation_message(error, fmt, where, data))


def convert(data: Any, fmt: Format, where: str | Path) -> Any:
    """Validate already-loaded data (e.g. a dict passed to a public function) against ``fmt``; returns a new object
    holding only the declared keys. Non-finite floats are refused as in files."""
    try:
        out = msgspec.convert(data, fmt.schema)
    except msgspec.ValidationError as exc:
        raise UserError(_validation_message(exc, fmt, where, data)) from None
    bad = _first_non_finite(out)
    if bad is not None:
        raise UserError(_line(where, fmt, bad, f"is {_number(_at(out, bad))}", out, "; use finite numbers"))
    return out


def _parse_with_json(raw: bytes, fmt: Format, where: str | Path) -> Any:
    if not raw.strip():
        raise UserError(f"{where}: {fmt.name} is empty ({len(raw)} bytes); expected {fmt.shape}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UserError(
            f"{where}: {fmt.name} is not UTF-8 text (byte {exc.start}, line {line}); save it as UTF-8 JSON"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: {fmt.name} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{where}: {fmt.name} is not readable JSON ({exc})") from None


# ---------------------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------------------

# Keys that identify a record, most specific first: the message names the record by the first one it has.
_ID_KEYS = ("question_id", "id", "cocoid", "imgid", "image_id", "image", "filename")
_KINDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "array": "a list",
    "object": "an object",
    "null": "null",
    "bool": "true/false",
}
_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def _kinds(expr: str) -> str:
    kinds = [k.strip() for k in expr.split("|")]
    if len(kinds) > 1 and "null" in kinds:  # null stands for an optional key: not worth suggesting
        kinds.remove("null")
    return " or ".join(_KINDS.get(k, k) for k in kinds)


def _loc(path: str) -> list[str | int]:
    return [key if key else int(index) for key, index in _PATH_TOKEN.findall(path)]


def _at(data: Any, loc: list[str | int]) -> Any:
    for step in loc:
        data = data[step] if isinstance(data, dict | list) else getattr(data, step)
    return data


def _show(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return _show(value)


def _context(data: Any, loc: list[str | int]) -> str:
    """`` (question_id 4567)``: the id of the outermost record (list element) on the path, if it has one."""
    node, inside = data, None
    for n, step in enumerate(loc):
        try:
            node = _at(node, [step])
        except (KeyError, IndexError, TypeError, AttributeError):
            return ""
        if isinstance(step, int):
            inside = loc[n + 1] if n + 1 < len(loc) else None  # the key at fault: not an id to name the record by
            break
    else:
        return ""
    for key in _ID_KEYS:
        if key == inside:
            continue
        value = node.get(key) if isinstance(node, dict) else getattr(node, key, None)
        if isinstance(value, int | str) and not isinstance(value, bool):
            return f" ({key} {value!r})" if isinstance(value, str) else f" ({key} {value})"
    return ""


def _path_text(loc: list[str | int]) -> str:
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _line(where: str | Path, fmt: Format, loc: list[str | int], problem: str, data: Any, advice: str = "") -> str:
    if not loc:
        return f"{where}: {problem}; is this a {fmt.name}? Expected {fmt.shape}"
    sep = " " if problem.startswith("is ") else ": "
    return f"{where}: {_path_text(loc)}{sep}{problem}{_context(data, loc)}{advice}"


def _validation_message(error: msgspec.ValidationError, fmt: Format, where: str | Path, data: Any) -> str:
    match = _AT.match(str(error))
    msg, loc = match["msg"], _loc(match["path"] or "")
    try:
        value = _at(data, loc)
    except (KeyError, IndexError, TypeError, AttributeError):
        value = None
    if m := re.fullmatch(r"Object missing required field `(.+)`", msg):
        problem = f"missing key {m[1]!r}"
    elif m := re.fullmatch(r"Expected `array` of length (>=|<=) (\d+)", msg):
        problem = f"expected a list of {'at least' if m[1] == '>=' else 'at most'} {m[2]} entries, got {_show(value)}"
    elif m := re.fullmatch(r"Expected `([^`]+)`, got `([^`]+)`", msg):
        problem = f"expected {_kinds(m[1])}, got {_show(value) if loc else _kinds(m[2])}"
    elif msg == "Number out of range" and isinstance(value, float):
        return _line(where, fmt, loc, f"is {_number(value)}", data, "; use finite JSON numbers")
    elif msg == "Number out of range":
        problem = f"number out of range: {_show(value)}"
    else:
        problem = msg.replace("`", "")
    return _line(where, fmt, loc, problem, data)


def _first_non_finite(data: Any, loc: list[str | int] | None = None) -> list[str | int] | None:
    """Path of the first NaN/inf float in document order, or None."""
    loc = [] if loc is None else loc
    if isinstance(data, float):
        return None if math.isfinite(data) else loc
    if isinstance(data, dict):
        items: Any = data.items()
    elif isinstance(data, list | tuple):
        items = enumerate(data)
    elif isinstance(data, msgspec.Struct):
        items = ((f, getattr(data, f)) for f in data.__struct_fields__)
    else:
        return None
    for key, value in items:
        if isinstance(value, int | str):
            continue
        found = _first_non_finite(value, [*loc, key])
        if found is not None:
            return found
    return None
