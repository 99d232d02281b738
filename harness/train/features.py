"""Frozen-encoder feature cache: compute a frozen image encoder's features once, reuse them across seeds and runs.

When a suite freezes the encoders for the whole run (``train.freeze_encoders_epochs`` covers every step: a linear
probe), the image encoder is a fixed function of the image. The runner then puts it in eval mode for the whole run
(no dropout or DropPath, BatchNorm statistics untouched: the linear-probe convention, with or without this cache)
and, unless ``train.feature_cache: false``, encodes every image of the task's three splits once. Training and
evaluation read those features instead of running the encoder.

The cache key is the fingerprint of everything the features depend on: the encoder's class and every one of its
weights and buffers (hashed), the task's data (dataset fingerprint and splits), the image preprocessing (size,
resize, interpolation, normalisation) and which outputs are kept. Two seeds of a model whose encoder comes from
pretrained weights share one entry; an encoder initialised from the seed gets its own entry per seed, as it must.
Entries live in memory for the process and on disk under ``$XMBENCH_CACHE/features/`` for other runs and processes
(written atomically, read with ``weights_only=True``; a damaged file is recomputed).

Only the shipped image encoder (:class:`harness.models.encoders.ImageEncoder`, reached as ``model.image``) is
cached, and only without augmentation (augmented pixels differ at every step). Frozen text encoders run as usual.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.models.base import Encoded

VERSION = 1


def frozen_for_run(freeze_epochs: int, per_epoch: int, total_steps: int) -> bool:
    """Whether the encoders stay frozen for every optimiser step of the run."""
    return freeze_epochs > 0 and freeze_epochs * per_epoch >= total_steps


def why_not_cached(model: nn.Module, augment: str, enabled: bool) -> str | None:
    """None when a frozen model's image features can be cached, else the reason (recorded in the run's notes)."""
    from harness.models.encoders import ImageEncoder

    if not enabled:
        return "train.feature_cache is false"
    if augment != "none":
        return f"image.augment is {augment!r}: augmented pixels differ at every step"
    if not isinstance(getattr(model, "image", None), ImageEncoder):
        return "the model has no shipped image encoder (model.image) to cache"
    return None


def module_digest(module: nn.Module) -> str:
    """sha256 of a module's class and every parameter and buffer (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class CachedImageEncoder(nn.Module):
    """Stands in for ``model.image``: maps the global image rows that the batcher emits to cached features."""

    def __init__(self, pooled: torch.Tensor, tokens: torch.Tensor | None, encoder: nn.Module) -> None:
        super().__init__()
        self.pooled, self.tokens = pooled, tokens
        self.num_features, self.num_tokens = encoder.num_features, encoder.num_tokens
        # the timm model, for the model's own introspection (no_weight_decay): not registered, so its frozen
        # weights are neither trained nor checkpointed
        object.__setattr__(self, "model", encoder.model)

    def forward(self, rows: torch.Tensor) -> Encoded:
        device, rows = rows.device, rows.to("cpu")
        tokens = self.tokens.index_select(0, rows).to(device) if self.tokens is not None else None
        return Encoded(tokens=tokens, pooled=self.pooled.index_select(0, rows).to(device))


@dataclass
class FeatureStore:
    """The process's feature cache (memory and disk), with counts for reports and tests."""

    root: Path | None = None
    memory: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    hits: int = 0
    disk_hits: int = 0
    misses: int = 0

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        if key in self.memory:
            self.hits += 1
            return self.memory[key]
        path = self._path(key)
        if path is not None and path.is_file():
            try:
                entry = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                return None
            self.disk_hits += 1
            self.memory[key] = entry
            return entry
        return None

    def put(self, key: str, entry: dict[str, torch.Tensor]) -> None:
        self.misses += 1
        self.memory[key] = entry
        path = self._path(key)
        if path is None:
            return
        from harness.results.store import atomic_write_bytes

        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(entry, buf)
        atomic_write_bytes(path, buf.getvalue())

    def _path(self, key: str) -> Path | None:
        return None if self.root is None else self.root / "features" / f"{key}.pt"


_STORE: FeatureStore | None = None


def store() -> FeatureStore:
    """The process-wide store, on disk under ``$XMBENCH_CACHE`` (re-read when the variable changes)."""
    global _STORE
    from harness.data.text import cache_root

    root = cache_root()
    if _STORE is None or _STORE.root != root:
        _STORE = FeatureStore(root)
    return _STORE


def install(
    model: nn.Module, data: Any, batcher: Any, key_parts: dict[str, Any], batch_size: int, autocast: Any
) -> dict[str, Any]:
    """Encode every image of ``data``'s splits with ``model.image`` (from the cache when the key matches), swap in a
    :class:`CachedImageEncoder` and make ``batcher`` emit rows. Returns facts for the run's notes."""
    encoder = model.image
    keep_tokens = getattr(model, "kind", "") == "cross_modal"
    tables = _split_images(data)
    key_parts = {
        **key_parts,
        "encoder": module_digest(encoder),
        "splits_images": [int(t.shape[0]) for t in tables],
        "tokens": keep_tokens,
        "version": VERSION,
    }
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
    cache = store()
    entry = cache.get(key)
    reused = entry is not None
    if entry is None:
        entry = _encode(encoder, tables, batcher, batch_size, autocast, keep_tokens)
        cache.put(key, entry)
    offsets, start = {}, 0
    for images in tables:
        offsets[id(images)] = start
        start += int(images.shape[0])
    model.image = CachedImageEncoder(entry["pooled"], entry.get("tokens"), encoder)
    batcher.feature_rows = offsets
    return {"feature_cache": {"key": key, "reused": reused, "images": start, "tokens": keep_tokens}}


def _split_images(data: Any) -> list[torch.Tensor]:
    """The distinct image tensors of the train, val and test splits, in that order."""
    out, seen = [], set()
    for ex in (data.train, data.val, data.test):
        if ex.images is not None and id(ex.images) not in seen:
            seen.add(id(ex.images))
            out.append(ex.images)
    return out


@torch.no_grad()
def _encode(encoder: nn.Module, tables, batcher, batch_size: int, autocast, keep_tokens: bool) -> dict:
    was_training = encoder.training
    encoder.eval()
    pooled, tokens = [], []
    try:
        for images in tables:
            for start in range(0, int(images.shape[0]), batch_size):
                with autocast():
                    enc = encoder(batcher.images(images[start : start + batch_size]))
                pooled.append(enc.pooled.float().cpu())
                if keep_tokens:
                    tokens.append(enc.tokens.float().cpu())
    finally:
        encoder.train(was_training)
    entry = {"pooled": torch.cat(pooled)}
    if keep_tokens:
        entry["tokens"] = torch.cat(tokens)
    return entry
