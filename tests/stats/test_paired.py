"""The paired hierarchical bootstrap and McNemar's test on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from harness.metrics.vqa import vqa_question_scores
from harness.stats import paired
from harness.stats.evidence import (
    classification_evidence,
    multilabel_evidence,
    retrieval_evidence,
    vqa_evidence,
)
from harness.stats.paired import ROW_REPLICATES, compare, correct, mcnemar


def _vqa(accuracy: np.ndarray, images: np.ndarray) -> object:
    n = len(accuracy)
    return vqa_evidence(np.arange(n), images, accuracy, ["yes/no", "other"] * (n // 2) + ["other"] * (n % 2))


def _cls(correct_: np.ndarray, clusters: np.ndarray | None = None) -> object:
    n = len(correct_)
    ids = np.arange(n)
    return classification_evidence(ids, ids if clusters is None else clusters, np.zeros(n), np.where(correct_, 0, 7))


@pytest.fixture(scope="module")
def world() -> dict:
    rng = np.random.default_rng(0)
    images = np.concatenate([np.arange(300), rng.integers(0, 300, 700)])
    return {"rng": rng, "images": images}


def test_identical_models_differ_by_exactly_nothing(world) -> None:
    acc = (world["rng"].random(1000) < 0.6).astype(float)
    a = [_vqa(acc, world["images"])]
    c = compare(a, a, "vqa_accuracy", replicates=2_000, levels=(0.95, 0.99))
    assert (c.delta, c.ci[0.95], c.ci[0.99], c.p_value, c.se, c.se_clusters) == (0.0, (0.0, 0.0), (0.0, 0.0), 1.0, 0, 0)
    assert (c.n_clusters, c.n_seeds_a, c.n_seeds_b, c.replicates, c.se_seeds) == (300, 1, 1, 2000, None)
    assert c.mcnemar == paired.McNemar(0, 0, 1.0, 1000)


def test_a_constant_shift_is_recovered_exactly(world) -> None:
    base = np.round(world["rng"].random(1000) * 0.9, 1)  # accuracies in [0, 0.9]
    a, b = [_vqa(base + 0.1, world["images"])], [_vqa(base, world["images"])]
    c = compare(a, b, "vqa_accuracy", replicates=1_000)
    assert c.delta == pytest.approx(10.0, abs=0.01)  # the official figures are rounded to 2 decimals
    assert c.ci[0.95] == pytest.approx((10.0, 10.0), abs=1e-9) and c.se == pytest.approx(0.0, abs=1e-9)
    assert c.p_value == 1 / 1001  # no replicate is as far from the observed delta as 0 is
    rel = compare(a, b, "vqa_accuracy", relative=True, replicates=500)
    assert rel.relative and rel.delta == pytest.approx(100 * (c.a / c.b - 1))


def test_a_constant_ratio_is_recovered_on_the_relative_scale(world) -> None:
    base = world["rng"].random(1000) * 0.8
    c = compare([_vqa(base * 1.2, world["images"])], [_vqa(base, world["images"])], "vqa_accuracy", relative=True)
    assert c.ci[0.95] == pytest.approx((20.0, 20.0), abs=1e-9)  # (w @ 1.2 x) / (w @ x) = 1.2 on every resample
    assert c.delta == pytest.approx(20.0, abs=0.05)


def test_noisy_gain_ci_covers_it_and_the_p_value_follows_its_definition(world) -> None:
    rng = world["rng"]
    b = (rng.random(1000) < 0.55).astype(float)
    a = np.where(rng.random(1000) < 0.1, 1.0, b)  # a fixes ~10% of all answers: +4.5 points on average
    c = compare([_vqa(a, world["images"])], [_vqa(b, world["images"])], "vqa_accuracy", keep_replicates=True)
    assert c.ci[0.95][0] < c.delta < c.ci[0.95][1] and c.ci[0.95][0] > 0
    d = c.replicate_deltas
    assert d is not None and len(d) == c.replicates == 10_000
    center = 100 * (a.mean() - b.mean())  # the unrounded full-sample delta the replicates center on
    assert c.p_value == (1 + np.count_nonzero(np.abs(d - center) >= abs(center))) / (len(d) + 1)
    assert c.se == pytest.approx(np.std(d, ddof=1)) and c.se == c.se_clusters  # one seed: nothing else varies
    assert c.ci[0.95] == pytest.approx(tuple(np.quantile(d, [0.025, 0.975])))


def test_seeds_are_resampled_hierarchically() -> None:
    # Every cluster has 10 examples and a seed gets the same count right in every cluster: a seed's metric does not
    # depend on which clusters are drawn (se_clusters = 0), only on which seeds are.
    n_clusters, per = 200, 10
    clusters = np.repeat(np.arange(n_clusters), per)

    def seed(k: int) -> object:
        return _cls(np.tile(np.arange(per) < k, n_clusters), clusters)

    a, b = [seed(6), seed(7)], [seed(6), seed(6)]  # a: 60% and 70% (mean 65), b: 60% twice
    c = compare(a, b, "top1", keep_replicates=True)
    assert (c.a, c.b, c.delta, c.se_clusters) == (65.0, 60.0, 5.0, 0.0)
    assert (c.values_a, c.seed_var_a, c.seed_var_b) == ((60.0, 70.0), 50.0, 0.0)
    assert c.se_seeds == pytest.approx(5.0)  # sqrt(50 / 2 + 0 / 2)
    # a's drawn mean is 60, 65 or 70 with probabilities 1/4, 1/2, 1/4; its deviation from 65 is rescaled by
    # sqrt(2 / 1): delta 5 - 5 sqrt(2), 5 or 5 + 5 sqrt(2)
    spread = 5 * np.sqrt(2)
    shares = [np.mean(np.isclose(c.replicate_deltas, v)) for v in (5 - spread, 5.0, 5 + spread)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.02)
    # the rescaled bootstrap's variance is the unbiased s^2 / n = 50 / 2, not (n - 1) / n of it
    assert c.se == pytest.approx(c.se_seeds, rel=0.03)
    assert c.ci[0.95] == pytest.approx((5 - spread, 5 + spread))
    assert "seeds resampled within each model (2 and 2, rescaled" in c.method and c.mcnemar is None


def test_mcnemar_against_the_exact_binomial() -> None:
    a = np.array([1] * 8 + [0] * 2 + [1] * 30 + [0] * 60, dtype=bool)
    b = np.array([0] * 8 + [1] * 2 + [1] * 30 + [0] * 60, dtype=bool)
    m = mcnemar(a, b)
    assert (m.b, m.c, m.n) == (8, 2, 100)
    assert m.p_value == pytest.approx(112 / 1024)  # 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10
    assert m.p_value == pytest.approx(stats.binomtest(2, 10, 0.5).pvalue)
    assert mcnemar(b, a).p_value == m.p_value and (mcnemar(b, a).b, mcnemar(b, a).c) == (2, 8)
    one = mcnemar([True, False], [False, False])
    assert (one.b, one.c, one.p_value) == (1, 0, 1.0)
    many = mcnemar(np.r_[np.ones(40, bool), np.zeros(15, bool)], np.r_[np.zeros(40, bool), np.ones(15, bool)])
    assert many.p_value == pytest.approx(stats.binomtest(15, 55, 0.5).pvalue)
    with pytest.raises(ValueError, match="one length"):
        mcnemar([True], [True, False])


def test_vqa_correct_means_at_least_four_matching_humans() -> None:
    answers = [["cat"] * k + ["dog"] * (10 - k) for k in range(11)]
    acc = vqa_question_scores(["cat"] * 11, answers)
    assert acc[3] == pytest.approx(0.9) and acc[4] == 1.0  # 3 matches: (3 * 2/3 + 7 * 1) / 10
    ev = vqa_evidence(np.arange(11), np.arange(11), acc, ["other"] * 11)
    assert correct(ev).tolist() == [False] * 4 + [True] * 7
    assert correct(_cls(np.array([True, False]))).tolist() == [True, False]
    with pytest.raises(ValueError, match="McNemar applies to top1 and vqa_accuracy"):
        correct(_cls(np.array([True])), "top5")


def test_one_seed_classification_reports_mcnemar_beside_the_bootstrap() -> None:
    rng = np.random.default_rng(3)
    b = rng.random(800) < 0.6
    a = np.where(rng.random(800) < 0.1, True, b)
    c = compare([_cls(a)], [_cls(b)], "top1", replicates=1_000)
    assert c.mcnemar is not None and (c.mcnemar.b, c.mcnemar.c) == (int((a & ~b).sum()), 0)
    assert c.mcnemar.p_value == pytest.approx(2 * 0.5 ** int((a & ~b).sum()))
    assert compare([_cls(a)], [_cls(b)], "top5", replicates=10).mcnemar is None


def test_refusals_name_the_problem(world) -> None:
    acc = (world["rng"].random(1000) < 0.6).astype(float)
    a = _vqa(acc, world["images"])
    other = _vqa(acc[:999], world["images"][:999])
    with pytest.raises(ValueError, match="model b: seed 0 was scored on other test examples"):
        compare([a], [other], "vqa_accuracy")
    with pytest.raises(ValueError, match="model a: seed 1 was scored on other test examples"):
        compare([a, other], [a], "vqa_accuracy")
    with pytest.raises(ValueError, match=r"model a: vqa evidence has no metric 'top1'; it has \['vqa_accuracy'"):
        compare([a], [a], "top1")
    with pytest.raises(ValueError, match="model b: no evidence"):
        compare([a], [], "vqa_accuracy")
    with pytest.raises(ValueError, match="other test examples"):
        compare([a], [_cls(acc > 0)], "vqa_accuracy")


def test_retrieval_r_mean_is_derived_from_the_recalls() -> None:
    rng = np.random.default_rng(4)
    n_img, per = 200, 5
    txt2img = np.repeat(np.arange(n_img), per)

    def ev(quality: float) -> object:
        ranks = (rng.geometric(quality, n_img) - 1, rng.geometric(quality, n_img * per) - 1)
        return retrieval_evidence(range(n_img), txt2img, ranks)

    a, b = ev(0.4), ev(0.3)
    c = compare([a], [b], "r_mean", replicates=2_000)
    assert c.delta == pytest.approx(a.recompute()["r_mean"] - b.recompute()["r_mean"], abs=1e-12)
    assert c.n_clusters == n_img and c.ci[0.95][0] < c.delta < c.ci[0.95][1]
    same = compare([a], [b], "img_r_mean", replicates=200)
    assert same.delta == pytest.approx(a.recompute()["img_r_mean"] - b.recompute()["img_r_mean"], abs=1e-12)


def test_map_recomputes_rows_with_capped_replicates(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    targets = (rng.random((60, 4)) < 0.3).astype(np.uint8)
    targets[0] = 1
    ids = np.arange(60)
    a = multilabel_evidence(ids, ids, targets + rng.random((60, 4)), targets)
    b = multilabel_evidence(ids, ids, rng.random((60, 4)), targets)
    monkeypatch.setattr(paired, "ROW_REPLICATES", 40)
    c = compare([a], [b], "mAP", replicates=10_000)
    assert c.replicates == 40 and "capped at 40: mAP is recomputed from rows" in c.method
    assert c.delta == pytest.approx(a.recompute()["mAP"] - b.recompute()["mAP"])
    assert c.ci[0.95][0] > 0  # scores that follow the targets beat noise
    assert ROW_REPLICATES == 2_000


def test_chunks_bound_the_matrices_and_keep_the_answer(monkeypatch: pytest.MonkeyPatch, world) -> None:
    for clusters in (300, 40_000, 500_000):
        assert paired._chunk_rows(clusters, 10_000) * clusters * 8 <= paired.MATRIX_BYTES
    rng = world["rng"]
    b = (rng.random(1000) < 0.55).astype(float)
    a = np.where(rng.random(1000) < 0.1, 1.0, b)
    evs = [_vqa(a, world["images"])], [_vqa(b, world["images"])]
    whole = compare(*evs, "vqa_accuracy", replicates=4_000)
    monkeypatch.setattr(paired, "MATRIX_BYTES", 8 * 300 * 7)  # 7 replicates per chunk
    chunked = compare(*evs, "vqa_accuracy", replicates=4_000)
    assert chunked.replicates == 4_000 and chunked.delta == whole.delta
    assert chunked.se == pytest.approx(whole.se, rel=0.06)
    assert chunked.ci[0.95] == pytest.approx(whole.ci[0.95], abs=0.35)


def test_weighted_map_equals_the_metric_on_repeated_rows() -> None:
    # Rounded scores (many ties), a class without positives, several rows per cluster: the sparse, sort-free mAP of
    # each resample is average_precision on the resample's repeated rows.
    rng = np.random.default_rng(6)
    n, classes = 300, 6
    targets = (rng.random((n, classes)) < 0.2).astype(np.uint8)
    targets[:, -1] = 0
    scores = np.round(rng.random((n, classes)) + 0.3 * targets, 1).astype(np.float32)
    ev = multilabel_evidence(np.arange(n), rng.integers(0, 90, n), scores, targets)
    counts = paired._cluster_counts(rng, len(ev.clusters), 40)
    fast = paired._WeightedMAP(ev)(counts.astype(float))
    slow = [ev.resampled(w)["mAP"] for w in counts]
    assert fast == pytest.approx(slow, abs=1e-12)
    assert paired._WeightedMAP(ev)(np.ones((1, len(ev.clusters))))[0] == pytest.approx(ev.recompute()["mAP"], abs=1e-12)


def test_exact_equals_recompute() -> None:
    rng = np.random.default_rng(7)
    types = rng.choice(["yes/no", "number", "other", "unanswerable"], 500).tolist()
    ev = vqa_evidence(np.arange(500), rng.integers(0, 100, 500), rng.random(500), types)
    assert {k: ev.exact(k) for k in ev.recompute()} == ev.recompute()
    assert ev.exact("vqa_unanswerable") == ev.recompute()["vqa_unanswerable"] and ev.exact("top1") is None
    cls = _cls(rng.random(50) < 0.5)
    assert cls.exact("top1") == cls.recompute()["top1"] and cls.exact("mAP") is None
