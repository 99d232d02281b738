"""Commands and examples in the docs that a user copies: they parse and name the right commands."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def test_the_github_actions_workflow_in_docs_ci() -> None:
    (workflow,) = [b for b in _blocks(ROOT / "docs" / "ci.md", "yaml") if "jobs:" in b]
    data = yaml.safe_load(workflow)
    steps = data["jobs"]["gate"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == [
        'pip install -e ".[test]"',
        "xmbench run suites/smoke.yaml --out reports/smoke",
        "xmbench check reports/smoke --baseline reports/baselines/smoke.json",
    ]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == [
        "actions/checkout",
        "actions/setup-python",
        "actions/cache",
        "actions/upload-artifact",
    ]
    assert steps[1]["with"]["cache"] == "pip" and steps[2]["with"]["path"] == "~/.cache/xmbench"
    assert steps[-1]["if"] == "always()" and steps[-1]["with"]["path"] == "reports/smoke/report.html"
    assert (ROOT / "reports" / "baselines" / "smoke.json").is_file()
