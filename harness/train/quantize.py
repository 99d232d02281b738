"""Quantised evaluation (``models.<name>.quantize: dynamic_int8``): after a run's test evaluation, score a dynamic
INT8 copy of the trained model and task head on CPU, and measure what quantisation buys.

What is done (see docs/metrics.md, "Quantised evaluation"):

- the scored state of the model and head is copied to CPU (with the real image encoder where the frozen-encoder
  feature cache stood in for it); the fp32 copy is the reference, the INT8 copy is
  ``torch.ao.quantization.quantize_dynamic(copy, {nn.Linear}, dtype=torch.qint8)``: every module of exact type
  ``nn.Linear`` gets int8 weights (per-tensor affine) and quantises its activations on the fly; everything else
  (convolutions, embeddings, norms, attention arithmetic) stays fp32;
- both copies score the test split on CPU, in fp32 with autocast off (the run's own test metrics are the reference
  when it was scored on CPU in fp32; otherwise the fp32 copy is scored on CPU too, so that the change measures the
  quantisation alone, not the device or precision). The INT8 copy's per-example evidence is ``evidence_int8.npz``
  (the fp32 copy's, when it is re-scored, ``evidence_fp32_cpu.npz``), for a paired CI of the change;
- sizes: on disk, the bytes of ``torch.save({"model": state_dict, "head": state_dict})`` into memory; in memory,
  every parameter and buffer (``numel * element_size``, shared tensors once) plus, for each quantised Linear, its
  packed weight and bias as ``weight()`` and ``bias()`` return them (int8 values, 1 byte each, plus the scale and
  zero point: 16 bytes per tensor, or 16 bytes per channel for per-channel weights; the fp32 bias). The fbgemm
  packing's own row offsets (4 bytes per output feature) are not counted;
- latency on CPU at batch 1 and 32 (the first test examples; fewer when the test split is smaller): the forward
  that ``forward_flops_per_sample`` counts (``head(model(batch)["pooled"])``; retrieval: both towers, and the fusion
  of the pair for fusion models; a task's own ``flops_forward``), under ``torch.no_grad``, with the torch threads
  the suite set (``hardware.threads``). After warm-up passes, fp32 and INT8 passes alternate, and the median of
  each is reported, in milliseconds.

``torch.ao.quantization`` is deprecated since torch 2.10 in favour of torchao (its deletion is planned); torchao is
not a dependency, so the torch API is used while it exists. Its deprecation warnings are recorded in the record
(``quantized.warnings``) rather than printed. ``xmbench validate`` refuses the switch where it cannot run
(:func:`quantize_problem`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import describe
from harness.results.store import atomic_write_bytes
from harness.tasks.base import Batcher

METHOD = "dynamic_int8"
API = "torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)"
EVIDENCE_INT8 = "evidence_int8.npz"
EVIDENCE_FP32_CPU = "evidence_fp32_cpu.npz"
LATENCY_BATCHES = (1, 32)
WARMUP = 2
MIN_REPEATS, MAX_REPEATS = 5, 15
REPEAT_BUDGET_S = 1.0  # per (batch size, precision): repeats = clamp(budget / first pass, MIN_REPEATS, MAX_REPEATS)


def _dynamic_linear() -> type:
    import torch.ao.nn.quantized.dynamic as qd

    return qd.Linear


def quantizable_linears(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules ``quantize_dynamic(..., {nn.Linear})`` replaces: those of exact type ``nn.Linear`` (subclasses,
    such as ``nn.MultiheadAttention``'s ``NonDynamicallyQuantizableLinear``, are left in fp32)."""
    return [(name, m) for name, m in module.named_modules() if type(m) is nn.Linear]


def quantize_problem(model: nn.Module) -> str | None:
    """Why ``quantize: dynamic_int8`` cannot run on a built ``model`` (the meta-device build of ``validate``), or
    None.

    Refused: a torch without ``torch.ao.quantization.quantize_dynamic`` or without a quantized CPU engine, and a
    model with no ``nn.Linear`` at all. The task head's Linear layers would still be quantised, but the model
    itself would not be, so the sizes and the accuracy change would say nothing about it. A model with a few
    Linear layers (a CNN's projection) is accepted; the report shows the fraction of parameters they hold."""
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return (
            f"this torch ({torch.__version__}) has no torch.ao.quantization.quantize_dynamic (torchao replaces it); "
            "remove quantize or use a torch that has it"
        )
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        return "this torch build has no quantized CPU engine (fbgemm, x86, qnnpack); remove quantize"
    if not quantizable_linears(model):
        return (
            f"dynamic INT8 quantises nn.Linear layers only, and this {type(model).__name__} has none (only the task "
            "head's would be quantised, which says nothing about the model); remove quantize from this model"
        )
    return None


# -- sizes ---------------------------------------------------------------------------------------------------------


def disk_bytes(model: nn.Module, head: nn.Module) -> int:
    """Bytes of ``torch.save({"model": model.state_dict(), "head": head.state_dict()})`` (written to memory)."""
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "head": head.state_dict()}, buf)
    return buf.getbuffer().nbytes


