"""Encoder specifications shared by every model family (pure data; no torch import)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from harness.suite.schema import Frozen

Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]


class ImageEncoderSpec(Frozen):
    """A timm image model used as an encoder through ``forward_features``.

    Attributes:
        name: any timm model name (``resnet50``, ``vit_base_patch16_224``, ...).
        pretrained: load pretrained weights (from ``checkpoint`` if given, else the local timm/HF cache by name).
        checkpoint: local path to a weights file (``.safetensors``/``.pth``/``.bin``) for this architecture.
        args: extra keyword arguments for ``timm.create_model`` (e.g. a tiny ``embed_dim``/``depth`` for tests).
        drop_path: stochastic depth rate on the vision branch.
    """

    name: str
    pretrained: bool = False
    checkpoint: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    drop_path: Dropout = 0.0

    @model_validator(mode="after")
    def _checkpoint_needs_pretrained(self) -> ImageEncoderSpec:
        if self.checkpoint and not self.pretrained:
            raise ValueError("'checkpoint' is set but 'pretrained' is false; set pretrained: true to load it")
        return self


class TextEncoderSpec(Frozen):
    """A BERT-like transformers encoder.

    Attributes:
        name: a Hugging Face model name (``bert-base-uncased``) or a local directory saved with ``save_pretrained``.
            Leave empty to build a ``BertModel`` from ``config``.
        pretrained: load the weights of ``name`` (from the local cache or directory only; nothing is downloaded).
        config: ``BertConfig`` keyword arguments when building from scratch (``hidden_size``, ``num_hidden_layers``,
            ``num_attention_heads``, ``intermediate_size``, ...). The vocabulary size comes from the suite tokenizer.
        dropout: hidden and attention dropout of the text branch.
        pooling: how a text vector is read from the token states: the [CLS] state or the masked mean.
    """

    name: str | None = None
    pretrained: bool = False
    config: dict[str, Any] = Field(default_factory=dict)
    dropout: Dropout = 0.1
    pooling: Literal["cls", "mean"] = "cls"

    @model_validator(mode="after")
    def _consistent(self) -> TextEncoderSpec:
        if self.pretrained and not self.name:
            raise ValueError("'pretrained: true' needs 'name' (a Hugging Face model name or a local directory)")
        if self.name and self.config:
            raise ValueError("set either 'name' or 'config', not both ('config' builds a BertModel from scratch)")
        return self
