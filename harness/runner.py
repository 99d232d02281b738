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
    splits: dict[str, tuple[str, str]]
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
    from harness.suite.check import check_suite
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
        splits[tname] = src.splits(t.type, t.train_split, t.eval_split)
        fingerprints[tname] = src.fingerprint(t.type, splits[tname])  # loads both splits (memoised)
    text_models = {m for t in suite.tasks.values() for m in t.models if "text" in models[m].family.modalities}
    tokenizer, tok_fp = None, None
    if text_models:
        corpus = [
            text
            for tname, t in suite.tasks.items()
            for text in _texts(t, sources[t.dataset].load(t.type, splits[tname][0]))
        ]
        tokenizer, tok_fp = load_tokenizer(suite.text, corpus)
        console.log(f"tokenizer: {suite.text.tokenizer} ({len(tokenizer)} tokens)")
    runs = plan_runs(suite, models, device.type, fingerprints, splits, tok_fp)
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


def prepare_data(plan: Plan, tasks: set[str], console):
    """Turn the splits of ``tasks`` into tensors (decoded-image cache, token cache): the shared run context."""
    from harness.execute import SharedContext
    from harness.tasks import task_registry
    from harness.tasks.base import PrepareContext
    from harness.train.measure import environment

    suite, models = plan.suite, plan.models
    registry = task_registry()
    task_objs = {tname: registry.get(t.type)(tname, t) for tname, t in suite.tasks.items()}
    data = {}
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
        )
        start = time.perf_counter()
        data[tname] = task_objs[tname].prepare(src, plan.splits[tname], pctx)
        console.log(
            f"task {tname}: {len(data[tname].train)} train / {len(data[tname].eval)} eval examples "
            f"({time.perf_counter() - start:.1f}s)"
        )
    for name, src in plan.sources.items():
        if src.issues.skipped:
            console.log(
                f"[yellow]dataset {name}: skipped {len(src.issues.skipped)} bad sample(s)[/yellow] "
                f"(on_bad_sample: skip; listed in the report)"
            )
    skipped = {tname: plan.sources[t.dataset].issues.summary() for tname, t in suite.tasks.items()}
    return SharedContext(
        plan.device,
        suite.image,
        suite.text.max_length,
        plan.tokenizer,
        models,
        task_objs,
        data,
        environment(plan.device),
        skipped,
    )


def prepare(suite: Suite, suite_path: Path, data_root: Path, console):
    """Plan the suite and prepare the data of every task: ``(SharedContext, Plan)`` (for library use and tests)."""
    plan = plan_suite(suite, suite_path, data_root, console)
    return prepare_data(plan, set(suite.tasks), console), plan


def _texts(task, records) -> list[str]:
    if hasattr(records, "questions"):
        return list(records.questions)
    if hasattr(records, "texts"):
        return list(records.texts)
    return [task.prompt]


def run_suite(suite: Suite, suite_path: Path, out_dir: Path, data_root: Path, console) -> SuiteOutcome:
    """Execute every planned run that is not finished (claiming each one first) and write the report."""
    from harness.execute import execute_run
    from harness.results.record import read_record
    from harness.results.store import RunLock
    from harness.train.loop import plan_steps

    start = time.perf_counter()
    plan = plan_suite(suite, suite_path, data_root, console)
    outcome = SuiteOutcome(out_dir)
    pending = []
    for spec in plan.runs:
        record = read_record(out_dir / spec.folder, spec.fingerprint)
        if record is not None and record.ok:
            outcome.records.append(record)
            outcome.reused += 1
        else:
            pending.append(spec)
    if outcome.reused:
        console.log(f"reusing {outcome.reused} finished run(s) with matching fingerprints")
    ctx = prepare_data(plan, {s.task for s in pending}, console) if pending else None
    steps = {s.run_id: plan_steps(len(ctx.data[s.task].train), s.train)[1] for s in pending}
    with _Progress(console, sum(steps.values()), len(pending)) as progress:
        for i, spec in enumerate(pending):
            lock = RunLock(out_dir / spec.folder)
            if not lock.acquire():
                console.log(f"skipping {spec.run_id}: claimed by {lock.holder()} (another xmbench run)")
                outcome.claimed_elsewhere.append(spec.run_id)
                progress.skip(steps[spec.run_id])
                continue
            try:
                if lock.left_behind():
                    console.log(f"{spec.run_id}: taking over the claim left by {lock.left_behind()} (not running)")
                record = read_record(out_dir / spec.folder, spec.fingerprint)
                if record is not None and record.ok:  # finished by another process since we looked
                    outcome.records.append(record)
                    outcome.reused += 1
                    progress.skip(steps[spec.run_id])
                    continue
                progress.start_run(i, spec.run_id, steps[spec.run_id])
                record = execute_run(spec, ctx, out_dir, progress.step)
            finally:
                lock.release()
            outcome.records.append(record)
            progress.end_run(record)
    order = {s.fingerprint: i for i, s in enumerate(plan.runs)}
    outcome.records.sort(key=lambda r: order.get(r.fingerprint, len(order)))
    outcome.report = write_plan_report(plan, out_dir)
    outcome.seconds = time.perf_counter() - start
    return outcome


def write_plan_report(plan: Plan, out_dir: Path, runs: list[RunSpec] | None = None):
    """Write the report of exactly the plan's runs, as found on disk (see :mod:`harness.results.collect`)."""
    from harness.report import write_report
    from harness.results.collect import collect
    from harness.results.store import exclusive

    with exclusive(out_dir / ".report.lock"):
        return write_report(plan.suite, collect(out_dir, runs or plan.runs), out_dir, runs or plan.runs)


class _Progress:
    """Rich progress bar over all training steps of the pending runs, with an ETA; a line per finished run."""

    def __init__(self, console, total_steps: int, n_runs: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console, self.n_runs = console, n_runs
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
        )
        self.bar = self.progress.add_task("runs", total=max(1, total_steps))
        self.total, self.done, self.t0 = total_steps, 0, time.perf_counter()

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start_run(self, i: int, run_id: str, steps: int) -> None:
        self.run_start, self.run_done = time.perf_counter(), 0
        self.progress.update(self.bar, description=f"[{i + 1}/{self.n_runs}] {run_id}")

    def step(self, n: int) -> None:
        self.done += 1
        self.progress.advance(self.bar)

    def skip(self, steps: int) -> None:
        """A run that another process trains (or finished): take its steps out of the total."""
        self.total -= steps
        self.progress.update(self.bar, total=max(1, self.total))

    def end_run(self, record: RunRecord) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        if record.ok:
            main = ", ".join(f"{k}={v:.2f}" for k, v in list(record.metrics.items())[:3])
            self.console.log(
                f"done {record.run_id} in {time.perf_counter() - self.run_start:.1f}s: {main} (ETA {eta:.0f}s)"
            )
        else:
            self.console.log(f"[red]failed[/red] {record.run_id}: {record.error}")


def failures_message(outcome: SuiteOutcome) -> str:
    failed = outcome.failed
    first = failed[0]
    return (
        f"{len(failed)} of {len(outcome.records)} runs failed; first: {first.run_id}: {first.error} "
        f"(details in {outcome.out_dir}/runs/.../error.json; finished runs are kept and reused)"
    )
