"""Refusing scores that are not numbers: NaN and ±inf have no rank, so no metric is defined on them.

Every official tool silently mis-ranks them (a NaN compares false with everything; pycocotools gives AP 100 to NaN
boxes), so every metric function checks its scores and raises :class:`NonFiniteError` naming the first bad entry.
"""

from __future__ import annotations

import numpy as np

from harness.errors import RunFailed

__all__ = ["NonFiniteError", "check_finite", "first_non_finite", "non_finite_name"]


class NonFiniteError(RunFailed, ValueError):
    """Scores with NaN or ±inf. A ``ValueError``; also a :class:`~harness.errors.RunFailed`, so the runner records the
    run as failed (with this message) and goes on with the next one, and ``xmbench score`` names the file."""


def non_finite_name(value: float) -> str:
    """``"NaN"``, ``"inf"`` or ``"-inf"``."""
    return "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def first_non_finite(arr: np.ndarray, row_offset: int = 0) -> str | None:
    """Where the first NaN/±inf of ``arr`` is (``"row 3, column 7 is inf"``, ``"entry 5 is NaN"``), or None.

    Integer and boolean arrays are always finite. The check is two reductions (``max`` propagates NaN and shows +inf,
    ``min`` shows -inf): no temporary array unless something is wrong.

    Args:
        arr: A numpy array.
        row_offset: Added to the reported row (for blocks of a larger matrix).
    """
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    if np.isfinite(arr.max()) and np.isfinite(arr.min()):
        return None
    idx = np.argwhere(~np.isfinite(arr))[0]
    what = non_finite_name(arr[tuple(idx)])
    if arr.ndim == 1:
        return f"entry {int(idx[0]) + row_offset} is {what}"
    if arr.ndim == 2:
        return f"row {int(idx[0]) + row_offset}, column {int(idx[1])} is {what}"
    return f"entry {(int(idx[0]) + row_offset, *(int(i) for i in idx[1:]))} is {what}"


def check_finite(arr: np.ndarray, name: str, row_offset: int = 0) -> None:
    """Raise :class:`NonFiniteError` ``Expected `name` to be finite, but row 3, column 7 is inf`` if ``arr`` has a
    NaN or ±inf."""
    where = first_non_finite(arr, row_offset)
    if where is not None:
        raise NonFiniteError(f"Expected `{name}` to be finite, but {where}")
