"""Checks that a built model follows the one model contract (built-in families and user models alike)."""

from __future__ import annotations

import torch
from torch import nn

from harness.errors import UserError, is_out_of_memory
from harness.models.base import XModel


def check_static(model: object, kind: str, modalities: frozenset[str], what: str) -> None:
    """Attributes the runner relies on, before any data flows."""
    if not isinstance(model, nn.Module):
        raise UserError(f"{what}: the factory returned {type(model).__name__}, expected a torch.nn.Module (XModel)")
    if getattr(model, "kind", kind) != kind or frozenset(getattr(model, "modalities", modalities)) != modalities:
        raise UserError(
            f"{what}: the model says kind={getattr(model, 'kind', None)!r}, modalities="
            f"{sorted(getattr(model, 'modalities', []))}, but the factory declared {kind!r}, "
            f"{sorted(modalities)}"
        )
    dim = getattr(model, "feature_dim", None)
    if not isinstance(dim, int) or dim <= 0:
        raise UserError(
            f"{what}: expected a positive int attribute `feature_dim` (width of forward()['pooled']), but got {dim!r}"
        )
    if {"image", "text"} <= modalities:
        for attr in ("encode_image", "encode_text"):
            if getattr(type(model), attr, None) is getattr(XModel, attr, None):
                raise UserError(f"{what}: a two-tower model must implement {attr}() (see harness/models/base.py)")
        for attr in ("image_dim", "text_dim"):
            if not isinstance(getattr(model, attr, None), int) or getattr(model, attr) <= 0:
                raise UserError(f"{what}: a two-tower model needs a positive int `{attr}`")


@torch.no_grad()
def check_forward(model: nn.Module, batch: dict[str, torch.Tensor], what: str) -> None:
    """One forward on a real batch: ``{"pooled": (B, feature_dim)}`` with finite values."""
    was_training = model.training
    model.eval()
    try:
        out = model(batch)
    except Exception as exc:  # the model's own code failed on a real batch: name the model, not a bug of xmbench
        if is_out_of_memory(exc):
            raise
        raise UserError(f"{what}: forward(batch) raised {type(exc).__name__}: {exc}") from exc
    finally:
        model.train(was_training)
    pooled = out.get("pooled") if isinstance(out, dict) else None
    b = next(iter(batch.values())).shape[0]
    if not isinstance(pooled, torch.Tensor) or tuple(pooled.shape) != (b, model.feature_dim):
        got = tuple(pooled.shape) if isinstance(pooled, torch.Tensor) else type(out).__name__
        raise UserError(
            f"{what}: forward(batch) must return {{'pooled': tensor of shape ({b}, {model.feature_dim})}}, "
            f"but got {got}"
        )
    if not torch.isfinite(pooled.float()).all():
        raise UserError(f"{what}: forward(batch) returned non-finite values at initialisation")
