"""Run a whole suite: plan (check, open datasets, tokenizer, fingerprints) -> prepare data -> claim and execute each
pending run (with progress and ETA) -> report from disk.

Finished runs whose fingerprint matches are reused, never rewritten. Each pending run is claimed with its lock
before it trains, so concurrent processes on one ``--out`` (two terminals, the shards of a suite) split the work;
a run claimed by a live process is skipped with a message. A run that fails (NaN loss, out of memory) records its
error and the suite goes on; the command then exits with code 2 naming the failures. The report is always rebuilt
from the folder, so the last process to finish writes a report with every run.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.suite.schema import Suite

if TYPE_CHECKING:
    from harness.plan import RunSpec
    from harness.results.record import RunRecord


@dataclass
class Plan:
    """A suite resolved against its data: models, opened datasets, splits, tokenizer and the runs."""

    suite: Suite
    path: Path
    models: dict[str, Any]
    device: Any  # torch.device
    sources: dict[str, Any]  # dataset name -> DataSource
    splits: dict[str, Any]  # task -> harness.data.sources.Splits
    tokenizer: Any | None
    tokenizer_fingerprint: str | None
    dataset_fingerprints: dict[str, str]
    runs: list[RunSpec]

    def runs_on(self, device_type: str) -> list[RunSpec]:
        """The same plan as if it ran on another device type (reports of runs made elsewhere)."""
        from harness.plan import plan_runs

        return plan_runs(
            self.suite, self.models, device_type, self.dataset_fingerprints, self.splits, self.tokenizer_fingerprint
        )


@dataclass
class SuiteOutcome:
    out_dir: Path
    records: list[RunRecord] = field(default_factory=list)  # runs this process trained or found finished
    reused: int = 0
    claimed_elsewhere: list[str] = field(default_factory=list)
    stopped: int = 0  # runs not started because of --fail-fast
    input_errors: list[str] = field(default_factory=list)  # tasks whose data could not be prepared (bad input)
    seconds: float = 0.0
    report: Any = None  # the report model written at the end (harness.report.model.Report)

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records if not r.ok]


def plan_suite(suite: Suite, suite_path: Path, data_root: Path, console, *, build: bool = True) -> Plan:
    """Check the suite, open its datasets, build the tokenizer and compute every run's fingerprint."""
    import torch

    from harness.data.sources import DataSource, dataset_path
    from harness.data.text import load_tokenizer
    from harness.plan import plan_runs
    from harness.suite.check import check_suite, task_splits
    from harness.train.precision import check_precision, resolve_device

    models = check_suite(suite, suite_path, data_root, build=build)
    _freeze_imports()
    device = resolve_device(suite.hardware.device)
    check_precision(device, suite.hardware.precision)
    if suite.hardware.threads:
        torch.set_num_threads(suite.hardware.threads)
    used = {t.dataset for t in suite.tasks.values()}
    sources = {}
    for name, spec in suite.datasets.items():
        if name in used:
            console.log(f"dataset {name}: opening ({spec.kind}, {spec.path})")
            sources[name] = DataSource(name, spec, dataset_path(name, spec, data_root, suite.synthetic))
    splits, fingerprints = {}, {}
    for tname, t in suite.tasks.items():
        src = sources[t.dataset]
        splits[tname] = task_splits(src, t)
        fingerprints[tname] = src.fingerprint(t.type, splits[tname])  # loads the splits (memoised)
    text_models = {m for t in suite.tasks.values() for m in t.models if "text" in models[m].family.modalities}
    tokenizer, tok_fp = None, None
    if text_models:
        corpus = [
            text
            for tname, t in suite.tasks.items()
            for text in _texts(t, sources[t.dataset].records(t.type, splits[tname])[0])
        ]
        tokenizer, tok_fp = load_tokenizer(suite.text, corpus)
        console.log(f"tokenizer: {suite.text.tokenizer} ({len(tokenizer)} tokens)")
    from harness.dist import env_world_size

    runs = plan_runs(suite, models, device.type, fingerprints, splits, tok_fp, env_world_size())
    return Plan(suite, suite_path, models, device, sources, splits, tokenizer, tok_fp, fingerprints, runs)


_frozen = False


