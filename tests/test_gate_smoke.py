"""This project's own CI gate: the smoke suite, checked against the committed baseline through the pytest fixture.

A change that degrades the smoke models (or changes what the smoke suite measures without updating
``reports/baselines/smoke.json``) fails ``make test``, and so CI. See docs/ci.md.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_suite_against_the_committed_baseline(xmbench_check) -> None:
    result = xmbench_check(ROOT / "suites" / "smoke.yaml", ROOT / "reports" / "baselines" / "smoke.json")
    gated = {r.key for r in result.rows if r.gate}
    assert gated == {
        "vqa/vit/vqa_accuracy",
        "vqa/bert/vqa_accuracy",
        "vqa/xbert/vqa_accuracy",
        "classify/vit/top1",
        "classify/xbert/top1",
    }
    assert result.exit_code == 0 and all(r.threshold and r.threshold > 0 for r in result.rows if r.gate)
