"""Decoded-image cache: image files -> a memory-mapped (N, 3, S, S) uint8 array on disk, decoded once.

The first call for an image list decodes and resizes every image (``harness.data.images.load_image``, in a thread
pool) into ``<cache>/images/<key>.u8`` (raw C-order uint8, no header) and writes ``<key>.json`` beside it (shape,
settings, files that were bad). Later calls, in this process or any other, map that file copy-on-write
(``numpy.memmap(mode="c")``) and never decode: rows are paged in from the OS page cache on demand, so a split far
larger than RAM costs no resident memory until it is read, and every process reading the same cache shares the same
physical pages.

The key is a sha256 over :data:`CACHE_VERSION`, the caller's fingerprint, the size, the resize policy, the
interpolation, the DICOM settings when they are not the defaults (``harness.data.dicom.DicomOptions``: a changed
window decodes again) and the image paths in order. It does not look at the image bytes: callers that want a cache
to follow edited files pass a fingerprint that changes with them (``files_fingerprint`` hashes each file's size
and mtime).

Builds are atomic: both files are written under temporary names in the same folder, flushed and fsynced, then
renamed into place, the sidecar last. A cache entry counts only when the sidecar exists and matches, so an
interrupted build never looks complete; two processes building the same entry at once both produce valid, identical
files and the last rename wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from harness.data import images as _images
from harness.errors import UserError, naming
from harness.jsonio import loads

if TYPE_CHECKING:
    from harness.data.dicom import DicomOptions

CACHE_VERSION: int = 1
"""Bump when the decoded pixels or the file layout change; old cache files are then ignored."""

RESIZE_POLICIES = ("squash", "shorter_crop")
INTERPOLATIONS = ("bicubic", "bilinear")

_MEMO: dict[str, tuple[torch.Tensor, list[tuple[int, str]]]] = {}
_MEMO_LOCK = threading.Lock()


def load_images(
    paths: Sequence[Path],
    *,
    size: int,
    resize: str = "squash",
    interpolation: str = "bicubic",
    workers: int = 0,
    fingerprint: str = "",
    cache_dir: Path | None = None,
    skip_bad: bool = False,
    where: str = "",
    dicom: DicomOptions | None = None,
) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    """Decoded images of ``paths`` as a (N, 3, size, size) uint8 tensor backed by a memory-mapped cache file.

    Returns ``(images, bad)``. ``bad`` lists ``(index, reason)`` for files that were missing or undecodable; their
    rows are all zeros. With ``skip_bad=False`` the first bad file (in list order) raises :class:`UserError` naming
    it, on a cache hit as on a build; ``where`` (e.g. the annotation file) prefixes that message. A problem that
    is not one file's (pydicom not installed) stops under ``skip_bad`` too. ``dicom`` are the settings for ``.dcm``
    files (None: the defaults, from each file's tags).

    The cache lives in ``(cache_dir or cache_root()) / "images"``; see the module docstring for the key and the
    build protocol. Repeated calls in one process return the same tensor object (see :func:`clear_memo`). The
    tensor is writable, but writes stay private to this process (copy-on-write) and never reach the file.
    """
    if size <= 0:
        raise ValueError(f"Expected `size` to be a positive int, but got {size!r}")
    if resize not in RESIZE_POLICIES:
        raise ValueError(f"Expected `resize` to be one of {RESIZE_POLICIES}, but got {resize!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"Expected `interpolation` to be one of {INTERPOLATIONS}, but got {interpolation!r}")
    paths = list(paths)
    n = len(paths)
    if n == 0:  # nothing to cache, and an empty file cannot be memory-mapped
        return torch.zeros((0, 3, size, size), dtype=torch.uint8), []

    dicom_key = dicom.key() if dicom is not None else None
    key = cache_key(
        paths, size=size, resize=resize, interpolation=interpolation, fingerprint=fingerprint, dicom=dicom_key
    )
    folder = Path(cache_dir if cache_dir is not None else _default_root()) / "images"
    data_path, meta_path = folder / f"{key}.u8", folder / f"{key}.json"
    settings = {
        "version": CACHE_VERSION,
        "n": n,
        "size": size,
        "resize": resize,
        "interpolation": interpolation,
        "fingerprint": fingerprint,
    }
    if dicom_key is not None:  # only when set: the sidecars of other caches stay as they were
        settings["dicom"] = dicom_key

    memo_key = str(data_path)
    with _MEMO_LOCK:
        hit = _MEMO.get(memo_key)
    if hit is None:
        bad = _read_sidecar(meta_path, data_path, settings)
        if bad is None:
            with naming(data_path):  # a full disk (pwrite, fsync) names the cache file
                bad = _build(paths, data_path, meta_path, settings, max(1, workers), skip_bad, where, dicom)
        tensor = torch.from_numpy(np.memmap(data_path, dtype=np.uint8, mode="c", shape=(n, 3, size, size)))
        with _MEMO_LOCK:
            hit = _MEMO.setdefault(memo_key, (tensor, bad))
    tensor, bad = hit
    if bad and not skip_bad:
        index, reason = bad[0]
        raise UserError(_prefix(where, f"{paths[index]}: {reason}"))
    return tensor, list(bad)


def clear_memo() -> None:
    """Forget the tensors returned so far in this process (the next call maps the cache file again)."""
    with _MEMO_LOCK:
        _MEMO.clear()


def cache_key(
    paths: Sequence[Path],
    *,
    size: int,
    resize: str,
    interpolation: str,
    fingerprint: str,
    dicom: dict | None = None,
) -> str:
    """sha256 hex digest over CACHE_VERSION, fingerprint, size, resize, interpolation, the DICOM settings (only when
    given, so other keys are unchanged) and the paths in order."""
    fields: list = [CACHE_VERSION, fingerprint, size, resize, interpolation]
    if dicom is not None:
        fields.append(dict(sorted(dicom.items())))
    header = json.dumps(fields)
    h = hashlib.sha256(header.encode())
    for p in paths:
        h.update(b"\0")
        h.update(str(p).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def files_fingerprint(paths: Sequence[Path]) -> str:
    """Cheap content fingerprint: sha256 over each file's size and modification time (``-`` for missing files).

    One ``stat`` per file (about a second per 100k files on a local disk). Editing, replacing or adding an image
    file changes it, so a cache keyed with it never serves stale pixels.
    """
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{st.st_size}:{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(b"-\n")
    return "stat:" + h.hexdigest()


def _default_root() -> Path:
    from harness.data.text import cache_root

    return cache_root()


def _prefix(where: str, message: str) -> str:
    return f"{where}: {message}" if where else message


def _read_sidecar(meta_path: Path, data_path: Path, settings: dict) -> list[tuple[int, str]] | None:
    """The bad list of a complete, matching cache entry, or None when there is none (a miss)."""
    try:
        meta = loads(meta_path.read_bytes())
        nbytes = data_path.stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in settings.items()):
        return None
    if nbytes != settings["n"] * 3 * settings["size"] ** 2:
        return None
    try:
        return [(int(i), str(reason)) for i, reason in meta.get("bad", [])]
    except (TypeError, ValueError):
        return None


def _build(
    paths: list[Path],
    data_path: Path,
    meta_path: Path,
    settings: dict,
    threads: int,
    skip_bad: bool,
    where: str,
    dicom: DicomOptions | None = None,
) -> list[tuple[int, str]]:
    """Decode every image into a temporary file, then rename it and its sidecar into place; returns the bad list."""
    n, size = settings["n"], settings["size"]
    resize, interpolation = settings["resize"], settings["interpolation"]
    row_bytes = 3 * size * size
    folder = data_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < n * row_bytes:
        raise UserError(
            f"image cache: {n} images at {size}px need {n * row_bytes / 2**30:.2f} GiB in {folder}, but only "
            f"{free / 2**30:.2f} GiB are free; free some space or point XMBENCH_CACHE at a larger disk"
        )
    stem = f".{data_path.stem}.{os.getpid()}."
    fd, tmp_data = tempfile.mkstemp(prefix=stem, suffix=".u8.tmp", dir=folder)
    tmp_meta = None
    try:
        os.ftruncate(fd, n * row_bytes)  # sparse: rows of bad files stay zero without being written
        bad: list[tuple[int, str]] = []

        def work(i: int) -> None:
            try:
                row = np.ascontiguousarray(_images.load_image(paths[i], size, resize, interpolation, dicom))
            except _images.BadImage as exc:
                if not skip_bad:
                    raise
                bad.append((i, exc.detail))
                return
            _write_at(fd, memoryview(row).cast("B"), i * row_bytes)

        try:
            if threads == 1:
                for i in range(n):
                    work(i)
            else:
                with ThreadPoolExecutor(max_workers=threads) as pool:
                    futures = [pool.submit(work, i) for i in range(n)]
                    try:
                        for f in futures:  # in order: the first bad file by index is the one reported
                            f.result()
                    except BaseException:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise
        except UserError as exc:
            raise UserError(_prefix(where, str(exc))) from exc
        os.fsync(fd)
        bad.sort()
        meta = {**settings, "bad": [[i, reason] for i, reason in bad], "shape": [n, 3, size, size], "dtype": "uint8"}
        mfd, tmp_meta = tempfile.mkstemp(prefix=stem, suffix=".json.tmp", dir=folder)
        with os.fdopen(mfd, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_data, data_path)
        os.replace(tmp_meta, meta_path)  # last: the sidecar's presence marks the entry complete
        return bad
    finally:
        os.close(fd)
        for leftover in (tmp_data, tmp_meta):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)


_SEEK_LOCK = threading.Lock()


def _write_at(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (thread-safe; a full disk raises OSError instead of crashing a mapping)."""
    while data:
        if hasattr(os, "pwrite"):
            done = os.pwrite(fd, data, offset)
        else:  # pragma: no cover - Windows
            with _SEEK_LOCK:
                os.lseek(fd, offset, os.SEEK_SET)
                done = os.write(fd, data)
        data, offset = data[done:], offset + done


def decode_images(
    paths: Sequence[Path], size: int, resize: str = "squash", interpolation: str = "bicubic", workers: int = 0
) -> torch.Tensor:
    """Decode ``paths`` into a (N, 3, size, size) uint8 tensor through the cache (a bad file raises UserError)."""
    images, _ = load_images(
        paths,
        size=size,
        resize=resize,
        interpolation=interpolation,
        workers=workers,
        fingerprint=files_fingerprint(paths),
    )
    return images
