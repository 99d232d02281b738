"""Per-batch augmentation of cached uint8 images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harness.data.augment import _crop_boxes, augment_batch


def _batch(b: int = 16, s: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, generator=g)


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("mode", ["none", "crop", "crop_flip"])
def test_shapes_dtypes_and_determinism(mode: str) -> None:
    x = _batch()
    a = augment_batch(x, mode=mode, crop_scale=(0.3, 1.0), generator=_gen(5))
    b = augment_batch(x, mode=mode, crop_scale=(0.3, 1.0), generator=_gen(5))
    assert a.dtype == torch.uint8 and tuple(a.shape) == (16, 3, 32, 32) and a.is_contiguous()
    assert torch.equal(a, b)
    if mode != "none":
        c = augment_batch(x, mode=mode, crop_scale=(0.3, 1.0), generator=_gen(6))
        assert not torch.equal(a, c)
        assert torch.equal(x, _batch())  # the input is not modified


def test_none_is_identity() -> None:
    x = _batch()
    assert augment_batch(x, mode="none", crop_scale=(0.08, 1.0), generator=_gen()) is x


def test_full_scale_crop_is_identity() -> None:
    x = _batch(64, 24)
    out = augment_batch(x, mode="crop", crop_scale=(1.0, 1.0), generator=_gen())
    assert torch.equal(out, x)


def test_crop_flip_at_full_scale_flips_about_half() -> None:
    x = _batch(400, 8)
    out = augment_batch(x, mode="crop_flip", crop_scale=(1.0, 1.0), generator=_gen(3))
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((flipped ^ kept).all())  # each sample is either untouched or exactly mirrored
    assert 160 <= int(flipped.sum()) <= 240  # Binomial(400, 0.5): mean 200, sd 10


def test_crop_boxes_follow_scale_and_ratio() -> None:
    b, s = 2000, 224
    tops, lefts, h, w = _crop_boxes(b, s, s, (0.25, 0.5), _gen(7))
    assert bool(((tops >= 0) & (lefts >= 0) & (tops + h <= s) & (lefts + w <= s)).all())
    area = (h * w).double() / (s * s)
    assert area.min() >= 0.24 and area.max() <= 0.51  # rounding of the sides only
    assert abs(float(area.mean()) - 0.375) < 0.01  # uniform in [0.25, 0.5]
    log_ratio = (w.double() / h.double()).log()
    assert (
        log_ratio.min() >= torch.log(torch.tensor(3 / 4)) - 0.02
        and log_ratio.max() <= torch.log(torch.tensor(4 / 3)) + 0.02
    )
    assert abs(float(log_ratio.mean())) < 0.02  # log-uniform, symmetric around ratio 1
    # offsets spread over the whole free range
    assert int(tops.min()) == 0 and int((tops + h).max()) == s


def test_crop_equals_interpolate_of_the_box() -> None:
    x = _batch(4, 40)
    out = augment_batch(x, mode="crop", crop_scale=(0.2, 0.6), generator=_gen(11))
    tops, lefts, h, w = _crop_boxes(4, 40, 40, (0.2, 0.6), _gen(11))
    for k in range(4):
        t, left, ch, cw = int(tops[k]), int(lefts[k]), int(h[k]), int(w[k])
        crop = x[k : k + 1, :, t : t + ch, left : left + cw].float()
        ref = F.interpolate(crop, size=(40, 40), mode="bilinear", align_corners=False, antialias=True)
        assert (out[k].float() - ref[0]).abs().max() <= 1.0  # uint8 kernel rounding


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "flip"}, "Expected `mode` to be one of ('none', 'crop', 'crop_flip'), but got 'flip'"),
        (
            {"crop_scale": (0.0, 1.0)},
            "Expected `crop_scale` to be (low, high) with 0 < low <= high <= 1, but got (0.0, 1.0)",
        ),
        (
            {"crop_scale": (0.9, 0.5)},
            "Expected `crop_scale` to be (low, high) with 0 < low <= high <= 1, but got (0.9, 0.5)",
        ),
        (
            {"images": _batch(2, 8).float()},
            "Expected `images` to be a (B, 3, H, W) uint8 tensor, but got (2, 3, 8, 8) torch.float32",
        ),
        (
            {"images": _batch(2, 8)[:, :1]},
            "Expected `images` to be a (B, 3, H, W) uint8 tensor, but got (2, 1, 8, 8) torch.uint8",
        ),
    ],
)
def test_bad_arguments(change: dict, message: str) -> None:
    kwargs = {"images": _batch(2, 8), "mode": "crop", "crop_scale": (0.5, 1.0), "generator": _gen(), **change}
    with pytest.raises(ValueError) as info:
        augment_batch(**kwargs)
    assert str(info.value) == message
