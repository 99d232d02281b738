"""Model families: the registry and the one model contract.

A *family* is a registered builder (``timm``, ``bert``, ``xbert``, ...) with a pydantic config class. A suite names a
family in ``models.<name>.type`` and gives that family's parameters; the loader validates them against the config.
Importing this package does not import torch; :func:`load_families` imports the shipped baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from harness.registry import Registry

KINDS = ("image", "text", "dual_encoder", "cross_modal")


@dataclass(frozen=True)
class BuildContext:
    """What a builder needs to know about the data: vocabulary, input size, sequence length."""

    image_size: int
    max_text_len: int
    vocab_size: int | None = None
    pad_token_id: int = 0


@dataclass(frozen=True)
class ModelFamily:
    """A registered model family."""

    name: str
    kind: str
    modalities: frozenset[str]
    config: type[BaseModel]
    build: Callable[[Any, BuildContext], Any]
    description: str = ""
    source: str = field(default="builtin")


MODELS: Registry[ModelFamily] = Registry("model type")


def register_model(
    name: str, *, kind: str, modalities: set[str], config: type[BaseModel], description: str = ""
) -> Callable[[Callable], Callable]:
    """Decorator registering ``build(cfg, ctx) -> XModel`` as the family ``name``."""
    if kind not in KINDS:
        raise ValueError(f"Expected `kind` to be one of {KINDS}, but got {kind!r}")

    def deco(build: Callable) -> Callable:
        family = ModelFamily(name, kind, frozenset(modalities), config, build, description or (build.__doc__ or ""))
        MODELS.register(name)(family)
        return build

    return deco


_loaded = False


def load_families() -> Registry[ModelFamily]:
    """Import the shipped model families (baselines) once and return the registry."""
    global _loaded
    if not _loaded:
        import baselines  # noqa: F401  (registers the shipped families)

        _loaded = True
    return MODELS
