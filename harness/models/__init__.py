"""Model families: the registry and how families get into it.

A *family* is a registered builder (``timm``, ``bert``, ``xbert``, ...) with a pydantic config class. A suite names a
family in ``models.<name>.type`` and gives that family's parameters; :mod:`harness.suite.check` validates them
against the config. A suite is data: naming a type never imports anything but the family registered under it.

Families get into the registry in exactly two ways, both chosen by the person running xmbench, never by a suite:

- **entry points** in the group ``xmbench.models`` of an installed package: the entry point's name is the family
  name and its value the decorated builder. The shipped families (``baselines/``) register this way, through
  xmbench's own ``pyproject.toml``. Entry points are loaded lazily: only the families a suite names are imported.
- ``--plugin MODULE`` on the command line: xmbench imports MODULE, whose decorators register its families.

Importing this package does not import torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.errors import UserError, describe, did_you_mean
from harness.registry import Registry

KINDS = ("image", "text", "dual_encoder", "cross_modal")
ENTRY_POINT_GROUP = "xmbench.models"


@dataclass(frozen=True)
class BuildContext:
    """What a builder needs to know about the data: vocabulary, input size, sequence length.

    ``load_weights`` is False when ``xmbench validate`` builds every model on the meta device to check its
    configuration: builders then create the architecture without reading pretrained weights. ``where`` is the
    model's key path in the suite (``models.xbert``), for messages.
    """

    image_size: int
    max_text_len: int
    vocab_size: int | None = None
    pad_token_id: int = 0
    load_weights: bool = True
    where: str = ""

    def key(self, name: str) -> str:
        """The key path of one of the model's parameters, for messages: ``models.xbert.image_encoder``."""
        return f"{self.where}.{name}" if self.where else name


@dataclass(frozen=True)
class ModelFamily:
    """A registered model family; ``source`` (``module:object``) is part of every run's fingerprint."""

    name: str
    kind: str
    modalities: frozenset[str]
    config: type[BaseModel]
    build: Callable[[Any, BuildContext], Any]
    description: str = ""
    source: str = field(default="")


MODELS: Registry[ModelFamily] = Registry("model type")


def _register(family: ModelFamily, obj: Any) -> None:
    owner = _entry_points().get(family.name)
    if owner is not None and owner.module != obj.__module__:
        raise ValueError(
            f"Model type {family.name!r} from {family.source} collides with the installed entry point "
            f"{owner.value!r}; choose another name"
        )
    MODELS.register(family.name)(family)
    obj.family = family


def register_model(
    name: str, *, kind: str, modalities: set[str], config: type[BaseModel], description: str = ""
) -> Callable[[Callable], Callable]:
    """Decorator registering ``build(cfg, ctx) -> XModel`` as the family ``name`` (config: a pydantic class)."""
    if kind not in KINDS:
        raise ValueError(f"Expected `kind` to be one of {KINDS}, but got {kind!r}")

    def deco(build: Callable) -> Callable:
        doc = description or (build.__doc__ or "")
        source = f"{build.__module__}:{build.__qualname__}"
        _register(ModelFamily(name, kind, frozenset(modalities), config, build, doc, source), build)
        return build

    return deco


