"""Match a results folder against a plan: exactly the plan's runs, and a list of everything else.

A report, the CI gate and the terminal summary all need the same answer to "what does this folder hold for this
suite?": for every planned run its record (finished or failed) or the fact that it is missing or in progress, and
every other run folder under ``runs/`` listed as *not part of this plan* (an older configuration, a removed model),
never averaged in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.jsonio import loads
from harness.results.record import RecordSet, RunRecord, read_record
from harness.results.store import LOCK, SPEC

if TYPE_CHECKING:
    from harness.plan import RunSpec


@dataclass(frozen=True)
class OtherFolder:
    """A run folder that is not part of the current plan."""

    folder: str  # relative to the results folder
    run_id: str
    reason: str


@dataclass
class PlanResults(RecordSet):
    """What a results folder holds for one plan."""

    records: list[RunRecord] = field(default_factory=list)  # plan order: finished and failed runs
    missing: list[str] = field(default_factory=list)  # run ids with no record (never run, or killed)
    in_progress: list[str] = field(default_factory=list)  # run ids claimed by a live process right now
    other: list[OtherFolder] = field(default_factory=list)


def collect(out_dir: Path, runs: list[RunSpec]) -> PlanResults:
    """Read the record of every planned run and list the folders outside the plan."""
    from harness.results.store import RunLock

    out = PlanResults()
    planned = {}
    for spec in runs:
        folder = out_dir / spec.folder
        planned[spec.folder] = spec
        record = read_record(folder, spec.fingerprint)
        if record is not None:
            out.records.append(record)
        elif (folder / LOCK).is_file() and RunLock(folder).looks_held():
            out.in_progress.append(spec.run_id)
        else:
            out.missing.append(spec.run_id)
    by_run = {s.run_id: s for s in runs}
    for folder in sorted((out_dir / "runs").glob("*/*/*")):
        rel = folder.relative_to(out_dir).as_posix()
        if not folder.is_dir() or rel in planned:
            continue
        run_id = _run_id(folder)
        if run_id in by_run:
            reason = "its settings or data differ from the current plan (an older configuration)"
        elif run_id.split("/")[0] in {s.task for s in runs}:
            reason = "its model or seed is not in the current suite"
        else:
            reason = "its task is not in the current suite"
        out.other.append(OtherFolder(rel, run_id, reason))
    return out


def _run_id(folder: Path) -> str:
    """``task/model/seedK`` of a run folder, from its spec.json, else from its path."""
    try:
        spec = loads((folder / SPEC).read_bytes())
        return f"{spec['task']}/{spec['model']}/seed{spec['seed']}"
    except (OSError, ValueError, KeyError, TypeError):
        seed = folder.name.split("-", 1)[0]
        return f"{folder.parent.parent.name}/{folder.parent.name}/{seed}"
