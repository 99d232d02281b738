"""Image (timm) and text (transformers) encoders built from specs, offline-safe.

Nothing is downloaded: pretrained weights come from a local file, a local directory, or the local timm / Hugging
Face cache. When they are missing the error says exactly what to fetch and where to put it.
"""

from __future__ import annotations

import inspect
import os
import re

import torch
from torch import nn

from harness.errors import UserError, did_you_mean, is_out_of_memory
from harness.models import BuildContext
from harness.models.base import Encoded
from harness.models.specs import ImageEncoderSpec, TextEncoderSpec


def set_offline() -> None:
    """Forbid hub downloads for the rest of the process (the harness never downloads at run time)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and os.environ["HF_HUB_OFFLINE"] not in ("0", "false", "False"):
        constants.HF_HUB_OFFLINE = True  # the module read the variable at import time


class ImageEncoder(nn.Module):
    """A timm model read through ``forward_features``.

    CNN feature maps (B, C, H, W) become H*W visual tokens; ViT-style outputs (B, N, D) are used as they are. The
    pooled vector is timm's own pre-logits pooling (``forward_head(..., pre_logits=True)``).
    """

    def __init__(self, spec: ImageEncoderSpec, ctx: BuildContext, key: str = "image_encoder") -> None:
        super().__init__()
        self.spec = spec
        self.model = create_timm_model(spec, ctx.image_size, ctx.key(key), ctx.load_weights)
        self.num_features = int(self.model.num_features)
        self.model.eval()  # probe without touching BatchNorm statistics
        device = next(self.model.parameters()).device  # works on the meta device too
        with torch.no_grad():
            probe = self.model.forward_features(torch.zeros(1, 3, ctx.image_size, ctx.image_size, device=device))
        self.model.train()
        self.num_tokens = int(probe.shape[2] * probe.shape[3]) if probe.ndim == 4 else int(probe.shape[1])
        self._grid = probe.ndim == 4
        if self._grid:
            self.grid_size = (int(probe.shape[2]), int(probe.shape[3]))
        else:
            side = round((self.num_tokens - self.num_prefix_tokens) ** 0.5)
            self.grid_size = (side, side)

    @property
    def num_prefix_tokens(self) -> int:
        """Class/register tokens before the patch tokens of a ViT-style output (0 for CNNs)."""
        return int(getattr(self.model, "num_prefix_tokens", 0) or 0)

    def feature_maps(self, image: torch.Tensor, levels: int = 3) -> list[torch.Tensor]:
        """Spatial feature maps, finest first, through timm's ``forward_intermediates``: the last ``levels`` stages
        of a CNN (ResNet-50: strides 8, 16, 32), or a ViT's final patch tokens reshaped to their grid (one map)."""
        fn = getattr(self.model, "forward_intermediates", None)
        if fn is None:
            raise UserError(
                f"timm model {self.spec.name!r} has no forward_intermediates(), so its spatial features cannot feed "
                "a feature pyramid; use a timm model that has it (ResNets, ViTs, ConvNeXts, ...)"
            )
        if self.num_tokens_are_grid:
            return fn(image, indices=levels, intermediates_only=True)
        return fn(image, indices=1, intermediates_only=True, output_fmt="NCHW")

    @property
    def num_tokens_are_grid(self) -> bool:
        """True for CNNs (feature maps), False for token models (ViTs), from the probe at build time."""
        return self._grid

    def tokens_to_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, C) visual tokens (prefix tokens included) -> (B, C, H, W) on the encoder's patch grid."""
        patches = tokens[:, self.num_prefix_tokens :] if not self._grid else tokens
        b, n, c = patches.shape
        h, w = self.grid_size
        if h * w != n:
            raise ValueError(f"Expected {h}x{w} = {h * w} patch tokens, but got {n}")
        return patches.transpose(1, 2).reshape(b, c, h, w)

    def forward(self, image: torch.Tensor) -> Encoded:
        feats = self.model.forward_features(image)
        pooled = self.model.forward_head(feats, pre_logits=True)  # (B, D)
        tokens = feats.flatten(2).transpose(1, 2) if feats.ndim == 4 else feats  # (B, N, D)
        return Encoded(tokens=tokens, pooled=pooled)


def create_timm_model(spec: ImageEncoderSpec, image_size: int, where: str, load_weights: bool = True) -> nn.Module:
    """``timm.create_model`` without a classifier, at the suite's image size, loading weights only from disk."""
    import timm

    from harness.models.weights import check_timm_name

    check_timm_name(spec.name, f"{where}.name")
    kwargs = dict(spec.args)
    kwargs.setdefault("num_classes", 0)
    if spec.drop_path:
        kwargs["drop_path_rate"] = spec.drop_path
    pretrained = spec.pretrained and load_weights
    if pretrained:
        from harness.models.weights import timm_weights_file

        set_offline()
        # Always load from a local file: timm then never touches the network.
        kwargs["pretrained_cfg_overlay"] = {"file": str(timm_weights_file(spec, where))}
    try:
        return _create_with_size(timm, spec.name, pretrained, image_size, kwargs)
    except TypeError as exc:
        raise UserError(f"{where}.args: timm model {spec.name!r} {_bad_argument(timm, spec, exc)}") from exc
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        if not pretrained:
            raise
        raise UserError(
            f"{where}: cannot load pretrained weights {kwargs['pretrained_cfg_overlay']['file']!r} "
            f"into {spec.name!r}: {exc}"
        ) from exc