class UserModelConfig(BaseModel):
    """Parameters of a family registered with :func:`user_model`: keyword arguments for its factory."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    args: dict[str, Any] = Field(default_factory=dict)


def user_model(
    name: str | None = None, *, kind: str | None = None, modalities: set[str] | None = None
) -> Callable[[Callable], Callable]:
    """Register ``factory(ctx: BuildContext, **args) -> XModel`` (or an ``XModel`` subclass) as a model family.

    A suite then names it ``type: <name>`` with ``args: {...}``. ``name`` defaults to the object's ``__name__``;
    ``kind`` and ``modalities`` default to an ``XModel`` subclass's class attributes. The built model is checked
    against the model contract before training.
    """

    def deco(factory: Callable) -> Callable:
        k = kind or getattr(factory, "kind", None)
        mods = frozenset(modalities or getattr(factory, "modalities", None) or ())
        source = f"{factory.__module__}:{factory.__qualname__}"
        if k not in KINDS or not mods or not mods <= {"image", "text"}:
            raise ValueError(
                f"User model {source} must declare kind (one of {', '.join(KINDS)}) and modalities (a subset of "
                "{'image', 'text'}): pass them to @user_model(...) or set them on the XModel subclass"
            )
        family_name = name or factory.__name__

        def build(cfg: UserModelConfig, ctx: BuildContext):
            try:
                model = factory(ctx, **cfg.args)
            except TypeError as exc:
                raise UserError(f"model type {family_name!r} ({source}) rejected its args {cfg.args}: {exc}") from exc
            from harness.models.contract import check_static

            check_static(model, k, mods, f"user model {family_name!r} ({source})")
            return model

        doc = (factory.__doc__ or "user model").strip().splitlines()[0]
        _register(ModelFamily(family_name, k, mods, UserModelConfig, build, doc, source), factory)
        return factory

    return deco


@cache
def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def family_names() -> list[str]:
    """Every family a suite may name: installed entry points and families registered by plug-ins (no import)."""
    return sorted(set(_entry_points()) | set(MODELS))


def get_family(name: str, where: str = "") -> ModelFamily:
    """The family registered as ``name``, importing its entry point on first use."""
    prefix = f"{where}: " if where else ""
    if name in MODELS:
        return MODELS.get(name)
    ep = _entry_points().get(name)
    if ep is None:
        names = family_names()
        if not names:
            raise UserError(
                f"{prefix}no model types are registered: xmbench's own entry points are missing; reinstall it "
                "(pip install -e .) so that its package metadata lists them"
            )
        raise UserError(
            f"{prefix}unknown model type {name!r}.{did_you_mean(name, names)} Registered: {', '.join(names)}. "
            f"A suite only names registered types and never imports code: register your model with "
            f"@harness.models.user_model in a module and pass --plugin MODULE, or through the "
            f"{ENTRY_POINT_GROUP!r} entry point group of an installed package"
        )
    try:
        obj = ep.load()
    except Exception as exc:  # a broken plug-in: name it
        dist = getattr(ep.dist, "name", "?")
        raise UserError(
            f"{prefix}model type {name!r}: cannot load entry point {ep.value!r} (package {dist}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    family = getattr(obj, "family", None)
    if not isinstance(family, ModelFamily) or family.name != name:
        raise UserError(
            f"{prefix}entry point {name!r} = {ep.value!r} is not a model family named {name!r}; point it at a "
            "builder decorated with @harness.models.register_model or @harness.models.user_model"
        )
    return family


def load_families() -> Registry[ModelFamily]:
    """Load every installed family (for listings and tests) and return the registry."""
    for name in _entry_points():
        get_family(name)
    return MODELS


def load_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import the ``--plugin`` modules the user named on the command line (their decorators register families)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            dotted = module.removesuffix(".py").replace("/", ".").replace("\\", ".").strip(".")
            hint = f" such as {dotted!r}, not a file path" if dotted != module else ""
            raise UserError(
                f"--plugin {module}: cannot import it ({exc}); give an importable module name{hint} (on PYTHONPATH)"
            ) from exc
        except KeyboardInterrupt:
            raise
        except SystemExit as exc:  # the plug-in calls sys.exit() at import: never let it end xmbench with its code
            raise UserError(
                f"--plugin {module}: importing it called sys.exit({exc.code!r}); a plug-in module must only "
                "register its models when imported (move that code under `if __name__ == '__main__':`)"
            ) from exc
        except BaseException as exc:  # the plug-in's own code failed while registering
            raise UserError(f"--plugin {module}: importing it failed: {describe(exc)}") from exc
