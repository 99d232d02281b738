"""Model facts and environment: parameters, forward and training FLOPs, memory, MFU, versions, git commit."""

from __future__ import annotations

import contextlib
import math
import platform
import random
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness import __version__


def count_params(*modules: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters over ``modules`` (shared parameters counted once)."""
    seen: dict[int, nn.Parameter] = {}
    for m in modules:
        for p in m.parameters():
            seen[id(p)] = p
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total, trainable


class FlopCountError(Exception):
    """FLOPs could not be counted (the counted step raised, or nothing was counted)."""


@contextlib.contextmanager
def _no_trace(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Undo, on exit, what one training step does to global RNGs, ``modules``' buffers and their ``.grad``\\s.

    Torch's CPU RNG and the CUDA RNGs of the devices holding ``modules``' parameters or buffers are forked; Python's
    ``random`` and NumPy's global RNG are saved and restored too (data augmentation inside a loss function). Every
    buffer (BatchNorm running stats, ``num_batches_tracked``, ...) is restored bit-exactly into the same tensor
    object, and re-attached if the step replaced it. Parameters' gradients are set aside (``.grad = None``) for the
    step and put back afterwards, so the step neither reads nor accumulates into them.
    """
    submodules: dict[int, nn.Module] = {}
    params: dict[int, nn.Parameter] = {}
    for module in modules:
        for sub in module.modules():
            submodules[id(sub)] = sub
        for p in module.parameters():
            params[id(p)] = p
    buffers = [
        (sub, name, buf, None if buf is None else buf.detach().clone())
        for sub in submodules.values()
        for name, buf in sub._buffers.items()
    ]
    grads = [(p, p.grad) for p in params.values()]
    cuda_devices = sorted(
        {
            t.device.index
            for t in [*params.values(), *(b for _, _, b, _ in buffers if b is not None)]
            if t.device.type == "cuda"
        }
    )
    py_state = random.getstate()
    np_random: Any = None
    with contextlib.suppress(ImportError):
        import numpy

        np_random = numpy.random
    np_state = np_random.get_state() if np_random is not None else None
    for p in params.values():
        p.grad = None
    try:
        with torch.random.fork_rng(devices=cuda_devices):
            yield
    finally:
        with torch.no_grad():
            for sub, name, buf, saved in buffers:
                if sub._buffers.get(name) is not buf:
                    sub._buffers[name] = buf
                if buf is not None and saved is not None:
                    buf.copy_(saved)
        for p, grad in grads:
            p.grad = grad
        random.setstate(py_state)
        if np_random is not None:
            np_random.set_state(np_state)


def train_flops(loss_fn: Callable[[], torch.Tensor], modules: Sequence[nn.Module]) -> int:
    """FLOPs of one training step's forward and backward, ``loss = loss_fn(); loss.backward()``, at the batch
    ``loss_fn`` uses, counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions: one
    multiply-add is 2 FLOPs; elementwise ops, norms, softmax and reductions are not counted).

    The caller sets ``modules`` to train mode; this function changes no module's mode. It leaves no trace (see
    :func:`_no_trace`): the global RNG streams, every buffer of ``modules`` and every parameter's ``.grad`` are as
    they were before. State outside ``modules`` (another module's buffers or gradients reached by ``loss_fn``) is
    not restored. The backward counts only what autograd computes: no gradient w.r.t. inputs that do not require
    one, so a first layer fed plain data costs forward + one matmul for its weight gradient.

    Attention: ``F.scaled_dot_product_attention`` (HF BERT ``attn_implementation="sdpa"``, timm's fused
    attention) is counted *only partly* out of the box on CPU (checked with torch 2.14): the fused CPU kernel
    (``_scaled_dot_product_flash_attention_for_cpu`` and its backward) has no FLOP formula and counts as 0, and it
    is what runs whenever attention dropout is 0 (eval, or timm's default ``attn_drop=0``); with dropout > 0 in
    train mode torch falls back to the math path whose bmm's are counted. On CUDA the fused kernels do have
    formulas, but their backward includes the recomputation of the score matrix (5 instead of 4 bmm's), i.e.
    hardware, not model FLOPs. The count therefore runs under ``sdpa_kernel(SDPBackend.MATH)``: attention
    decomposes into counted bmm's, giving the model FLOPs (forward ``4·B·L²·H``, backward ``8·B·L²·H`` for
    self-attention with hidden size ``H``) on every device, equal to eager attention. The math path materialises
    the ``L×L`` score matrix, so this one counted step can use more memory than a normal step.

    Raises :class:`FlopCountError` (chained to the cause) if the step raises, and if nothing at all is counted.
    Never returns None.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with _no_trace(modules):
            counter = FlopCounterMode(display=False)
            with sdpa_kernel(SDPBackend.MATH), torch.enable_grad(), counter:
                loss = loss_fn()
                loss.backward()
            total = int(counter.get_total_flops())
    except Exception as exc:
        raise FlopCountError(f"{type(exc).__name__}: {exc}") from exc
    if total <= 0:
        raise FlopCountError(
            "FlopCounterMode counted no FLOPs in the training step (no matmul or convolution it has a formula for)"
        )
    return total


def eval_flops(fn: Callable[[Any], Any], batch: Any) -> int:
    """FLOPs of one ``fn(batch)`` without autograd (the caller sets eval mode), counted like :func:`train_flops`
    (attention through the math path, so it is counted). Raises :class:`FlopCountError` with the reason."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    try:
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), counter:
            fn(batch)
        total = int(counter.get_total_flops())
    except Exception as exc:
        raise FlopCountError(f"{type(exc).__name__}: {exc}") from exc
    if total <= 0:
        raise FlopCountError("FlopCounterMode counted no FLOPs (no matmul or convolution it has a formula for)")
    return total


