"""Task types. Each turns a dataset into tensors, builds a head and a loss, and scores an eval pass.

The facts about a task type (its main metric, whether higher is better, what it requires of a model, which models
it can pair with) are class attributes of its :class:`~harness.tasks.base.Task` class; the registry maps the type
name of a suite (``type: vqa``) to that class. Each run copies the facts it needs into its ``RunRecord``, so readers
of results never import task code (or torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.registry import Registry

if TYPE_CHECKING:
    from harness.tasks.base import Task

TASKS: Registry[type[Task]] = Registry("task type")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a :class:`Task` subclass under its ``type``."""
    TASKS.register(cls.type)(cls)
    return cls


def task_registry() -> Registry[type[Task]]:
    """The task classes by type, with the built-in ones imported (imports torch)."""
    from harness.tasks import classification, detection, retrieval, vqa, zero_shot  # noqa: F401  (registration)

    return TASKS
