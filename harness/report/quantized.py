"""The report's "Quantised evaluation" section: for each (task, model) with ``quantize: dynamic_int8``, what the INT8
copy costs and buys (harness/train/quantize.py; docs/metrics.md, "Quantised evaluation").

Per pairing, over its seeds: the size on disk and in memory of the fp32 and INT8 copies (the same for every seed:
one architecture) and their ratio; the task's main metric of both copies, the mean change ``int8 - fp32`` in points
with its 95% CI from the paired bootstrap with matched seeds (seed ``i``'s INT8 copy is scored against seed ``i``'s
fp32 state, on the same test examples); the median latency at batch 1 and 32 and the speed-up ``fp32 / int8``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.results.artifacts import load_evidence_file
from harness.results.record import RunRecord
from harness.stats.evidence import Evidence

__all__ = ["HEADER", "QuantRow", "cells", "load_pair_evidence", "quantized_rows"]


@dataclass(frozen=True)
class QuantRow:
    """One (task, model) pairing's INT8 evaluation, over ``seeds`` (``errors``: seeds whose INT8 pass failed)."""

    task: str
    model: str
    metric: str
    seeds: int
    disk_mb: tuple[float, float] | None = None  # (fp32, int8), 10^6 bytes
    disk_ratio: float | None = None  # int8 / fp32
    memory_mb: tuple[float, float] | None = None
    memory_ratio: float | None = None
    linear_fraction: float | None = None  # of the parameters, in quantised Linear layers
    fp32: float | None = None  # mean over seeds of the main metric
    int8: float | None = None
    change: float | None = None  # int8 - fp32, points
    ci95: tuple[float, float] | None = None
    ci_method: str = ""
    latency_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # "bs1" -> (fp32, int8), median
    speedup: dict[str, float] = field(default_factory=dict)  # "bs1" -> fp32 / int8
    engine: str = ""
    errors: tuple[str, ...] = ()

    @property
    def smaller_pct(self) -> float | None:
        """How much smaller the INT8 copy is on disk, in percent (75 = a quarter of the size)."""
        return None if self.disk_ratio is None else 100.0 * (1.0 - self.disk_ratio)

    def to_json(self) -> dict[str, Any]:
        def num(x: float | None, digits: int = 4) -> float | None:
            return None if x is None else round(float(x), digits)

        def pair(p: tuple[float, float] | None, digits: int = 4) -> dict[str, float | None] | None:
            return None if p is None else {"fp32": num(p[0], digits), "int8": num(p[1], digits)}

        return {
            "task": self.task,
            "model": self.model,
            "seeds": self.seeds,
            "engine": self.engine,
            "disk_mb": pair(self.disk_mb, 6),
            "disk_ratio": num(self.disk_ratio, 6),
            "smaller_pct": num(self.smaller_pct, 4),
            "memory_mb": pair(self.memory_mb, 6),
            "memory_ratio": num(self.memory_ratio, 6),
            "linear_fraction": num(self.linear_fraction, 6),
            "metric": self.metric,
            "fp32": num(self.fp32),
            "int8": num(self.int8),
            "change": num(self.change),
            "ci95": None if self.ci95 is None else [num(self.ci95[0]), num(self.ci95[1])],
            "ci_method": self.ci_method,
            "latency_ms": {k: pair(v) for k, v in self.latency_ms.items()},
            "speedup": {k: num(v) for k, v in self.speedup.items()},
            "errors": list(self.errors),
        }


