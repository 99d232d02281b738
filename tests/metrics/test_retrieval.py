"""Retrieval recall@K: hand-ranked cases, tie policies, and equality with a port of ALBEF's ``itm_eval``."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import UserError
from harness.metrics import retrieval, retrieval_recall


def albef_itm_eval(scores_i2t, scores_t2i, txt2img, img2txt) -> dict[str, float]:
    """Straight port of ALBEF ``Retrieval.py::itm_eval`` (argsort-based ranks), the reference for untied scores."""
    ranks = np.zeros(scores_i2t.shape[0])
    for index, score in enumerate(scores_i2t):
        inds = np.argsort(score)[::-1]
        rank = 1e20
        for i in img2txt[index]:
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        ranks[index] = rank
    tr1 = 100.0 * len(np.where(ranks < 1)[0]) / len(ranks)
    tr5 = 100.0 * len(np.where(ranks < 5)[0]) / len(ranks)
    tr10 = 100.0 * len(np.where(ranks < 10)[0]) / len(ranks)
    ranks = np.zeros(scores_t2i.shape[0])
    for index, score in enumerate(scores_t2i):
        inds = np.argsort(score)[::-1]
        ranks[index] = np.where(inds == txt2img[index])[0][0]
    ir1 = 100.0 * len(np.where(ranks < 1)[0]) / len(ranks)
    ir5 = 100.0 * len(np.where(ranks < 5)[0]) / len(ranks)
    ir10 = 100.0 * len(np.where(ranks < 10)[0]) / len(ranks)
    tr_mean = (tr1 + tr5 + tr10) / 3
    ir_mean = (ir1 + ir5 + ir10) / 3
    return {
        "txt_r1": tr1,
        "txt_r5": tr5,
        "txt_r10": tr10,
        "txt_r_mean": tr_mean,
        "img_r1": ir1,
        "img_r5": ir5,
        "img_r10": ir10,
        "img_r_mean": ir_mean,
        "r_mean": (tr_mean + ir_mean) / 2,
    }


IMG2TXT = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
TXT2IMG = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]


def test_hand_ranked_case() -> None:
    scores = np.array(
        [
            # image 0: best own caption is #3 (0.45); the 5 captions of image 1 all score higher -> rank 5
            [0.10, 0.20, 0.30, 0.45, 0.40, 0.90, 0.80, 0.50, 0.60, 0.70],
            # image 1: own caption #9 scores highest -> rank 0
            [0.50, 0.10, 0.60, 0.20, 0.30, 0.20, 0.30, 0.40, 0.55, 0.95],
        ]
    )
    out = retrieval_recall(scores, IMG2TXT, TXT2IMG)
    # image->text ranks [5, 0]: r1 = 50, r5 = 50 (5 < 5 is false), r10 = 100
    # text->image, column by column (own image vs the other): texts 0, 2, 5, 6, 7, 8 lose -> ranks
    # [1, 0, 1, 0, 0, 1, 1, 1, 1, 0]: r1 = 4/10 = 40, r5 = r10 = 100
    expected = {
        "txt_r1": 50.0,
        "txt_r5": 50.0,
        "txt_r10": 100.0,
        "txt_r_mean": 200.0 / 3,
        "img_r1": 40.0,
        "img_r5": 100.0,
        "img_r10": 100.0,
        "img_r_mean": 80.0,
        "r_mean": (200.0 / 3 + 80.0) / 2,
    }
    assert out == pytest.approx(expected, abs=1e-12)
    assert retrieval_recall(scores, IMG2TXT, TXT2IMG, ties="optimistic") == out  # no ties: policies agree
    assert albef_itm_eval(scores, scores.T, TXT2IMG, IMG2TXT) == pytest.approx(expected, abs=1e-12)


def test_constant_scores_pessimistic_vs_optimistic() -> None:
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(3)]
    txt2img = [t // 5 for t in range(15)]
    scores = np.zeros((3, 15), dtype=np.float32)
    pess = retrieval_recall(scores, img2txt, txt2img)
    # image->text: all 10 non-gt captions tie with the gt -> rank 10 -> 0 at every K
    assert (pess["txt_r1"], pess["txt_r5"], pess["txt_r10"]) == (0.0, 0.0, 0.0)
    # text->image: the 2 other images tie -> rank 2 -> fails @1, within @5 and @10 (only 3 images)
    assert (pess["img_r1"], pess["img_r5"], pess["img_r10"]) == (0.0, 100.0, 100.0)
    opt = retrieval_recall(scores, img2txt, txt2img, ties="optimistic")
    assert all(v == 100.0 for v in opt.values())


def test_partial_ties() -> None:
    scores = np.array(
        [
            # gt caption #0 ties with non-gt #5 at the top -> pessimistic rank 1, optimistic rank 0
            [0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.2, 0.2, 0.2, 0.2],
            # two gt captions (#5, #6) tie at the top: other ground truths never count against -> rank 0 in both
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.8, 0.8, 0.1, 0.1, 0.1],
        ]
    )
    pess = retrieval_recall(scores, IMG2TXT, TXT2IMG)
    opt = retrieval_recall(scores, IMG2TXT, TXT2IMG, ties="optimistic")
    assert pess["txt_r1"] == 50.0 and opt["txt_r1"] == 100.0
    # text->image: text 1..4 (img 0): 0.1 vs 0.0 -> rank 0; text 0: 0.9 vs 0.0 -> 0; text 5: 0.8 vs 0.9 -> 1;
    # text 6: 0.8 vs 0.2 -> 0; texts 7..9: 0.1 vs 0.2 -> 1  => ranks: 5 zeros + [1, 0, 1, 1, 1] -> r1 = 60
    assert pess["img_r1"] == opt["img_r1"] == 60.0


def _random_problem(rng: np.random.Generator, n_images: int, per_image: int) -> tuple:
    n_texts = n_images * per_image
    perm = rng.permutation(n_texts)
    img2txt = [perm[i * per_image : (i + 1) * per_image].tolist() for i in range(n_images)]
    txt2img = np.empty(n_texts, dtype=np.int64)
    for i, texts in enumerate(img2txt):
        txt2img[texts] = i
    return img2txt, txt2img.tolist()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_albef_on_untied_random_scores(dtype, monkeypatch) -> None:
    rng = np.random.default_rng(7)
    img2txt, txt2img = _random_problem(rng, 60, 5)
    # Mildly informative scores so that recalls are spread out (not all 0 or 100).
    scores = rng.standard_normal((60, 300)).astype(dtype)
    for i, texts in enumerate(img2txt):
        scores[i, texts] += dtype(1.5)
    t2i = (scores.T + rng.standard_normal((300, 60)).astype(dtype) * dtype(0.5)).astype(dtype)
    # really untied within every ranking (rows of scores and t2i, columns of scores)
    for m in (scores, scores.T, t2i):
        assert all(len(np.unique(row)) == row.size for row in m)
    ref_default = albef_itm_eval(scores, scores.T, txt2img, img2txt)
    ref_t2i = albef_itm_eval(scores, t2i, txt2img, img2txt)
    assert 0 < ref_default["txt_r1"] < 100 and 0 < ref_default["img_r1"] < 100
    for ties in ("pessimistic", "optimistic"):
        assert retrieval_recall(scores, img2txt, txt2img, ties=ties) == ref_default
        assert retrieval_recall(scores, img2txt, txt2img, scores_t2i=t2i, ties=ties) == ref_t2i
    # ALBEF-style dicts, and tiny blocks (many chunks) give the same numbers
    as_dicts = ({i: t for i, t in enumerate(img2txt)}, {t: i for t, i in enumerate(txt2img)})
    assert retrieval_recall(scores, *as_dicts) == ref_default
    monkeypatch.setattr(retrieval, "_BLOCK_ELEMENTS", 700)
    assert retrieval_recall(scores, img2txt, txt2img) == ref_default
    assert retrieval_recall(scores, img2txt, txt2img, scores_t2i=t2i) == ref_t2i


def test_torch_input() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    img2txt, txt2img = _random_problem(rng, 20, 5)
    scores = rng.standard_normal((20, 100)).astype(np.float32)
    expected = albef_itm_eval(scores, scores.T, txt2img, img2txt)
    assert retrieval_recall(torch.from_numpy(scores), img2txt, txt2img) == expected


def test_input_errors() -> None:
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(5)]
    txt2img = [t // 5 for t in range(25)]
    good = np.zeros((5, 25))
    with pytest.raises(
        UserError, match=r"^Expected `scores_i2t` to have shape \(n_images, n_texts\) = \(5, 25\), but got \(5, 24\)$"
    ):
        retrieval_recall(np.zeros((5, 24)), img2txt, txt2img)
    with pytest.raises(
        UserError, match=r"`scores_t2i` to have shape \(n_texts, n_images\) = \(25, 5\), but got \(5, 25\)"
    ):
        retrieval_recall(good, img2txt, txt2img, scores_t2i=good)
    with pytest.raises(UserError, match=r"`img2txt\[1\]` to hold text indices in \[0, 25\), but got 25"):
        retrieval_recall(good, [*img2txt[:1], [25], *img2txt[2:]], txt2img)
    with pytest.raises(UserError, match=r"`txt2img\[3\]` to be an image index in \[0, 5\), but got -1"):
        retrieval_recall(good, img2txt, [*txt2img[:3], -1, *txt2img[4:]])
    with pytest.raises(UserError, match="image 2 has none"):
        retrieval_recall(good, [*img2txt[:2], [], *img2txt[3:]], txt2img)
    bad = good.copy()
    bad[3, 7] = np.nan
    with pytest.raises(UserError, match="Expected `scores_i2t` to be finite, but row 3, column 7 is NaN"):
        retrieval_recall(bad, img2txt, txt2img)
    with pytest.raises(UserError, match="Expected `ties` to be one of 'pessimistic', 'optimistic', but got 'random'"):
        retrieval_recall(good, img2txt, txt2img, ties="random")
    with pytest.raises(UserError, match=r"keys 0\.\.4, but key 4 is missing"):
        retrieval_recall(good, {i: img2txt[i] for i in range(4)} | {9: [0]}, txt2img)