def _freeze_imports() -> None:
    """Once per process, after torch/timm/transformers are imported: move their ~400k objects out of the cyclic
    GC's view (``gc.freeze``), so that opening a dataset and tokenising, which allocate millions of small objects,
    do not rescan them at every collection (that made those steps grow superlinearly with the dataset size)."""
    global _frozen
    if not _frozen:
        gc.freeze()
        _frozen = True


def prepare_data(plan: Plan, tasks: set[str], console, *, isolate: bool = False):
    """Turn the splits of ``tasks`` into tensors (decoded-image cache, token cache): the shared run context.

    With ``isolate``, a task whose data cannot be prepared (a bad image under ``on_bad_sample: error``) does not
    stop the others: returns ``(context, {task: error})`` and the runner fails that task's runs with the error."""
    from harness.data.dicom import DicomOptions
    from harness.errors import UserError
    from harness.execute import SharedContext
    from harness.tasks import task_registry
    from harness.tasks.base import PrepareContext
    from harness.train.measure import environment

    suite, models = plan.suite, plan.models
    registry = task_registry()
    task_objs = {tname: registry.get(t.type)(tname, t) for tname, t in suite.tasks.items()}
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for tname, t in suite.tasks.items():
        if tname not in tasks:
            continue
        src = plan.sources[t.dataset]
        modalities = frozenset().union(*(models[m].family.modalities for m in t.models))
        pctx = PrepareContext(
            suite.image.size,
            suite.image.resize,
            suite.image.interpolation,
            suite.hardware.workers,
            plan.tokenizer,
            suite.text.max_length,
            modalities,
            issues=src.issues,
            tokenizer_fingerprint=plan.tokenizer_fingerprint,
            truncation=suite.text.truncation,
            dicom=DicomOptions.from_spec(getattr(src.spec, "dicom", None)),
        )
        start = time.perf_counter()
        try:
            data[tname] = task_objs[tname].prepare(src, plan.splits[tname], pctx)
        except UserError as exc:
            if not isolate:
                raise
            errors[tname] = str(exc)
            console.log(f"[red]task {tname}: its data cannot be prepared[/red]: {exc}")
            continue
        console.log(
            f"task {tname}: {len(data[tname].train)} train / {len(data[tname].val)} val / "
            f"{len(data[tname].test)} test examples "
            f"({time.perf_counter() - start:.1f}s)"
        )
    for name, src in plan.sources.items():
        if src.issues.skipped:
            console.log(
                f"[yellow]dataset {name}: skipped {len(src.issues.skipped)} bad sample(s)[/yellow] "
                f"(on_bad_sample: skip; listed in the report)"
            )
    skipped = {tname: plan.sources[t.dataset].issues.summary() for tname, t in suite.tasks.items()}
    from harness import dist

    env = environment(plan.device)
    env["world_size"] = dist.world().size
    ctx = SharedContext(
        dist.device(plan.device),
        suite.image,
        suite.text.max_length,
        plan.tokenizer,
        models,
        task_objs,
        data,
        env,
        skipped,
    )
    return (ctx, errors) if isolate else ctx


def prepare(suite: Suite, suite_path: Path, data_root: Path, console):
    """Plan the suite and prepare the data of every task: ``(SharedContext, Plan)`` (for library use and tests)."""
    plan = plan_suite(suite, suite_path, data_root, console)
    return prepare_data(plan, set(suite.tasks), console), plan


def _texts(task, records) -> list[str]:
    """The texts of a task's train split that the suite's tokenizer is built from (none for zero-shot: its prompts
    are tokenised with the vocabulary its towers were trained with, as a real tokenizer would)."""
    if task.type == "zero_shot":
        return []
    if hasattr(records, "questions"):
        return list(records.questions)
    if hasattr(records, "texts"):
        return list(records.texts)
    return [task.prompt]


@dataclass(frozen=True)
class Selection:
    """A subset of the plan (``--tasks/--models/--seeds``); None means all."""

    tasks: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None

    def check(self, suite: Suite) -> None:
        from harness.errors import UserError
        from harness.suite.loader import unknown_name

        for flag, chosen, known in (
            ("--tasks", self.tasks, list(suite.tasks)),
            ("--models", self.models, list(suite.models)),
            ("--seeds", self.seeds, list(suite.seeds)),
        ):
            for value in chosen or ():
                if value not in known:
                    what = flag[2:-1]
                    raise UserError(f"{flag}: {unknown_name(what, value, known)} (the suite's {flag[2:]}: {known})")

    def keep(self, spec: RunSpec) -> bool:
        return (
            (self.tasks is None or spec.task in self.tasks)
            and (self.models is None or spec.model in self.models)
            and (self.seeds is None or spec.seed in self.seeds)
        )


