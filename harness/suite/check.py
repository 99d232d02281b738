"""Semantic checks that need the registries: names, family parameters, overrides, pairings, baselines, data layout,
weights on disk, and (for ``validate`` and ``run``) every model built once on the meta device.

``xmbench validate`` runs all of them, so that it catches what ``run`` would fail on before anything trains. Every
failure is a one-line :class:`UserError` naming the file, the key path and the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from harness.errors import UserError, did_you_mean, is_out_of_memory
from harness.models import BuildContext, ModelFamily, get_family
from harness.suite.loader import unknown_name, validate_data
from harness.suite.schema import SYNTHETIC, Suite, TrainSpec


@dataclass(frozen=True)
class ResolvedModel:
    """A suite model with its family, validated family config and resolved train block."""

    name: str
    family: ModelFamily
    config: BaseModel
    train: TrainSpec
    overrides: dict[str, Any]


def check_suite(
    suite: Suite, path: str | Path, data_root: Path | None = None, *, build: bool = False
) -> dict[str, ResolvedModel]:
    """Validate everything the schema cannot; return the resolved models.

    Args:
        suite: the loaded suite.
        path: the suite file, for messages.
        data_root: where relative dataset paths resolve; None skips the dataset checks.
        build: also build every model on the meta device (no memory, no weights read).
    """
    where = str(path)
    models = resolve_models(suite, where)
    check_references(suite, models, where)
    check_claims(suite, where)
    if data_root is not None:
        check_datasets(suite, data_root, where)
    from harness.models.weights import preflight

    reads_text = any("text" in m.family.modalities for m in models.values())
    try:
        preflight({n: m.config for n, m in models.items()}, suite.text.tokenizer if reads_text else None)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from exc
    if build:
        build_on_meta(suite, models, where)
    return models


def resolve_models(suite: Suite, where: str) -> dict[str, ResolvedModel]:
    models: dict[str, ResolvedModel] = {}
    for name, spec in suite.models.items():
        family = get_family(spec.type, where=f"{where}: models.{name}.type")
        config = validate_data(family.config, spec.params, where, prefix=("models", name))
        train, overrides = _resolve_train(suite, name, spec.train, where)
        models[name] = ResolvedModel(name, family, config, train, overrides)
    return models


def task_baseline(suite: Suite, task_name: str) -> str | None:
    """The task's baseline: its own ``baseline`` when set (an explicit null means none), else the suite's."""
    task = suite.tasks[task_name]
    return task.baseline if "baseline" in task.model_fields_set else suite.baseline


def check_references(suite: Suite, models: dict[str, ResolvedModel], where: str) -> None:
    """Tasks name defined datasets and models, kinds serve task types, models can run their tasks, and every task
    runs its baseline."""
    from harness.data.kinds import DATASET_KINDS
    from harness.tasks import task_registry

    if suite.baseline is not None and suite.baseline not in suite.models:
        raise UserError(f"{where}: baseline: {unknown_name('model', suite.baseline, list(suite.models))}")
    tasks = task_registry()
    for tname, task in suite.tasks.items():
        key = f"tasks.{tname}"
        if task.dataset not in suite.datasets:
            raise UserError(f"{where}: {key}.dataset: {unknown_name('dataset', task.dataset, list(suite.datasets))}")
        kind = DATASET_KINDS.get(suite.datasets[task.dataset].kind)
        if not kind.serves(task.type):
            raise UserError(
                f"{where}: {key}: a {task.type} task cannot use dataset {task.dataset!r} of kind {kind.name!r} "
                f"(it serves: {', '.join(sorted(kind.splits))})"
            )
        for split_key in ("train_split", "val_split", "test_split"):
            split = getattr(task, split_key)
            if split is not None and kind.split_names is not None and split not in kind.split_names:
                raise UserError(
                    f"{where}: {key}.{split_key}: {split!r} is not a split of a {kind.name} dataset; use one of "
                    f"{', '.join(kind.split_names)}"
                )
        d_train, _, d_test = kind.splits[task.type]
        named = {
            "train_split": task.train_split or d_train,
            "val_split": None if task.val_fraction is not None else task.val_split,
            "test_split": task.test_split or d_test,
        }
        keys = list(named)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                if named[a] is not None and named[a] == named[b]:
                    raise UserError(
                        f"{where}: {key}: {a} and {b} are both {named[a]!r}, so models would be selected or scored on "
                        f"the examples they trained on; give {b} another split, or set val_fraction to hold out part "
                        "of the train split as val"
                    )
        select = task.select_metric
        metrics = tasks.get(task.type, where=f"{where}: {key}.type").metrics
        if select is not None and select not in metrics:
            raise UserError(
                f"{where}: {key}.select_metric: {select!r} is not a metric of a {task.type} task; "
                f"use one of {', '.join(metrics)}, or leave it unset for each task's main metric"
            )
        task_cls = tasks.get(task.type, where=f"{where}: {key}.type")
        for i, mname in enumerate(task.models):
            if mname not in suite.models:
                raise UserError(f"{where}: {key}.models[{i}]: {unknown_name('model', mname, list(suite.models))}")
            fam = models[mname].family
            problem = task_cls.pairing_problem(fam.kind, fam.modalities, task)
            if problem:
                raise UserError(f"{where}: {key}.models[{i}]: model {mname!r} cannot run this task: {problem}")
        _check_task_type(suite, tname, task, where)
        own = "baseline" in task.model_fields_set
        baseline = task_baseline(suite, tname)
        if baseline is None:
            continue
        if own and baseline not in suite.models:
            raise UserError(f"{where}: {key}.baseline: {unknown_name('model', baseline, list(suite.models))}")
        if baseline not in task.models:
            origin = f"{key}.baseline" if own else "the suite's baseline"
            raise UserError(
                f"{where}: {key}: the baseline {baseline!r} ({origin}) is not one of this task's models "
                f"{list(task.models)}, so the task would report no deltas; add it to {key}.models, set {key}.baseline "
                f"to one of its models, or set {key}.baseline: null for a task without a baseline"
            )


def _check_task_type(suite: Suite, tname: str, task: Any, where: str) -> None:
    """What only some task types need: detection scores whole images; zero-shot names the task that trains it."""
    key = f"tasks.{tname}"
    if task.type == "detection" and suite.image.resize != "squash":
        raise UserError(
            f"{where}: image.resize: {suite.image.resize!r} cannot serve the detection task {tname!r}: a crop cuts "
            "ground-truth boxes out of the scored image; use resize: squash"
        )
    if task.type != "zero_shot":
        return
    up = task.trained_by
    if up not in suite.tasks:
        raise UserError(f"{where}: {key}.trained_by: {unknown_name('task', up, list(suite.tasks))}")
    upstream = suite.tasks[up]
    if upstream.type != "retrieval":
        raise UserError(
            f"{where}: {key}.trained_by: {up!r} is a {upstream.type} task; zero-shot towers are trained on image-text "
            "pairs, so name a retrieval task of this suite"
        )
    for i, mname in enumerate(task.models):
        if mname not in upstream.models:
            raise UserError(
                f"{where}: {key}.models[{i}]: {mname!r} is not trained by tasks.{up} (its models: "
                f"{list(upstream.models)}); add it there, or remove it here"
            )


def check_model_tasks(suite: Suite, built: dict[str, Any], where: str) -> None:
    """Each built model can run each of its tasks (``Task.model_problem``: e.g. detection needs spatial maps)."""
    from harness.tasks import task_registry

    tasks = task_registry()
    for tname, task in suite.tasks.items():
        check = getattr(tasks.get(task.type), "model_problem", None)
        if check is None:
            continue
        for i, mname in enumerate(task.models):
            problem = check(built[mname]) if mname in built else None
            if problem:
                raise UserError(f"{where}: tasks.{tname}.models[{i}]: model {mname!r} cannot run this task: {problem}")


def check_claims(suite: Suite, where: str) -> None:
    """Every claim names a task, models of that task and one of its metrics."""
    from harness.tasks import task_registry

    for i, claim in enumerate(suite.claims):
        key = f"claims[{i}]"
        if claim.task not in suite.tasks:
            raise UserError(f"{where}: {key}.task: {unknown_name('task', claim.task, list(suite.tasks))}")
        task = suite.tasks[claim.task]
        fields = [(f, getattr(claim, f)) for f in ("model", "baseline") if getattr(claim, f) is not None]
        fields += [(f"order[{j}]", m) for j, m in enumerate(claim.order or ())]
        for field, name in fields:
            if name not in task.models:
                raise UserError(
                    f"{where}: {key}.{field}: {name!r} is not one of the models of task {claim.task!r} "
                    f"{list(task.models)}; a claim is about models trained on the same task"
                    + did_you_mean(name, task.models)
                )
        if claim.kind == "smaller" and suite.models[claim.model].quantize is None:
            raise UserError(
                f"{where}: {key}.smaller: model {claim.model!r} is not quantised; add quantize: dynamic_int8 under "
                f"models.{claim.model} to measure its INT8 copy"
            )
        if claim.kind == "delta" and claim.model == claim.baseline:
            raise UserError(f"{where}: {key}: model and baseline are both {claim.model!r}; name two different models")
        metrics = task_registry().get(task.type).metrics
        if claim.metric is not None and claim.metric not in metrics:
            raise UserError(
                f"{where}: {key}.metric: a {task.type} task has no metric {claim.metric!r}."
                f"{did_you_mean(claim.metric, metrics)} Its metrics: {', '.join(metrics)}"
            )


def task_splits(source: Any, task: Any) -> Any:
    """The task's :class:`~harness.data.sources.Splits` on an opened dataset."""
    return source.splits(task.type, task.train_split, task.val_split, task.test_split, task.val_fraction)


