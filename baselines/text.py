"""Text-only baseline: a BERT encoder that never sees the image."""

from __future__ import annotations

import torch
from torch import nn

from harness.models import BuildContext, register_model
from harness.models.base import Encoded, XModel
from harness.models.encoders import TextEncoder
from harness.models.specs import TextEncoderSpec
from harness.suite.schema import Frozen


class BertConfigSpec(Frozen):
    """Parameters of the ``bert`` family."""

    text_encoder: TextEncoderSpec


class TextOnly(XModel):
    """BERT; the task puts its head on the pooled text vector ([CLS] by default)."""

    kind = "text"
    modalities = frozenset({"text"})

    def __init__(self, cfg: BertConfigSpec, ctx: BuildContext) -> None:
        super().__init__()
        self.text = TextEncoder(cfg.text_encoder, ctx)
        self.feature_dim = self.text_dim = self.text.hidden_size

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"pooled": self.text(batch["input_ids"], batch["attention_mask"]).pooled}

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        return self.text(input_ids, attention_mask)

    def branches(self) -> dict[str, nn.Module]:
        return {"text": self.text}


@register_model("bert", kind="text", modalities={"text"}, config=BertConfigSpec)
def build_bert(cfg: BertConfigSpec, ctx: BuildContext) -> TextOnly:
    """Text-only BERT (by name/path, or built from a config with the suite's tokenizer)."""
    return TextOnly(cfg, ctx)
