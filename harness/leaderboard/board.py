"""The leaderboard model: many results folders merged into one ranked board per (dataset, task, metric).

A **row** is one model of one results folder on one task: its finished seeds, their mean and 95% CI (the same cell as
the folder's own report: :func:`harness.report.model.metric_cell`), its cost, and links to its run folders.

* Only the runs of each folder's plan are read (:func:`harness.results.folder.open_results`): a stale folder is never
  opened. A (task, model) with a failed seed, or a seed without a result, is **not on the board** (listed with the
  reason): a mean over the seeds that happened to survive would flatter the model.
* Rows are comparable when their **comparability key** matches: the dataset fingerprint, the splits, the metric
  convention (task type and :data:`harness.plan.NUMERICS_VERSION`), the precision, the training recipe (every
  ``train`` key), the image preprocessing, the text settings (for models that read text) and the task's settings.
  For each key the board's majority value is the most common one among its rows (ties: the first row's). A row
  whose value differs is **marked** with the differing keys (``epochs 1 vs 6``) and is not ranked. A per-model
  override that the row's suite allows (``train.allow_overrides``, e.g. a tuned ``lr``) is part of that suite's
  declared protocol: it is shown (``tuned: lr 0.002``) but neither votes for the majority nor counts as a difference.
* **Rank groups**: among the comparable rows, a row's best rank is 1 + the number of rows whose CI lies entirely
  above its own, its worst rank is the number of rows minus those whose CI lies entirely below; rows whose CIs
  overlap share ranks (``1–2``) instead of pretending to an order. A row without a CI (one seed, no per-example
  evidence) overlaps every row.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.report.model import Cell, metric_cell
from harness.results.folder import ResultsFolder
from harness.results.record import RunRecord
from harness.suite.schema import NOT_NUMERIC_TRAIN_KEYS

# task_spec keys that do not change what is measured (names, splits counted separately, who may take part)
_TASK_KEYS_LEFT_OUT = {
    "type",
    "dataset",
    "train_split",
    "val_split",
    "test_split",
    "val_fraction",
    "eval_split",
    "blind_baselines",
}
# shown first, in this order, in the board's settings line
KEY_ORDER = ("dataset", "split", "metric convention", "precision")


@dataclass(frozen=True)
class BoardKey:
    dataset: str
    task: str
    metric: str

    def title(self) -> str:
        return f"{self.metric} on {self.dataset} (task {self.task})"


@dataclass
class Row:
    """One model of one results folder on one board."""

    source: str  # the results folder as given on the command line
    folder: Path
    suite: str
    task: str
    task_type: str
    model: str
    kind: str
    model_type: str
    metric: str
    higher_is_better: bool
    cell: Cell
    seeds: tuple[int, ...]
    settings: dict[str, str]  # the comparability key
    tuned: frozenset[str]  # keys of ``settings`` set by an allowed per-model override (spec.json ``overrides``)
    run_folders: tuple[str, ...]  # relative to ``folder``, in seed order
    fingerprints: tuple[str, ...]
    report: Path | None  # the folder's report.html (or report.md)
    params: int | None = None
    gflops: float | None = None  # forward GFLOPs per example
    samples_per_s: float | None = None  # training throughput, mean over seeds
    precision: str = ""
    differences: tuple[str, ...] = ()  # "epochs 1 vs 6": keys that differ from the board's majority
    rank: tuple[int, int] | None = None  # (best, worst); None when not ranked

    @property
    def comparable(self) -> bool:
        return not self.differences

    @property
    def ci(self) -> tuple[float, float] | None:
        return self.cell.ci

    def rank_text(self) -> str:
        if self.rank is None:
            return ""
        best, worst = self.rank
        return str(best) if best == worst else f"{best}–{worst}"


@dataclass
class Board:
    key: BoardKey
    task_type: str
    higher_is_better: bool
    rows: list[Row]  # ranked rows by mean (best first), then the rows that are not comparable
    majority: dict[str, str]  # the board's majority value of every comparability key


@dataclass(frozen=True)
class Excluded:
    """A (folder, task, model) left off the boards, and why."""

    source: str
    task: str
    model: str
    reason: str


@dataclass
class Leaderboard:
    boards: list[Board]
    excluded: list[Excluded]
    sources: list[str]
    generated: datetime
    notes: list[str] = field(default_factory=list)
    title: str = "xmbench leaderboard"


# -- comparability ---------------------------------------------------------------------------------------------------


def _value(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return format(v, "g")
    if isinstance(v, list | tuple):
        return ",".join(_value(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return str(v)


def _flat(prefix: str, block: dict[str, Any], out: dict[str, str]) -> None:
    for k, v in sorted(block.items()):
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            _flat(f"{name}.", v, out)
        else:
            out[name] = _value(v)


def comparability(spec: dict[str, Any]) -> dict[str, str]:
    """The comparability key of a run from its ``spec.json``: flat ``name -> value`` (``epochs -> 6``). Text settings
    are there only for models that read text; a key a row lacks is never counted as a difference."""
    out = {
        "dataset": str(spec.get("dataset_fingerprint", ""))[:12],
        "split": "/".join(str(s) for s in spec.get("splits", [])),
        "metric convention": f"{spec.get('task_type')} v{spec.get('numerics_version')}",
        "precision": str((spec.get("hardware") or {}).get("precision")),
    }
    train = {k: v for k, v in (spec.get("train") or {}).items() if k not in NOT_NUMERIC_TRAIN_KEYS}
    _flat("", train, out)
    _flat("image.", spec.get("image") or {}, out)
    if spec.get("text"):
        _flat("text.", spec["text"], out)
    task = {k: v for k, v in (spec.get("task_spec") or {}).items() if k not in _TASK_KEYS_LEFT_OUT}
    _flat("task.", task, out)
    return out


def tuned_keys(spec: dict[str, Any]) -> frozenset[str]:
    """The comparability keys that an allowed per-model override set (``{"lr": 2e-3}`` -> ``{"lr"}``)."""
    out: dict[str, str] = {}
    _flat("", spec.get("overrides") or {}, out)
    return frozenset(out)


def majority(settings: Sequence[dict[str, str]], tuned: Sequence[frozenset[str]] | None = None) -> dict[str, str]:
    """Per key, the most common value among the rows that have the key and did not tune it per model (ties: the
    value seen first)."""
    tuned = list(tuned) if tuned is not None else [frozenset()] * len(settings)
    keys = list(dict.fromkeys(k for s, t in zip(settings, tuned) for k in s if k not in t))
    out = {}
    for key in keys:
        values = [s[key] for s, t in zip(settings, tuned) if key in s and key not in t]
        counts = Counter(values)
        top = max(counts.values())
        out[key] = next(v for v in values if counts[v] == top)
    return out


def differences(
    settings: dict[str, str], board: dict[str, str], tuned: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """``("epochs 1 vs 6", ...)``: the keys where ``settings`` differs from the board's majority (keys the row tuned
    per model, as its suite allows, are not differences)."""
    return tuple(
        f"{k} {settings[k]} vs {board[k]}"
        for k in _ordered(settings)
        if k in board and k not in tuned and settings[k] != board[k]
    )


def _ordered(settings: dict[str, str]) -> list[str]:
    first = [k for k in KEY_ORDER if k in settings]
    return first + [k for k in settings if k not in KEY_ORDER]


# -- ranks -----------------------------------------------------------------------------------------------------------


def rank_groups(
    intervals: Sequence[tuple[float, float] | None], higher_is_better: bool = True
) -> list[tuple[int, int]]:
    """``(best, worst)`` rank of each interval: best = 1 + the number of intervals entirely better than it, worst =
    n - the number entirely worse. A missing interval is unbounded (it overlaps everything)."""
    lo, hi = [], []
    for iv in intervals:
        a, b = (-math.inf, math.inf) if iv is None else (float(iv[0]), float(iv[1]))
        if not higher_is_better:
            a, b = -b, -a
        lo.append(a)
        hi.append(b)
    n = len(lo)
    out = []
    for i in range(n):
        better = sum(1 for j in range(n) if j != i and lo[j] > hi[i])
        worse = sum(1 for j in range(n) if j != i and hi[j] < lo[i])
        out.append((1 + better, n - worse))
    return out


# -- building --------------------------------------------------------------------------------------------------------


def _report(folder: Path) -> Path | None:
    for name in ("report.html", "report.md"):
        if (folder / name).is_file():
            return folder / name
    return None


def _rows_of(
    results: ResultsFolder, source: str, metrics: str, replicates: int
) -> tuple[list[tuple[BoardKey, Row]], list[Excluded]]:
    excluded = []
    bad: dict[tuple[str, str], list[str]] = {}
    for r in results.failed:
        bad.setdefault((r.task, r.model), []).append(f"seed {r.seed} failed: {r.error}")
    by_id = {p.run_id: p for p in results.planned}
    for run_id in results.not_finished:
        p = by_id[run_id]
        bad.setdefault((p.task, p.model), []).append(f"seed {p.seed} has no result")
    for (task, model), reasons in bad.items():
        excluded.append(Excluded(source, task, model, "; ".join(reasons)))
    pairs: dict[tuple[str, str], list[RunRecord]] = {}
    for r in results.ok:
        if (r.task, r.model) not in bad:
            pairs.setdefault((r.task, r.model), []).append(r)
    report = _report(results.path)
    out = []
    for (task, model), records in pairs.items():
        records.sort(key=lambda r: r.seed)
        spec = results.spec(records[0])
        if not spec:
            excluded.append(Excluded(source, task, model, f"{records[0].folder}/spec.json cannot be read: re-run it"))
            continue
        settings = comparability(spec)
        evs = results.evidences(task, model)
        first = records[0]
        names = [first.main_metric] if metrics == "main" and first.main_metric else sorted(first.metrics)
        rates = [r.timings.train_samples_per_s for r in records if r.timings.train_samples_per_s > 0]
        flops = first.cost.forward_flops_per_sample
        for metric in names:
            cell = metric_cell(records, evs, metric, replicates)
            if cell is None:
                continue
            row = Row(
                source=source,
                folder=results.path,
                suite=results.suite,
                task=task,
                task_type=first.task_type,
                model=model,
                kind=first.kind,
                model_type=first.model_type,
                metric=metric,
                higher_is_better=first.higher_is_better.get(metric, True),
                cell=cell,
                seeds=tuple(r.seed for r in records),
                settings=settings,
                tuned=tuned_keys(spec),
                run_folders=tuple(r.folder for r in records),
                fingerprints=tuple(r.fingerprint for r in records),
                report=report,
                params=first.cost.params or None,
                gflops=None if flops is None else flops / 1e9,
                samples_per_s=statistics.fmean(rates) if rates else None,
                precision=settings["precision"],
            )
            out.append((BoardKey(first.dataset, task, metric), row))
    return out, excluded


def build_leaderboard(
    folders: Sequence[ResultsFolder],
    sources: Sequence[str] | None = None,
    generated: datetime | None = None,
    metrics: str = "main",
    replicates: int = 10_000,
    title: str = "xmbench leaderboard",
) -> Leaderboard:
    """Merge results folders into boards. ``metrics``: ``main`` (each task's main metric) or ``all``."""
    from datetime import UTC

    if metrics not in ("main", "all"):
        raise ValueError(f"metrics must be 'main' or 'all', got {metrics!r}")
    sources = list(sources) if sources is not None else [str(f.path) for f in folders]
    boards: dict[BoardKey, list[Row]] = {}
    excluded: list[Excluded] = []
    notes: list[str] = []
    seen: dict[tuple[BoardKey, tuple[str, ...]], str] = {}
    for results, source in zip(folders, sources):
        rows, left_out = _rows_of(results, source, metrics, replicates)
        excluded += left_out
        for key, row in rows:
            same = seen.get((key, row.fingerprints))
            if same is not None:
                notes.append(f"{source}: {row.task}/{row.model} holds the same runs as in {same}: shown once")
                continue
            seen[(key, row.fingerprints)] = source
            boards.setdefault(key, []).append(row)
    for rows in boards.values():
        notes += _shared_runs(rows)
    out = [_board(key, rows) for key, rows in boards.items()]
    out.sort(key=lambda b: (b.key.dataset, b.key.task, b.key.metric))
    return Leaderboard(out, excluded, list(sources), generated or datetime.now(UTC), list(dict.fromkeys(notes)), title)


def _shared_runs(rows: list[Row]) -> list[str]:
    """Rows of different folders that share some (not all) runs: the same finished seeds, reused by two suites."""
    out = []
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            shared = sorted(set(a.fingerprints) & set(b.fingerprints))
            if shared and set(a.fingerprints) != set(b.fingerprints):
                seeds = [s for s, fp in zip(a.seeds, a.fingerprints) if fp in shared]
                out.append(
                    f"{a.source} and {b.source}: {a.task}/{a.model} seed(s) {', '.join(map(str, seeds))} are the same "
                    f"runs in both (their rows are not independent)"
                )
    return out


def _board(key: BoardKey, rows: list[Row]) -> Board:
    board = majority([r.settings for r in rows], [r.tuned for r in rows])
    hib = rows[0].higher_is_better
    for r in rows:
        r.differences = differences(r.settings, board, r.tuned)
    ranked = [r for r in rows if r.comparable]
    for r, rank in zip(ranked, rank_groups([r.ci for r in ranked], hib)):
        r.rank = rank
    sign = -1.0 if hib else 1.0
    ranked.sort(key=lambda r: (sign * r.cell.mean, r.rank))
    others = sorted((r for r in rows if not r.comparable), key=lambda r: sign * r.cell.mean)
    return Board(key, rows[0].task_type, hib, ranked + others, board)
