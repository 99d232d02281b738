"""DICOM files (``.dcm``) in image folders: one file -> an (H, W, 3) uint8 array, then the usual resize.

Reading needs pydicom, an optional extra (``pip install 'xmbench[dicom]'``); it is imported only when a ``.dcm``
file is met, and its absence is one line that says so (it stops the run under either ``on_bad_sample``: it is not a
problem of one sample).

Pipeline (the DICOM grayscale pipeline up to the VOI LUT, PS3.3 C.11 and PS3.4 N.2):

1. **Stored values** ``s``: the decoded Pixel Data of the one frame (``pixel_array``; signedness and BitsStored as
   the file says).
2. **Modality LUT, linear**: ``x = s * slope + intercept``. ``slope`` and ``intercept`` are the suite's
   ``dicom.rescale_slope`` / ``dicom.rescale_intercept`` if set, else the file's RescaleSlope / RescaleIntercept
   tags, else 1 and 0. A Modality LUT Sequence is not applied.
3. **VOI window, linear** (PS3.3 C.11.2.1.2.1, VOI LUT Function LINEAR):
   ``y = ((x - (c - 0.5)) / (w - 1) + 0.5)`` clipped to [0, 1] (for ``w == 1``: 0 where ``x <= c - 0.5``, else 1),
   then ``round(255 * y)``, rounding halves up. ``c``, ``w`` are the suite's ``dicom.window_center`` and
   ``dicom.window_width`` (set together) if given, else the file's WindowCenter / WindowWidth tags (the first value
   when a tag holds several), else the minimum and maximum of ``x``: ``c = (lo + hi + 1) / 2``, ``w = hi - lo + 1``,
   which is exactly ``y = (x - lo) / (hi - lo)`` (a constant image is black). A window width below 1 in a file is
   refused (the standard requires ``w >= 1``; override it in the suite). VOILUTFunction (SIGMOID, LINEAR_EXACT) and
   a VOI LUT Sequence are not applied: the window is always the linear one above.
4. **MONOCHROME1** (the minimum is white) is inverted after windowing, ``255 - v``, unless
   ``dicom.invert_monochrome1: false``; MONOCHROME2 is kept as is.
5. **Channels**: the grey image is repeated to 3 channels (the encoders are ImageNet-pretrained RGB models).

Colour files (PhotometricInterpretation RGB, 8 bits per sample) pass through unchanged as uint8: no rescale and no
windowing (they are display values already); YBR_FULL and YBR_FULL_422 are converted to RGB by pydicom.

Refused, as a bad sample (:class:`~harness.data.images.BadImage`: stop under ``on_bad_sample: error``, skipped and
counted under ``skip``): multi-frame files (NumberOfFrames > 1; a sample is one image, and keeping only frame 0
would silently drop the rest: store one frame per file), other photometric interpretations (PALETTE COLOR, ...),
colour with more than 8 bits per sample, files without Pixel Data, images over the decompression-bomb limit,
compressed transfer syntaxes that pydicom cannot decode with the plug-ins installed (the message names what is
missing), and every file pydicom cannot parse (not DICOM, no ``DICM`` prefix, truncated).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.images import MAX_PIXELS, BadImage
from harness.errors import UserError

INSTALL = "pip install 'xmbench[dicom]'"
SKIP_HINT = "replace the file or set on_bad_sample: skip"
SUPPORTED = ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422")


@dataclass(frozen=True)
class DicomOptions:
    """The suite's ``dicom:`` block of an image folder (``None`` fields: from the file's tags)."""

    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    window_center: float | None = None
    window_width: float | None = None
    invert_monochrome1: bool = True

    @classmethod
    def from_spec(cls, spec: Any) -> DicomOptions | None:
        """From a :class:`harness.suite.schema.DicomSpec` (or None)."""
        return None if spec is None else cls(**spec.model_dump())

    def key(self) -> dict[str, Any] | None:
        """What the decoded pixels depend on, for cache keys; None for the defaults (keys stay as they were)."""
        return None if self == DicomOptions() else asdict(self)


def _pydicom(path: Path):
    try:
        import pydicom
    except ImportError:
        raise UserError(
            f"{path}: DICOM files need pydicom, which is not installed; install it with {INSTALL}"
        ) from None
    return pydicom


def window(x: np.ndarray, center: float, width: float) -> np.ndarray:
    """The linear VOI window of PS3.3 C.11.2.1.2.1 to uint8: ``round(255 * clip((x - (c - 0.5)) / (w - 1) + 0.5,
    0, 1))``, halves rounded up; ``w == 1`` is the step at ``c - 0.5``."""
    if not width >= 1:
        raise ValueError(f"window width must be >= 1, got {width}")
    x = np.asarray(x, dtype=np.float64)
    if width == 1:
        v = np.where(x > center - 0.5, 255.0, 0.0)
    else:
        # 255 * y, multiplied before dividing: integer inputs whose exact result is a half stay exact halves
        v = np.clip((x - (center - 0.5)) * 255.0 / (width - 1) + 127.5, 0.0, 255.0)
    return np.floor(v + 0.5).astype(np.uint8)


def _first(value: Any) -> float | None:
    """A DS tag's value as a float (the first of a multi-valued one); None when absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, (int, float, str)):  # MultiValue
        value = value[0] if len(value) else None
        if value is None or value == "":
            return None
    return float(value)


