"""Run folders on disk: atomic files, the per-run lock, and the writer of a run in progress.

Every file is written to a temporary name in the same folder, flushed, fsynced and renamed into place, so a reader
never sees half a file and a crash never corrupts what was there. Files get the usual permissions (0666 minus the
umask, so 0644 under the common umask 022), not the 0600 of a bare temporary file.

A run is *claimed* before it is trained: :class:`RunLock` holds an exclusive ``flock`` on ``<run folder>/.lock``
for as long as the run executes. Another process (a second ``xmbench run`` on the same ``--out``, a shard of the
same suite) that finds the lock held skips that run. The kernel drops the lock when its process dies, even by
SIGKILL, so a lock left behind by a killed process is taken over by the next process that asks; the lock file
records who held it (pid, host, start time) for the messages. ``flock`` needs a file system that supports it
(local disks, NFSv4, Lustre mounted with ``flock``).

The run's record (``metrics.json`` / ``error.json``) is read and written only by :mod:`harness.results.record`.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import naming
from harness.jsonio import loads

SPEC = "spec.json"
LOG = "log.jsonl"
PREDICTIONS = "predictions.jsonl"
LOCK = ".lock"


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (Linux 4.7+)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path`` (mode 0666 & ~umask).

    A file-system error names ``path`` (not the temporary file, nor no file at all, as ``fsync`` would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with naming(path):
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), FILE_MODE)
                os.fsync(fh.fileno())
            try:
                os.replace(tmp, path)
            except OSError as exc:  # it names the temporary file first: name the file being written
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """JSON with ``allow_nan=False``: a NaN never reaches a results file as the non-standard token ``NaN``."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=False) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"Expected a JSON-serialisable value, but got {type(obj).__name__}")


def read_json(path: Path) -> Any:
    """A JSON file xmbench wrote; ``ValueError`` when it is malformed (see :func:`harness.jsonio.loads`)."""
    return loads(path.read_bytes())


class RunLock:
    """An exclusive, non-blocking claim on one run folder (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self._fd: int | None = None
        self.previous: dict[str, Any] = {}  # who held the lock file before us, if it was left behind

    def acquire(self) -> bool:
        """Claim the run; False when a live process holds it (see :meth:`holder`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            try:
                with naming(self.path):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            # The file may have been replaced between open and flock: then lock the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        self.previous = _parse(os.pread(fd, 4096, 0))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        data = json.dumps(info).encode()
        try:
            with naming(self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
        except BaseException:
            self.release()
            raise
        return True

    def left_behind(self) -> str | None:
        """After :meth:`acquire`: a description of a holder that died without releasing (taken over), or None."""
        prev = self.previous
        if not prev.get("pid") or prev.get("released"):
            return None
        return f"pid {prev['pid']} on {prev.get('host', '?')} since {prev.get('since', '?')}"

    def holder(self) -> str:
        """Who holds the lock now, for messages (best effort)."""
        try:
            info = _parse(self.path.read_bytes())
        except OSError:
            info = {}
        if not info.get("pid"):
            return "another process"
        return f"pid {info['pid']} on {info.get('host', '?')} since {info.get('since', '?')}"

    def looks_held(self) -> bool:
        """Whether the lock file names a holder that is still running, without touching the lock (a probe that
        took the lock, even for a moment, could make a real claimant skip the run). A holder on another host
        counts as running unless it released the lock."""
        try:
            info = _parse(self.path.read_bytes())
        except OSError:
            return False
        if not info.get("pid") or info.get("released"):
            return False
        if info.get("host") != socket.gethostname():
            return True
        try:
            os.kill(int(info["pid"]), 0)
        except PermissionError:  # alive, owned by another user
            return True
        except (ProcessLookupError, ValueError, OverflowError, TypeError):  # gone, or not a pid at all
            return False
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            info = _parse(os.pread(self._fd, 4096, 0))
            data = json.dumps({**info, "released": True}).encode()
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def exclusive(path: Path):
    """Hold a blocking exclusive ``flock`` on ``path`` for the ``with`` block: the processes that share a results
    folder write its report one at a time, each from what it reads while holding the lock, so the last report
    written is built from the latest state (never a stale one overwriting a newer one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        with naming(path):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _parse(data: bytes) -> dict[str, Any]:
    try:
        out = loads(data) if data.strip() else {}
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _log_until(path: Path, step: int) -> str:
    """The lines of a log whose step is at most ``step`` (a resumed run continues the log of its checkpoint)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    kept = []
    for line in lines:
        try:
            if int(json.loads(line)["step"]) <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    return "".join(kept)


class RunWriter:
    """Writes the files of one run in progress; the caller holds the run's :class:`RunLock`.

    Starting a run clears what an earlier, unfinished attempt left (its log and predictions), so ``log.jsonl`` is
    the log of exactly one attempt; a run resumed from a checkpoint keeps the log up to the checkpoint's step.
    """

    def __init__(self, folder: Path, resume_step: int | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        kept = _log_until(folder / LOG, resume_step) if resume_step is not None else ""
        with naming(folder / LOG):
            if kept:
                atomic_write_text(folder / LOG, kept)
            self._log = (folder / LOG).open("a" if kept else "w", encoding="utf-8")
            os.chmod(folder / LOG, FILE_MODE)

    def spec(self, spec: dict) -> None:
        atomic_write_json(self.folder / SPEC, spec)

    def log(self, record: dict) -> None:
        with naming(self.folder / LOG):
            self._log.write(json.dumps(record, default=_json_default) + "\n")
            self._log.flush()

    def predictions(self, rows: list[dict]) -> None:
        text = "".join(json.dumps(r, default=_json_default) + "\n" for r in rows)
        atomic_write_text(self.folder / PREDICTIONS, text)

    def array(self, name: str, arr: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(self.folder / f"{name}.npy", buf.getvalue())

    def evidence(self, data: bytes) -> None:
        """``evidence.npz``: the per-example evidence (see :mod:`harness.stats.evidence`)."""
        atomic_write_bytes(self.folder / "evidence.npz", data)

    def extra_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.folder / name, obj)

    def close(self) -> None:
        if not self._log.closed:
            with naming(self.folder / LOG):
                self._log.close()


class NullWriter:
    """The writer of a rank other than 0 under torchrun: the same calls, nothing written (rank 0 writes the run)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def spec(self, spec: dict) -> None: ...

    def log(self, record: dict) -> None: ...

    def predictions(self, rows: list[dict]) -> None: ...

    def array(self, name: str, arr: np.ndarray) -> None: ...

    def evidence(self, data: bytes) -> None: ...

    def extra_json(self, name: str, obj: Any) -> None: ...

    def close(self) -> None: ...