def check_datasets(suite: Suite, data_root: Path, where: str) -> None:
    """Every real dataset a task uses exists and has the files and folders its splits need (nothing is parsed)."""
    from harness.data.sources import DataSource, dataset_path

    used = {t.dataset for t in suite.tasks.values()}
    for dname, dspec in suite.datasets.items():
        if dname not in used or dspec.path == SYNTHETIC:
            continue
        try:
            root = dataset_path(dname, dspec, data_root, suite.synthetic, generate=False)
            source = DataSource(dname, dspec, root)
            for task in suite.tasks.values():
                if task.dataset == dname:
                    source.check_layout(task.type, task_splits(source, task))
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from exc


def meta_build_context(suite: Suite, vocab_size: int | None = None) -> BuildContext:
    """The build context of models built on the meta device (no weights read): the suite's image size and text
    length, and ``vocab_size`` (default: the suite's ``text.vocab_size``)."""
    return BuildContext(
        image_size=suite.image.size,
        max_text_len=suite.text.max_length,
        vocab_size=suite.text.vocab_size if vocab_size is None else vocab_size,
        pad_token_id=0,
        load_weights=False,
    )


def build_on_meta(suite: Suite, models: dict[str, ResolvedModel], where: str) -> None:
    """Build every model once on the meta device: a bad transformers config key, a bad timm argument or a fusion
    that does not fit fails here, with the key path, instead of after data preparation."""
    import torch

    ctx = meta_build_context(suite)
    built = {m.name: build_model(m, ctx, file=where, device=torch.device("meta")) for m in models.values()}
    check_model_tasks(suite, built, where)
    check_quantize(suite, built, where)


