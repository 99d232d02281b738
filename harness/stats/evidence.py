"""Per-example evidence of a run: what a paired test needs to recompute the run's metrics on any resample of the
test examples, with each example's cluster (its image).

A task writes ``evidence.npz`` beside ``metrics.json`` (plain numpy arrays, no pickle). Two views of it:

- :meth:`Evidence.recompute` gives the run's metrics exactly as ``metrics.json`` holds them, with the same
  conventions (VQA rounded to 2 decimals in the official float order; retrieval and top-k as ``100 * count / n``);
- :meth:`Evidence.ratios` gives, for every metric that is a mean over examples, its numerator and denominator summed
  per cluster. A bootstrap replicate that draws cluster ``c`` ``w[c]`` times then has the metric
  ``100 * (w @ num) / (w @ den)``: the resampling unit is the image, because the questions about one image (or the
  captions of one image) are not independent. Metrics that are not means (a mean of recalls, mAP) are
  :attr:`Evidence.derived` from the ratios, or recomputed from the resampled rows (:meth:`Evidence.resampled`).

Arrays by task type (N examples; every unit set has its own ``*cluster`` array of cluster labels):

- classification: ``example_id``, ``cluster``, ``label``, ``rank`` (0 = the top prediction; stable ties);
- multilabel: ``example_id``, ``cluster``, ``scores`` (N, C) float32, ``targets`` (N, C) uint8;
- vqa: ``example_id`` (question id), ``cluster`` (image id), ``accuracy`` (per question, in [0, 1], unrounded),
  ``answer_type`` (index into ``answer_types``), ``answer_types``;
- retrieval: ``i2t_cluster`` (image), ``i2t_rank``, ``t2i_cluster`` (the text's image), ``t2i_rank``; fusion models
  also ``itc_i2t_rank``, ``itc_t2i_rank``.

Cluster labels are strings (``str(image_id)``), so that two runs pair exactly when they saw the same images. This
module needs only numpy (and the metric helpers, which need only numpy).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EVIDENCE = "evidence.npz"
SCHEMA_VERSION = 1
TOPK = (1, 5)
RECALL_KS = (1, 5, 10)
ANSWER_TYPE_METRIC = {"yes/no": "vqa_yesno", "number": "vqa_number", "other": "vqa_other"}


@dataclass(frozen=True)
class Ratio:
    """A metric that is ``100 * sum(num) / sum(den)`` over examples, summed per cluster: ``num``, ``den`` are (C,)."""

    num: np.ndarray
    den: np.ndarray


@dataclass(frozen=True)
class Evidence:
    """The evidence of one run (see the module docstring)."""

    task_type: str
    arrays: dict[str, np.ndarray]
    clusters: np.ndarray = field(init=False)  # sorted unique cluster labels over every unit set

    def __post_init__(self) -> None:
        labels = [v for k, v in self.arrays.items() if k.endswith("cluster")]
        if not labels:
            raise ValueError("evidence without a cluster array")
        object.__setattr__(self, "clusters", np.unique(np.concatenate(labels)))

    # -- files ---------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, __task_type__=np.array(self.task_type), __schema__=np.array(SCHEMA_VERSION), **self.arrays
        )
        return buf.getvalue()

    @classmethod
    def load(cls, path: Path) -> Evidence:
        """Read ``evidence.npz``; a malformed file raises ``ValueError`` naming what is wrong."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable evidence file ({exc})") from exc
        task_type = str(arrays.pop("__task_type__", ""))
        schema = int(arrays.pop("__schema__", -1))
        if schema != SCHEMA_VERSION or task_type not in _RECOMPUTE:
            raise ValueError(f"{path}: evidence schema {schema} for task type {task_type!r} is not readable here")
        missing = [k for k in _REQUIRED[task_type] if k not in arrays]
        if missing:
            raise ValueError(f"{path}: evidence lacks {missing}")
        return cls(task_type, arrays)

    # -- exact recomputation ------------------------------------------------------------------------------------
    def recompute(self) -> dict[str, float]:
        """The run's metrics, computed from the evidence exactly as the evaluation computed them."""
        return _RECOMPUTE[self.task_type](self.arrays)

    def exact(self, metric: str) -> float | None:
        """One metric exactly as :meth:`recompute` gives it, or None when the run has no such metric (for VQA without
        :meth:`recompute`'s per-question Python loop over the answer types: several times faster on VQA v2)."""
        values = _vqa_vectorized(self.arrays) if self.task_type == "vqa" else self.recompute()
        value = values.get(metric)
        return None if value is None else float(value)

    # -- resampling ---------------------------------------------------------------------------------------------
    def cluster_index(self, key: str = "cluster") -> np.ndarray:
        """For each example of a unit set, the index of its cluster in :attr:`clusters`."""
        return np.searchsorted(self.clusters, self.arrays[key])

    def ratios(self) -> dict[str, Ratio]:
        """Numerator and denominator per cluster of every metric that is a mean over examples (empty for mAP)."""
        return _RATIOS[self.task_type](self)

    @property
    def derived(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        """Metrics computed from others (e.g. ``r_mean``): name -> function of the ratio metrics' values."""
        if self.task_type != "retrieval":
            return {}
        out = _recall_means("")
        if "itc_i2t_rank" in self.arrays:
            out["itc_r_mean"] = _recall_means("itc_")["itc_r_mean"]
        return out

    @property
    def needs_rows(self) -> bool:
        """True when a metric must be recomputed from resampled rows (mAP), not from per-cluster sums."""
        return self.task_type == "multilabel"

    def resampled(self, cluster_counts: np.ndarray) -> dict[str, float]:
        """Metrics on a resample that draws cluster ``c`` ``cluster_counts[c]`` times (rows repeated)."""
        from harness.metrics.average_precision import average_precision

        if self.task_type != "multilabel":
            raise ValueError("resampled() is for metrics that are not means over examples; use ratios()")
        reps = cluster_counts[self.cluster_index()]
        rows = np.repeat(np.arange(len(reps)), reps)
        return {"mAP": average_precision(self.arrays["scores"][rows], self.arrays["targets"][rows])["mAP"]}

    def same_examples(self, other: Evidence) -> bool:
        """Whether two runs were scored on the same examples, in the same order (required for pairing)."""
        keys = sorted(k for k in self.arrays if k.endswith(("cluster", "example_id")))
        return (
            self.task_type == other.task_type
            and keys == sorted(k for k in other.arrays if k.endswith(("cluster", "example_id")))
            and all(np.array_equal(self.arrays[k], other.arrays[k]) for k in keys)
        )


def labels(values: Any) -> np.ndarray:
    """Cluster or example labels as a unicode array (``str`` of each id)."""
    return np.asarray([str(v) for v in values], dtype=np.str_)


# -- per task type ----------------------------------------------------------------------------------------------


def classification_evidence(example_ids: Any, clusters: Any, labels_: np.ndarray, ranks: np.ndarray) -> Evidence:
    return Evidence(
        "classification",
        {
            "example_id": labels(example_ids),
            "cluster": labels(clusters),
            "label": np.asarray(labels_, dtype=np.int64),
            "rank": np.asarray(ranks, dtype=np.int64),
        },
    )


def multilabel_evidence(example_ids: Any, clusters: Any, scores: np.ndarray, targets: np.ndarray) -> Evidence:
    return Evidence(
        "multilabel",
        {
            "example_id": labels(example_ids),
            "cluster": labels(clusters),
            "scores": np.asarray(scores, dtype=np.float32),
            "targets": np.asarray(targets, dtype=np.uint8),
        },
    )


def vqa_evidence(question_ids: Any, image_ids: Any, accuracy: np.ndarray, answer_types: list[str]) -> Evidence:
    names = list(dict.fromkeys(answer_types))  # first-appearance order, as the official per-type dict
    index = {t: i for i, t in enumerate(names)}
    return Evidence(
        "vqa",
        {
            "example_id": labels(question_ids),
            "cluster": labels(image_ids),
            "accuracy": np.asarray(accuracy, dtype=np.float64),
            "answer_type": np.asarray([index[t] for t in answer_types], dtype=np.int64),
            "answer_types": np.asarray(names, dtype=np.str_),
        },
    )


def retrieval_evidence(
    image_ids: Any,
    txt2img: Any,
    ranks: tuple[np.ndarray, np.ndarray],
    itc_ranks: tuple[np.ndarray, np.ndarray] | None = None,
) -> Evidence:
    images = labels(image_ids)
    arrays = {
        "i2t_cluster": images,
        "i2t_rank": np.asarray(ranks[0], dtype=np.int64),
        "t2i_cluster": images[np.asarray(txt2img, dtype=np.int64)],
        "t2i_rank": np.asarray(ranks[1], dtype=np.int64),
    }
    if itc_ranks is not None:
        arrays["itc_i2t_rank"] = np.asarray(itc_ranks[0], dtype=np.int64)
        arrays["itc_t2i_rank"] = np.asarray(itc_ranks[1], dtype=np.int64)
    return Evidence("retrieval", arrays)


def _classification(a: Mapping[str, np.ndarray]) -> dict[str, float]:
    n = len(a["rank"])
    return {f"top{k}": 100.0 * int(np.count_nonzero(a["rank"] < k)) / n for k in TOPK}


def _multilabel(a: Mapping[str, np.ndarray]) -> dict[str, float]:
    from harness.metrics.average_precision import average_precision

    return {"mAP": average_precision(a["scores"], a["targets"])["mAP"]}


def _vqa(a: Mapping[str, np.ndarray]) -> dict[str, float]:
    from harness.metrics.vqa import aggregate_vqa_scores

    types = [str(a["answer_types"][i]) for i in a["answer_type"]]
    acc = aggregate_vqa_scores(a["accuracy"], types)
    out = {"vqa_accuracy": acc["overall"]}
    for atype, value in acc["perAnswerType"].items():
        out[ANSWER_TYPE_METRIC.get(atype, f"vqa_{atype}")] = value
    return out


def _vqa_vectorized(a: Mapping[str, np.ndarray]) -> dict[str, float]:
    """:func:`_vqa` with the answer-type names gathered by numpy (the same strings, the same order, the same sums)."""
    from harness.metrics.vqa import aggregate_vqa_scores

    acc = aggregate_vqa_scores(a["accuracy"], a["answer_types"][a["answer_type"]].tolist())
    out = {"vqa_accuracy": acc["overall"]}
    for atype, value in acc["perAnswerType"].items():
        out[ANSWER_TYPE_METRIC.get(atype, f"vqa_{atype}")] = value
    return out


def _retrieval(a: Mapping[str, np.ndarray]) -> dict[str, float]:
    from harness.metrics.retrieval import recalls_from_ranks

    out = recalls_from_ranks(a["i2t_rank"], a["t2i_rank"])
    if "itc_i2t_rank" in a:
        out["itc_r_mean"] = recalls_from_ranks(a["itc_i2t_rank"], a["itc_t2i_rank"])["r_mean"]
    return out


def _sum_by(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(index, weights=values.astype(np.float64), minlength=n)


def _classification_ratios(e: Evidence) -> dict[str, Ratio]:
    idx, n = e.cluster_index(), len(e.clusters)
    den = _sum_by(idx, np.ones(len(idx)), n)
    return {f"top{k}": Ratio(_sum_by(idx, e.arrays["rank"] < k, n), den) for k in TOPK}


def _vqa_ratios(e: Evidence) -> dict[str, Ratio]:
    idx, n = e.cluster_index(), len(e.clusters)
    acc, types = e.arrays["accuracy"], e.arrays["answer_type"]
    out = {"vqa_accuracy": Ratio(_sum_by(idx, acc, n), _sum_by(idx, np.ones(len(idx)), n))}
    for i, atype in enumerate(e.arrays["answer_types"]):
        mask = types == i
        name = ANSWER_TYPE_METRIC.get(str(atype), f"vqa_{atype}")
        out[name] = Ratio(_sum_by(idx[mask], acc[mask], n), _sum_by(idx[mask], np.ones(int(mask.sum())), n))
    return out


def _retrieval_ratios(e: Evidence) -> dict[str, Ratio]:
    n = len(e.clusters)
    out = {}
    for prefix, stage in (("", ""), ("itc_", "itc_")):
        if f"{stage}i2t_rank" not in e.arrays:
            continue
        for direction, unit in (("txt", "i2t"), ("img", "t2i")):
            idx = e.cluster_index(f"{unit}_cluster")
            ranks = e.arrays[f"{stage}{unit}_rank"]
            den = _sum_by(idx, np.ones(len(idx)), n)
            for k in RECALL_KS:
                out[f"{prefix}{direction}_r{k}"] = Ratio(_sum_by(idx, ranks < k, n), den)
    return out


def _recall_means(prefix: str) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
    def mean(direction: str) -> Callable[[Mapping[str, Any]], Any]:
        return lambda m: sum(m[f"{prefix}{direction}_r{k}"] for k in RECALL_KS) / 3

    return {
        f"{prefix}txt_r_mean": mean("txt"),
        f"{prefix}img_r_mean": mean("img"),
        f"{prefix}r_mean": lambda m: (mean("txt")(m) + mean("img")(m)) / 2,
    }


_RECOMPUTE: dict[str, Callable[[Mapping[str, np.ndarray]], dict[str, float]]] = {
    "classification": _classification,
    "multilabel": _multilabel,
    "vqa": _vqa,
    "retrieval": _retrieval,
}
_RATIOS: dict[str, Callable[[Evidence], dict[str, Ratio]]] = {
    "classification": _classification_ratios,
    "multilabel": lambda e: {},
    "vqa": _vqa_ratios,
    "retrieval": _retrieval_ratios,
}
_REQUIRED = {
    "classification": ("example_id", "cluster", "label", "rank"),
    "multilabel": ("example_id", "cluster", "scores", "targets"),
    "vqa": ("example_id", "cluster", "accuracy", "answer_type", "answer_types"),
    "retrieval": ("i2t_cluster", "i2t_rank", "t2i_cluster", "t2i_rank"),
}
