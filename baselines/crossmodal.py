"""The cross-modal BERT family: BERT + a timm image encoder, fused in one of four ways.

- ``single_stream``: visual tokens (ViT patches or CNN feature-map cells) are projected into BERT's embedding space
  with position and modality-type embeddings, concatenated with the text tokens and run through BERT's encoder
  (ViLT / VisualBERT style; the design documents' "visual tokenization").
- ``cross_attention``: BERT's text tokens attend to the projected visual tokens in ``fusion_layers`` layers
  (multi-head attention, residual + LayerNorm, feed-forward); the fused [CLS] is the joint vector.
- ``sum``: projected [CLS] + projected pooled image feature -> MLP (late fusion).
- ``concat``: [CLS] ‖ pooled image feature -> MLP.
- ``two_token``: the pooled image feature (projected to BERT's width) and [CLS] as a sequence of two tokens, one
  multi-head self-attention over them (``fusion_heads``, default BERT's), and the attended image token is the joint
  vector (design document 002: ``nn.MultiheadAttention(768, 8, batch_first=True)`` over ``[image, [CLS]]``, no
  residual, read at position 0).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from harness.models import BuildContext, register_model
from harness.models.base import Encoded, XModel
from harness.models.encoders import ImageEncoder, TextEncoder
from harness.models.specs import ImageEncoderSpec, TextEncoderSpec
from harness.suite.schema import Frozen

Fusion = Literal["single_stream", "cross_attention", "sum", "concat", "two_token"]


class CrossModalConfig(Frozen):
    """Parameters of the ``xbert`` family. Swapping ``fusion`` is a one-word change."""

    fusion: Fusion = "cross_attention"
    image_encoder: ImageEncoderSpec
    text_encoder: TextEncoderSpec
    fusion_layers: Annotated[int, Field(gt=0)] = 1
    fusion_heads: Annotated[int, Field(gt=0)] | None = None
    fusion_dim: Annotated[int, Field(gt=0)] | None = None
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    visual_pos_std: Annotated[float, Field(ge=0.0)] = 1.0


class VisualProjector(nn.Module):
    """Visual tokens -> text width, plus learned position and modality-type embeddings, then LayerNorm.

    The position embedding is initialised with a large std (``visual_pos_std``): small-init position embeddings are
    drowned by the projected features and the fusion cannot learn *where* a token is.
    """

    def __init__(self, in_dim: int, out_dim: int, num_tokens: int, pos_std: float, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.pos = nn.Parameter(torch.randn(1, num_tokens, out_dim) * pos_std)
        self.modality = nn.Parameter(torch.zeros(1, 1, out_dim))
        self.norm = nn.LayerNorm(out_dim, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.proj(tokens) + self.pos[:, : tokens.shape[1]] + self.modality  # (B, N, H)
        return self.drop(self.norm(x))


class CrossAttentionLayer(nn.Module):
    """Text tokens attend to visual tokens: x = LN(x + MHA(x, v, v)); x = LN(x + FFN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))
        self.norm2 = nn.LayerNorm(dim, eps=1e-12)
        self.drop = nn.Dropout(dropout)

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(text, visual, visual, need_weights=False)  # (B, T, H)
        x = self.norm1(text + self.drop(attended))
        return self.norm2(x + self.ffn(x))


