"""``RunRecord``: the one typed record of a run, and the only code that reads or writes it in a run folder.

A run folder ends in exactly one of three states, which :func:`read_record` tells apart:

- **ok**: ``metrics.json`` holds a record with ``status: ok``, a fingerprint that matches the folder, and finite
  metrics;
- **failed**: ``error.json`` holds a failed record, or ``metrics.json`` is corrupt (not JSON, wrong shape, a
  non-finite metric): a corrupt record is shown as failed, with the reason, and never silently dropped from a mean;
- **incomplete**: neither file (a run in progress, or one killed before it finished).

Execute writes records; aggregate, the report, and later stats, the CI gate and the leaderboard read them. Nothing
else opens ``metrics.json`` or ``error.json``. No torch here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from harness.jsonio import loads
from harness.results.store import atomic_write_json

METRICS = "metrics.json"
ERROR = "error.json"
Status = Literal["ok", "failed", "incomplete"]


@dataclass(frozen=True)
class Timings:
    """Wall-clock and throughput of one run (seconds; memory in MiB).

    ``train_seconds`` = ``data_seconds`` (building batches) + ``compute_seconds`` (forward, backward, optimiser);
    ``eval_seconds`` = ``val_seconds`` (every val evaluation) + ``test_seconds`` (the one test evaluation).
    ``data_wait_fraction`` is data / (data + compute). Peak memory: CUDA ``max_memory_allocated`` on CUDA; the
    process's peak resident set since the run started on Linux (``rss_scope: since_reset``), else over the
    process's life (``process``). A resumed run sums the time of every attempt."""

    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    wall_seconds: float = 0.0
    train_samples: int = 0
    train_samples_per_s: float = 0.0
    steps: int = 0
    epochs: float = 0.0
    warmup_steps: int = 0
    final_loss: float | None = None
    process_peak_rss_mb: float | None = None
    cuda_peak_allocated_mb: float | None = None
    cuda_peak_reserved_mb: float | None = None
    data_seconds: float | None = None
    compute_seconds: float | None = None
    val_seconds: float | None = None
    test_seconds: float | None = None
    data_wait_fraction: float | None = None
    eval_samples_per_s: float | None = None
    val_evaluations: int = 0
    resumed_from_step: int | None = None
    rss_scope: str | None = None


@dataclass(frozen=True)
class Cost:
    """Model size and compute: parameters (task head included), forward FLOPs per eval example, FLOPs per training
    sample (forward and backward in train mode at the real batch size, attention included) and MFU where the
    device's peak is known. ``flops_error`` says why a count is missing; it is never missing silently."""

    params: int = 0
    trainable_params: int = 0
    forward_flops_per_sample: int | None = None
    train_flops_per_sample: int | None = None
    flops_error: str | None = None
    peak_flops: float | None = None
    mfu: float | None = None


@dataclass(frozen=True)
class RunRecord:
    """What one run produced (or why it did not): identity, metrics, facts about the task's metrics, cost.

    ``main_metric`` and ``higher_is_better`` come from the task class when the run executes, so that every reader
    (reports, statistics, the CI gate, leaderboards over many folders) knows how to rank a metric without importing
    the task code.
    """

    run_id: str
    folder: str
    fingerprint: str
    suite: str
    task: str
    task_type: str
    dataset: str
    model: str
    kind: str
    model_type: str
    seed: int
    status: Status
    baseline: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # the test split, scored once with the selected state
    val_metrics: dict[str, float] = field(default_factory=dict)  # the val split at the selected step
    selection: dict[str, Any] = field(default_factory=dict)  # metric, step, evaluations, stopped_early
    adjustments: list[str] = field(default_factory=list)  # changes the runner made (micro-batch after OOM)
    main_metric: str | None = None
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    cost: Cost = field(default_factory=Cost)
    data: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, Any] = field(default_factory=dict)
    # models.<name>.quantize: the dynamic-INT8 copy's sizes, test metrics, latency (harness/train/quantize.py)
    quantized: dict[str, Any] | None = None
    env: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if out["quantized"] is None:  # written only by runs of a model with quantize set
            del out["quantized"]
        return out

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        """Parse a record; raises ``ValueError`` naming the first problem (missing key, wrong type, non-finite).

        Every field is checked against its declared type (``timings`` and ``cost`` too), so that a hand-edited or
        damaged record is refused here, as a failed run, and never reaches a report as a value it cannot show."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"missing key {missing[0]!r}")
        metrics = data.get("metrics", {})
        for name, value in metrics.items() if isinstance(metrics, dict) else ():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"metric {name!r} is {value!r}, not a number")
        kwargs = _typed(cls, data, "")
        if kwargs["status"] not in ("ok", "failed"):
            raise ValueError(f"status {kwargs['status']!r} is not 'ok' or 'failed'")
        for name, value in kwargs.get("metrics", {}).items():
            if not math.isfinite(value):
                raise ValueError(f"metric {name!r} is {value}, not a finite number")
        kwargs["metrics"] = {k: float(v) for k, v in kwargs.get("metrics", {}).items()}
        return cls(**kwargs)


class RecordSet:
    """Mixin for containers of run records (``self.records``, in plan order): the finished and the failed ones."""

    records: list[RunRecord]

    @property
    def ok(self) -> list[RunRecord]:
        return [r for r in self.records if r.ok]

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.records if not r.ok]


def _typed(cls: type, data: dict, prefix: str) -> dict[str, Any]:
    """The known keys of ``data`` checked against the field types of the dataclass ``cls`` (nested dataclasses
    are built); ``ValueError`` names the first key whose value has the wrong type."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        key, value, tp = f"{prefix}{f.name}", data[f.name], hints[f.name]
        if dataclasses.is_dataclass(tp):
            if value is None:
                continue  # an absent block: the defaults
            if not isinstance(value, dict):
                raise ValueError(f"{key} is {_kind(value)}, not a mapping")
            out[f.name] = tp(**_typed(tp, value, f"{key}."))
            continue
        if not _is(value, tp):
            raise ValueError(f"{key} is {_kind(value)} {_short(value)}, not {_type_name(tp)}")
        out[f.name] = value
    return out


