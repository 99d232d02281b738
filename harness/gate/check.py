"""The CI gate: compare a results folder with a baseline file, metric by metric (``docs/ci.md``).

For every ``task/model/metric`` of the baseline and of the results:

* ``drop`` = baseline mean − new mean (for a metric where higher is better; the other way round otherwise), in
  points; positive is worse.
* tolerance ``abs: T``: regressed when ``drop > T``; ``rel: R``: when ``drop > R% of the baseline mean``.
* tolerance ``noise`` (default): the noise of one seed's metric is ``sigma^2 = s^2 + se^2``, with ``s^2`` the
  baseline's between-seed variance and ``se`` one seed's sampling error over the test images (bootstrap over image
  clusters, stored in the baseline). The sampling error is a floor: two seeds that happen to agree never give a zero
  tolerance. The drop's standard error is ``sigma * sqrt(1/n_base + 1/n_new)``; the gate flags the metric when the
  one-sided p-value of the drop is below ``false_alarm / m`` (Bonferroni over the ``m`` noise-gated metrics, so the
  whole check raises a false alarm at most ``false_alarm`` of the time). The tolerance shown is the drop that would
  be flagged: ``z_{1 - false_alarm/m} * se_drop``.

Exit codes: 0 nothing regressed; 1 something regressed; 2 the check cannot be made (a missing or malformed
baseline, another suite, a metric in one and not the other, a failed run, too few seeds to tell).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from harness.gate.baseline import Baseline, MetricBaseline

BASELINE_UPDATE = "xmbench baseline update {results} --out {baseline}"


@dataclass
class Row:
    key: str
    gate: bool
    tolerance: str  # how the tolerance is set: noise | abs 0.5 | rel 2%
    base_mean: float
    new_mean: float
    n_base: int
    n_new: int
    drop: float  # points; positive = worse
    threshold: float | None  # the drop that is flagged (points); None when it cannot be had
    se: float | None = None  # standard error of the drop (noise)
    p_value: float | None = None  # one-sided (noise)
    ci95: tuple[float, float] | None = None  # of new - base (noise)
    status: str = "ok"  # ok | regressed | improved | info | cannot tell
    note: str = ""
    seeds_to_tell: int | None = None  # seeds per side that would tell a drop of this size at the gate's level

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "key": self.key,
            "gate": self.gate,
            "tolerance": self.tolerance,
            "baseline_mean": r(self.base_mean),
            "new_mean": r(self.new_mean),
            "n_baseline": self.n_base,
            "n_new": self.n_new,
            "change": r(-self.drop),
            "threshold": r(self.threshold),
            "se": r(self.se),
            "p_value": None if self.p_value is None else round(self.p_value, 6),
            "ci95": None if self.ci95 is None else [r(self.ci95[0]), r(self.ci95[1])],
            "status": self.status,
            "seeds_to_tell": self.seeds_to_tell,
            "note": self.note,
        }


@dataclass
class CheckResult:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # reasons the check cannot be made (exit 2)
    notes: list[str] = field(default_factory=list)
    false_alarm: float = 0.01
    per_metric_level: float | None = None

    @property
    def regressed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "regressed"]

    @property
    def exit_code(self) -> int:
        if self.problems:
            return 2
        return 1 if self.regressed else 0

    @property
    def verdict(self) -> str:
        return {0: "pass", 1: "regressed", 2: "error"}[self.exit_code]

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "false_alarm": self.false_alarm,
            "per_metric_level": self.per_metric_level,
            "problems": self.problems,
            "regressed": [r.key for r in self.regressed],
            "rows": [r.to_json() for r in self.rows],
            "notes": self.notes,
        }


def _z(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def check(
    baseline: Baseline,
    results: Any,
    baseline_path: str = "BASELINE",
    false_alarm: float | None = None,
) -> CheckResult:
    """Check a results folder (:class:`harness.results.folder.ResultsFolder`) against ``baseline``."""
    fa = baseline.false_alarm if false_alarm is None else false_alarm
    out = CheckResult(false_alarm=fa)
    update = BASELINE_UPDATE.format(results=results.path, baseline=baseline_path)
    if results.suite != baseline.suite or results.suite_fingerprint != baseline.suite_fingerprint:
        what = (
            f"suite {results.suite!r}, baseline for {baseline.suite!r}"
            if results.suite != baseline.suite
            else f"suite {results.suite!r} measures other tasks or test data than when the baseline was made"
        )
        out.problems.append(
            f"{baseline_path}: made for another suite ({what}; fingerprint {baseline.suite_fingerprint[:12]} vs "
            f"{results.suite_fingerprint[:12]}); check against the suite's own baseline, or `{update}`"
        )
        return out
    for r in results.failed:
        out.problems.append(f"{r.run_id} failed ({r.error}): its metrics are missing; fix the run, then check")
    for run_id in results.not_finished:
        out.problems.append(f"{run_id} has no result: run the suite to the end, then check")
    new = {f"{t}/{m}/{k}": v for (t, m, k), v in results.values().items()}
    failed_pairs = {(r.task, r.model) for r in results.failed} | {
        tuple(run_id.split("/")[:2]) for run_id in results.not_finished
    }
    for key in sorted(set(new) - set(baseline.metrics)):
        out.problems.append(f"{baseline_path}: has no {key} (the results have it): update the baseline: `{update}`")
    for key in sorted(set(baseline.metrics) - set(new)):
        task, model, _ = key.split("/")
        if (task, model) not in failed_pairs:
            out.problems.append(f"the results lack {key}, which {baseline_path} has (a removed model or metric?)")
    shared = sorted(set(new) & set(baseline.metrics))
    m = sum(1 for k in shared if baseline.metrics[k].gate and baseline.metrics[k].tolerance.kind == "noise")
    level = fa / max(m, 1)
    out.per_metric_level = level
    for key in shared:
        out.rows.append(_row(baseline.metrics[key], list(new[key].values()), level))
    changed = _changed_settings(baseline.settings, results.summary.get("settings", {}).get("shared", {}))
    if changed:
        out.notes.append("settings differ from the baseline's: " + "; ".join(changed))
    return out


def _row(b: MetricBaseline, new_values: list[float], level: float) -> Row:
    base_values = list(b.values.values())
    base_mean, new_mean = statistics.fmean(base_values), statistics.fmean(new_values)
    sign = 1.0 if b.higher_is_better else -1.0
    drop = sign * (base_mean - new_mean)
    if abs(drop) < 1e-9:  # float noise of the means of equal values
        drop = 0.0
    n_b, n_n = len(base_values), len(new_values)
    row = Row(b.key, b.gate, b.tolerance.describe(), base_mean, new_mean, n_b, n_n, drop, None)
    tol = b.tolerance
    if tol.kind == "abs":
        row.threshold = tol.amount
    elif tol.kind == "rel":
        row.threshold = (tol.amount or 0.0) / 100 * abs(base_mean)
    else:
        if n_b < 2:
            row.note = (
                f"the baseline has {n_b} seed: at least 2 are needed to measure the seed spread "
                "(or set an abs/rel tolerance)"
            )
            row.status = "cannot tell" if b.gate else "info"
            return row
        s2 = statistics.variance(base_values)
        floor = (b.sampling_se or 0.0) ** 2
        sigma2 = s2 + floor
        if sigma2 <= 0:
            row.note = (
                "no noise estimate: the seeds agree and the sampling error is 0 (every test example scored alike, "
                "or no per-example evidence); set an abs/rel tolerance"
            )
            row.status = "cannot tell" if b.gate else "info"
            return row
        se = math.sqrt(sigma2 * (1 / n_b + 1 / n_n))
        z = _z(1 - level)
        row.se = se
        row.threshold = z * se
        row.p_value = 1 - statistics.NormalDist().cdf(drop / se)
        change = -drop * sign
        row.ci95 = (change - 1.959964 * se, change + 1.959964 * se)
        if drop > 0 and drop <= row.threshold:
            # Seeds per side that would make a drop of this size significant at the gate's level.
            row.seeds_to_tell = max(n_b + 1, math.ceil(2 * sigma2 * (z / drop) ** 2))
    if not b.gate:
        row.status = "info"
    elif row.threshold is not None and drop > row.threshold:
        row.status = "regressed"
    elif row.threshold is not None and -drop > row.threshold:
        row.status = "improved"
    return row


def _changed_settings(old: Any, new: Any) -> list[str]:
    """``train: epochs=6 -> epochs=1`` for each shared-settings block that differs (summary.json ``settings.shared``
    holds ``key=value, ...`` strings per block)."""
    if not isinstance(old, dict) or not isinstance(new, dict) or not old:
        return []
    out = []
    for block in sorted(set(old) | set(new)):
        a, b = old.get(block), new.get(block)
        if a == b:
            continue
        items_a, items_b = _items(a), _items(b)
        gone = [i for i in items_a if i not in items_b]
        came = [i for i in items_b if i not in items_a]
        name = block.split(" (")[0]
        out.append(f"{name}: {', '.join(gone) or '-'} -> {', '.join(came) or '-'}")
    return out


def _items(value: Any) -> list[str]:
    import re

    return [] if value is None else re.split(r", (?=[\w.]+=)", str(value))
