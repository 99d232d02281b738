"""The report's content, independent of the output format: one model, rendered by ``markdown.py``, ``html.py`` and
``terminal.py`` and written as ``summary.json``.

It is built from the plan's run records (:class:`~harness.results.collect.PlanResults`) and, for confidence intervals,
paired comparisons and claim verdicts, from each run's per-example evidence (:mod:`harness.stats`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.plan import RunSpec, suite_fingerprint
from harness.report.quantized import QuantRow, load_pair_evidence, quantized_rows
from harness.results.aggregate import cost_frame, results_frame
from harness.results.artifacts import Curve, load_curve, load_evidence
from harness.results.collect import OtherFolder, PlanResults
from harness.results.record import RunRecord
from harness.stats.evidence import Evidence
from harness.suite.schema import Suite

SUMMARY_SCHEMA_VERSION = 2
PALETTE = ("#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2", "#72B7B2", "#EECA3B", "#9D755D", "#FF9DA6")
METRIC_ORDER = [
    "top1",
    "top5",
    "mAP",
    *("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),  # COCOeval's order
    "vqa_accuracy",
    "vqa_yesno",
    "vqa_number",
    "vqa_other",
    "r_mean",
    "txt_r1",
    "txt_r5",
    "txt_r10",
    "img_r1",
    "img_r5",
    "img_r10",
    "txt_r_mean",
    "img_r_mean",
    "itc_r_mean",
]


@dataclass(frozen=True)
class Cell:
    """One (model, metric) of a task: the mean over seeds with its 95% CI (``ci`` None when it cannot be had)."""

    mean: float
    ci: tuple[float, float] | None
    ci_method: str  # "t over seeds" | "bootstrap over image clusters (1 seed)" | "none: 1 seed, no evidence"
    std: float | None
    n_seeds: int
    values: tuple[float, ...]  # per seed, in seed order


@dataclass(frozen=True)
class Delta:
    """A model against the task's baseline on one metric: paired difference in points, 95% CI, p-value."""

    delta: float
    ci: tuple[float, float] | None
    p_value: float | None
    method: str


@dataclass
class ModelRow:
    name: str
    kind: str
    seeds: int  # finished seeds
    cells: dict[str, Cell]  # metric -> cell (metrics the model has)
    vs_baseline: dict[str, Delta] = field(default_factory=dict)  # metric -> delta (empty for the baseline itself)


@dataclass
class TaskSection:
    name: str
    task_type: str
    dataset: str
    main_metric: str
    baseline: str | None
    metrics: list[str]
    rows: list[ModelRow]
    best: dict[str, list[str]]  # metric -> model(s) with the highest mean
    notes: list[str]
    without_results: list[str]  # models of the task with no finished run

    @property
    def winner(self) -> list[str]:
        return self.best.get(self.main_metric, [])


@dataclass(frozen=True)
class ClaimRow:
    """A claim of the suite and its verdict (``result`` is None when it could not be judged; ``note`` says why)."""

    index: int
    text: str  # "xbert beats vit on vqa by +10 points of vqa_accuracy"
    source: str
    task: str
    model: str
    baseline: str
    metric: str
    claimed: float
    relative: bool
    verdict: str  # supported | contradicted | inconclusive | not judged
    measured: float | None = None
    ci: tuple[float, float] | None = None  # corrected for the number of claims
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    mde: float | None = None
    seeds_needed: int | None = None
    examples_needed: int | None = None
    note: str = ""
    # delta | value (absolute: claimed and measured are the metric itself) | order (an ordering: measured is None,
    # its pairs follow it as rows of kind "pair", each with ``part_of`` = the ordering's index and ``label`` "3.1")
    kind: str = "delta"
    part_of: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    kind: str
    fusion: str | None
    source: str
    params_m: float | None
    gflops: float | None
    recipe: str  # "suite recipe" or the overrides


