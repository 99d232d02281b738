"""Image-only baselines: any timm classifier (ResNet-50, ViT-B/16, ...), read through ``forward_features``."""

from __future__ import annotations

import torch
from torch import nn

from harness.models import BuildContext, register_model
from harness.models.base import Encoded, XModel
from harness.models.encoders import ImageEncoder
from harness.models.specs import ImageEncoderSpec
from harness.suite.schema import Frozen


class TimmConfig(Frozen):
    """Parameters of the ``timm`` family."""

    image_encoder: ImageEncoderSpec


class ImageOnly(XModel):
    """A timm image model; the task puts its head on timm's pre-logits features."""

    kind = "image"
    modalities = frozenset({"image"})

    def __init__(self, cfg: TimmConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.image = ImageEncoder(cfg.image_encoder, ctx)
        self.feature_dim = self.image_dim = self.image.num_features

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"pooled": self.image(batch["image"]).pooled}

    def encode_image(self, image: torch.Tensor) -> Encoded:
        return self.image(image)

    def spatial(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return self.image.feature_maps(batch["image"])

    def branches(self) -> dict[str, nn.Module]:
        return {"image": self.image}

    def no_weight_decay(self) -> set[str]:
        inner = getattr(self.image.model, "no_weight_decay", None)
        return {f"image.model.{n}" for n in (inner() if callable(inner) else ())}


@register_model("timm", kind="image", modalities={"image"}, config=TimmConfig)
def build_timm(cfg: TimmConfig, ctx: BuildContext) -> ImageOnly:
    """Image-only timm classifier (ResNet, ViT, ... any timm name)."""
    return ImageOnly(cfg, ctx)