def read_dicom(path: Path, options: DicomOptions | None = None) -> np.ndarray:
    """Decode one DICOM file to an (H, W, 3) uint8 array (see the module docstring for the pipeline)."""
    options = options or DicomOptions()
    pydicom = _pydicom(path)
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError:
        raise BadImage(path, "not a DICOM file (no 'DICM' prefix after the 128-byte preamble)", SKIP_HINT) from None
    except (MemoryError, UserError):
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise BadImage(
                path, f"cannot read image ({exc.strerror or exc})", "check the file and its permissions"
            ) from exc
        raise BadImage(path, f"cannot parse DICOM file ({type(exc).__name__}: {exc})", SKIP_HINT) from exc
    except Exception as exc:  # pydicom raises many kinds on a damaged file; each is a bad sample
        raise BadImage(path, f"cannot parse DICOM file ({type(exc).__name__}: {exc})", SKIP_HINT) from exc
    try:
        return _pixels(path, ds, options)
    except (BadImage, MemoryError):
        raise
    except Exception as exc:
        syntax = _transfer_syntax(ds)
        if syntax is not None and syntax.is_compressed:
            raise BadImage(
                path,
                f"cannot decode DICOM pixel data compressed as {syntax.name} ({type(exc).__name__}: {exc})",
                "install a pydicom decoder for it (the plug-ins named above), convert the file to an uncompressed "
                "transfer syntax, or set on_bad_sample: skip",
            ) from exc
        raise BadImage(path, f"cannot decode DICOM pixel data ({type(exc).__name__}: {exc})", SKIP_HINT) from exc


def _transfer_syntax(ds: Any):
    meta = getattr(ds, "file_meta", None)
    return getattr(meta, "TransferSyntaxUID", None) if meta is not None else None


def _pixels(path: Path, ds: Any, options: DicomOptions) -> np.ndarray:
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise BadImage(path, "DICOM file has float pixel data, which is not supported", SKIP_HINT)
        raise BadImage(path, "DICOM file has no Pixel Data element (truncated, or not an image)", SKIP_HINT)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise BadImage(
            path,
            f"multi-frame DICOM file ({frames} frames) is not supported",
            "store one frame per file, or set on_bad_sample: skip",
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows <= 0 or cols <= 0:
        raise BadImage(path, f"DICOM image is {cols}x{rows} pixels (Rows and Columns must be positive)", SKIP_HINT)
    if rows * cols > MAX_PIXELS:
        raise BadImage(
            path, f"image is {cols}x{rows} pixels, over the decompression-bomb limit of {MAX_PIXELS:,}", SKIP_HINT
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in SUPPORTED:
        raise BadImage(
            path,
            f"DICOM PhotometricInterpretation {photometric or '(missing)'!r} is not supported "
            f"(supported: {', '.join(SUPPORTED)})",
            SKIP_HINT,
        )
    arr = ds.pixel_array
    if photometric.startswith("MONOCHROME"):
        if arr.ndim != 2:
            raise BadImage(
                path, f"DICOM {photometric} pixel data has shape {arr.shape}, expected (rows, columns)", SKIP_HINT
            )
        grey = _grey(path, ds, arr, options)
        if photometric == "MONOCHROME1" and options.invert_monochrome1:
            grey = 255 - grey
        return np.repeat(grey[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise BadImage(
            path, f"DICOM {photometric} pixel data has shape {arr.shape}, expected (rows, columns, 3)", SKIP_HINT
        )
    if arr.dtype != np.uint8:
        raise BadImage(
            path,
            f"DICOM colour image with {int(ds.get('BitsAllocated', 0))} bits per sample is not supported (8 bits only)",
            SKIP_HINT,
        )
    if photometric.startswith("YBR") and _needs_colour_conversion(ds):
        from pydicom.pixel_data_handlers.util import convert_color_space

        arr = convert_color_space(arr, photometric, "RGB")
    return np.ascontiguousarray(arr)


def _needs_colour_conversion(ds: Any) -> bool:
    """pydicom 3 returns YBR pixel data as RGB already (``as_rgb``); pydicom 2 returns it as stored."""
    import pydicom

    return int(pydicom.__version__.split(".")[0]) < 3


def _grey(path: Path, ds: Any, stored: np.ndarray, options: DicomOptions) -> np.ndarray:
    """Stored values -> modality LUT (linear) -> VOI window -> (H, W) uint8."""
    slope = options.rescale_slope
    if slope is None:
        slope = _first(ds.get("RescaleSlope"))
    intercept = options.rescale_intercept
    if intercept is None:
        intercept = _first(ds.get("RescaleIntercept"))
    x = stored.astype(np.float64) * (1.0 if slope is None else slope) + (0.0 if intercept is None else intercept)
    if options.window_center is not None and options.window_width is not None:
        center, width = options.window_center, options.window_width
    else:
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        if center is not None and width is not None and not width >= 1:
            raise BadImage(
                path,
                f"DICOM WindowWidth is {width:g}, below 1 (the standard requires >= 1)",
                "set the dataset's dicom.window_center and dicom.window_width, or set on_bad_sample: skip",
            )
        if center is None or width is None or not (math.isfinite(center) and math.isfinite(width)):
            lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
            center, width = (lo + hi + 1) / 2, hi - lo + 1
    return window(x, center, width)
