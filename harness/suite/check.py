"""Semantic checks that need the registries: names, family parameters, overrides, pairings, paths.

Every failure is a one-line :class:`UserError` naming the file, the key path and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import UserError
from harness.models import ModelFamily, resolve_family
from harness.suite.loader import format_validation_error, unknown_name
from harness.suite.schema import SYNTHETIC, Suite, TrainSpec


@dataclass(frozen=True)
class ResolvedModel:
    """A suite model with its family, validated family config and resolved train block."""

    name: str
    family: ModelFamily
    config: BaseModel
    train: TrainSpec
    overrides: dict[str, Any]


def check_suite(suite: Suite, path: str | Path, data_root: Path | None = None) -> dict[str, ResolvedModel]:
    """Validate everything the schema cannot; return the resolved models.

    Args:
        suite: the loaded suite.
        path: the suite file, for messages.
        data_root: where relative dataset paths resolve; None skips the existence check.
    """
    where = str(path)
    models: dict[str, ResolvedModel] = {}
    for name, spec in suite.models.items():
        family = resolve_family(spec.type, where=f"{where}: models.{name}.type")
        try:
            config = family.config.model_validate(spec.params)
        except ValidationError as exc:
            raise UserError(f"{where}: {format_validation_error(exc, family.config, prefix=('models', name))}") from exc
        train, overrides = _resolve_train(suite, name, spec.train, where)
        models[name] = ResolvedModel(name, family, config, train, overrides)

    if suite.baseline is not None and suite.baseline not in suite.models:
        raise UserError(f"{where}: baseline: {unknown_name('model', suite.baseline, list(suite.models))}")

    from harness.data.sources import supported, tasks_for
    from harness.tasks import pairing_problem

    for tname, task in suite.tasks.items():
        key = f"tasks.{tname}"
        if task.dataset not in suite.datasets:
            raise UserError(f"{where}: {key}.dataset: {unknown_name('dataset', task.dataset, list(suite.datasets))}")
        kind = suite.datasets[task.dataset].kind
        if not supported(kind, task.type):
            raise UserError(
                f"{where}: {key}: a {task.type} task cannot use dataset {task.dataset!r} of kind {kind!r} "
                f"(it serves: {', '.join(tasks_for(kind))})"
            )
        for i, mname in enumerate(task.models):
            if mname not in suite.models:
                raise UserError(f"{where}: {key}.models[{i}]: {unknown_name('model', mname, list(suite.models))}")
            fam = models[mname].family
            problem = pairing_problem(task.type, fam.kind, fam.modalities, task)
            if problem:
                raise UserError(f"{where}: {key}.models[{i}]: model {mname!r} cannot run this task: {problem}")
        baseline = task.baseline or suite.baseline
        if task.baseline is not None and task.baseline not in suite.models:
            raise UserError(f"{where}: {key}.baseline: {unknown_name('model', task.baseline, list(suite.models))}")
        if baseline is not None and baseline not in task.models and task.baseline is not None:
            raise UserError(
                f"{where}: {key}.baseline: {baseline!r} is not one of this task's models {list(task.models)}"
            )

    if data_root is not None:
        from harness.data.sources import dataset_path

        for dname, dspec in suite.datasets.items():
            if dspec.path != SYNTHETIC:
                try:
                    dataset_path(dname, dspec, data_root, suite.synthetic, generate=False)
                except UserError as exc:
                    raise UserError(f"{where}: {exc}") from exc
    from harness.models.weights import preflight

    reads_text = any("text" in m.family.modalities for m in models.values())
    try:
        preflight({n: m.config for n, m in models.items()}, suite.text.tokenizer if reads_text else None)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from exc
    return models


def _resolve_train(suite: Suite, name: str, overrides: dict[str, Any], where: str) -> tuple[TrainSpec, dict]:
    if not overrides:
        return suite.train, {}
    key = f"models.{name}.train"
    allowed = set(suite.train.allow_overrides)
    for k in overrides:
        if k not in TrainSpec.model_fields or k == "allow_overrides":
            raise UserError(f"{where}: {key}: {unknown_name('train key', k, sorted(TrainSpec.model_fields))}")
        if k not in allowed:
            raise UserError(
                f"{where}: {key}.{k}: per-model override of {k!r} is not allowed by this suite; every pairing shares "
                f"the train block. To allow it, add {k!r} to train.allow_overrides (the report will list the override)"
            )
    merged = {**suite.train.model_dump(), **overrides}
    try:
        train = TrainSpec.model_validate(merged)
    except ValidationError as exc:
        raise UserError(
            f"{where}: {format_validation_error(exc, TrainSpec, prefix=('models', name, 'train'))}"
        ) from exc
    return train, dict(overrides)