@dataclass
class Report:
    suite: Suite
    generated: datetime
    claims: list[ClaimRow]
    tasks: list[TaskSection]
    results: pd.DataFrame  # long format: results.csv
    cost: pd.DataFrame
    curves: dict[str, list[Curve]]  # task -> curves of its runs
    models: list[ModelInfo]
    settings: list[tuple[str, str]]
    overrides: list[dict[str, Any]]
    failed: list[RunRecord]
    missing: list[str]
    in_progress: list[str]
    other: list[OtherFolder]
    skipped: dict[str, dict[str, Any]]
    submissions: list[tuple[str, str]]
    env: dict[str, Any]
    colors: dict[str, str]  # model -> colour, the same in every chart
    paths: dict[str, Path] = field(default_factory=dict)  # the files written (set by write_report)
    suite_fingerprint: str | None = None  # what the suite measures (harness.plan.suite_fingerprint)
    runs: list[dict[str, Any]] = field(default_factory=list)  # every planned run: id, folder, fingerprint, status
    adjustments: list[tuple[str, str]] = field(default_factory=list)  # (run id, what the runner changed)
    quantized: list[QuantRow] = field(default_factory=list)  # models with quantize: dynamic_int8

    def summary_json(self) -> dict[str, Any]:
        """``summary.json`` (documented in docs/statistics.md; ``schema_version`` 2)."""
        cost = {(r["task"], r["model"]): r for r in self.cost.to_dict("records")} if not self.cost.empty else {}
        rows, comparisons = [], []
        for t in self.tasks:
            for r in t.rows:
                c = cost.get((t.name, r.name), {})
                for metric, cell in r.cells.items():
                    rows.append(
                        {
                            "task": t.name,
                            "task_type": t.task_type,
                            "model": r.name,
                            "kind": r.kind,
                            "metric": metric,
                            "main": metric == t.main_metric,
                            "n": cell.n_seeds,
                            "mean": _num(cell.mean),
                            "std": _num(cell.std),
                            "ci95": _pair(cell.ci),
                            "ci_method": cell.ci_method,
                            "values": [_num(v) for v in cell.values],
                            "best": r.name in t.best.get(metric, []),
                            "cost": {
                                "train_seconds": _num(c.get("train_s")),
                                "train_samples_per_s": _num(c.get("train_samples_per_s")),
                                "params": _int(c.get("params_M"), 1e6),
                                "forward_flops_per_sample": _int(c.get("GFLOPs_per_sample"), 1e9),
                            },
                        }
                    )
                for metric, d in r.vs_baseline.items():
                    comparisons.append(
                        {
                            "task": t.name,
                            "model": r.name,
                            "baseline": t.baseline,
                            "metric": metric,
                            "delta": _num(d.delta),
                            "ci95": _pair(d.ci),
                            "p_value": _num(d.p_value, 6),
                            "method": d.method,
                        }
                    )
        return {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "suite": self.suite.name,
            "profile": self.suite.profile,
            "overrides": list(self.suite.overrides),
            "suite_fingerprint": self.suite_fingerprint,
            "generated": self.generated.isoformat(),
            "xmbench": __version__,
            "claims": [
                {
                    "index": c.index,
                    "text": c.text,
                    "source": c.source,
                    "task": c.task,
                    "model": c.model,
                    "baseline": c.baseline,
                    "metric": c.metric,
                    "claimed_delta": c.claimed,
                    "relative": c.relative,
                    "measured_delta": _num(c.measured),
                    "ci": _pair(c.ci),
                    "ci95": _pair(c.ci95),
                    "p_value": _num(c.p_value, 6),
                    "p_adjusted": _num(c.p_adjusted, 6),
                    "verdict": c.verdict,
                    "mde": _num(c.mde),
                    "seeds_needed": c.seeds_needed,
                    "examples_needed": c.examples_needed,
                    "note": c.note,
                    "kind": c.kind,
                    "part_of": c.part_of,
                    "label": c.label or str(c.index + 1),
                }
                for c in self.claims
            ],
            "winners": {t.name: {"metric": t.main_metric, "models": t.winner} for t in self.tasks},
            "rows": rows,
            "comparisons": comparisons,
            "runs": self.runs,
            "failed": [{"run_id": r.run_id, "folder": r.folder, "error": r.error} for r in self.failed],
            "missing": self.missing,
            "in_progress": self.in_progress,
            "not_part_of_this_plan": [{"folder": o.folder, "run_id": o.run_id, "reason": o.reason} for o in self.other],
            "settings": {
                "shared": dict(self.settings),
                "overrides": self.overrides,
                "models": [m.__dict__ for m in self.models],
            },
            "quantized": [q.to_json() for q in self.quantized],
            "skipped": self.skipped,
            "env": self.env,
        }


