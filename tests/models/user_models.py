"""A user-model plug-in for tests: ``--plugin tests.models.user_models`` registers the model types below."""

from __future__ import annotations

import torch
from torch import nn

from harness.models import BuildContext, user_model
from harness.models.base import XModel


@user_model("MeanColour")
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


@user_model("mean_colour", kind="image", modalities={"image"})
def mean_colour(ctx: BuildContext, width: int = 8) -> MeanColour:
    """Factory form of MeanColour."""
    return MeanColour(ctx, width)


@user_model("wrong_shape", kind="image", modalities={"image"})
def wrong_shape(ctx: BuildContext) -> XModel:
    model = MeanColour(ctx, 8)
    model.feature_dim = 5  # lies about its width
    return model
