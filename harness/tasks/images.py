"""Decode a split's images (through the decoded-image cache) and drop samples whose image cannot be read."""

from __future__ import annotations

from typing import Any

import torch

from harness.errors import UserError


def split_images(ctx: Any, rec: Any, task: str) -> tuple[torch.Tensor | None, Any, torch.Tensor]:
    """Return ``(images, rec, rows)``.

    ``images`` is the decoded (N, 3, S, S) uint8 tensor of ``rec.paths`` (None when no model of the task reads
    images); ``rec`` is the split without the images that could not be decoded (reported to the dataset's
    bad-sample policy: stop, or skip and count); ``rows[i]`` is the row in ``images`` of image ``i`` of ``rec``.
    """
    if "image" not in ctx.modalities:
        return None, rec, torch.arange(len(rec.paths))
    images, bad = ctx.decode(rec.paths)
    ids = getattr(rec, "image_ids", None) or rec.ids
    for index, reason in bad:
        ctx.issues.bad(rec.paths[index], f"image id {ids[index]}", reason)
    if bad:
        rec, rows = rec.without_images({index for index, _ in bad})
    else:
        rows = list(range(len(rec.paths)))
    if not rows:
        raise UserError(f"tasks.{task}: no readable images left in this split after skipping bad samples")
    return images, rec, torch.tensor(rows, dtype=torch.long)
