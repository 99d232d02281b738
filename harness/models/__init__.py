"""Model families: the registry and the one model contract.

A *family* is a registered builder (``timm``, ``bert``, ``xbert``, ...) with a pydantic config class. A suite names a
family in ``models.<name>.type`` and gives that family's parameters; the loader validates them against the config.
Importing this package does not import torch; :func:`load_families` imports the shipped baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import UserError
from harness.registry import Registry, load_object

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


class UserModelConfig(BaseModel):
    """Parameters of a user model named ``package.module:factory``: keyword arguments for the factory."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    args: dict[str, Any] = Field(default_factory=dict)


def user_model(*, kind: str, modalities: set[str]) -> Callable[[Callable], Callable]:
    """Declare a user factory ``factory(ctx: BuildContext, **args) -> XModel`` for ``type: package.module:factory``.

    (An ``XModel`` subclass can be named directly instead: its ``kind`` and ``modalities`` class attributes are read.)
    """
    if kind not in KINDS:
        raise ValueError(f"Expected `kind` to be one of {KINDS}, but got {kind!r}")

    def deco(factory: Callable) -> Callable:
        factory.kind = kind  # type: ignore[attr-defined]
        factory.modalities = frozenset(modalities)  # type: ignore[attr-defined]
        return factory

    return deco


def resolve_family(type_: str, where: str) -> ModelFamily:
    """A registered family by name, or a user factory ``package.module:factory`` wrapped as a family."""
    if ":" not in type_:
        return load_families().get(type_, where=where)
    factory = load_object(type_, where)
    kind, modalities = getattr(factory, "kind", None), getattr(factory, "modalities", None)
    if kind not in KINDS or not modalities or not set(modalities) <= {"image", "text"}:
        raise UserError(
            f"{where}: user model {type_!r} must declare kind (one of {', '.join(KINDS)}) and modalities (a subset of "
            "{'image', 'text'}): subclass harness.models.base.XModel, or decorate the factory with "
            "@harness.models.user_model(kind=..., modalities=...)"
        )

    def build(cfg: UserModelConfig, ctx: BuildContext):
        try:
            model = factory(ctx, **cfg.args)
        except TypeError as exc:
            raise UserError(f"{where}: factory {type_!r} rejected its args {cfg.args}: {exc}") from exc
        from harness.models.contract import check_static

        check_static(model, kind, frozenset(modalities), f"user model {type_!r}")
        return model

    doc = (getattr(factory, "__doc__", None) or "user model").strip().splitlines()[0]
    return ModelFamily(type_, kind, frozenset(modalities), UserModelConfig, build, doc, source=type_)
