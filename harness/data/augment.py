"""Per-batch augmentation of cached uint8 images: random resized crop and horizontal flip.

Runs on the (B, 3, S, S) uint8 batches read from the decoded-image cache, so the cache stays one decoded copy per
image and each epoch still sees different crops. The random parameters of the whole batch are drawn at once from
the caller's generator (deterministic given its state); each crop is then resized back to S×S with one
``torch.nn.functional.interpolate`` call (bilinear, antialias), which on CPU works on uint8 directly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MODES = ("none", "crop", "crop_flip")
RATIO = (3 / 4, 4 / 3)
_ATTEMPTS = 10  # like torchvision's RandomResizedCrop: the first of 10 draws that fits, else the whole image


def augment_batch(
    images: torch.Tensor, *, mode: str, crop_scale: tuple[float, float], generator: torch.Generator
) -> torch.Tensor:
    """Augment a (B, 3, S, S) uint8 batch; returns a new (B, 3, S, S) uint8 tensor (``mode="none"``: ``images``).

    ``crop``: per sample, a random crop whose area is a fraction uniform in ``crop_scale`` of the image and whose
    aspect ratio (w/h) is log-uniform in [3/4, 4/3] (10 draws, the first that fits; else the whole image), resized
    back to S×S (bilinear, antialias). ``crop_flip``: the same, then a horizontal flip with probability 0.5 per
    sample. The random draws come from ``generator`` (a CPU generator), so the result is deterministic given its
    state, whatever the device of ``images``.
    """
    if mode not in MODES:
        raise ValueError(f"Expected `mode` to be one of {MODES}, but got {mode!r}")
    if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"Expected `images` to be a (B, 3, H, W) uint8 tensor, but got {tuple(images.shape)} {images.dtype}"
        )
    lo, hi = crop_scale
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"Expected `crop_scale` to be (low, high) with 0 < low <= high <= 1, but got {crop_scale}")
    if mode == "none":
        return images
    b, _, h, w = images.shape
    tops, lefts, heights, widths = _crop_boxes(b, h, w, (lo, hi), generator)
    flips = torch.rand(b, generator=generator) < 0.5 if mode == "crop_flip" else torch.zeros(b, dtype=torch.bool)

    uint8_kernel = images.device.type == "cpu"  # CPU interpolate handles uint8 (rounded); elsewhere go via float
    out = torch.empty_like(images, memory_format=torch.contiguous_format)
    boxes = zip(tops.tolist(), lefts.tolist(), heights.tolist(), widths.tolist(), flips.tolist())
    for k, (t, left, ch, cw, flip) in enumerate(boxes):
        crop = images[k, :, t : t + ch, left : left + cw]
        if (ch, cw) != (h, w):
            if uint8_kernel:
                crop = F.interpolate(crop[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
            else:
                crop = F.interpolate(
                    crop[None].float(), size=(h, w), mode="bilinear", align_corners=False, antialias=True
                )
                crop = crop[0].round_().clamp_(0, 255).to(torch.uint8)
        out[k] = crop.flip(-1) if flip else crop
    return out


def _crop_boxes(
    b: int, h: int, w: int, scale: tuple[float, float], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top, left, height, width) long tensors of B random resized crops of an h×w image, all draws vectorised."""
    area = h * w * torch.empty(b, _ATTEMPTS, dtype=torch.float64).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(b, _ATTEMPTS, dtype=torch.float64).uniform_(
        math.log(RATIO[0]), math.log(RATIO[1]), generator=generator
    )
    ratio = log_r.exp()
    cw = (area * ratio).sqrt().round().long()
    ch = (area / ratio).sqrt().round().long()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = fits.long().argmax(dim=1)  # index of the first attempt that fits (0 when none does)
    any_fit = fits.any(dim=1)
    rows = torch.arange(b)
    # no attempt fits: the whole image (its aspect ratio, 1 for the square cache images, is inside RATIO)
    ch = torch.where(any_fit, ch[rows, first], torch.full((b,), h))
    cw = torch.where(any_fit, cw[rows, first], torch.full((b,), w))
    u = torch.rand(b, 2, dtype=torch.float64, generator=generator)
    tops = (u[:, 0] * (h - ch + 1)).floor().long().clamp_(max=h - ch)
    lefts = (u[:, 1] * (w - cw + 1)).floor().long().clamp_(max=w - cw)
    return tops, lefts, ch, cw