def _num(x: Any, digits: int = 4) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return None
    return round(float(x), digits)


def _int(x: Any, scale: float) -> int | None:
    value = _num(x, 12)
    return None if value is None else round(value * scale)


def _pair(ci: tuple[float, float] | None) -> list[float | None] | None:
    return None if ci is None else [_num(ci[0]), _num(ci[1])]


def build_report(
    suite: Suite,
    results: PlanResults,
    out_dir: Path,
    generated: datetime,
    replicates: int = 10_000,
    runs: list[RunSpec] | None = None,
) -> Report:
    """The report of the plan's results in ``out_dir`` (evidence and logs are read from the run folders); ``runs``
    (the plan) adds the run index and the suite fingerprint to ``summary.json``."""
    from harness.suite.check import task_baseline

    ok = results.ok
    evidence = {r.fingerprint: load_evidence(out_dir, r) for r in ok}
    by_pair: dict[tuple[str, str], list[RunRecord]] = {}
    for r in sorted(ok, key=lambda r: r.seed):
        by_pair.setdefault((r.task, r.model), []).append(r)
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(suite.models)}
    tasks = [
        _task_section(suite, name, task_baseline(suite, name), by_pair, evidence, replicates)
        for name in suite.tasks
        if any((name, m) in by_pair for m in suite.tasks[name].models)
    ]
    claims = _claims(suite, by_pair, evidence, replicates, out_dir)
    curves: dict[str, list[Curve]] = {}
    for r in ok:
        curve = load_curve(out_dir, r)
        if curve is not None:
            curves.setdefault(r.task, []).append(curve)
    skipped: dict[str, dict[str, Any]] = {}
    for r in ok:
        if (r.skipped or {}).get("count"):
            skipped[r.dataset] = r.skipped
    cost = cost_frame(ok)
    return Report(
        suite=suite,
        generated=generated,
        claims=claims,
        tasks=tasks,
        results=results_frame(ok),
        cost=cost,
        curves=curves,
        models=_model_infos(suite, ok, cost),
        settings=settings_rows(suite) + protocol_rows(suite, runs or []),
        overrides=[
            {"model": name, "key": key, "suite_value": getattr(suite.train, key), "model_value": value}
            for name, spec in suite.models.items()
            for key, value in spec.train.items()
        ],
        failed=results.failed,
        missing=results.missing,
        in_progress=results.in_progress,
        other=results.other,
        skipped=skipped,
        submissions=[
            (r.run_id, f"{r.folder}/{r.notes['submission']}") for r in ok if (r.notes or {}).get("submission")
        ],
        env=ok[-1].env if ok else {},
        colors=colors,
        suite_fingerprint=suite_fingerprint(suite.name, runs) if runs else None,
        runs=_run_index(runs or [], results),
        adjustments=[(r.run_id, a) for r in ok for a in r.adjustments],
        quantized=quantized_rows(
            by_pair, {name: _main_metric(t.type) for name, t in suite.tasks.items()}, out_dir, replicates
        ),
    )


