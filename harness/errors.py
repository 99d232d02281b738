"""User-facing errors.

Every problem a user can fix (a malformed suite, a missing file, an unknown name, a NaN loss) is raised as a
:class:`UserError`. The CLI prints its one-line message and exits with code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import difflib
import errno
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


_OS_HINTS = {
    errno.EACCES: "check the permissions, or choose another location (--out)",
    errno.EPERM: "check the permissions, or choose another location (--out)",
    errno.EROFS: "the file system is read-only; choose a writable location (--out)",
    errno.ENOSPC: "the disk is full; free some space or choose another location (--out); finished runs are kept",
    errno.EDQUOT: "the disk quota is exhausted; free some space or choose another location (--out)",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "it is a folder; give a file",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n)",
}


def os_error_message(exc: OSError) -> str:
    """One line for an error from the file system: the path, what went wrong, what to do."""
    where = exc.filename if exc.filename is not None else "file system"
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(exc.errno or -1, "check the path and the file system")
    return " ".join(f"{where}: {what}; {hint}".split())
