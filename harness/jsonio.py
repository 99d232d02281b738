"""Parsing JSON that xmbench itself wrote (run records, specs, locks, cache sidecars and manifests).

Such a file may have been edited, truncated or replaced since: every way it can be malformed must raise ``ValueError``
(which the readers turn into "corrupt, re-run" or "cache miss"), including the ``RecursionError`` that Python's
parser raises on deeply nested input. Dataset and result files of the published formats are read by
:mod:`harness.data.formats` instead.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: bytes | str) -> Any:
    """``json.loads`` whose every failure is a ``ValueError`` (bad UTF-8, bad JSON, nesting too deep)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