def _bad_argument(timm, spec: ImageEncoderSpec, exc: TypeError) -> str:
    """'rejected the argument 'embed_dm'. Did you mean: 'embed_dim'?' from a TypeError of the model class."""
    match = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    if not match:
        return f"rejected the arguments {spec.args}: {exc}"
    arg = match.group(1)
    try:  # the model class's own parameters, from a default instance on the meta device
        with torch.device("meta"):
            cls = type(timm.create_model(spec.name, pretrained=False))
        names = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    except Exception:  # pragma: no cover - only improves the message
        names = []
    return f"does not take the argument {arg!r}.{did_you_mean(arg, names)} See the model class's arguments in timm"


def _create_with_size(timm, name: str, pretrained: bool, image_size: int, kwargs: dict) -> nn.Module:
    if "img_size" not in kwargs:
        try:
            return timm.create_model(name, pretrained=pretrained, img_size=image_size, **kwargs)
        except TypeError as exc:
            if "img_size" not in str(exc):
                raise
    return timm.create_model(name, pretrained=pretrained, **kwargs)


class TextEncoder(nn.Module):
    """A BERT-like encoder from transformers: by name/path (offline) or built from a ``BertConfig``."""

    def __init__(self, spec: TextEncoderSpec, ctx: BuildContext, key: str = "text_encoder") -> None:
        super().__init__()
        self.spec = spec
        self.model = create_text_model(
            spec, ctx.vocab_size, ctx.pad_token_id, ctx.max_text_len, ctx.key(key), ctx.load_weights
        )
        self.hidden_size = int(self.model.config.hidden_size)

    @property
    def embeddings(self) -> nn.Module:
        return self.model.embeddings

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Encoded:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        tokens = out.last_hidden_state  # (B, T, H)
        pooled = pool_text(tokens, attention_mask, self.spec.pooling)
        return Encoded(tokens=tokens, pooled=pooled, mask=attention_mask, ids=input_ids)


def pool_text(tokens: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """[CLS] state or masked mean over real tokens: (B, T, H) -> (B, H)."""
    if how == "cls":
        return tokens[:, 0]
    weights = mask.to(tokens.dtype).unsqueeze(-1)  # (B, T, 1)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def create_text_model(
    spec: TextEncoderSpec,
    vocab_size: int | None,
    pad_token_id: int,
    max_len: int,
    where: str,
    load_weights: bool = True,
) -> nn.Module:
    """A BERT-like model: built from ``config`` (a ``BertConfig``, unknown keys refused) or read offline by name.

    Never runs code from a model folder: ``trust_remote_code=False``, and a config that names custom code
    (``auto_map``) is refused before transformers sees it.
    """
    from transformers import AutoConfig, AutoModel, BertConfig, BertModel

    set_offline()
    overrides = {"hidden_dropout_prob": spec.dropout, "attention_probs_dropout_prob": spec.dropout}
    if spec.name is None:
        if vocab_size is None:
            raise UserError(f"{where}: building a BERT from 'config' needs the suite tokenizer's vocabulary size")
        check_bert_config_keys(spec.config, f"{where}.config")
        params = {"max_position_embeddings": max(512, max_len), **spec.config, **overrides}
        try:
            config = BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, **params)
        except Exception as exc:  # TypeError, ValueError, or huggingface_hub's strict-dataclass validation error
            if is_out_of_memory(exc):
                raise
            raise UserError(f"{where}.config: invalid BertConfig arguments {spec.config}: {exc}") from exc
        if config.hidden_size % config.num_attention_heads:
            raise UserError(
                f"{where}.config: hidden_size {config.hidden_size} is not a multiple of num_attention_heads "
                f"{config.num_attention_heads}"
            )
        return BertModel(config, add_pooling_layer=False)
    from harness.models.weights import refuse_remote_code

    refuse_remote_code(spec.name, f"{where}.name")
    try:
        if spec.pretrained and load_weights:
            return AutoModel.from_pretrained(
                spec.name, local_files_only=True, trust_remote_code=False, add_pooling_layer=False, **overrides
            )
        config = AutoConfig.from_pretrained(spec.name, local_files_only=True, trust_remote_code=False, **overrides)
        return AutoModel.from_config(config, add_pooling_layer=False, trust_remote_code=False)
    except Exception as exc:  # missing, unreadable or malformed files (OSError, ValueError, validation errors)
        if is_out_of_memory(exc):
            raise
        raise UserError(
            f"{where}.name: cannot load {spec.name!r} offline ({type(exc).__name__}: {str(exc)[:200]}). Download it "
            f"on a connected machine (`hf download {spec.name}`) into the Hugging Face cache (~/.cache/huggingface"
            f"/hub or $HF_HOME), or save it with save_pretrained() to a directory and set name: that path"
        ) from exc


def bert_config_keys() -> set[str]:
    """Every key a ``BertConfig`` knows: its own arguments and the common ``PretrainedConfig`` attributes."""
    from transformers import BertConfig

    params = set(inspect.signature(BertConfig.__init__).parameters) - {"self", "kwargs"}
    return params | set(BertConfig().to_dict())


def check_bert_config_keys(config: dict, where: str) -> None:
    """``BertConfig`` silently keeps unknown keys (``hiden_size`` builds a 768-wide BERT): refuse them."""
    known = bert_config_keys()
    for key in config:
        if key not in known:
            raise UserError(
                f"{where}.{key}: unknown BertConfig key {key!r}.{did_you_mean(key, known)} It would be ignored and "
                "the default used; see transformers.BertConfig for the keys"
            )
