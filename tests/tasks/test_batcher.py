"""Batches: uint8 rows from the cache, normalised; augmentation only on training batches, seeded."""

from __future__ import annotations

import torch

from harness.tasks.base import Batcher, Examples


def _examples() -> Examples:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 16, 16), generator=g, dtype=torch.uint8)
    return Examples(images, torch.tensor([5, 4, 3, 2, 1, 0]), None, None, torch.arange(6), list(range(6)))


def test_normalisation_and_row_mapping() -> None:
    ex = _examples()
    b = Batcher((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), torch.device("cpu"))
    batch = b(ex, torch.tensor([0, 2]))
    expected = (ex.images[[5, 3]].float() / 255.0 - 0.5) / 0.25
    assert torch.allclose(batch["image"], expected, atol=1e-5)
    assert batch["targets"].tolist() == [0, 2]
    assert batch["image_row"].tolist() == [5, 3]


def test_augmentation_only_when_training_and_seeded() -> None:
    ex = _examples()
    idx = torch.arange(6)
    plain = Batcher((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))(ex, idx, train=True)["image"]
    a = Batcher((0.5,) * 3, (0.25,) * 3, torch.device("cpu"), augment="crop_flip", crop_scale=(0.5, 0.9), seed=3)
    b = Batcher((0.5,) * 3, (0.25,) * 3, torch.device("cpu"), augment="crop_flip", crop_scale=(0.5, 0.9), seed=3)
    assert torch.equal(a(ex, idx)["image"], plain)  # eval batches are never augmented
    aug_a, aug_b = a(ex, idx, train=True)["image"], b(ex, idx, train=True)["image"]
    assert torch.equal(aug_a, aug_b)
    assert not torch.equal(aug_a, plain)
