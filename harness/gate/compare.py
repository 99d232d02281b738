"""``xmbench compare DIR_A DIR_B``: the same suite run before (A) and after (B) a change.

Per ``task/model/metric`` in both folders: the paired difference B − A on the same test examples (the hierarchical
paired bootstrap of :func:`harness.stats.paired.compare`, seeds and image clusters), with its 95% CI and p-value;
then the verdict of ``xmbench check`` of B against a baseline made from A in memory (noise tolerances).
"""

from __future__ import annotations

import statistics
from typing import Any

from harness.gate.baseline import baseline_from_results
from harness.gate.check import CheckResult, check


def compare_folders(before: Any, after: Any, replicates: int = 10_000) -> tuple[list[dict[str, Any]], CheckResult]:
    from harness.stats.paired import compare

    rows = []
    new = after.values()
    for (task, model, metric), values_a in sorted(before.values().items()):
        values_b = new.get((task, model, metric))
        if values_b is None:
            continue
        a_mean, b_mean = statistics.fmean(values_a.values()), statistics.fmean(values_b.values())
        row: dict[str, Any] = {
            "key": f"{task}/{model}/{metric}",
            "a": round(a_mean, 4),
            "b": round(b_mean, 4),
            "delta": round(b_mean - a_mean, 4),
            "ci95": None,
            "p_value": None,
            "n_clusters": None,
            "method": "difference of means (no per-example evidence)",
        }
        evs_a, evs_b = before.evidences(task, model), after.evidences(task, model)
        if evs_a is not None and evs_b is not None:
            try:
                c = compare(evs_b, evs_a, metric, replicates=replicates)
            except ValueError as e:  # other test examples, or a metric the evidence cannot recompute
                row["method"] = f"difference of means ({e})"
            else:
                row.update(
                    delta=round(c.delta, 4),
                    ci95=[round(c.ci[0.95][0], 4), round(c.ci[0.95][1], 4)],
                    p_value=round(c.p_value, 6),
                    n_clusters=c.n_clusters,
                    method=c.method,
                )
        rows.append(row)
    if before.failed or before.not_finished:
        result = CheckResult()
        names = [r.run_id for r in before.failed] + list(before.not_finished)
        result.problems.append(f"{before.path}: runs without a result ({', '.join(names)}): no baseline to check")
        return rows, result
    return rows, check(baseline_from_results(before), after, baseline_path=f"(baseline from {before.path})")
