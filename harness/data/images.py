"""Image files: safe paths from annotation files, and decoding one image to a resized uint8 array.

This module decodes one file; :mod:`harness.data.image_cache` (which imports this module, never the other way round)
decodes whole image lists once into a memory-mapped on-disk cache shared by later runs and other processes.
Normalisation and augmentation happen per batch, on the cached tensors.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.data.dicom import DicomOptions

MAX_PIXELS = 89_478_485
"""Pillow's own decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, about 0.25 GB as RGB): a larger image is
refused as a bad sample before it is decoded."""


class BadImage(UserError):
    """An image file that is missing or cannot be decoded; ``detail`` is the reason without the path."""

    def __init__(self, path: Path, detail: str, hint: str) -> None:
        super().__init__(f"{path}: {detail}; {hint}")
        self.path, self.detail = path, detail


def safe_join(root: Path, name: str, where: str) -> Path:
    """Join a file name taken from an annotation file to ``root``, refusing names that escape ``root``.

    The check is lexical: absolute names and names whose normalised form climbs out with ``..`` are refused.
    Symbolic links the user placed inside the data root (e.g. an images folder linked from elsewhere) are followed.
    """
    normal = os.path.normpath(name)
    if os.path.isabs(name) or normal == ".." or normal.startswith(".." + os.sep):
        raise UserError(
            f"{where}: file name {name!r} resolves outside the data root {str(root)!r}; refusing to read it"
        )
    return root / normal


def _check_regular(path: Path) -> None:
    """Refuse what is not a regular file before opening it: a named pipe would block the decoder forever, a device
    would be read without end, a folder or a dangling link cannot be an image."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        kind = "image file is missing" if not os.path.islink(path) else "image file is a symbolic link to nothing"
        raise BadImage(path, kind, "check the dataset path and its images folder") from None
    except OSError as exc:
        raise BadImage(path, f"cannot read image ({exc.strerror or exc})", "check the file and its links") from None
    except ValueError as exc:  # an embedded NUL
        raise BadImage(path, f"invalid file name ({exc})", "fix the name in the annotation file") from None
    if not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device)"
        raise BadImage(path, f"image file is {what}", "replace it with an image file or set on_bad_sample: skip")


def load_image(
    path: Path, size: int, resize: str = "squash", interpolation: str = "bicubic", dicom: DicomOptions | None = None
) -> np.ndarray:
    """Decode one image to RGB and resize it to (size, size): (3, size, size) uint8.

    A ``.dcm`` file is decoded by :func:`harness.data.dicom.read_dicom` (with the dataset's ``dicom`` settings) to
    RGB pixels, then resized exactly like any other image."""
    from PIL import Image, UnidentifiedImageError

    resample = Image.Resampling.BICUBIC if interpolation == "bicubic" else Image.Resampling.BILINEAR
    _check_regular(path)
    if path.suffix.lower() == ".dcm":
        from harness.data.dicom import read_dicom

        return _resized(Image.fromarray(read_dicom(path, dicom)), size, resize, resample)
    try:
        with Image.open(path) as im:  # reads the header only
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise BadImage(
                    path,
                    f"image is {w}x{h} pixels, over the decompression-bomb limit of {MAX_PIXELS:,}",
                    "replace the file or set on_bad_sample: skip",
                )
            arr = _resized(im.convert("RGB"), size, resize, resample)
    except FileNotFoundError as exc:
        raise BadImage(path, "image file is missing", "check the dataset path and its images folder") from exc
    except BadImage:
        raise
    except OSError as exc:
        if exc.errno is not None:  # the file system refused (permissions, I/O error), not a decoding problem
            raise BadImage(
                path, f"cannot read image ({exc.strerror or exc})", "check the file and its permissions"
            ) from exc
        raise BadImage(path, f"cannot decode image ({exc})", "replace the file or set on_bad_sample: skip") from exc
    except (UnidentifiedImageError, Image.DecompressionBombError, ValueError, SyntaxError) as exc:
        raise BadImage(path, f"cannot decode image ({exc})", "replace the file or set on_bad_sample: skip") from exc
    except (EOFError, IndexError, TypeError, struct.error, ZeroDivisionError) as exc:  # corrupt headers in plug-ins
        raise BadImage(
            path, f"cannot decode image ({type(exc).__name__}: {exc})", "replace the file or set on_bad_sample: skip"
        ) from exc
    return arr


def _resized(im, size: int, resize: str, resample) -> np.ndarray:
    """An RGB PIL image resized to (size, size) by the resize policy: (3, size, size) uint8."""
    if resize == "shorter_crop":
        w, h = im.size
        scale = size / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), resample)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
    elif im.size != (size, size):
        im = im.resize((size, size), resample)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)  # (3, H, W)