def _run_index(runs: list[RunSpec], results: PlanResults) -> list[dict[str, Any]]:
    """Every planned run with its folder (relative to the results folder), fingerprint and status."""
    status = {r.fingerprint: "ok" if r.ok else "failed" for r in results.records}
    held = set(results.in_progress)
    return [
        {
            "run_id": s.run_id,
            "task": s.task,
            "model": s.model,
            "seed": s.seed,
            "folder": s.folder,
            "fingerprint": s.fingerprint,
            "status": status.get(s.fingerprint, "in_progress" if s.run_id in held else "missing"),
        }
        for s in runs
    ]


def _evidences(records: list[RunRecord], evidence: dict[str, Evidence | None]) -> list[Evidence] | None:
    """Every seed's evidence, or None when any seed lacks it (then only the per-seed values are usable)."""
    out = [evidence.get(r.fingerprint) for r in records]
    return None if not out or any(e is None for e in out) else out


def metric_cell(records: list[RunRecord], evs: list[Evidence] | None, metric: str, replicates: int) -> Cell | None:
    """One model's ``metric`` over its seeds' records: mean and 95% CI (t over seeds; with one seed, a bootstrap over
    its evidence's image clusters); None when no record has the metric. The report and the leaderboard use it."""
    from harness.stats.intervals import metric_interval

    values = tuple(r.metrics[metric] for r in records if metric in r.metrics)
    if not values:
        return None
    mean = sum(values) / len(values)
    std = pd.Series(values).std(ddof=1) if len(values) > 1 else None
    if len(values) > 1:
        iv = metric_interval(values, metric)
    elif evs is not None and all(metric in e.recompute() for e in evs):
        iv = metric_interval(evs, metric, replicates=replicates)
    else:
        return Cell(mean, None, "none: 1 seed, no per-example evidence", None, 1, values)
    return Cell(mean, (iv.lo, iv.hi), iv.method, None if std is None else float(std), len(values), values)


def _task_section(
    suite: Suite,
    name: str,
    baseline: str | None,
    by_pair: dict[tuple[str, str], list[RunRecord]],
    evidence: dict[str, Evidence | None],
    replicates: int,
) -> TaskSection:
    task = suite.tasks[name]
    present = [m for m in task.models if (name, m) in by_pair]
    records = [r for m in present for r in by_pair[(name, m)]]
    metrics = sorted(
        {k for r in records for k in r.metrics},
        key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER), m),
    )
    main = next((r.main_metric for r in records if r.main_metric), None) or metrics[0]
    if main in metrics:
        metrics.remove(main)
        metrics.insert(0, main)
    evs = {m: _evidences(by_pair[(name, m)], evidence) for m in present}
    baseline_metrics = {k for r in by_pair.get((name, baseline), []) for k in r.metrics}
    rows = []
    for m in present:
        cells = {}
        for metric in metrics:
            cell = metric_cell(by_pair[(name, m)], evs[m], metric, replicates)
            if cell is not None:
                cells[metric] = cell
        row = ModelRow(m, by_pair[(name, m)][0].kind, len(by_pair[(name, m)]), cells)
        if baseline in present and m != baseline:
            for metric in metrics:
                if metric in cells and metric in baseline_metrics:
                    row.vs_baseline[metric] = _delta(by_pair, evs, name, m, baseline, metric, replicates)
        rows.append(row)
    best = {}
    for metric in metrics:
        means = {r.name: r.cells[metric].mean for r in rows if metric in r.cells}
        if means:
            top = max(means.values())
            best[metric] = [m for m, v in means.items() if v >= top - 1e-9]
    notes = _task_notes(records)
    return TaskSection(
        name=name,
        task_type=task.type,
        dataset=task.dataset,
        main_metric=main,
        baseline=baseline if baseline in present else None,
        metrics=metrics,
        rows=rows,
        best=best,
        notes=notes,
        without_results=[m for m in task.models if m not in present],
    )


