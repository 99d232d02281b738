"""Caption, question and answer text for the synthetic shapes dataset (see :mod:`harness.data.synthetic`).

Every function draws from the ``random.Random`` it is given, so the text is deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("circle", "square", "triangle", "cross")
COLORS = ("red", "green", "blue", "yellow", "purple", "white")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")


@dataclass(frozen=True)
class SceneObject:
    """One drawn shape: its kind, colour, grid cell (index into POSITIONS), centre and radius in pixels."""

    kind: str
    color: str
    cell: int
    main: bool
    cx: float
    cy: float
    r: float

    @property
    def pos(self) -> str:
        """The cell as words, e.g. ``"top left"``."""
        return POSITIONS[self.cell]


@dataclass(frozen=True)
class Question:
    """A VQA question with its canonical answer and VQA v2 type fields."""

    text: str
    answer: str
    question_type: str
    answer_type: str


# ----------------------------------------------------------------------------------------------------- captions
_POS_FORMS = {
    "top left": ("top left", "upper left", "top left corner", "upper left corner", "top left of the image"),
    "top right": ("top right", "upper right", "top right corner", "upper right corner", "top right of the image"),
    "bottom left": ("bottom left", "lower left", "bottom left corner", "lower left corner", "bottom left of the image"),
    "bottom right": (
        "bottom right",
        "lower right",
        "bottom right corner",
        "lower right corner",
        "bottom right of the image",
    ),
}
_BACKGROUNDS = ("dark", "dark grey", "dark gray", "grey", "gray", "plain dark")
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}


def _join(parts: Sequence[str], rng: random.Random) -> str:
    if len(parts) == 1:
        return parts[0]
    sep = ", and " if len(parts) > 2 and rng.random() < 0.3 else " and "
    return ", ".join(parts[:-1]) + sep + parts[-1]


def _phrase(obj: SceneObject, rng: random.Random, *, with_pos: bool, with_size: bool) -> str:
    size = ""
    if with_size:
        size = rng.choice(("large ", "big ")) if obj.main else rng.choice(("small ", "little "))
    text = f"a {size}{obj.color} {obj.kind}"
    if with_pos:
        text += f" {rng.choice(('in the', 'in the', 'at the'))} {rng.choice(_POS_FORMS[obj.pos])}"
    return text


def _caption(objects: Sequence[SceneObject], rng: random.Random) -> str:
    n = len(objects)
    objs = list(objects)
    if rng.random() < 0.4:
        rng.shuffle(objs)
    with_pos = rng.random() < 0.8
    with_size = n > 1 and rng.random() < 0.3
    listed = _join([_phrase(o, rng, with_pos=with_pos, with_size=with_size) for o in objs], rng)
    bg = rng.choice(_BACKGROUNDS)
    count = f"{_NUMBER_WORDS[n]} shape{'s' if n > 1 else ''}"
    if with_pos:
        style = rng.randrange(7)
        if style == 0:
            first, *rest = objs
            text = f"in the {rng.choice(_POS_FORMS[first.pos])} there is a {first.color} {first.kind}"
            text += "".join(f", and in the {rng.choice(_POS_FORMS[o.pos])} a {o.color} {o.kind}" for o in rest)
        else:
            text = (
                listed,
                f"there is {listed}",
                f"{listed} on a {bg} background",
                f"a {bg} picture with {listed}",
                f"an image showing {listed}",
                f"{count}: {listed}",
            )[style - 1]
    else:
        text = rng.choice(
            (
                f"{listed} on a {bg} background",
                f"{count} on a {bg} background, {listed}",
                f"a picture of {listed}",
                f"{listed} drawn on a {bg} background",
            )
        )
    if rng.random() < 0.6:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.5:
        text += "."
    return text


def make_captions(objects: Sequence[SceneObject], rng: random.Random, n: int = 5) -> list[str]:
    """Return ``n`` distinct captions that each name every object's colour and shape (most also its position)."""
    out: list[str] = []
    for _ in range(50 * n):
        caption = _caption(objects, rng)
        if caption not in out:
            out.append(caption)
            if len(out) == n:
                return out
    while len(out) < n:  # pragma: no cover - only if the template space were tiny
        out.append(_caption(objects, rng))
    return out


# ---------------------------------------------------------------------------------------------------- questions
_QUESTION_WEIGHTS = (3, 2, 2, 1, 2)


