"""User-facing errors.

Every problem a user can fix (a malformed suite, a missing file, an unknown name, a NaN loss) is raised as a
:class:`UserError`. The CLI prints its one-line message and exits with code 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

# Characters that must not reach a terminal from a message: C0/C1 controls (an escape sequence in a file name taken
# from an annotation file would recolour or rewrite the terminal) and the bidirectional overrides (which reorder text).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def one_line(message: object) -> str:
    """``message`` as one printable line: whitespace runs (newlines included) become one space, and control or
    bidirectional-override characters are shown escaped (``\\x1b``, ``\\u202e``)."""
    text = " ".join(str(message).split())
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


class UserError(Exception):
    """A problem the user can fix. The message is one line that names the file, key and value."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Collapse to one printable line: the CLI contract is a single line per error.
        super().__init__(one_line(message))


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


# ``{at}`` is where else to write: " (--out)" for the output folder, " (XMBENCH_CACHE)" for the cache, or nothing.
_OS_HINTS = {
    errno.EACCES: "check the permissions{or_at}",
    errno.EPERM: "check the permissions{or_at}",
    errno.EROFS: "the file system is read-only; choose a writable location{at}",
    errno.ENOSPC: "the disk is full; free some space{or_at}{kept}",
    errno.EDQUOT: "the disk quota is exhausted; free some space{or_at}",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path{or_at}",
    errno.EISDIR: "it is a folder where a file is expected; move the folder away or give a file",
    errno.EEXIST: "something that is not a folder is in the way; move it away or check the path",
    errno.ELOOP: "a symbolic link points to itself (a loop); fix or remove the link",
    errno.EMFILE: "raise the limit of open files (ulimit -n)",
    errno.ENOLCK: "the file system does not support locks (flock); use a local disk{or_at}",
}


def os_error_message(exc: OSError, places: Iterable[tuple[Path, str]] = ()) -> str:
    """One line for an error from the file system: the path, what went wrong, what to do.

    ``places`` are (folder, option) pairs, e.g. ``(out, "--out")``, ``(cache, "XMBENCH_CACHE")``: an error on a path
    inside one of them suggests choosing another location through that option."""
    where = exc.filename if exc.filename is not None else exc.filename2
    what = exc.strerror or str(exc) or type(exc).__name__
    option = _place(where, places)
    hint = _OS_HINTS.get(exc.errno or -1, "check the path and the file system").format(
        at=f" ({option})" if option else "",
        or_at=f" or choose another location ({option})" if option else "",
        kept="; finished runs are kept" if option == "--out" else "",
    )
    if exc.errno in (errno.EACCES, errno.EPERM) and option:
        hint = hint.replace(" or choose", ", or choose")
    return one_line(f"{where if where is not None else 'file system'}: {what}; {hint}")


def _place(where: object, places: Iterable[tuple[Path, str]]) -> str | None:
    if where is None:
        return None
    path = Path(str(where))
    for folder, option in places:
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            if path.absolute().is_relative_to(folder.absolute()):
                return option
    return None


@contextlib.contextmanager
def naming(path: Path | str) -> Iterator[None]:
    """Give an ``OSError`` raised without a file name (``fsync``, ``flock``, ``pwrite``, a write to an open file)
    the name of ``path``, so that its one-line message says which file the disk refused."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc) or type(exc).__name__, str(path)) from exc
        raise


def expand_user(path: str | Path, what: str) -> Path:
    """``Path(path).expanduser()``, with a one-line error for ``~name`` of an unknown user (or no home folder)."""
    try:
        return Path(path).expanduser()
    except RuntimeError as exc:
        raise UserError(
            f"{what}: cannot expand {str(path)!r} ({exc}); write the full path without '~', or check the user name"
        ) from None


def describe(exc: BaseException) -> str:
    """``"Type: message"``, or just ``"Type"`` when the exception has no message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that memory ran out: ``MemoryError``, torch's ``OutOfMemoryError`` (CUDA) or the
    ``RuntimeError`` of torch's CPU allocator ("DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())
