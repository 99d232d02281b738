"""The one model contract every family follows.

A model maps a batch dict to a pooled representation; task heads and losses belong to the task
(:mod:`harness.tasks`). Two-tower models (dual encoders, cross-modal models) also expose their towers so retrieval
can score every image against every text, and fusion models expose :meth:`XModel.fuse` for ITM re-ranking.

Batch keys: ``image`` (B, 3, H, W) float, normalised; ``input_ids`` and ``attention_mask`` (B, T) long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn


@dataclass
class Encoded:
    """Output of one tower: token states and a pooled vector (text also keeps its ids and mask).

    ``tokens``/``pooled`` are None only for raw text handed to a single-stream fusion, which embeds ids itself.
    """

    tokens: torch.Tensor | None  # (B, N, D)
    pooled: torch.Tensor | None  # (B, D)
    mask: torch.Tensor | None = None  # (B, T) 1 = real token
    ids: torch.Tensor | None = None  # (B, T) token ids


class XModel(nn.Module):
    """Base class for every model in a suite.

    Class attributes:
        kind: ``image`` | ``text`` | ``dual_encoder`` | ``cross_modal``.
        modalities: the inputs the model reads.

    Attributes set by subclasses:
        feature_dim: width of ``forward(batch)["pooled"]``.
        image_dim / text_dim: widths of the towers' pooled outputs (two-tower models only).
    """

    kind: ClassVar[str] = ""
    modalities: ClassVar[frozenset[str]] = frozenset()
    feature_dim: int
    image_dim: int = 0
    text_dim: int = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return ``{"pooled": (B, feature_dim)}`` for the joint representation of the batch."""
        raise NotImplementedError

    # Two-tower API -------------------------------------------------------------------------------------------
    @property
    def has_towers(self) -> bool:
        return {"image", "text"} <= self.modalities

    @property
    def can_fuse(self) -> bool:
        return self.kind == "cross_modal"

    def encode_image(self, image: torch.Tensor) -> Encoded:
        raise NotImplementedError(f"{type(self).__name__} has no image tower")

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def fuse(self, image: Encoded, text: Encoded) -> torch.Tensor:
        """Joint representation (B, feature_dim) of paired image and text encodings (fusion models only)."""
        raise NotImplementedError(f"{type(self).__name__} does not fuse modalities")

    # Dense prediction (detection) ---------------------------------------------------------------------------
    def spatial(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Spatial feature maps of the batch's images, finest first: a list of (B, C_l, H_l, W_l) tensors whose
        strides (image size / H_l) grow level by level. One map is a single-scale model (a ViT); the detection
        head then builds the pyramid's coarser levels itself. Models that read text return text-conditioned
        maps (their visual tokens after fusion)."""
        raise NotImplementedError(f"{type(self).__name__} has no spatial features")

    @property
    def has_spatial(self) -> bool:
        return type(self).spatial is not XModel.spatial

    # Optimisation ------------------------------------------------------------------------------------------
    def branches(self) -> dict[str, nn.Module]:
        """Sub-modules by branch (``image``, ``text``, ``fusion``) for per-branch learning-rate multipliers."""
        return {}

    def no_weight_decay(self) -> set[str]:
        """Parameter names (relative to this module) that must not get weight decay, beyond norms and biases."""
        return set()
