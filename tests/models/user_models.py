"""User models for tests: named in suites as ``tests.models.user_models:<factory>``."""

from __future__ import annotations

import torch
from torch import nn

from harness.models import BuildContext, user_model
from harness.models.base import XModel


class MeanColour(XModel):
    """An image-only user model: the per-channel mean colour through a linear layer."""

    kind = "image"
    modalities = frozenset({"image"})

    def __init__(self, ctx: BuildContext, width: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(3, width)
        self.feature_dim = width

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"pooled": self.proj(batch["image"].mean(dim=(2, 3)))}


@user_model(kind="image", modalities={"image"})
def mean_colour(ctx: BuildContext, width: int = 8) -> MeanColour:
    """Factory form of MeanColour."""
    return MeanColour(ctx, width)


@user_model(kind="image", modalities={"image"})
def wrong_shape(ctx: BuildContext) -> XModel:
    model = MeanColour(ctx, 8)
    model.feature_dim = 5  # lies about its width
    return model


def undeclared(ctx: BuildContext) -> XModel:
    return MeanColour(ctx)
