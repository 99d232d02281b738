"""Run a whole suite: load -> check -> prepare data -> plan -> execute (with progress and ETA) -> report.

Finished runs whose fingerprint matches are reused, never rewritten. A run that fails (NaN loss, out of memory)
records its error and the suite goes on; the command then exits with code 2 naming the failures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.suite.schema import Suite


@dataclass
class SuiteOutcome:
    out_dir: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    reused: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") != "ok"]


def prepare(suite: Suite, suite_path: Path, data_root: Path, console) -> tuple[Any, list, dict]:
    """Open datasets, build the tokenizer, prepare every task's tensors and plan the runs."""
    import torch

    from harness.data.sources import DataSource, dataset_path
    from harness.data.text import load_tokenizer
    from harness.execute import SharedContext
    from harness.plan import plan_runs
    from harness.suite.check import check_suite
    from harness.tasks import task_registry
    from harness.tasks.base import PrepareContext
    from harness.train.measure import environment
    from harness.train.precision import check_precision, resolve_device

    models = check_suite(suite, suite_path, data_root)
    device = resolve_device(suite.hardware.device)
    check_precision(device, suite.hardware.precision)
    if suite.hardware.threads:
        torch.set_num_threads(suite.hardware.threads)

    roots = {}
    for name, spec in suite.datasets.items():
        if name in {t.dataset for t in suite.tasks.values()}:
            console.log(f"dataset {name}: opening ({spec.kind}, {spec.path})")
            roots[name] = dataset_path(name, spec, data_root, suite.synthetic)
    sources = {name: DataSource(name, suite.datasets[name], root) for name, root in roots.items()}
    registry = task_registry()
    tasks = {tname: registry.get(t.type)(tname, t) for tname, t in suite.tasks.items()}
    splits, records = {}, {}
    for tname, t in suite.tasks.items():
        src = sources[t.dataset]
        splits[tname] = src.splits(t.type, t.train_split, t.eval_split)
        records[tname] = [src.load(t.type, s) for s in splits[tname]]

    text_models = {m for t in suite.tasks.values() for m in t.models if "text" in models[m].family.modalities}
    tokenizer, tok_fp = None, None
    if text_models:
        corpus = [text for tname, t in suite.tasks.items() for text in _texts(t, records[tname][0])]
        tokenizer, tok_fp = load_tokenizer(suite.text, corpus)
        console.log(f"tokenizer: {suite.text.tokenizer} ({len(tokenizer)} tokens)")

    data, fingerprints = {}, {}
    for tname, t in suite.tasks.items():
        src = sources[t.dataset]
        fingerprints[tname] = src.fingerprint(t.type, splits[tname])
        modalities = frozenset().union(*(models[m].family.modalities for m in t.models))
        pctx = PrepareContext(
            suite.image.size,
            suite.image.resize,
            suite.image.interpolation,
            suite.hardware.workers,
            tokenizer,
            suite.text.max_length,
            modalities,
            issues=src.issues,
            tokenizer_fingerprint=tok_fp,
            truncation=suite.text.truncation,
        )
        start = time.perf_counter()
        data[tname] = tasks[tname].prepare(src, splits[tname], pctx)
        console.log(
            f"task {tname}: {len(data[tname].train)} train / {len(data[tname].eval)} eval examples "
            f"({time.perf_counter() - start:.1f}s)"
        )
    extra = {tname: {k: v for k, v in d.info.items() if k.endswith("fingerprint")} for tname, d in data.items()}
    runs = plan_runs(suite, models, device.type, fingerprints, splits, tok_fp, extra)
    skipped = {tname: sources[t.dataset].issues.summary() for tname, t in suite.tasks.items()}
    for name, src in sources.items():
        if src.issues.skipped:
            console.log(
                f"[yellow]dataset {name}: skipped {len(src.issues.skipped)} bad sample(s)[/yellow] "
                f"(on_bad_sample: skip; listed in the report)"
            )
    ctx = SharedContext(
        device, suite.image, suite.text.max_length, tokenizer, models, tasks, data, environment(device), skipped
    )
    return ctx, runs, {"tokenizer": tokenizer}


def _texts(task, records) -> list[str]:
    if hasattr(records, "questions"):
        return list(records.questions)
    if hasattr(records, "texts"):
        return list(records.texts)
    return [task.prompt]


def run_suite(suite: Suite, suite_path: Path, out_dir: Path, data_root: Path, console) -> SuiteOutcome:
    """Execute every planned run (reusing finished ones) and write the report."""
    from harness.execute import execute_run
    from harness.results.store import METRICS, is_finished, read_json
    from harness.train.loop import plan_steps

    start = time.perf_counter()
    ctx, runs, _ = prepare(suite, suite_path, data_root, console)
    outcome = SuiteOutcome(out_dir)
    pending = []
    for spec in runs:
        folder = out_dir / spec.folder
        if is_finished(folder, spec.fingerprint):
            outcome.records.append(read_json(folder / METRICS))
            outcome.reused += 1
        else:
            pending.append(spec)
    if outcome.reused:
        console.log(f"reusing {outcome.reused} finished run(s) with matching fingerprints")
    from harness.suite.schema import TrainSpec

    steps = {s.run_id: plan_steps(len(ctx.data[s.task].train), TrainSpec.model_validate(s.train))[1] for s in pending}
    with _Progress(console, sum(steps.values()), len(pending)) as progress:
        for i, spec in enumerate(pending):
            progress.start_run(i, spec.run_id, steps[spec.run_id])
            record = execute_run(spec, ctx, out_dir, progress.step)
            outcome.records.append(record)
            progress.end_run(record)
    order = {s.fingerprint: i for i, s in enumerate(runs)}
    outcome.records.sort(key=lambda r: order.get(r.get("fingerprint"), len(order)))
    from harness.report import write_report

    write_report(suite, outcome.records, out_dir)
    outcome.seconds = time.perf_counter() - start
    return outcome


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

    def end_run(self, record: dict) -> None:
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        if record.get("status") == "ok":
            main = ", ".join(f"{k}={v:.2f}" for k, v in list(record["metrics"].items())[:3])
            self.console.log(
                f"done {record['run_id']} in {time.perf_counter() - self.run_start:.1f}s: {main} (ETA {eta:.0f}s)"
            )
        else:
            self.console.log(f"[red]failed[/red] {record['run_id']}: {record.get('error')}")


def failures_message(outcome: SuiteOutcome) -> str:
    failed = outcome.failed
    first = failed[0]
    return (
        f"{len(failed)} of {len(outcome.records)} runs failed; first: {first['run_id']}: {first.get('error')} "
        f"(details in {outcome.out_dir}/runs/.../error.json; finished runs are kept and reused)"
    )


def require_ok(outcome: SuiteOutcome) -> None:
    if outcome.failed:
        raise UserError(failures_message(outcome))