def train_flops_per_sample(loss_fn: Callable[[], torch.Tensor], modules: Sequence[nn.Module], batch_size: int) -> int:
    """:func:`train_flops` of a step on ``batch_size`` samples, divided by ``batch_size`` (rounded)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return round(train_flops(loss_fn, modules) / batch_size)


# Dense (no structured sparsity) peak TFLOP/s per precision, from the vendors' datasheets/whitepapers, keyed by a
# case-insensitive substring of torch.cuda.get_device_name(). The first matching key wins, so more specific keys
# come first ("H100 PCIe" before "H100", "A100" before "A10", "L40S" before "L40" before "L4"). fp32 is the plain
# CUDA-core rate; tf32/bf16/fp16 are tensor-core rates with FP32 accumulation (what PyTorch's matmuls use). A
# missing precision means the GPU has no such tensor-core path (V100/T4: no bf16); an empty row means "known but
# no reliable vendor number": peak_flops() returns None there instead of falling through to a shorter key.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    # NVIDIA H100 Tensor Core GPU datasheet (sparsity figures halved) and H100 whitepaper (dense 494.7/989.4).
    "H100 PCIe": {"fp32": 51.0, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "H100 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    # NVIDIA H200 Tensor Core GPU datasheet: H200 NVL like H100 NVL; H200 SXM and GH200 (Grace Hopper superchip
    # datasheet) like H100 SXM.
    "H200 NVL": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    "GH200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "H100": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    # NVIDIA A100 Tensor Core GPU datasheet (40GB/80GB, SXM4 and PCIe: same rates).
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
    # NVIDIA A40 / A30 / A10 datasheets.
    "A40": {"fp32": 37.4, "tf32": 74.8, "bf16": 149.7, "fp16": 149.7},
    "A30": {"fp32": 10.3, "tf32": 82.0, "bf16": 165.0, "fp16": 165.0},
    "A10G": {},  # AWS's A10 variant: NVIDIA publishes no datasheet and its clocks differ from A10; pass peak_tflops
    "A10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
    # NVIDIA L40S / L40 / L4 datasheets.
    "L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05},
    "L40": {"fp32": 90.5, "tf32": 90.5, "bf16": 181.05, "fp16": 181.05},
    "L4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
    # NVIDIA V100 datasheet: SXM2 15.7/125, PCIe 14/112, V100S PCIe 16.4/130 (FP16 tensor cores; no TF32/BF16).
    "V100S": {"fp32": 16.4, "fp16": 130.0},
    "V100-PCIE": {"fp32": 14.0, "fp16": 112.0},
    "V100": {"fp32": 15.7, "fp16": 125.0},
    # NVIDIA T4 datasheet (FP16 mixed precision; no TF32/BF16).
    "T4": {"fp32": 8.1, "fp16": 65.0},
    # NVIDIA Ada Lovelace architecture whitepaper (GeForce: FP32-accumulate tensor rate is half the FP16-acc one).
    "RTX 4090 D": {},  # China variant with fewer SMs
    "RTX 4090": {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2},
    # NVIDIA Ampere GA102 whitepaper (RTX 3090, FP32 accumulate).
    "RTX 3090 Ti": {},  # not in the GA102 whitepaper
    "RTX 3090": {"fp32": 35.6, "tf32": 35.6, "bf16": 71.0, "fp16": 71.0},
}

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def _tf32_matmuls() -> bool:
    """Whether CUDA fp32 matmuls may use TF32 tensor cores (the new ``fp32_precision`` API or ``allow_tf32``)."""
    matmul = torch.backends.cuda.matmul
    setting = getattr(matmul, "fp32_precision", "none")
    if setting in ("tf32", "ieee"):
        return setting == "tf32"
    try:
        return bool(matmul.allow_tf32)
    except RuntimeError:  # torch refuses to read the legacy flag after a mix of legacy and new API calls
        return False


def peak_flops(device_name: str | None, precision: str, override_tflops: float | None = None) -> float | None:
    """Peak dense FLOP/s of ``device_name`` (``torch.cuda.get_device_name()``) at ``precision``, for MFU.

    ``override_tflops`` (e.g. the suite's ``hardware.peak_tflops``) wins over the table. Otherwise the first key of
    :data:`PEAK_TFLOPS` contained in the name (case-insensitive) is used; precision ``"fp32"`` reads the tf32 column
    when torch lets fp32 matmuls use TF32 (``torch.backends.cuda.matmul.allow_tf32`` / ``fp32_precision``) and the
    GPU has one. None for an unknown device (CPUs, None) or a precision the GPU has no tensor-core path for.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if override_tflops is not None:
        if not override_tflops > 0:
            raise ValueError(f"override_tflops must be positive, got {override_tflops}")
        return float(override_tflops) * 1e12
    if not device_name:
        return None
    name = device_name.lower()
    row = next((r for key, r in PEAK_TFLOPS.items() if key.lower() in name), None)
    if row is None:
        return None
    column = "tf32" if precision == "fp32" and "tf32" in row and _tf32_matmuls() else precision
    tflops = row.get(column)
    return None if tflops is None else tflops * 1e12


def mfu(flops_per_sample: float | None, samples_per_s: float | None, peak: float | None) -> float | None:
    """Model FLOPs utilisation: ``flops_per_sample * samples_per_s / peak`` as a fraction (1.0 = the peak).

    ``flops_per_sample`` should be the training step's forward + backward FLOPs per sample
    (:func:`train_flops_per_sample`) and ``peak`` FLOP/s (:func:`peak_flops`). None if any input is None, not
    finite or not positive.
    """
    if flops_per_sample is None or samples_per_s is None or peak is None:
        return None
    if not all(math.isfinite(v) and v > 0 for v in (flops_per_sample, samples_per_s, peak)):
        return None
    return flops_per_sample * samples_per_s / peak


_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")
# Whether the last reset_peak_memory() managed to reset the kernel's peak-RSS counter (VmHWM).
_rss_reset = False


def _vm_hwm_mib() -> float | None:
    """The process' peak resident set size (VmHWM in /proc/self/status) in MiB, or None where unavailable."""
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # the kernel reports kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _ru_maxrss_mib() -> float:
    """getrusage's lifetime peak RSS in MiB (kilobytes on Linux, bytes on macOS)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak CUDA memory of this run (if CUDA) and the process' peak resident set size, in MiB.

    ``process_peak_rss_mb`` is VmHWM from /proc/self/status where it can be read (Linux): the peak since the last
    :func:`reset_peak_memory` if that reset succeeded, else since the process started; elsewhere it is getrusage's
    lifetime ``ru_maxrss``. :func:`rss_peak_scope` says which. The keys are fixed: ``Timings`` is built from them.
    """
    hwm = _vm_hwm_mib()
    out = {"process_peak_rss_mb": round(hwm if hwm is not None else _ru_maxrss_mib(), 1)}
    if device.type == "cuda":
        out["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["cuda_peak_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    return out


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window: CUDA's peak stats (on CUDA) and, on Linux, the process' peak RSS.

    The RSS peak (VmHWM) is reset by writing ``5`` to /proc/self/clear_refs (Linux >= 4.0). Where that fails the
    reported RSS peak stays the process-lifetime peak; :func:`rss_peak_scope` then says ``"process"``.
    """
    global _rss_reset
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        _PROC_CLEAR_REFS.write_text("5")
    except OSError:
        _rss_reset = False
    else:
        _rss_reset = _vm_hwm_mib() is not None


def rss_peak_scope() -> str:
    """``"since_reset"`` if ``process_peak_rss_mb`` covers only the time since the last successful
    :func:`reset_peak_memory`, else ``"process"`` (the whole process' lifetime)."""
    return "since_reset" if _rss_reset and _vm_hwm_mib() is not None else "process"


def git_commit(path: Path | None = None) -> str | None:
    """The harness checkout's commit (with '-dirty' if modified), or None outside git."""
    root = path or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, device and commit recorded in every run."""
    from importlib.metadata import PackageNotFoundError, version

    def _version(name: str) -> str | None:  # without importing the package (transformers alone takes ~0.35 s)
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "xmbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": _version("timm"),
        "transformers": _version("transformers"),
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