def _delta(by_pair, evs, task: str, model: str, baseline: str, metric: str, replicates: int) -> Delta:
    """The paired comparison when both models have per-example evidence, else the plain difference of means."""
    from harness.stats.paired import compare

    if evs[model] is None or evs[baseline] is None:
        diff = _mean_diff(by_pair, task, model, baseline, metric)
        return Delta(diff, None, None, "difference of means (no per-example evidence)")
    c = compare(evs[model], evs[baseline], metric, replicates=replicates)
    return Delta(c.delta, c.ci[0.95], c.p_value, c.method)


def _mean_diff(by_pair, task: str, a: str, b: str, metric: str) -> float:
    def mean(m: str) -> float:
        vals = [r.metrics[metric] for r in by_pair[(task, m)] if metric in r.metrics]
        return sum(vals) / len(vals)

    return mean(a) - mean(b)


def _task_notes(records: list[RunRecord]) -> list[str]:
    notes: list[str] = []
    excluded = {r.notes.get("classes_without_positives") for r in records if r.notes.get("classes_without_positives")}
    if excluded:
        n = max(excluded)
        notes.append(f"{n} class(es) without positives in the eval split are excluded from mAP (see docs/metrics.md).")
    scoring = {r.model: r.notes.get("scoring") for r in records if r.notes.get("scoring")}
    itm = sorted(m for m, s in scoring.items() if s == "itm")
    if itm:
        k = next((r.notes.get("k_test") for r in records if r.notes.get("k_test")), None)
        notes.append(
            f"Retrieval for fusion models ({', '.join(itm)}): ITM re-ranking of the top-{k} ITC candidates; "
            "itc_r_mean is the ITC stage alone."
        )
    links = {r.notes["trained_by"]["task"] for r in records if isinstance(r.notes.get("trained_by"), dict)}
    if links:
        chance = next((r.notes.get("chance_top1") for r in records if r.notes.get("chance_top1")), None)
        notes.append(
            f"Zero-shot: nothing is trained on these classes; each model and seed scores the state that its run of "
            f"task {', '.join(sorted(links))} (image-text pairs) selected, with that task's projections; class "
            f"embeddings average {len(records[0].notes.get('templates') or [])} prompt template(s)"
            + (f"; chance top-1 is {chance:.2f}%." if chance else ".")
        )
    heads = {r.notes.get("head") for r in records if r.task_type == "detection" and r.notes.get("head")}
    if heads:
        unscored = sorted({m for r in records for m in r.notes.get("not_scored") or []})
        notes.append(
            f"Detection: {', '.join(sorted(heads))}, the same head for every model; COCOeval bbox, AP = "
            "mAP@[.5:.95], AP50 = mAP@0.5 (see docs/metrics.md)"
            + (f"; not scored (no ground truth in that area range): {', '.join(unscored)}." if unscored else ".")
        )
    return notes


