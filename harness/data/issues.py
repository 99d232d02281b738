"""Bad samples found while loading a dataset: fail at the first one, or skip and account for every one.

``on_bad_sample: error`` (the default) stops at the first problem with a one-line message that names the file and the
offending id. ``on_bad_sample: skip`` drops the sample, and the report counts and lists what was skipped; nothing is
dropped silently. Structural problems (a missing annotation file, a file that is not the expected format) always stop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserError


@dataclass(frozen=True)
class BadSample:
    file: str
    sample: str  # the offending id, e.g. "question id 42"
    reason: str

    def line(self) -> str:
        return f"{self.file}: {self.sample}: {self.reason}"


@dataclass
class SampleIssues:
    """Collects bad samples of one dataset under its ``on_bad_sample`` policy."""

    dataset: str
    policy: str = "error"
    skipped: list[BadSample] = field(default_factory=list)

    def bad(self, file: str | Path, sample: str, reason: str) -> None:
        """Report a bad sample: raises under 'error', records it under 'skip' (the caller then drops the sample)."""
        item = BadSample(str(file), sample, reason)
        if self.policy != "skip":
            raise UserError(
                f"{item.line()}; fix the dataset, or set datasets.{self.dataset}.on_bad_sample: skip to drop such "
                "samples (they are counted and listed in the report)"
            )
        self.skipped.append(item)

    def summary(self) -> dict:
        """JSON-ready account of what was skipped."""
        return {
            "dataset": self.dataset,
            "count": len(self.skipped),
            "by_reason": dict(Counter(_kind(s.reason) for s in self.skipped)),
            "samples": [s.line() for s in self.skipped],
        }


def _kind(reason: str) -> str:
    """A short category for counting: the reason up to its first detail."""
    return reason.split(" (")[0].split(":")[0]
