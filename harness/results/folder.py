"""Open a results folder without its suite: what ``xmbench check``, ``compare``, ``baseline update`` and
``leaderboard`` read.

A results folder is the ``--out`` of ``xmbench run``. Its ``summary.json`` lists every planned run (``runs``: run id,
folder, fingerprint, status); this module reads exactly those runs' records (``metrics.json`` / ``error.json``
through :func:`harness.results.record.read_record`, with the fingerprint checked), their ``spec.json`` and their
per-example evidence. Folders under ``runs/`` that the plan does not list are never read, so a stale run never
counts. Every problem is a :class:`UserError` that names the file and says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.jsonio import loads
from harness.results.record import RecordSet, RunRecord, read_record
from harness.results.store import SPEC
from harness.stats.evidence import Evidence

SUMMARY = "summary.json"


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    task: str
    model: str
    seed: int
    folder: str
    fingerprint: str
    status: str  # ok | failed | missing | in_progress (when summary.json was written)


@dataclass
class ResultsFolder(RecordSet):
    """A results folder, read through its ``summary.json``."""

    path: Path
    suite: str
    suite_fingerprint: str
    xmbench: str
    planned: list[PlannedRun]
    summary: dict[str, Any]
    records: list[RunRecord] = field(default_factory=list)  # plan order; finished and failed
    not_finished: list[str] = field(default_factory=list)  # run ids with no record on disk

    def values(self) -> dict[tuple[str, str, str], dict[int, float]]:
        """``(task, model, metric) -> {seed: value}`` over the finished runs."""
        out: dict[tuple[str, str, str], dict[int, float]] = {}
        for r in self.ok:
            for metric, value in r.metrics.items():
                out.setdefault((r.task, r.model, metric), {})[r.seed] = value
        return out

    def main_metrics(self) -> dict[str, str]:
        """``task -> main metric`` from the run records."""
        return {r.task: r.main_metric for r in self.records if r.main_metric}

    def higher_is_better(self, metric: str) -> bool:
        for r in self.records:
            if metric in r.higher_is_better:
                return r.higher_is_better[metric]
        return True

    def spec(self, record: RunRecord) -> dict[str, Any]:
        """The run's ``spec.json`` (its resolved settings); an empty dict when it cannot be read."""
        try:
            data = loads((self.path / record.folder / SPEC).read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def evidence(self, record: RunRecord) -> Evidence | None:
        from harness.results.artifacts import load_evidence

        return load_evidence(self.path, record)

    def evidences(self, task: str, model: str) -> list[Evidence] | None:
        """Every finished seed's evidence for (task, model), in seed order, or None when any seed lacks it."""
        recs = sorted((r for r in self.ok if r.task == task and r.model == model), key=lambda r: r.seed)
        evs = [self.evidence(r) for r in recs]
        return None if not evs or any(e is None for e in evs) else evs  # type: ignore[return-value]


def open_results(path: Path, what: str = "results folder") -> ResultsFolder:
    """Read ``path/summary.json`` and the records of every run it lists."""
    path = Path(path)
    summary_path = path / SUMMARY
    if not path.is_dir():
        raise UserError(f"{path}: no such {what}; pass the --out folder of `xmbench run`")
    if not summary_path.is_file():
        raise UserError(
            f"{summary_path}: missing; {path} is not the output folder of `xmbench run` "
            f"(or its report was never written: `xmbench report SUITE --out {path}`)"
        )
    try:
        data = loads(summary_path.read_bytes())
    except (OSError, ValueError) as e:
        raise UserError(
            f"{summary_path}: cannot be read ({e}); rebuild it with `xmbench report SUITE --out {path}`"
        ) from None
    if not isinstance(data, dict) or data.get("schema_version") != 2:
        raise UserError(
            f"{summary_path}: schema_version {data.get('schema_version') if isinstance(data, dict) else None!r} is "
            f"not 2; rebuild it with this xmbench: `xmbench report SUITE --out {path}`"
        )
    runs, fp = data.get("runs"), data.get("suite_fingerprint")
    if not isinstance(runs, list) or not isinstance(fp, str):
        raise UserError(
            f"{summary_path}: no run index (made by an older xmbench); rebuild it: `xmbench report SUITE --out {path}`"
        )
    planned = []
    for i, r in enumerate(runs):
        try:
            planned.append(
                PlannedRun(
                    str(r["run_id"]),
                    str(r["task"]),
                    str(r["model"]),
                    int(r["seed"]),
                    str(r["folder"]),
                    str(r["fingerprint"]),
                    str(r["status"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            raise UserError(
                f"{summary_path}: runs[{i}] is malformed; rebuild it: `xmbench report SUITE --out {path}`"
            ) from None
    out = ResultsFolder(path, str(data.get("suite")), fp, str(data.get("xmbench")), planned, data)
    for p in planned:
        folder = (path / p.folder).resolve()
        if not folder.is_relative_to(path.resolve()):
            raise UserError(f"{summary_path}: run folder {p.folder!r} is outside {path}")
        record = read_record(folder, p.fingerprint)
        if record is None:
            out.not_finished.append(p.run_id)
        else:
            out.records.append(record)
    return out