def _question(objects: Sequence[SceneObject], rng: random.Random) -> Question:
    template = rng.choices(range(len(_QUESTION_WEIGHTS)), weights=_QUESTION_WEIGHTS)[0]
    obj = rng.choice(objects)
    if template == 0:
        return Question(f"what color is the shape in the {obj.pos}?", obj.color, "what color is the", "other")
    if template == 1:
        return Question(f"what shape is in the {obj.pos}?", obj.kind, "what shape is", "other")
    if template == 2:
        pos = rng.choice(POSITIONS)
        answer = "yes" if any(o.pos == pos for o in objects) else "no"
        return Question(f"is there a shape in the {pos}?", answer, "is there a", "yes/no")
    if template == 3:
        return Question("how many shapes are there?", str(len(objects)), "how many", "number")
    return Question(f"what color is the {obj.kind}?", obj.color, "what color is the", "other")


def make_questions(objects: Sequence[SceneObject], rng: random.Random, n: int = 3) -> list[Question]:
    """Return ``n`` questions with distinct texts about the scene (templates weighted 3:2:2:1:2)."""
    out: list[Question] = []
    for _ in range(100 * n):
        q = _question(objects, rng)
        if all(q.text != o.text for o in out):
            out.append(q)
            if len(out) == n:
                break
    return out


# ------------------------------------------------------------------------------------------------------ answers
_COLOR_CONFUSIONS = {
    "red": ("orange", "pink", "dark red", "maroon"),
    "green": ("dark green", "teal", "lime"),
    "blue": ("purple", "navy", "dark blue"),
    "yellow": ("orange", "gold", "tan"),
    "purple": ("blue", "violet", "pink"),
    "white": ("gray", "silver", "light gray"),
}
_SHAPE_CONFUSIONS = {
    "circle": ("oval", "ball", "dot"),
    "square": ("rectangle", "box", "diamond"),
    "triangle": ("pyramid", "arrow", "cone"),
    "cross": ("plus", "x", "plus sign"),
}


def _wrong(q: Question, rng: random.Random) -> str:
    a = q.answer
    if a in _COLOR_CONFUSIONS:
        return rng.choice(_COLOR_CONFUSIONS[a])
    if a in _SHAPE_CONFUSIONS:
        return rng.choice(_SHAPE_CONFUSIONS[a])
    if a in ("yes", "no"):
        return "no" if a == "yes" else "yes"
    return str(max(0, int(a) + rng.choice((-1, 1))))


def _variant(q: Question, rng: random.Random) -> str:
    """A surface form that the official VQA answer normalisation maps back to the canonical answer."""
    a = q.answer
    forms = [a.capitalize(), a + ".", " " + a, a + " ", a.capitalize() + "."]
    if a in _SHAPE_CONFUSIONS:
        forms += ["a " + a, "A " + a, "the " + a]
    if a.isdigit():
        word = ("zero", "one", "two", "three", "four")[int(a)]
        forms += [word, word, word.capitalize()]
    return rng.choice(forms)


def human_answers(q: Question, rng: random.Random) -> tuple[list[dict], str]:
    """Return 10 VQA v2 human answers with realistic disagreement, and the ``multiple_choice_answer``.

    About 30% of questions are unanimous. Otherwise 1-3 annotators use a surface variant of the canonical answer
    and 0-3 give a plausible wrong one, so the canonical answer always has the plurality after lowercasing and
    stripping (the multiple-choice answer is the most frequent such answer; ties go to the canonical answer).
    """
    if rng.random() < 0.3:
        raw = [(q.answer, "yes")] * 10
    else:
        n_wrong = rng.choices((0, 1, 2, 3), weights=(20, 40, 28, 12))[0]
        n_variant = rng.randint(1, 3)
        raw = [(_wrong(q, rng), rng.choice(("maybe", "no"))) for _ in range(n_wrong)]
        raw += [(_variant(q, rng), "yes" if rng.random() < 0.8 else "maybe") for _ in range(n_variant)]
        raw += [(q.answer, "yes" if rng.random() < 0.9 else "maybe") for _ in range(10 - n_wrong - n_variant)]
        rng.shuffle(raw)
    answers = [{"answer": a, "answer_confidence": c, "answer_id": i + 1} for i, (a, c) in enumerate(raw)]
    counts = Counter(a.strip().lower() for a, _ in raw)
    best = max(counts.values())
    mca = q.answer if counts[q.answer] == best else next(a for a, c in counts.items() if c == best)
    return answers, mca
