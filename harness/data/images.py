"""Image files -> a decoded, resized uint8 tensor, once per (image list, size, resize policy).

Decoding runs in a thread pool (PIL releases the GIL while decoding and resizing). The decoded array is kept in an
in-process cache so every run of a suite that uses the same images at the same resolution decodes them once.
Normalisation happens per batch, on the cached tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness.errors import UserError

_CACHE: dict[str, object] = {}


def safe_join(root: Path, name: str, where: str) -> Path:
    """Join a file name taken from an annotation file to ``root``, refusing anything that escapes ``root``."""
    root_resolved = root.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root_resolved):
        raise UserError(
            f"{where}: file name {name!r} resolves outside the data root {str(root)!r}; refusing to read it"
        )
    return path


def load_image(path: Path, size: int, resize: str = "squash", interpolation: str = "bicubic") -> np.ndarray:
    """Decode one image to RGB and resize it to (size, size): (3, size, size) uint8."""
    from PIL import Image, UnidentifiedImageError

    resample = Image.Resampling.BICUBIC if interpolation == "bicubic" else Image.Resampling.BILINEAR
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if resize == "shorter_crop":
                w, h = im.size
                scale = size / min(w, h)
                im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), resample)
                w, h = im.size
                left, top = (w - size) // 2, (h - size) // 2
                im = im.crop((left, top, left + size, top + size))
            elif im.size != (size, size):
                im = im.resize((size, size), resample)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise UserError(f"{path}: image file is missing; check the dataset path and its images folder") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot decode image ({exc}); replace the file or set on_bad_sample: skip") from exc
    return arr.transpose(2, 0, 1)  # (3, H, W)


def decode_images(
    paths: Sequence[Path], size: int, resize: str = "squash", interpolation: str = "bicubic", workers: int = 0
):
    """Decode ``paths`` into a (N, 3, size, size) uint8 torch tensor, cached in-process."""
    import torch

    key = _cache_key(paths, size, resize, interpolation)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = load_image(paths[i], size, resize, interpolation)

    threads = max(1, workers)
    if threads == 1 or len(paths) < 64:
        for i in range(len(paths)):
            work(i)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(work, range(len(paths))))
    tensor = torch.from_numpy(out)
    _CACHE[key] = tensor
    return tensor


def _cache_key(paths: Sequence[Path], size: int, resize: str, interpolation: str) -> str:
    h = hashlib.sha256(f"{size}|{resize}|{interpolation}".encode())
    for p in paths:
        h.update(str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def clear_cache() -> None:
    """Drop decoded images held in memory."""
    _CACHE.clear()
