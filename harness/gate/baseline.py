"""The CI gate's baseline file: per-seed values of every metric of a results folder, with tolerances.

A JSON file, written with sorted keys and one value per line, so that a change of baseline reads well in a diff::

    {
      "false_alarm": 0.01,
      "format": "xmbench-baseline",
      "harness_version": "0.1.0",
      "metrics": {
        "vqa/xbert/vqa_accuracy": {
          "gate": true,
          "higher_is_better": true,
          "n_clusters": 450,
          "sampling_se": 1.31,
          "tolerance": "noise",
          "values": {"0": 55.87, "1": 55.87}
        },
        ...
      },
      "settings": {...},
      "suite": "smoke",
      "suite_fingerprint": "a10f…",
      "version": 1
    }

``tolerance`` is ``"noise"`` (the default: a one-sided test against the seed spread and the sampling error),
``{"abs": 0.5}`` (points) or ``{"rel": 2}`` (percent of the baseline's mean). ``gate`` is true for each task's main
metric and false for the others (reported, never failing the check) unless the file says otherwise. A person edits
``tolerance``, ``gate`` and ``false_alarm``; ``xmbench baseline update`` keeps them and rewrites the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import UserError
from harness.jsonio import loads

FORMAT = "xmbench-baseline"
VERSION = 1
DEFAULT_FALSE_ALARM = 0.01


@dataclass(frozen=True)
class Tolerance:
    kind: str  # noise | abs | rel
    amount: float | None = None  # points (abs) or percent of the baseline mean (rel)

    def to_json(self) -> Any:
        return "noise" if self.kind == "noise" else {self.kind: self.amount}

    def describe(self) -> str:
        if self.kind == "noise":
            return "noise"
        return f"abs {self.amount:g}" if self.kind == "abs" else f"rel {self.amount:g}%"


@dataclass(frozen=True)
class MetricBaseline:
    key: str  # task/model/metric
    values: dict[int, float]  # seed -> value (percent)
    gate: bool
    higher_is_better: bool = True
    tolerance: Tolerance = field(default_factory=lambda: Tolerance("noise"))
    sampling_se: float | None = None  # one seed's sampling error over the test images (points)
    n_clusters: int | None = None

    @property
    def task(self) -> str:
        return self.key.split("/")[0]

    @property
    def metric(self) -> str:
        return self.key.split("/")[2]

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "higher_is_better": self.higher_is_better,
            "n_clusters": self.n_clusters,
            "sampling_se": None if self.sampling_se is None else round(self.sampling_se, 4),
            "tolerance": self.tolerance.to_json(),
            "values": {str(k): round(v, 4) for k, v in sorted(self.values.items())},
        }


@dataclass(frozen=True)
class Baseline:
    suite: str
    suite_fingerprint: str
    harness_version: str
    metrics: dict[str, MetricBaseline]
    false_alarm: float = DEFAULT_FALSE_ALARM
    settings: dict[str, Any] = field(default_factory=dict)
    updated: str = ""
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "false_alarm": self.false_alarm,
            "format": FORMAT,
            "harness_version": self.harness_version,
            "metrics": {k: m.to_json() for k, m in sorted(self.metrics.items())},
            "settings": self.settings,
            "source": self.source,
            "suite": self.suite,
            "suite_fingerprint": self.suite_fingerprint,
            "updated": self.updated,
            "version": VERSION,
        }


def _problem(path: Path, key: str, value: Any, fix: str) -> UserError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return UserError(f"{path}: {key}: {shown} {fix}")


def _tolerance(path: Path, key: str, raw: Any) -> Tolerance:
    if raw == "noise":
        return Tolerance("noise")
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, amount),) = raw.items()
        ok_number = isinstance(amount, int | float) and not isinstance(amount, bool) and math.isfinite(amount)
        if kind in ("abs", "rel") and ok_number and amount >= 0:
            return Tolerance(kind, float(amount))
    raise _problem(path, key, raw, 'is not a tolerance; use "noise", {"abs": POINTS} or {"rel": PERCENT} (>= 0)')


def read_baseline(path: Path) -> Baseline:
    """Read and validate a baseline file; every problem is one line naming the file, the key and the value."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: baseline file not found; create it with `xmbench baseline update RESULTS_DIR --out {path}`"
        )
    try:
        data = loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise UserError(
            f"{path}: not a readable baseline ({e}); fix it or write it again with `xmbench baseline update`"
        ) from None
    if not isinstance(data, dict):
        raise _problem(path, "(top level)", data, "is not an object; write the file with `xmbench baseline update`")
    if data.get("format") != FORMAT:
        raise _problem(path, "format", data.get("format"), f"is not {FORMAT!r}; this is not an xmbench baseline file")
    if data.get("version") != VERSION:
        raise _problem(path, "version", data.get("version"), f"is not {VERSION}; write it again with this xmbench")
    for key in ("suite", "suite_fingerprint"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _problem(path, key, data.get(key), "must be a non-empty string")
    fa = data.get("false_alarm", DEFAULT_FALSE_ALARM)
    if isinstance(fa, bool) or not isinstance(fa, int | float) or not 0 < fa < 0.5:
        raise _problem(path, "false_alarm", fa, "must be a number in (0, 0.5), e.g. 0.01")
    raw_metrics = data.get("metrics")
    if not isinstance(raw_metrics, dict) or not raw_metrics:
        raise _problem(path, "metrics", raw_metrics, "must be a non-empty object of task/model/metric entries")
    metrics = {}
    for key, entry in raw_metrics.items():
        where = f"metrics.{key}"
        if not isinstance(key, str) or key.count("/") != 2 or not all(key.split("/")):
            raise _problem(path, where, key, "is not a task/model/metric key")
        if not isinstance(entry, dict):
            raise _problem(path, where, entry, "must be an object with values, gate and tolerance")
        values_raw = entry.get("values")
        if not isinstance(values_raw, dict) or not values_raw:
            raise _problem(path, f"{where}.values", values_raw, 'must map seeds to values, e.g. {"0": 55.1}')
        values = {}
        for seed, v in values_raw.items():
            if not (isinstance(seed, str) and seed.isdigit()):
                raise _problem(path, f"{where}.values", seed, "is not a seed number")
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise _problem(path, f"{where}.values.{seed}", v, "must be a finite number (percent)")
            values[int(seed)] = float(v)
        gate = entry.get("gate", False)
        if not isinstance(gate, bool):
            raise _problem(path, f"{where}.gate", gate, "must be true or false")
        hib = entry.get("higher_is_better", True)
        if not isinstance(hib, bool):
            raise _problem(path, f"{where}.higher_is_better", hib, "must be true or false")
        se = entry.get("sampling_se")
        if se is not None and (isinstance(se, bool) or not isinstance(se, int | float) or not math.isfinite(se)):
            raise _problem(path, f"{where}.sampling_se", se, "must be a finite number or null")
        nc = entry.get("n_clusters")
        if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int)):
            raise _problem(path, f"{where}.n_clusters", nc, "must be an integer or null")
        tol = _tolerance(path, f"{where}.tolerance", entry.get("tolerance", "noise"))
        metrics[key] = MetricBaseline(key, values, gate, hib, tol, None if se is None else float(se), nc)
    return Baseline(
        suite=data["suite"],
        suite_fingerprint=data["suite_fingerprint"],
        harness_version=str(data.get("harness_version", "")),
        metrics=metrics,
        false_alarm=float(fa),
        settings=data.get("settings") if isinstance(data.get("settings"), dict) else {},
        updated=str(data.get("updated", "")),
        source=str(data.get("source", "")),
    )