def _claims(
    suite: Suite,
    by_pair: dict[tuple[str, str], list[RunRecord]],
    evidence: dict[str, Evidence | None],
    replicates: int,
    out_dir: Path | None = None,
) -> list[ClaimRow]:
    """Every claim of the suite with its verdict, judged together (one family: Bonferroni CIs, Holm p-values); an
    ordering is followed by one row per adjacent pair."""
    from harness.stats.claims import AbsoluteSpec, ClaimSpec, Int8Result, Int8Spec, OrderSpec, judge_all

    rows: list[ClaimRow] = []
    judged: list[tuple[int, Any, Any]] = []
    for i, claim in enumerate(suite.claims):
        task = suite.tasks[claim.task]
        metric = claim.metric or _main_metric(task.type)
        kind = claim.kind
        models = claim.models
        base = ClaimRow(
            index=i,
            text=claim.describe(metric),
            source=claim.source,
            task=claim.task,
            model=models[0],
            baseline=claim.baseline or (models[-1] if kind == "order" else ""),
            metric=metric,
            claimed=claim.amount,
            relative=claim.relative,
            verdict="not judged",
            kind=kind,
        )
        rows.append(base)
        missing = [m for m in models if (claim.task, m) not in by_pair]
        if missing:
            rows[-1] = _replace(base, note=f"no finished run of {', '.join(missing)} on {claim.task}")
            continue
        if kind == "smaller":
            item = _int8_claim(claim, metric, by_pair[(claim.task, claim.model)], out_dir)
            if isinstance(item, str):
                rows[-1] = _replace(base, note=item)
            else:
                spec = Int8Spec(claim.model, claim.task, metric, claim.amount, claim.max_drop, claim.source)
                judged.append((i, spec, item))
            continue
        evs = [_evidences(by_pair[(claim.task, m)], evidence) for m in models]
        if any(e is None for e in evs):
            rows[-1] = _replace(
                base,
                note=f"some runs have no per-example evidence (a {task.type} task writes none, or an older xmbench "
                "made them): this claim cannot be judged on the paired bootstrap",
            )
            continue
        if kind == "value":
            spec = AbsoluteSpec(claim.model, claim.task, metric, float(claim.value), claim.tolerance, claim.source)
            judged.append((i, spec, evs[0]))
        elif kind == "order":
            judged.append((i, OrderSpec(models, claim.task, metric, claim.source), evs))
        else:
            spec = ClaimSpec(
                model=claim.model,
                baseline=claim.baseline,
                task=claim.task,
                metric=metric,
                delta=claim.amount,
                relative=claim.relative,
                source=claim.source,
            )
            judged.append((i, spec, (evs[0], evs[1])))
    if not judged:
        return rows
    results = judge_all([(spec, data) for _, spec, data in judged], replicates=replicates)
    out = list(rows)
    pair_rows: dict[int, list[ClaimRow]] = {}
    for (i, spec, _), res in zip(judged, results, strict=True):
        row = rows[i]
        if isinstance(spec, OrderSpec):
            out[i] = _replace(row, verdict=res.verdict, note=res.note)
            pair_rows[i] = [
                _replace(
                    row,
                    text=f"{p.better} > {p.worse}",
                    model=p.better,
                    baseline=p.worse,
                    claimed=0.0,
                    verdict=p.verdict,
                    measured=p.measured,
                    ci=tuple(p.ci),
                    ci95=tuple(p.ci95),
                    p_value=p.p_value,
                    p_adjusted=p.p_adjusted,
                    note=f"paired bootstrap, {p.comparison.n_clusters} clusters; Holm-adjusted p decides",
                    kind="pair",
                    part_of=i,
                    label=f"{i + 1}.{j + 1}",
                )
                for j, p in enumerate(res.pairs)
            ]
            continue
        if isinstance(res, Int8Result):
            out[i] = _replace(
                row,
                verdict=res.verdict,
                measured=res.measured,
                ci=None if res.ci is None else tuple(res.ci),
                ci95=None if res.ci95 is None else tuple(res.ci95),
                p_value=res.p_value,
                p_adjusted=res.p_adjusted,
                note=res.note,
            )
            continue
        common = dict(verdict=res.verdict, measured=res.measured, ci=tuple(res.ci), ci95=tuple(res.ci95))
        common.update(p_value=res.p_value, p_adjusted=res.p_adjusted, note=res.note)
        if isinstance(spec, AbsoluteSpec):
            out[i] = _replace(row, **common)
        else:
            out[i] = _replace(
                row, mde=res.mde, seeds_needed=res.seeds_needed, examples_needed=res.examples_needed, **common
            )
    flat: list[ClaimRow] = []
    for i, row in enumerate(out):
        flat.append(row)
        flat += pair_rows.get(i, [])
    return flat