def check_quantize(suite: Suite, built: dict[str, Any], where: str) -> None:
    """``models.<name>.quantize`` can run on the built model (:func:`harness.train.quantize.quantize_problem`)."""
    from harness.train.quantize import quantize_problem

    for mname, mspec in suite.models.items():
        if mspec.quantize is None or mname not in built:
            continue
        problem = quantize_problem(built[mname])
        if problem:
            raise UserError(f"{where}: models.{mname}.quantize: {mspec.quantize!r} cannot run: {problem}")


def build_model(m: ResolvedModel, ctx: BuildContext, file: str = "", device: Any = None) -> Any:
    """``family.build`` with every failure turned into one line naming the file and the model's key path."""
    import contextlib
    import dataclasses

    import torch

    ctx = dataclasses.replace(ctx, where=f"models.{m.name}")
    prefix = f"{file}: " if file else ""
    scope = torch.device(device) if device is not None else contextlib.nullcontext()
    try:
        with scope:
            return m.family.build(m.config, ctx)
    except UserError as exc:
        msg = str(exc)
        raise UserError(prefix + (msg if msg.startswith(ctx.where) else f"{ctx.where}: {msg}")) from exc
    except Exception as exc:  # a family's builder (a plug-in's too) refused this configuration, however it says so
        if is_out_of_memory(exc):
            raise  # not a configuration error: the run fails with "out of memory"
        raise UserError(
            f"{prefix}{ctx.where}: building the {m.family.name!r} model failed: {type(exc).__name__}: {exc}"
        ) from exc


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
    train = validate_data(TrainSpec, merged, where, prefix=("models", name, "train"))
    return train, dict(overrides)
