"""Suite -> RunSpecs: one per (task, model, seed), fully resolved, each with a fingerprint.

The fingerprint hashes everything that can change a run's numbers: the resolved task, dataset, model, train and
hardware settings, image and text settings, the seed, the dataset and tokenizer fingerprints and the harness version.
A finished run folder is reused only when its fingerprint matches.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness import __version__
from harness.suite.check import ResolvedModel
from harness.suite.schema import Suite


class RunSpec(BaseModel):
    """Everything one run needs, resolved. Saved as ``spec.json`` in the run folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite: str
    task: str
    task_type: str
    task_spec: dict[str, Any]
    dataset: str
    dataset_spec: dict[str, Any]
    splits: tuple[str, str]
    model: str
    model_type: str
    kind: str
    model_params: dict[str, Any]
    overrides: dict[str, Any]
    seed: int
    device: str
    hardware: dict[str, Any]
    train: dict[str, Any]
    image: dict[str, Any]
    text: dict[str, Any]
    baseline: str | None
    dataset_fingerprint: str
    data_fingerprint_extra: dict[str, str] = {}
    tokenizer_fingerprint: str | None = None
    harness_version: str = __version__

    @property
    def run_id(self) -> str:
        return f"{self.task}/{self.model}/seed{self.seed}"

    @property
    def fingerprint(self) -> str:
        payload = self.model_dump(mode="json", exclude={"suite", "baseline"})
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def folder(self) -> str:
        """Run folder relative to the suite output: runs/<task>/<model>/seed<k>-<fingerprint[:10]>."""
        return f"runs/{self.task}/{self.model}/seed{self.seed}-{self.fingerprint[:10]}"


def plan_runs(
    suite: Suite,
    models: dict[str, ResolvedModel],
    device: str,
    dataset_fingerprints: dict[str, str],
    splits: dict[str, tuple[str, str]],
    tokenizer_fingerprint: str | None,
    extra_fingerprints: dict[str, dict[str, str]] | None = None,
) -> list[RunSpec]:
    """Expand tasks × models × seeds in suite order (task, then model, then seed)."""
    runs = []
    for tname, task in suite.tasks.items():
        dataset = suite.datasets[task.dataset]
        for mname in task.models:
            m = models[mname]
            reads_text = "text" in m.family.modalities
            for seed in suite.seeds:
                runs.append(
                    RunSpec(
                        suite=suite.name or "suite",
                        task=tname,
                        task_type=task.type,
                        task_spec=task.model_dump(mode="json", exclude={"models", "baseline"}),
                        dataset=task.dataset,
                        dataset_spec=dataset.model_dump(mode="json"),
                        splits=splits[tname],
                        model=mname,
                        model_type=m.family.name,
                        kind=m.family.kind,
                        model_params=m.config.model_dump(mode="json"),
                        overrides=m.overrides,
                        seed=seed,
                        device=device,
                        hardware=suite.hardware.model_dump(mode="json"),
                        train=m.train.model_dump(mode="json", exclude={"allow_overrides"}),
                        image=suite.image.model_dump(mode="json"),
                        text=suite.text.model_dump(mode="json") if reads_text else {},
                        baseline=task.baseline or suite.baseline,
                        dataset_fingerprint=dataset_fingerprints[tname],
                        data_fingerprint_extra=(extra_fingerprints or {}).get(tname, {}),
                        tokenizer_fingerprint=tokenizer_fingerprint if reads_text else None,
                    )
                )
    return runs
