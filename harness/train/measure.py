"""Model facts and environment: parameters, forward FLOPs per sample, memory, versions, git commit."""

from __future__ import annotations

import platform
import resource
import subprocess
import sys
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


def forward_flops(fn, batch: dict[str, torch.Tensor]) -> int | None:
    """FLOPs of one call ``fn(batch)`` counted by ``torch.utils.flop_counter`` (None if counting fails)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            fn(batch)
        return int(counter.get_total_flops())
    except Exception:  # pragma: no cover - exotic ops the counter cannot trace
        return None


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak CUDA memory of this run (if CUDA) and the process' peak resident set size."""
    out = {"process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        out["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["cuda_peak_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    return out


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


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
    import timm
    import transformers

    env: dict[str, Any] = {
        "xmbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