def select_runs(plan: Plan, selection: Selection | None) -> list[RunSpec]:
    """The planned runs that ``selection`` keeps (all of them without one); an empty selection is an error."""
    from harness.errors import UserError

    if selection is None:
        return list(plan.runs)
    selection.check(plan.suite)
    runs = [s for s in plan.runs if selection.keep(s)]
    if not runs:
        raise UserError(
            "the selection (--tasks/--models/--seeds) matches no run of the suite: no task of the selection runs any "
            "of the selected models; see `xmbench run SUITE --dry-run` for the plan"
        )
    return runs


@dataclass(frozen=True)
class RunState:
    """One planned run as ``--dry-run`` shows it."""

    spec: RunSpec
    state: str  # done | failed | claimed | to run
    estimate_s: float | None = None
    note: str = ""


def dry_run(plan: Plan, out_dir: Path, runs: list[RunSpec]) -> list[RunState]:
    """Each run's state on disk and a time estimate from finished runs of similar size in this folder (same task
    and model, else same task and model type; older configurations count too): their seconds per optimiser step
    times this run's steps."""
    from harness.results.record import read_record
    from harness.results.store import LOCK, RunLock
    from harness.train.checkpoint import Checkpoints

    done: dict[tuple[str, str], list[float]] = {}
    by_type: dict[tuple[str, str], list[float]] = {}
    records = {spec.fingerprint: read_record(out_dir / spec.folder, spec.fingerprint) for spec in plan.runs}
    # every finished run in the folder informs the estimate, older configurations included (same task and model)
    for folder in sorted((out_dir / "runs").glob("*/*/*")):
        record = read_record(folder)
        if record is not None and record.ok and record.timings.wall_seconds > 0:
            per_step = record.timings.wall_seconds / max(1, record.timings.steps)
            done.setdefault((record.task, record.model), []).append(per_step)
            by_type.setdefault((record.task, record.model_type), []).append(per_step)
    out = []
    for spec in runs:
        record = records[spec.fingerprint]
        folder = out_dir / spec.folder
        note = ""
        if record is not None and record.ok:
            state = "done"
        elif (folder / LOCK).is_file() and RunLock(folder).looks_held():
            state, note = "claimed", RunLock(folder).holder()
        else:
            state = "failed" if record is not None else "to run"
            if spec.train.checkpoint_every:
                steps = Checkpoints(folder, spec.fingerprint).steps()
                if steps:
                    note = f"resumes from step {steps[-1][0]}"
            if record is not None:
                note = (note + "; " if note else "") + f"runs again ({record.error})"
        estimate = None
        if state != "done":
            per_step = done.get((spec.task, spec.model)) or by_type.get((spec.task, spec.model_type))
            if per_step:
                estimate = sum(per_step) / len(per_step) * _planned_steps(plan, spec)
        out.append(RunState(spec, state, estimate, note))
    return out


def split_sizes(plan: Plan, spec: RunSpec) -> tuple[int, int, int]:
    """Examples of a run's train, val and test splits, from the records loaded at planning (one per caption for
    retrieval, per question for VQA, per image otherwise)."""

    def size(records) -> int:
        if records is None:
            return 0
        for name in ("texts", "questions", "paths"):
            if getattr(records, name, None) is not None:
                return len(getattr(records, name))
        return len(records)

    records = plan.sources[spec.dataset].records(spec.task_type, plan.splits[spec.task])
    return size(records[0]), size(records[1]), size(records[2])


def _planned_steps(plan: Plan, spec: RunSpec) -> int:
    """Optimiser steps of a run, from the size of its train split (records loaded at planning)."""
    from harness.train.loop import plan_steps

    if spec.upstream is not None:  # scores its trained_by run's weights: no training step
        return 0
    return plan_steps(split_sizes(plan, spec)[0], spec.train, spec.world_size)[1]