def _tensor_bytes(t: torch.Tensor) -> int:
    n = t.numel() * t.element_size()
    if t.is_quantized:
        if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            n += 16  # scale (float64) and zero point (int64)
        else:
            n += 16 * t.q_per_channel_scales().numel()
    return n


def memory_bytes(*modules: nn.Module) -> int:
    """Parameters and buffers (shared tensors once), plus the packed weight and bias of each quantised Linear."""
    qlinear = _dynamic_linear()
    seen: set[int] = set()
    total = 0
    for module in modules:
        for t in (*module.parameters(), *module.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += _tensor_bytes(t)
        for m in module.modules():
            if isinstance(m, qlinear) and id(m) not in seen:
                seen.add(id(m))
                bias = m.bias()
                total += _tensor_bytes(m.weight()) + (0 if bias is None else _tensor_bytes(bias))
    return total


def _unique_numel(tensors) -> int:
    seen: dict[int, torch.Tensor] = {}
    for t in tensors:
        seen[id(t)] = t
    return sum(t.numel() for t in seen.values())


# -- latency -------------------------------------------------------------------------------------------------------


def forward_fn(task: Any, model: nn.Module, head: nn.Module) -> tuple[Callable[[dict], Any], str]:
    """The eval forward of one batch that ``forward_flops_per_sample`` counts (harness/execute.py), and its name."""
    if hasattr(task, "flops_forward"):
        name = f"{type(task).__name__}.flops_forward(model, head, batch)"
        return (lambda b: task.flops_forward(model, head, b)), name
    if task.type == "zero_shot":  # the class prompts' embeddings are fixed: the image tower scores each image
        name = "head.embed_image(model.encode_image(image))"
        return (lambda b: head.embed_image(model.encode_image(b["image"]))), name
    if task.type == "retrieval":

        def both(b):
            img = model.encode_image(b["image"])
            txt = model.encode_text(b["input_ids"], b["attention_mask"])
            return model.fuse(img, txt) if getattr(model, "can_fuse", False) else (img, txt)

        return both, "encode_image + encode_text (+ fuse for fusion models) of each pair"
    return (lambda b: head(model(b)["pooled"])), 'head(model(batch)["pooled"])'


def _time_once(fn: Callable[[dict], Any], batch: dict) -> float:
    start = time.perf_counter()
    fn(batch)
    return time.perf_counter() - start


def latency(fns: dict[str, Callable[[dict], Any]], batch: dict) -> tuple[dict[str, float], int]:
    """Median milliseconds per forward of each function on ``batch``: warm-up, then passes alternating between the
    functions (so that a slow spell of a shared machine hits both); returns (medians, repeats)."""
    with torch.no_grad():
        first = {}
        for name, fn in fns.items():
            for _ in range(WARMUP):
                fn(batch)
            first[name] = _time_once(fn, batch)
        slowest = max(first.values())
        repeats = int(min(MAX_REPEATS, max(MIN_REPEATS, REPEAT_BUDGET_S / max(slowest, 1e-6))))
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                times[name].append(_time_once(fn, batch))
    return {name: round(1000 * statistics.median(ts), 4) for name, ts in times.items()}, repeats


# -- the hook ------------------------------------------------------------------------------------------------------


def _real_copy(model: nn.Module, head: nn.Module, image_encoder: nn.Module | None) -> tuple[nn.Module, nn.Module]:
    """fp32 CPU copies of ``model`` and ``head`` (one deepcopy: shared modules stay shared), with the real image
    encoder where the frozen-encoder feature cache swapped it out."""
    swapped = image_encoder is not None and getattr(model, "image", None) is not image_encoder
    cached = model.image if swapped else None
    if swapped:
        model.image = image_encoder
    try:
        m, h = copy.deepcopy((model, head))
    finally:
        if swapped:
            model.image = cached
    return m.cpu().float().eval(), h.cpu().float().eval()


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    out: list[str] = []
    for w in caught:
        line = f"{w.category.__name__}: {str(w.message).strip().splitlines()[0][:200]}"
        if line not in out:
            out.append(line)
    return out


def evaluate_int8(
    spec: Any,
    task: Any,
    model: nn.Module,
    head: nn.Module,
    data: Any,
    image: Any,
    batch_size: int,
    result: Any,
    folder: Path,
    image_encoder: nn.Module | None = None,
) -> dict[str, Any]:
    """The run's ``quantized`` record (see the module docstring). ``result`` is the run's own test ``EvalResult``;
    ``image`` the suite's :class:`ImageSpec` (normalisation). An error in the INT8 pass is recorded in ``error``
    (the run's fp32 results stand) and shown by the report."""
    reference_is_run = spec.device == "cpu" and spec.hardware.precision == "fp32"
    out: dict[str, Any] = {
        "method": METHOD,
        "api": API,
        "engine": torch.backends.quantized.engine,
        "device": "cpu",
        "precision": "fp32 (autocast off)",
        "torch_threads": torch.get_num_threads(),
        "reference": "the run's own test evaluation (cpu, fp32)"
        if reference_is_run
        else f"the fp32 copy re-scored on cpu (the run was scored on {spec.device}, {spec.hardware.precision})",
    }
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            batcher = Batcher(image.mean, image.std, torch.device("cpu"), "none", image.crop_scale, spec.seed)
            fp32 = _real_copy(model, head, image_encoder)
            reference = result if reference_is_run else None
            out.update(_measure(task, fp32, data, batcher, batch_size, reference, folder))
    except Exception as exc:  # the INT8 copy failed where the fp32 model ran: recorded, the run stands
        out["error"] = f"{describe(exc)[:300]}"
    out["warnings"] = _warning_lines(caught)
    return out


def _measure(
    task: Any,
    fp32: tuple[nn.Module, nn.Module],
    data: Any,
    batcher: Batcher,
    batch_size: int,
    reference: Any,
    folder: Path,
) -> dict[str, Any]:
    """Quantise, score, size and time; ``reference`` is the run's own test result when it is the fp32 reference,
    else None (the fp32 copy is scored here)."""
    from torch.ao.quantization import quantize_dynamic

    fp32_model, fp32_head = fp32
    q_model, q_head = copy.deepcopy((fp32_model, fp32_head))
    pair = nn.ModuleDict({"model": q_model, "head": q_head})
    fp32_pair = nn.ModuleDict({"model": fp32_model, "head": fp32_head})
    linears = dict(quantizable_linears(fp32_pair))
    quantize_dynamic(pair, {nn.Linear}, dtype=torch.qint8, inplace=True)
    # The swap replaces children: a head (or model) that is itself an nn.Linear is a new module in the pair now.
    q_model, q_head = pair["model"], pair["head"]
    qlinear = _dynamic_linear()
    quantized_names = [name for name, m in pair.named_modules() if isinstance(m, qlinear)]
    total_params = _unique_numel(fp32_pair.parameters())
    linear_params = _unique_numel(p for name in quantized_names for p in linears[name].parameters())
    linear_weights = _unique_numel(linears[name].weight for name in quantized_names)

    off = contextlib.nullcontext
    start = time.perf_counter()
    q_result = task.evaluate(q_model, q_head, data, batcher, batch_size, off, split="test")
    int8_seconds = time.perf_counter() - start
    evidence: dict[str, str | None] = {"fp32": None, "int8": None}
    from harness.dist import world

    if q_result.evidence is not None and world().main:  # under torchrun, rank 0 writes
        atomic_write_bytes(folder / EVIDENCE_INT8, q_result.evidence.to_bytes())
        evidence["int8"] = EVIDENCE_INT8
    if reference is not None:
        fp32_metrics, fp32_seconds = dict(reference.metrics), None
        evidence["fp32"] = "evidence.npz" if reference.evidence is not None else None
    else:
        start = time.perf_counter()
        ref = task.evaluate(fp32_model, fp32_head, data, batcher, batch_size, off, split="test")
        fp32_seconds = time.perf_counter() - start
        fp32_metrics = dict(ref.metrics)
        if ref.evidence is not None and world().main:
            atomic_write_bytes(folder / EVIDENCE_FP32_CPU, ref.evidence.to_bytes())
            evidence["fp32"] = EVIDENCE_FP32_CPU

    fns_fp32, forward = forward_fn(task, fp32_model, fp32_head)
    fns_int8, _ = forward_fn(task, q_model, q_head)
    lat: dict[str, Any] = {}
    repeats = {}
    for bs in LATENCY_BATCHES:
        n = min(bs, len(data.test))
        batch = batcher(data.test, torch.arange(n), with_targets=False)
        ms, reps = latency({"fp32": fns_fp32, "int8": fns_int8}, batch)
        lat[f"bs{bs}"] = {"batch": n, **ms, "speedup": round(ms["fp32"] / ms["int8"], 4) if ms["int8"] > 0 else None}
        repeats[f"bs{bs}"] = reps

    d32, d8 = disk_bytes(fp32_model, fp32_head), disk_bytes(q_model, q_head)
    m32, m8 = memory_bytes(fp32_model, fp32_head), memory_bytes(q_model, q_head)
    return {
        "linear_layers": len(linears),
        "linear_layers_quantized": len(quantized_names),
        "params": total_params,
        "linear_params": linear_params,
        "linear_weight_params": linear_weights,
        "linear_fraction": round(linear_params / total_params, 6) if total_params else None,
        "disk_bytes": {"fp32": d32, "int8": d8},
        "disk_ratio": round(d8 / d32, 6),
        "memory_bytes": {"fp32": m32, "int8": m8},
        "memory_ratio": round(m8 / m32, 6),
        "metrics_fp32": {k: float(v) for k, v in fp32_metrics.items()},
        "metrics": {k: float(v) for k, v in q_result.metrics.items()},
        "evidence": evidence,
        "eval_seconds": {
            "int8": round(int8_seconds, 3),
            "fp32": None if fp32_seconds is None else round(fp32_seconds, 3),
        },
        "latency_ms": lat,
        "latency": {
            "forward": forward,
            "statistic": "median",
            "warmup": WARMUP,
            "repeats": repeats,
            "order": "fp32 and int8 passes alternate",
        },
    }
