"""Device resolution and mixed precision from one factory (timm style).

- fp32: no autocast.
- bf16: ``torch.autocast(device_type, dtype=torch.bfloat16)`` on CPU or CUDA; no GradScaler.
- fp16: CUDA only, ``torch.autocast("cuda", dtype=torch.float16)`` with a ``GradScaler``.

The GPU switches of the hardware block (``tf32``, ``channels_last``, ``compile``) are applied by
:func:`apply_switches` and :func:`compile_encoders`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from functools import partial

import torch

from harness.errors import UserError


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; an unavailable device is a UserError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"hardware.device: {device!r} requested but CUDA is not available here; use 'auto' or 'cpu'")
    if device.startswith("cuda:") and int(device.split(":")[1]) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise UserError(
            f"hardware.device: {device!r} requested but this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1}); "
            "use one of them, 'cuda' or 'auto'"
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("hardware.device: 'mps' requested but MPS is not available here; use 'auto' or 'cpu'")
    return torch.device(device)


def check_precision(device: torch.device, precision: str) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise UserError(
            f"hardware.precision: fp16 needs a CUDA device (GradScaler), but the device is {device.type}; "
            "use bf16 or fp32 there"
        )


def autocast_factory(device: torch.device, precision: str) -> Callable[[], ContextManager]:
    """A zero-argument factory of autocast contexts for the suite's precision."""
    check_precision(device, precision)
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 on CUDA; None otherwise (bf16 and fp32 need none)."""
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def apply_switches(hardware, model: torch.nn.Module | None = None) -> None:
    """TF32 on or off for CUDA matmuls and cuDNN convolutions, and ``model`` in channels_last when asked."""
    torch.backends.cuda.matmul.allow_tf32 = bool(hardware.tf32)
    torch.backends.cudnn.allow_tf32 = bool(hardware.tf32)
    if model is not None and hardware.channels_last:
        model.to(memory_format=torch.channels_last)


def compile_encoders(model, backend: bool | str = True) -> list[str]:
    """``torch.compile`` the model's image and text encoders in place (``backend``: True for the default,
    inductor, or a backend name); returns the compiled branches' names."""
    done = []
    kwargs = {} if backend is True else {"backend": backend}
    for name, module in model.branches().items():
        if name in ("image", "text") and isinstance(module, torch.nn.Module):
            module.compile(**kwargs)
            done.append(name)
    return done