def _is(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits the annotation ``tp`` (int for float is fine; a boolean is never a number)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, dict) and all(_is(k, args[0]) and _is(v, args[1]) for k, v in value.items())
    return isinstance(value, origin or tp)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin is dict:
        return f"a mapping to {_type_name(args[1])}" if args[1] is not Any else "a mapping"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    kinds = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def finite_metrics(metrics: dict[str, float]) -> str | None:
    """The first metric that is not a finite number, as ``"name=value"``, or None."""
    for name, value in metrics.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            return f"{name}={value}"
    return None


def write_record(folder: Path, record: RunRecord) -> Path:
    """Write ``metrics.json`` (ok) or ``error.json`` (failed) atomically; the other file is removed."""
    name, other = (METRICS, ERROR) if record.ok else (ERROR, METRICS)
    if record.ok:
        bad = finite_metrics(record.metrics)
        if bad:
            raise ValueError(f"refusing to write a finished run with a non-finite metric ({bad})")
    atomic_write_json(folder / name, _finite_or_null(record.to_json()))
    if not record.ok:
        (folder / other).unlink(missing_ok=True)
    return folder / name


def _finite_or_null(obj: Any) -> Any:
    """Non-finite floats outside ``metrics`` (a loss that never got a value, say) become null: JSON has no NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_null(v) for v in obj]
    return obj


def read_record(folder: Path, fingerprint: str | None = None) -> RunRecord | None:
    """The record of a run folder, or None when it holds neither file (incomplete).

    A ``metrics.json`` that cannot be read as a finished record (bad JSON, wrong shape, non-finite metric, a
    fingerprint other than ``fingerprint``) becomes a failed record whose ``error`` says why.
    """
    for name in (METRICS, ERROR):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = loads(path.read_bytes())
            record = RunRecord.from_json(data)
        except (ValueError, TypeError) as exc:
            return _corrupt(folder, name, str(exc), _peek(path))
        except OSError as exc:
            return _corrupt(folder, name, f"unreadable ({exc.strerror})", {})
        if name == METRICS and record.status != "ok":
            return _corrupt(folder, name, f"status is {record.status!r} in a finished-run file", data)
        if fingerprint is not None and record.fingerprint != fingerprint:
            return _corrupt(folder, name, "its fingerprint does not match the folder", data)
        return record
    return None


def _peek(path: Path) -> dict[str, Any]:
    """Best-effort identity of a corrupt file (for the failed record): spec.json beside it."""
    try:
        spec = loads((path.parent / "spec.json").read_bytes())
        return spec if isinstance(spec, dict) else {}
    except (OSError, ValueError):
        return {}


def _corrupt(folder: Path, name: str, why: str, data: Any) -> RunRecord:
    data = data if isinstance(data, dict) else {}

    def get(key: str, default: Any = "") -> Any:
        value = data.get(key, default)
        return value if isinstance(value, str | int) and not isinstance(value, bool) else default

    return RunRecord(
        run_id=get("run_id") or f"{get('task')}/{get('model')}/seed{get('seed', '?')}",
        folder=get("folder") or str(folder),
        fingerprint=get("fingerprint"),
        suite=get("suite"),
        task=get("task"),
        task_type=get("task_type"),
        dataset=get("dataset"),
        model=get("model"),
        kind=get("kind"),
        model_type=get("model_type"),
        seed=get("seed", -1) if isinstance(data.get("seed"), int) else -1,
        status="failed",
        error=f"{folder / name}: corrupt run record ({why}); delete the file to re-run this run",
    )