def _int8_claim(claim: Any, metric: str, records: list[RunRecord], out_dir: Path | None) -> Any:
    """``(size reduction %, int8 evidences, fp32 evidences)`` for a quantisation claim, or why it cannot be judged."""
    q = [r for r in records if r.quantized and not r.quantized.get("error") and r.quantized.get("disk_ratio")]
    if not q:
        return f"no INT8 result of {claim.model} on {claim.task} (its runs predate quantize, or the INT8 pass failed)"
    measured = statistics.fmean(100.0 * (1.0 - r.quantized["disk_ratio"]) for r in q)
    if claim.max_drop is None:
        return (measured, None, None)
    pairs = [load_pair_evidence(out_dir, r) for r in q] if out_dir is not None else []
    if not pairs or any(a is None or b is None for a, b in pairs):
        return "some INT8 runs have no per-example evidence of both copies: the accuracy part cannot be judged"
    return (measured, [b for _, b in pairs], [a for a, _ in pairs])


def _replace(row: ClaimRow, **changes: Any) -> ClaimRow:
    from dataclasses import replace

    return replace(row, **changes)


def _main_metric(task_type: str) -> str:
    from harness.tasks import task_registry

    return task_registry().get(task_type).main_metric


def _model_infos(suite: Suite, ok: list[RunRecord], cost: pd.DataFrame) -> list[ModelInfo]:
    first = {}
    for r in ok:
        first.setdefault(r.model, r)
    out = []
    for name, spec in suite.models.items():
        r = first.get(name)
        rows = cost[cost["model"] == name] if not cost.empty else cost
        params = float(rows["params_M"].mean()) if not rows.empty else None
        flops = float(rows["GFLOPs_per_sample"].mean()) if not rows.empty else None
        recipe = ", ".join(f"{k}={v}" for k, v in spec.train.items()) or "the suite's recipe"
        out.append(
            ModelInfo(
                name=name,
                family=spec.type,
                kind=r.kind if r else "",
                fusion=spec.params.get("fusion") if isinstance(spec.params.get("fusion"), str) else None,
                source=r.model_type if r else spec.type,
                params_m=None if params is None or math.isnan(params) else params,
                gflops=None if flops is None or math.isnan(flops) else flops,
                recipe=recipe,
            )
        )
    return out


def protocol_rows(suite: Suite, runs: list[RunSpec]) -> list[tuple[str, str]]:
    """The model-selection protocol: each task's train / val / test splits and its selection metric."""
    from harness.tasks import task_registry

    splits = {r.task: r.splits for r in runs}
    if not splits:
        return []
    registry = task_registry()
    parts = []
    for name, spec in suite.tasks.items():
        if name in splits:
            train, val, test = splits[name]
            metric = spec.select_metric or registry.get(spec.type).main_metric
            parts.append(f"{name}: train={train}, val={val}, test={test}, select=best val {metric}")
    return [("protocol (test scored once, with the state best on val)", "; ".join(parts))]


def settings_rows(suite: Suite) -> list[tuple[str, str]]:
    """(block, 'key=value, ...') lines of the settings every pairing shares."""
    train = suite.train.model_dump(mode="json", exclude={"allow_overrides", "epochs", "steps", "lr_mult"})
    length = f"epochs={suite.train.epochs}" if suite.train.epochs else f"steps={suite.train.steps}"
    lr_mult = suite.train.lr_mult.model_dump()
    parts = [length] + [f"{k}={v}" for k, v in train.items()]
    parts.append("lr_mult=" + "/".join(f"{k}:{v:g}" for k, v in lr_mult.items()))
    return [
        ("hardware", ", ".join(f"{k}={v}" for k, v in suite.hardware.model_dump(mode="json").items())),
        ("train (AdamW, fused where torch has it)", ", ".join(parts)),
        ("image", ", ".join(f"{k}={v}" for k, v in suite.image.model_dump(mode="json").items())),
        ("text", ", ".join(f"{k}={v}" for k, v in suite.text.model_dump(mode="json").items())),
        ("seeds", ", ".join(str(s) for s in suite.seeds)),
    ]