def run_suite(
    suite: Suite,
    suite_path: Path,
    out_dir: Path,
    data_root: Path,
    console,
    *,
    selection: Selection | None = None,
    fail_fast: bool = False,
    tensorboard: bool = False,
    shard: Any = None,
) -> SuiteOutcome:
    """Execute every selected run that is not finished (claiming each one first) and write the report.

    A run that fails is recorded and the suite goes on (``fail_fast`` stops at the first failure). A task whose
    data cannot be prepared (a bad image under ``on_bad_sample: error``) is bad input: its runs do not start and
    nothing is written for them, the other tasks' runs go on, and ``outcome.input_errors`` says why.

    Under torchrun (:mod:`harness.dist`) every rank calls this: rank 0 decides which runs to do (finished runs,
    claims) and tells the others, all ranks train each run together, and only rank 0 writes."""
    from harness import dist
    from harness.execute import execute_run
    from harness.results.record import read_record
    from harness.results.store import RunLock
    from harness.train.loop import plan_steps

    start = time.perf_counter()
    plan = plan_suite(suite, suite_path, data_root, console)
    selected = select_runs(plan, selection)
    if shard is not None:  # harness/shard.py: a deterministic, cost-balanced 1/N of the selected runs
        from harness.shard import shard_runs

        total_runs = len(selected)
        selected = shard_runs(plan, selected, shard)
        console.log(f"shard {shard}: {len(selected)} of the {total_runs} selected run(s)")
    outcome = SuiteOutcome(out_dir)
    pending = []
    # rank 0 reads the records and tells the other ranks which runs are finished (they skip the same runs)
    records = (
        {s.fingerprint: read_record(out_dir / s.folder, s.fingerprint) for s in selected} if dist.world().main else {}
    )
    finished = dist.broadcast_object({fp for fp, record in records.items() if _finished(record)})
    for spec in selected:
        if spec.fingerprint in finished:
            outcome.records.append(
                records.get(spec.fingerprint) or read_record(out_dir / spec.folder, spec.fingerprint)
            )
            outcome.reused += 1
        else:
            pending.append(spec)
    if outcome.reused:
        console.log(f"reusing {outcome.reused} finished run(s) with matching fingerprints")
    with dist.main_first():  # rank 0 builds the on-disk image and token caches, the others read them
        ctx, data_errors = (
            prepare_data(plan, {s.task for s in pending}, console, isolate=True) if pending else (None, {})
        )
    if data_errors:  # bad input: these tasks' runs do not start (nothing is written for them); the others go on
        outcome.input_errors = list(data_errors.values())
        blocked = [s for s in pending if s.task in data_errors]
        pending = [s for s in pending if s.task not in data_errors]
        console.log(f"[red]{len(blocked)} run(s) of task(s) {', '.join(data_errors)} not started: bad input[/red]")
    executed = 0
    steps = {
        s.run_id: plan_steps(len(ctx.data[s.task].train), s.train, s.world_size)[1]
        if s.task in ctx.data and s.upstream is None
        else 0
        for s in pending
    }
    tb_root = out_dir / "tensorboard" if tensorboard else None
    with _Progress(console, steps, len(pending)) as progress:
        for i, spec in enumerate(pending):
            lock = RunLock(out_dir / spec.folder) if dist.world().main else _RankLock()
            # rank 0 claims the run and tells the other ranks what it found: "claimed", "done" or "run"
            state, found = _claim(lock, spec, out_dir, console) if dist.world().main else (None, None)
            state = dist.broadcast_object(state)
            if state == "claimed":
                outcome.claimed_elsewhere.append(spec.run_id)
                progress.skip(steps[spec.run_id])
                continue
            try:
                if state == "done":  # finished by another process since we looked
                    outcome.records.append(found or read_record(out_dir / spec.folder, spec.fingerprint))
                    outcome.reused += 1
                    progress.skip(steps[spec.run_id])
                    continue
                progress.start_run(i, spec.run_id, steps[spec.run_id])
                record = execute_run(spec, ctx, out_dir, progress.step, tensorboard=tb_root)
                executed += 1
            finally:
                lock.release()
            outcome.records.append(record)
            progress.end_run(record)
            if fail_fast and not record.ok:
                left = len(pending) - i - 1
                console.log(f"[red]--fail-fast[/red]: stopping after the first failed run ({left} run(s) not started)")
                outcome.stopped = left
                break
    order = {s.fingerprint: i for i, s in enumerate(plan.runs)}
    outcome.records.sort(key=lambda r: order.get(r.fingerprint, len(order)))
    dist.barrier()  # rank 0 has written every record
    # a folder where nothing ran is left exactly as it was; under torchrun rank 0 writes the report
    if (executed or not outcome.input_errors) and dist.world().main:
        outcome.report = write_plan_report(plan, out_dir)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _finished(record) -> bool:
    return record is not None and record.ok


