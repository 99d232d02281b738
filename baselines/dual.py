"""CLIP-style dual encoder: an image tower and a text tower, no fusion.

On retrieval the task adds the projections to the joint space and the InfoNCE (ITC) loss, with a learnable
temperature (init 0.07) or a fixed one (e.g. 0.1): ``tasks.<name>.temperature`` / ``learn_temperature``. The same
head and loss serve every two-tower model, so a dual encoder and a cross-modal BERT are compared on equal terms.
On image-classification tasks it is read through its image tower (the text prompt is ignored); it cannot answer
questions (no fusion), so the planner refuses it on VQA.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models import BuildContext, register_model
from harness.models.base import Encoded, XModel
from harness.models.encoders import ImageEncoder, TextEncoder
from harness.models.specs import ImageEncoderSpec, TextEncoderSpec
from harness.suite.schema import Frozen


class DualConfig(Frozen):
    """Parameters of the ``dual`` family."""

    image_encoder: ImageEncoderSpec
    text_encoder: TextEncoderSpec


class DualEncoder(XModel):
    kind = "dual_encoder"
    modalities = frozenset({"image", "text"})

    def __init__(self, cfg: DualConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.image = ImageEncoder(cfg.image_encoder, ctx)
        self.text = TextEncoder(cfg.text_encoder, ctx)
        self.image_dim, self.text_dim = self.image.num_features, self.text.hidden_size
        self.feature_dim = self.image_dim

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"pooled": self.image(batch["image"]).pooled}

    def encode_image(self, image: torch.Tensor) -> Encoded:
        return self.image(image)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        return self.text(input_ids, attention_mask)

    def spatial(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The image tower's feature maps: a dual encoder fuses nothing, so detection reads its image tower."""
        return self.image.feature_maps(batch["image"])

    def branches(self) -> dict[str, nn.Module]:
        return {"image": self.image, "text": self.text}

    def no_weight_decay(self) -> set[str]:
        inner = getattr(self.image.model, "no_weight_decay", None)
        return {f"image.model.{n}" for n in (inner() if callable(inner) else ())}


@register_model("dual", kind="dual_encoder", modalities={"image", "text"}, config=DualConfig)
def build_dual(cfg: DualConfig, ctx: BuildContext) -> DualEncoder:
    """CLIP-style dual encoder (timm image tower + BERT text tower; ITC on retrieval)."""
    return DualEncoder(cfg, ctx)
