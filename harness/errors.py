"""User-facing errors.

Every problem a user can fix (a malformed suite, a missing file, an unknown name, a NaN loss) is raised as a
:class:`UserError`. The CLI prints its one-line message and exits with code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem the user can fix. The message is one line that names the file, key and value."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Collapse to one line: the CLI contract is a single line per error.
        super().__init__(" ".join(str(message).split()))


class RunFailed(UserError):
    """A single run failed (NaN loss, out of memory, ...). The suite records it and goes on."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ' Did you mean: a, b?' for close matches of ``name`` among ``choices``, or ''."""
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean: " + ", ".join(repr(lowered[c]) for c in close) + "?"


def available(choices: Iterable[str], limit: int = 12) -> str:
    """Format a short 'Available: ...' list."""
    items = sorted(str(c) for c in choices)
    shown = ", ".join(items[:limit])
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return f"Available: {shown}{more}."