def load_pair_evidence(out_dir: Path, record: RunRecord) -> tuple[Evidence | None, Evidence | None]:
    """The (fp32, int8) evidence of a quantised run: the files its ``quantized.evidence`` names, or None each."""
    names = (record.quantized or {}).get("evidence") or {}
    folder = out_dir / record.folder
    return tuple(load_evidence_file(folder / names[k]) if names.get(k) else None for k in ("fp32", "int8"))  # type: ignore[return-value]


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _row(task: str, model: str, metric: str, records: list[RunRecord], out_dir: Path, replicates: int) -> QuantRow:
    from harness.stats.paired import compare

    done = [r for r in records if r.quantized and not r.quantized.get("error")]
    failed = [r for r in records if r.quantized and r.quantized.get("error")]
    errors = tuple(f"seed {r.seed}: {r.quantized['error']}" for r in failed)
    if not done:
        return QuantRow(task, model, metric, seeds=0, errors=errors)
    q = [r.quantized for r in done]

    def pair_mean(key: str) -> tuple[float, float]:
        return (_mean([x[key]["fp32"] / 1e6 for x in q]), _mean([x[key]["int8"] / 1e6 for x in q]))

    disk, memory = pair_mean("disk_bytes"), pair_mean("memory_bytes")
    fp32_values = [x["metrics_fp32"][metric] for x in q if metric in x.get("metrics_fp32", {})]
    int8_values = [x["metrics"][metric] for x in q if metric in x.get("metrics", {})]
    fp32, int8 = _mean(fp32_values), _mean(int8_values)
    change = None if fp32 is None or int8 is None else int8 - fp32
    ci, method = None, ""
    pairs = [load_pair_evidence(out_dir, r) for r in done]
    if change is not None and pairs and all(a is not None and b is not None for a, b in pairs):
        try:
            c = compare([b for _, b in pairs], [a for a, _ in pairs], metric, replicates=replicates, matched_seeds=True)
            change, ci, method = c.delta, c.ci[0.95], c.method
        except ValueError as exc:
            method = f"no CI: {exc}"
    elif change is not None:
        method = "no CI: the per-example evidence of both copies is missing"
    latency: dict[str, tuple[float, float]] = {}
    speedup: dict[str, float] = {}
    for key in q[0].get("latency_ms", {}):
        lat = [x["latency_ms"][key] for x in q if key in x.get("latency_ms", {})]
        latency[key] = (statistics.median(v["fp32"] for v in lat), statistics.median(v["int8"] for v in lat))
        if latency[key][1] > 0:
            speedup[key] = latency[key][0] / latency[key][1]
    fractions = [x["linear_fraction"] for x in q if x.get("linear_fraction") is not None]
    return QuantRow(
        task=task,
        model=model,
        metric=metric,
        seeds=len(done),
        disk_mb=disk,
        disk_ratio=disk[1] / disk[0] if disk[0] else None,
        memory_mb=memory,
        memory_ratio=memory[1] / memory[0] if memory[0] else None,
        linear_fraction=_mean(fractions),
        fp32=fp32,
        int8=int8,
        change=change,
        ci95=ci,
        ci_method=method,
        latency_ms=latency,
        speedup=speedup,
        engine=str(q[0].get("engine", "")),
        errors=errors,
    )


def quantized_rows(
    by_pair: dict[tuple[str, str], list[RunRecord]], main_metrics: dict[str, str], out_dir: Path, replicates: int
) -> list[QuantRow]:
    """One row per (task, model) whose finished runs carry a ``quantized`` record, in plan order."""
    rows = []
    for (task, model), records in by_pair.items():
        if any(r.quantized for r in records):
            rows.append(_row(task, model, main_metrics[task], records, out_dir, replicates))
    return rows


# -- table ---------------------------------------------------------------------------------------------------------

HEADER = [
    "task",
    "model",
    "seeds",
    "disk MB fp32 → int8",
    "smaller",
    "memory MB fp32 → int8",
    "in Linear",
    "metric",
    "fp32",
    "int8",
    "change [95% CI]",
    "latency bs1 ms",
    "latency bs32 ms",
]
ALIGN = ["l", "l", "r", "r", "r", "r", "r", "l", "r", "r", "r", "r", "r"]

LEGEND = (
    "The INT8 copy is `torch.ao.quantization.quantize_dynamic` on the nn.Linear layers (int8 weights, activations "
    "quantised on the fly), scored on CPU in fp32 against the fp32 state of the same run. *smaller*: 1 - disk "
    "INT8 / fp32 (the bytes of the saved state dicts). *in Linear*: the fraction of the parameters the quantised "
    "layers hold (embeddings, convolutions and norms stay fp32, which bounds how much smaller it can get). "
    "*change*: int8 - fp32 in points, paired bootstrap with matched seeds. Latency: median ms per forward at "
    "batch 1 and 32, fp32 → int8 (speed-up fp32 / int8), on this machine's CPU."
)


def cells(row: QuantRow) -> list[str]:
    from harness.report import format as f

    def arrow(p: tuple[float, float] | None, digits: int = 2) -> str:
        return f.MISSING if p is None else f"{f.sig(p[0], 3)} → {f.sig(p[1], 3)}"

    def lat(key: str) -> str:
        p = row.latency_ms.get(key)
        if p is None:
            return f.MISSING
        s = row.speedup.get(key)
        return f"{f.sig(p[0], 3)} → {f.sig(p[1], 3)}" + (f" (×{s:.2f})" if s is not None else "")

    smaller = f.MISSING if row.smaller_pct is None else f"{row.smaller_pct:.1f}%"
    fraction = f.MISSING if row.linear_fraction is None else f"{100 * row.linear_fraction:.0f}%"
    if row.seeds == 0:
        failed = "; ".join(row.errors) or "no INT8 result"
        return [row.task, row.model, "0", failed, *([f.MISSING] * (len(HEADER) - 4))]
    return [
        row.task,
        row.model,
        str(row.seeds),
        arrow(row.disk_mb),
        smaller,
        arrow(row.memory_mb),
        fraction,
        row.metric,
        f.num(row.fp32),
        f.num(row.int8),
        f.delta_ci(row.change, row.ci95),
        lat("bs1"),
        lat("bs32"),
    ]
