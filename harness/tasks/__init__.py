"""Task types. Each turns a dataset into tensors, builds a head and a loss, and scores an eval pass."""

from __future__ import annotations

from harness.registry import Registry

TASK_TYPES = ("classification", "multilabel", "retrieval", "vqa")


def task_registry() -> Registry:
    """Task classes by type (imports torch)."""
    from harness.tasks.classification import ClassificationTask, MultilabelTask
    from harness.tasks.retrieval import RetrievalTask
    from harness.tasks.vqa import VqaTask

    reg: Registry = Registry("task type")
    for cls in (ClassificationTask, MultilabelTask, RetrievalTask, VqaTask):
        reg.register(cls.type)(cls)
    return reg


# What each task type requires of a model, kept torch-free for `xmbench validate`.
REQUIRES: dict[str, frozenset[str]] = {
    "classification": frozenset({"image"}),
    "multilabel": frozenset({"image"}),
    "retrieval": frozenset({"image", "text"}),
    "vqa": frozenset(),
}
MAIN_METRIC = {"classification": "top1", "multilabel": "mAP", "retrieval": "r_mean", "vqa": "vqa_accuracy"}


def pairing_problem(task_type: str, model_kind: str, modalities: frozenset[str]) -> str | None:
    """Why a model cannot run a task type, or None if it can."""
    missing = REQUIRES[task_type] - modalities
    if not missing:
        if task_type == "vqa" and not modalities:
            return "it reads neither images nor text"
        return None
    if task_type == "retrieval":
        return (
            f"retrieval needs an image tower and a text tower to rank images against texts; a {model_kind} model "
            f"reads only {', '.join(sorted(modalities))}"
        )
    return (
        f"{task_type} needs image input and a {model_kind} model reads only {', '.join(sorted(modalities))}; "
        "image datasets have no text (models that read text get the task's prompt)"
    )