def baseline_from_results(results: Any, previous: Baseline | None = None, replicates: int = 2_000) -> Baseline:
    """A baseline of every metric of a results folder (:class:`harness.results.folder.ResultsFolder`). Settings a
    person made in ``previous`` (tolerances, gate flags, the false-alarm rate) are kept for the metrics it has."""
    from harness.stats.paired import cluster_se

    failed = results.failed
    if failed or results.not_finished:
        names = [r.run_id for r in failed] + list(results.not_finished)
        raise UserError(
            f"{results.path}: {len(names)} planned run(s) did not finish ({', '.join(names[:4])}"
            f"{', ...' if len(names) > 4 else ''}); a baseline needs every run: run the suite again first"
        )
    main = results.main_metrics()
    metrics: dict[str, MetricBaseline] = {}
    for (task, model, metric), values in sorted(results.values().items()):
        key = f"{task}/{model}/{metric}"
        evs = results.evidences(task, model)
        se = n_clusters = None
        if evs is not None:
            try:
                se = cluster_se(evs, metric, replicates=replicates)
                n_clusters = len(evs[0].clusters)
            except ValueError:
                se = None
        old = previous.metrics.get(key) if previous else None
        metrics[key] = MetricBaseline(
            key=key,
            values=dict(sorted(values.items())),
            gate=old.gate if old else metric == main.get(task),
            higher_is_better=results.higher_is_better(metric),
            tolerance=old.tolerance if old else Tolerance("noise"),
            sampling_se=se,
            n_clusters=n_clusters,
        )
    settings = results.summary.get("settings", {}).get("shared", {})
    return Baseline(
        suite=results.suite,
        suite_fingerprint=results.suite_fingerprint,
        harness_version=__version__,
        metrics=metrics,
        false_alarm=previous.false_alarm if previous else DEFAULT_FALSE_ALARM,
        settings=settings if isinstance(settings, dict) else {},
        updated=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        source=str(results.path),
    )


def write_baseline(baseline: Baseline, path: Path) -> None:
    import json

    from harness.results.store import atomic_write_text

    text = json.dumps(baseline.to_json(), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write_text(Path(path), text)
