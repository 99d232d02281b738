"""Images/s per core: reading batches from the decoded-image cache vs decoding COCO-sized JPEGs with PIL.

Run: ``.venv/bin/python -m pytest benchmarks --benchmark-only -q`` (``--benchmark-disable`` for a quick smoke run).

Both sides use one core: ``torch.set_num_threads(1)`` and ``workers=1``-style single-threaded loops.

* ``pil[naive]``: what a naive ``Dataset.__getitem__`` does per image, for a batch of 64: PIL open, convert RGB,
  bicubic resize of a 640×480 JPEG (quality 90, 50-150 KB, like COCO) to 224×224, to a uint8 CHW array
  (``harness.data.images.load_image``, which also builds the cache), then stack the 64 into a (64, 3, 224, 224)
  uint8 array (the collate). ``pil[draft]`` is a tuned reference (JPEG draft mode: decode at 1/2 scale first).
* ``cache``: one shuffled epoch over a 1024-row cache (the 64 JPEGs × 16, 154 MB, so batches do not sit in the
  CPU caches) in batches of 64, producing a contiguous uint8 (64, 3, 224, 224) tensor in RAM per batch:
  ``index_select`` = ``images.index_select(0, idx)`` with a random index tensor (what ``Batcher`` does),
  ``getitem`` = ``images[idx]`` (same result through torch's slower advanced-indexing path, for comparison). The
  page cache is warm (the file is on local disk, was just written and is read once before timing): the steady state
  from the second epoch on, and for later runs on the same machine. ``float`` adds ``.float()`` (what
  ``Batcher.images`` does next, on the training device), ``crop_flip`` adds ``augment_batch(mode="crop_flip")``;
  both are recorded, not asserted.

The ratio cache/pil is recorded in ``extra_info``; the goal (≥ 10× per core) is asserted for the two uint8 reads.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from harness.data.augment import augment_batch
from harness.data.image_cache import clear_memo, load_images
from harness.data.images import load_image

SIZE = 224
BATCH = 64
GOAL = 10.0
_RATES: dict[str, float] = {}  # images/s of the PIL baseline, shared with the cache benchmarks


def _benchmarks_disabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


def coco_like_jpeg(path: Path, seed: int) -> None:
    """A 640×480 quality-90 JPEG with COCO-like content: gradients, soft blobs, hard-edged shapes and sensor noise."""
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack(
        [rng.uniform(40, 200) + rng.uniform(-0.3, 0.3) * xx + rng.uniform(-0.3, 0.3) * yy for _ in "rgb"], -1
    )
    blobs = (rng.normal(0, 40, (h // 32, w // 32, 3)) + 128).clip(0, 255).astype(np.uint8)
    img += np.asarray(Image.fromarray(blobs).resize((w, h), Image.Resampling.BICUBIC), np.float32) - 128
    im = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = (x0, y0, x0 + int(rng.integers(20, 250)), y0 + int(rng.integers(20, 200)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse(box, fill=colour)
        elif shape == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.line(box, fill=colour, width=int(rng.integers(2, 10)))
    noisy = np.asarray(im, np.float32) + rng.normal(0, rng.uniform(4, 10), (h, w, 3)).astype(np.float32)
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> list[Path]:
    folder = tmp_path_factory.mktemp("coco-like")
    n = 8 if _benchmarks_disabled(request.config) else 64
    paths = [folder / f"{i:012d}.jpg" for i in range(n)]
    for i, p in enumerate(paths):
        coco_like_jpeg(p, i)
    sizes = [p.stat().st_size for p in paths]
    assert 40_000 < np.mean(sizes) < 160_000, f"JPEG sizes {min(sizes)}..{max(sizes)} bytes are not COCO-like"
    return paths


@pytest.fixture(scope="module")
def cached(jpegs: list[Path], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> torch.Tensor:
    """The built cache of the JPEGs × 16 (× 1 in smoke runs), read once so the page cache is warm."""
    repeats = 1 if _benchmarks_disabled(request.config) else 16
    images, bad = load_images(jpegs * repeats, size=SIZE, workers=2, cache_dir=tmp_path_factory.mktemp("cache"))
    assert bad == [] and tuple(images.shape) == (len(jpegs) * repeats, 3, SIZE, SIZE)
    int(images.max())  # touch every page: the file is in the page cache and mapped into this process
    yield images
    clear_memo()


@pytest.fixture
def one_core():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pil_batch(paths: list[Path]) -> np.ndarray:
    """Naive per-image decode of one batch: (B, 3, 224, 224) uint8."""
    return np.stack([load_image(p, SIZE, "squash", "bicubic") for p in paths])


def pil_draft_batch(paths: list[Path]) -> np.ndarray:
    """A tuned decoder for reference: JPEG draft mode decodes at 1/2 scale (320×240) before the bicubic resize."""
    out = []
    for p in paths:
        with Image.open(p) as im:
            im.draft("RGB", (SIZE, SIZE))
            out.append(np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC)).transpose(2, 0, 1))
    return np.stack(out)


def _rate(fn, paths: list[Path], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(paths)
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


@pytest.mark.parametrize("decoder", ["naive", "draft"])
def test_pil_decode_resize(benchmark, jpegs: list[Path], one_core: None, decoder: str) -> None:
    fn = pil_batch if decoder == "naive" else pil_draft_batch
    batch = benchmark.pedantic(fn, args=(jpegs,), rounds=5, warmup_rounds=1)
    assert batch.shape == (len(jpegs), 3, SIZE, SIZE) and batch.dtype == np.uint8
    if benchmark.enabled:
        rate = len(jpegs) / benchmark.stats.stats.median
        _RATES[decoder] = rate
        mean_kb = float(np.mean([p.stat().st_size for p in jpegs])) / 1024
        benchmark.extra_info.update(images_per_s=round(rate, 1), jpeg_mean_kb=round(mean_kb, 1), threads=1)
        print(f"\nPIL {decoder}: {rate:,.0f} images/s per core (JPEGs of {mean_kb:.0f} KB on average)")


READS = {
    "index_select": "images.index_select(0, idx) (what Batcher does)",
    "getitem": "images[idx]",
    "float": "images.index_select(0, idx).float()",
    "crop_flip": "augment_batch(images.index_select(0, idx), mode='crop_flip')",
}


@pytest.mark.parametrize("read", list(READS))
def test_cache_read(benchmark, cached: torch.Tensor, jpegs: list[Path], one_core: None, read: str) -> None:
    n = cached.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    batches = [order[i : i + BATCH] for i in range(0, n, BATCH)]
    gen = torch.Generator().manual_seed(0)

    def epoch() -> torch.Tensor:
        for idx in batches:
            # a contiguous uint8 (B, 3, 224, 224) tensor in RAM
            batch = cached[idx] if read == "getitem" else cached.index_select(0, idx)
            if read == "float":
                batch = batch.float()
            elif read == "crop_flip":
                batch = augment_batch(batch, mode="crop_flip", crop_scale=(0.08, 1.0), generator=gen)
        return batch

    last = benchmark.pedantic(epoch, rounds=3 if read == "crop_flip" else 15, warmup_rounds=1)
    assert tuple(last.shape) == (min(BATCH, n), 3, SIZE, SIZE) and last.is_contiguous()
    if not benchmark.enabled:
        return
    rate = n / benchmark.stats.stats.median
    # measured here when the PIL benchmarks were not selected
    pil = _RATES.get("naive") or _rate(pil_batch, jpegs)
    draft = _RATES.get("draft") or _rate(pil_draft_batch, jpegs)
    ratio = rate / pil
    benchmark.extra_info.update(
        read=READS[read],
        images_per_s=round(rate, 1),
        pil_images_per_s=round(pil, 1),
        ratio_vs_pil=round(ratio, 1),
        ratio_vs_pil_draft=round(rate / draft, 1),
        threads=1,
    )
    print(f"\ncache {READS[read]}: {rate:,.0f} images/s per core = {ratio:.1f}x PIL, {rate / draft:.1f}x PIL draft")
    if read in ("getitem", "index_select"):  # the uint8 batch in RAM: the like-for-like comparison
        assert ratio >= GOAL, f"cache read is only {ratio:.1f}x PIL decode per core (goal {GOAL}x)"
