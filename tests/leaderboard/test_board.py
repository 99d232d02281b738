"""The leaderboard model: rank groups (against a brute force over every order the CIs allow), comparability keys,
majorities and the marking of rows trained with other settings."""

from __future__ import annotations

import itertools
import random

import pytest

from harness.leaderboard.board import comparability, differences, majority, rank_groups, tuned_keys
from harness.leaderboard.render import settings_text
from tests.leaderboard import sample


def _brute_force(intervals, higher_is_better=True):
    """Best and worst position of each interval over every ranking that no pair of disjoint CIs contradicts."""
    n = len(intervals)

    def better(a, b):  # a is clearly better than b
        (alo, ahi), (blo, bhi) = intervals[a], intervals[b]
        return alo > bhi if higher_is_better else ahi < blo

    positions = {i: [] for i in range(n)}
    for order in itertools.permutations(range(n)):
        if all(not better(order[j], order[i]) for i in range(n) for j in range(i + 1, n)):
            for pos, i in enumerate(order, start=1):
                positions[i].append(pos)
    return [(min(positions[i]), max(positions[i])) for i in range(n)]


def test_overlapping_cis_share_a_rank_group() -> None:
    # A and B overlap; C lies below both.
    assert rank_groups([(80, 90), (85, 95), (50, 60)]) == [(1, 2), (1, 2), (3, 3)]


def test_a_chain_of_overlaps() -> None:
    # A overlaps B, B overlaps C, A lies below C: C is 1-2, B could be anywhere, A is 2-3.
    assert rank_groups([(80, 90), (88, 100), (95, 105)]) == [(2, 3), (1, 3), (1, 2)]


def test_lower_is_better() -> None:
    assert rank_groups([(20, 22), (10, 12)], higher_is_better=False) == [(2, 2), (1, 1)]


def test_a_row_without_a_ci_overlaps_everything() -> None:
    assert rank_groups([None, (1, 2), (5, 6)]) == [(1, 3), (2, 3), (1, 2)]


def test_touching_intervals_overlap() -> None:
    assert rank_groups([(1, 2), (2, 3)]) == [(1, 2), (1, 2)]


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_rank_groups_match_a_brute_force_over_orders(higher_is_better: bool) -> None:
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 6)
        intervals = []
        for _ in range(n):
            lo = rng.uniform(0, 90)
            intervals.append((lo, lo + rng.choice([0.0, rng.uniform(0, 20)])))
        assert rank_groups(intervals, higher_is_better) == _brute_force(intervals, higher_is_better), intervals


def test_comparability_key() -> None:
    key = comparability(sample.SPEC)
    assert key["dataset"] == "3f1c0a9b8d7e" and key["split"] == "train/test"
    assert key["metric convention"] == "classification v2" and key["precision"] == "fp32"
    assert (key["epochs"], key["steps"], key["lr"], key["lr_mult.image"]) == ("6", "none", "0.001", "1")
    assert key["image.size"] == "32" and key["task.prompt"] == "what shape?"
    assert not any(k.startswith("text.") for k in key)  # an image-only model has no text settings
    assert "task.dataset" not in key and "task.train_split" not in key and "device" not in key


def test_majority_and_differences() -> None:
    six, one = comparability(sample.spec()), comparability(sample.spec(epochs=1, lr=0.01))
    board = majority([six, one, six])
    assert board["epochs"] == "6" and board["lr"] == "0.001"
    assert differences(one, board) == ("epochs 1 vs 6", "lr 0.01 vs 0.001")
    assert differences(six, board) == ()
    assert majority([one, six])["epochs"] == "1"  # a tie: the first row's value


def test_a_key_a_row_lacks_is_not_a_difference() -> None:
    text = {**comparability(sample.SPEC), "text.max_length": "16"}
    image = comparability(sample.SPEC)
    assert differences(image, majority([text, text, image])) == ()
    fp16 = {**image, "precision": "bf16"}
    assert differences(fp16, majority([text, image, image])) == ("precision bf16 vs fp32",)


def test_a_board_ranks_comparable_rows_and_marks_the_others() -> None:
    board = sample.leaderboard().boards[0]
    order = [(r.model, r.rank_text(), r.differences) for r in board.rows]
    assert order == [
        ("resnet", "1–3", ()),  # overlaps vit, and clip (no CI) overlaps everything
        ("vit", "1–3", ()),
        ("clip", "1–4", ()),
        ("bert", "3–4", ()),
        ("xbert-1ep", "", ("epochs 1 vs 6",)),  # the best mean, trained 1 epoch: marked, not ranked
    ]


def test_an_allowed_per_model_override_is_shown_not_marked() -> None:
    tuned = tuned_keys({"overrides": {"lr": 0.002, "lr_mult": {"image": 0.1}}})
    assert tuned == {"lr", "lr_mult.image"}
    plain, bert = comparability(sample.spec()), comparability(sample.spec(lr=0.002))
    # two rows tuned lr 0.002 do not outvote the one at the suite's lr, and are not marked for it
    board = majority([bert, bert, plain], [tuned, tuned, frozenset()])
    assert board["lr"] == "0.001"
    assert differences(bert, board, tuned) == ()
    assert differences(bert, board) == ("lr 0.002 vs 0.001",)  # without the override it is a difference
    row = sample.row("bert", 50.0, (49.0, 51.0), settings=bert, tuned=frozenset({"lr"}))
    lb = sample.board([sample.row("vit", 50.0, (49.0, 51.0)), row])
    assert [r.comparable for r in lb.rows] == [True, True]
    assert settings_text(row) == "as the board; tuned: lr 0.002"
