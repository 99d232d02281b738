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


def pairing_problem(task_type: str, model_kind: str, modalities: frozenset[str], task_spec=None) -> str | None:
    """Why a model cannot run a task, or None if it can.

    VQA: a text-only model is the standard language-prior baseline; an image-only model never sees the question, so
    it runs only when the task opts in with ``blind_baselines: true``; a dual encoder has no fusion.
    """
    if task_type == "vqa":
        if model_kind == "dual_encoder":
            return (
                "a dual encoder has no fusion, so it cannot answer a question about an image; use an xbert model "
                "with fusion: sum or concat as the late-fusion baseline"
            )
        if "text" not in modalities and not getattr(task_spec, "blind_baselines", False):
            return (
                "an image-only model never sees the question; to include it on purpose as a question-blind "
                "baseline, set blind_baselines: true on this task"
            )
        return None
    missing = REQUIRES[task_type] - modalities
    if not missing:
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
