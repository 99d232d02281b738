"""Run folders: written atomically, never rewritten once finished.

A run folder holds ``spec.json`` (the resolved RunSpec + fingerprint), ``log.jsonl`` (training log), and when it
finishes ``metrics.json`` (metrics, timings, model facts, environment) plus predictions. A failed run writes
``error.json`` instead of ``metrics.json``. "Finished" means ``metrics.json`` exists and its fingerprint matches.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

METRICS = "metrics.json"
SPEC = "spec.json"
ERROR = "error.json"
LOG = "log.jsonl"
PREDICTIONS = "predictions.jsonl"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Expected a JSON-serialisable value, but got {type(obj).__name__}")


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def is_finished(folder: Path, fingerprint: str) -> bool:
    """True when ``folder`` holds a completed run with this fingerprint."""
    path = folder / METRICS
    if not path.is_file():
        return False
    try:
        return read_json(path).get("fingerprint") == fingerprint
    except (OSError, json.JSONDecodeError):
        return False


class RunWriter:
    """Writes one run folder. The finished marker (``metrics.json``) is written last."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ERROR).unlink(missing_ok=True)
        self._log = (folder / LOG).open("w", encoding="utf-8")

    def spec(self, spec: dict) -> None:
        atomic_write_json(self.folder / SPEC, spec)

    def log(self, record: dict) -> None:
        self._log.write(json.dumps(record, default=_json_default) + "\n")
        self._log.flush()

    def predictions(self, rows: list[dict]) -> None:
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        atomic_write_text(self.folder / PREDICTIONS, text)

    def array(self, name: str, arr: np.ndarray) -> None:
        import io

        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(self.folder / f"{name}.npy", buf.getvalue())

    def extra_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.folder / name, obj)

    def finish(self, metrics: dict) -> None:
        self._log.close()
        atomic_write_json(self.folder / METRICS, metrics)

    def fail(self, error: dict) -> None:
        self._log.close()
        atomic_write_json(self.folder / ERROR, error)