def _claim(lock, spec: RunSpec, out_dir: Path, console) -> tuple[str, Any]:
    """Rank 0's claim of a run: ``("claimed", None)`` (a live process holds it), ``("done", record)`` (finished
    since the plan was read; the lock is held and released by the caller) or ``("run", None)``."""
    from harness.results.record import read_record

    if not lock.acquire():
        console.log(f"skipping {spec.run_id}: claimed by {lock.holder()} (another xmbench run)")
        return "claimed", None
    if lock.left_behind():
        console.log(f"{spec.run_id}: taking over the claim left by {lock.left_behind()} (not running)")
    record = read_record(out_dir / spec.folder, spec.fingerprint)
    return ("done", record) if _finished(record) else ("run", None)


class _RankLock:
    """The lock of a rank other than 0: rank 0 holds the real one."""

    def release(self) -> None: ...


def write_plan_report(plan: Plan, out_dir: Path, runs: list[RunSpec] | None = None):
    """Write the report of exactly the plan's runs, as found on disk (see :mod:`harness.results.collect`)."""
    from harness.report import write_report
    from harness.results.collect import collect
    from harness.results.store import exclusive

    with exclusive(out_dir / ".report.lock"):
        return write_report(plan.suite, collect(out_dir, runs or plan.runs), out_dir, runs or plan.runs)


class _Progress:
    """Two rich progress bars with ETAs: the suite (every training step of the pending runs) and the run in
    progress (its steps); a line per finished run. Quiet when the console is not a terminal (CI logs, files):
    then only the per-run lines are printed."""

    def __init__(self, console, steps: dict[str, int], n_runs: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console, self.n_runs = console, n_runs
        self.live = bool(getattr(console, "is_terminal", False))
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not self.live,
        )
        total = sum(steps.values())
        self.suite_bar = self.progress.add_task(f"suite: {n_runs} run(s)", total=max(1, total))
        self.run_bar = self.progress.add_task("run", total=1, visible=False)
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.finished = 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start_run(self, i: int, run_id: str, steps: int) -> None:
        self.run_start = time.perf_counter()
        self.progress.reset(self.run_bar, total=max(1, steps), description=f"[{i + 1}/{self.n_runs}] {run_id}")
        self.progress.update(self.run_bar, visible=True)

    def step(self, n: int) -> None:
        self.done += 1
        self.progress.advance(self.suite_bar)
        self.progress.update(self.run_bar, completed=n)

    def skip(self, steps: int) -> None:
        """A run that another process trains (or finished): take its steps out of the total."""
        self.total -= steps
        self.progress.update(self.suite_bar, total=max(1, self.total))

    def end_run(self, record: RunRecord) -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        self.progress.update(self.suite_bar, description=f"suite: {self.finished}/{self.n_runs} run(s)")
        if record.ok:
            main = ", ".join(f"{k}={v:.2f}" for k, v in list(record.metrics.items())[:3])
            sel = record.selection or {}
            picked = f" (test, step {sel['step']} best on val {sel['metric']})" if sel.get("step") else ""
            self.console.log(
                f"done {record.run_id} in {time.perf_counter() - self.run_start:.1f}s: {main}{picked} "
                f"(suite ETA {eta:.0f}s)"
            )
        else:
            self.console.log(f"[red]failed[/red] {record.run_id}: {record.error}")


def failures_lines(outcome: SuiteOutcome) -> list[str]:
    """One line per failed run, then a summary line (printed by ``xmbench run``, which then exits with 1)."""
    failed = outcome.failed
    lines = [f"failed: {r.run_id}: {r.error}" for r in failed]
    stopped = f"; {outcome.stopped} run(s) not started (--fail-fast)" if outcome.stopped else ""
    lines.append(
        f"{len(failed)} of {len(outcome.records)} runs failed{stopped} (details in {outcome.out_dir}/runs/.../"
        "error.json; finished runs are kept and reused, failed ones run again next time)"
    )
    return lines
