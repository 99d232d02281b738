"""Checkpoints of a run in progress: written atomically, read with ``weights_only=True``, pruned to ``keep``.

A checkpoint holds everything that the rest of the run depends on, so that a run killed at any moment (SIGKILL, a
node that disappears) and started again from its last checkpoint ends with exactly the numbers of an uninterrupted
run (on CPU; tested by killing a subprocess):

- the model and task head, the optimiser, the scheduler and the gradient scaler;
- every RNG state: python ``random``, numpy's global generator, torch's CPU generator and every CUDA generator, the
  data order's generator and the augmentation generator;
- the position in the data order (epoch, the epoch's permutation, the cursor in it);
- the loop's own state: optimiser steps done, samples seen, the best val result so far, the early-stopping counter,
  the time spent so far and any micro-batch adjustment after an out-of-memory error.

Files live in ``<run folder>/checkpoints/``: ``step-0000040.pt`` (the ``keep`` newest are kept) and ``best.pt``
(the model and head with the best val result; the one the test split is scored with). Each file records the run's
fingerprint; a file made for other settings is never resumed from. Only plain containers, numbers, strings and
tensors are saved, so that loading needs no pickled code (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.results.store import atomic_write_bytes

FOLDER = "checkpoints"
BEST = "best.pt"
_STEP = re.compile(r"^step-(\d{7})\.pt$")


def rng_state() -> dict[str, Any]:
    """Every global RNG state, as weights-only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, obj: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


class Checkpoints:
    """The checkpoint files of one run folder."""

    def __init__(self, run_folder: Path, fingerprint: str, keep: int = 1) -> None:
        self.folder = run_folder / FOLDER
        self.fingerprint = fingerprint
        self.keep = keep

    def steps(self) -> list[tuple[int, Path]]:
        """(step, path) of the resume checkpoints on disk, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _STEP.match(p.name))]
        return sorted(found)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write the resume checkpoint of ``step`` atomically, then prune to the ``keep`` newest."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step-{step:07d}.pt"
        _save(path, {"fingerprint": self.fingerprint, "step": step, **state})
        for _, old in self.steps()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _save(self.folder / BEST, {"fingerprint": self.fingerprint, **state})

    def latest(self) -> tuple[dict[str, Any] | None, list[str]]:
        """The newest resume checkpoint that loads and was made for this run, and why newer ones were passed over
        (a file cut short by a crash cannot exist, since writes are atomic, but a disk can still damage one)."""
        problems = []
        for _, path in reversed(self.steps()):
            try:
                state = _load(path)
            except Exception as exc:
                problems.append(f"{path.name}: unreadable ({type(exc).__name__}: {str(exc)[:120]})")
                continue
            if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
                problems.append(f"{path.name}: made for other settings (fingerprint differs)")
                continue
            return state, problems
        return None, problems

    def best(self) -> dict[str, Any] | None:
        path = self.folder / BEST
        if not path.is_file():
            return None
        state = _load(path)
        return state if state.get("fingerprint") == self.fingerprint else None

    def finish(self) -> None:
        """The run is done: drop the resume checkpoints, keep ``best.pt``."""
        for _, path in self.steps():
            path.unlink(missing_ok=True)