class CrossModalBert(XModel):
    """BERT + timm image encoder with one of four fusions (see module docstring)."""

    kind = "cross_modal"
    modalities = frozenset({"image", "text"})

    def __init__(self, cfg: CrossModalConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = ImageEncoder(cfg.image_encoder, ctx)
        self.text = TextEncoder(cfg.text_encoder, ctx)
        h, dv = self.text.hidden_size, self.image.num_features
        self.image_dim, self.text_dim = dv, h
        fusion: dict[str, nn.Module] = {}
        if cfg.fusion in ("single_stream", "cross_attention"):
            fusion["visual"] = VisualProjector(dv, h, self.image.num_tokens, cfg.visual_pos_std, cfg.dropout)
            self.feature_dim = h
        heads = cfg.fusion_heads or self.text.model.config.num_attention_heads
        if cfg.fusion in ("cross_attention", "two_token") and h % heads:
            raise ValueError(f"Expected `fusion_heads` to divide the text width {h}, but got {heads}")
        if cfg.fusion == "cross_attention":
            fusion["layers"] = nn.ModuleList(
                CrossAttentionLayer(h, heads, cfg.dropout) for _ in range(cfg.fusion_layers)
            )
        elif cfg.fusion == "two_token":
            # The document feeds ResNet-50's 1000 logits into a 768-wide attention: the pooled feature is projected
            # to the text width instead (a repair, docs/claims.md, 002).
            fusion["image_proj"] = nn.Linear(dv, h)
            fusion["attn"] = nn.MultiheadAttention(h, heads, dropout=cfg.dropout, batch_first=True)
            self.feature_dim = h
        elif cfg.fusion == "single_stream":
            if ctx.max_text_len + self.image.num_tokens > self.text.model.config.max_position_embeddings:
                raise ValueError(
                    f"single_stream needs max_position_embeddings >= {ctx.max_text_len + self.image.num_tokens} "
                    f"(text {ctx.max_text_len} + visual {self.image.num_tokens} tokens)"
                )
        else:
            d = cfg.fusion_dim or h
            self.feature_dim = d
            if cfg.fusion == "sum":
                fusion["text_proj"] = nn.Linear(h, d)
                fusion["image_proj"] = nn.Linear(dv, d)
                fusion["mlp"] = nn.Sequential(nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
            else:
                fusion["mlp"] = nn.Sequential(nn.Linear(h + dv, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
        self.fusion = nn.ModuleDict(fusion)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = self.encode_image(batch["image"])
        if self.cfg.fusion == "single_stream":
            text = Encoded(tokens=None, pooled=None, mask=batch["attention_mask"], ids=batch["input_ids"])
        else:
            text = self.encode_text(batch["input_ids"], batch["attention_mask"])
        return {"pooled": self.fuse(image, text)}

    def encode_image(self, image: torch.Tensor) -> Encoded:
        return self.image(image)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        return self.text(input_ids, attention_mask)

    def fuse(self, image: Encoded, text: Encoded) -> torch.Tensor:
        fusion = self.cfg.fusion
        if fusion == "sum":
            return self.fusion["mlp"](self.fusion["text_proj"](text.pooled) + self.fusion["image_proj"](image.pooled))
        if fusion == "concat":
            return self.fusion["mlp"](torch.cat([text.pooled, image.pooled], dim=-1))
        if fusion == "two_token":
            pair = torch.stack([self.fusion["image_proj"](image.pooled), text.pooled], dim=1)  # (B, 2, H)
            attended, _ = self.fusion["attn"](pair, pair, pair, need_weights=False)
            return attended[:, 0]
        visual = self.fusion["visual"](image.tokens)  # (B, N, H)
        if fusion == "cross_attention":
            x = text.tokens
            for layer in self.fusion["layers"]:
                x = layer(x, visual)
            return x[:, 0]
        return self._single_stream(text.ids, text.mask, visual)

    def spatial(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The visual tokens after fusion, on the image encoder's grid (one map; see the module docstring):

        - ``single_stream``: BERT's output states at the visual positions (each attended to the text);
        - ``cross_attention``: each projected visual token plus the fused [CLS] (text that attended to the image);
        - ``sum`` / ``concat`` / ``two_token``: the model's fusion applied token by token, [CLS] with each visual
          token.
        """
        image = self.encode_image(batch["image"])
        fusion, n = self.cfg.fusion, image.tokens.shape[1]
        if fusion == "single_stream":
            visual = self.fusion["visual"](image.tokens)
            states = self._single_stream_states(batch["input_ids"], batch["attention_mask"], visual)
            tokens = states[:, -n:]
        else:
            text = self.encode_text(batch["input_ids"], batch["attention_mask"])
            if fusion == "cross_attention":
                tokens = self.fusion["visual"](image.tokens) + self.fuse(image, text).unsqueeze(1)
            elif fusion == "two_token":  # each visual token as the image token of its own pair with [CLS]
                b = image.tokens.shape[0]
                img = self.fusion["image_proj"](image.tokens).reshape(b * n, 1, -1)
                cls = text.pooled.repeat_interleave(n, dim=0).unsqueeze(1)
                pair = torch.cat([img, cls], dim=1)
                tokens = self.fusion["attn"](pair, pair, pair, need_weights=False)[0][:, 0].reshape(b, n, -1)
            elif fusion == "sum":
                cls = self.fusion["text_proj"](text.pooled).unsqueeze(1)
                tokens = self.fusion["mlp"](cls + self.fusion["image_proj"](image.tokens))
            else:
                cls = text.pooled.unsqueeze(1).expand(-1, n, -1)
                tokens = self.fusion["mlp"](torch.cat([cls, image.tokens], dim=-1))
        return [self.image.tokens_to_grid(tokens)]

    def _single_stream(self, input_ids: torch.Tensor, mask: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        return self._single_stream_states(input_ids, mask, visual)[:, 0]

    def _single_stream_states(self, input_ids: torch.Tensor, mask: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        bert = self.text.model
        words = bert.embeddings.word_embeddings(input_ids)  # (B, T, H)
        b, t, n = input_ids.shape[0], input_ids.shape[1], visual.shape[1]
        embeds = torch.cat([words, visual], dim=1)  # (B, T + N, H)
        types = torch.cat([input_ids.new_zeros(b, t), input_ids.new_ones(b, n)], dim=1)
        positions = torch.arange(t + n, device=input_ids.device).unsqueeze(0).expand(b, -1)
        full_mask = torch.cat([mask, mask.new_ones(b, n)], dim=1)
        out = bert(inputs_embeds=embeds, attention_mask=full_mask, token_type_ids=types, position_ids=positions)
        return out.last_hidden_state  # (B, T + N, H)

    def branches(self) -> dict[str, nn.Module]:
        return {"image": self.image, "text": self.text, "fusion": self.fusion}

    def no_weight_decay(self) -> set[str]:
        inner = getattr(self.image.model, "no_weight_decay", None)
        names = {f"image.model.{n}" for n in (inner() if callable(inner) else ())}
        return names | {"fusion.visual.pos", "fusion.visual.modality"}


@register_model("xbert", kind="cross_modal", modalities={"image", "text"}, config=CrossModalConfig)
def build_xbert(cfg: CrossModalConfig, ctx: BuildContext) -> CrossModalBert:
    """Cross-modal BERT: single_stream | cross_attention | sum | concat | two_token fusion of BERT with a timm
    encoder."""
    return CrossModalBert(cfg, ctx)
