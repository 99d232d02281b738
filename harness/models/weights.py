"""Preflight: every pretrained weight and tokenizer a suite names must be on disk before anything trains.

Nothing is downloaded. A missing weight stops the command (exit 2) with the weight's name and where to put it.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UserError, expand_user

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
HF_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
HF_HINT = (
    "the Hugging Face cache (~/.cache/huggingface/hub, or $HF_HOME/hub): run `hf download {name}` "
    "on a connected machine and copy that cache here, or save_pretrained() it to a directory and give that path"
)


def _hf_file(name: str, filename: str) -> Path | None:
    """``filename`` of ``name`` from a local directory or the HF cache, or None."""
    try:
        local = Path(name).expanduser()
    except RuntimeError:  # '~user' of an unknown user: not a local directory
        local = Path(name)
    if local.is_dir():
        return local / filename if (local / filename).is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    try:
        hit = try_to_load_from_cache(name, filename)
    except Exception:  # invalid repo id: not in the cache
        return None
    return Path(hit) if isinstance(hit, str) else None


def _hf_has(name: str, files: tuple[str, ...]) -> bool:
    """Whether a local directory or the HF cache holds any of ``files`` for ``name``."""
    return any(_hf_file(name, f) is not None for f in files)


def refuse_remote_code(name: str, where: str) -> None:
    """Refuse a model or tokenizer whose config names custom code (``auto_map``): xmbench never runs Python code
    shipped with weights (transformers' ``trust_remote_code``)."""
    from harness.jsonio import loads

    for filename in ("config.json", "tokenizer_config.json"):
        path = _hf_file(name, filename)
        if path is None:
            continue
        try:
            data = loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # transformers reports unreadable configs itself
        if isinstance(data, dict) and data.get("auto_map"):
            classes = ", ".join(sorted(str(v) for v in _flat(data["auto_map"])))[:200]
            raise UserError(
                f"{where}: {name!r} names custom code in {path} (auto_map: {classes}); xmbench never runs code that "
                "comes with weights (trust_remote_code is off). Use a model with a built-in transformers "
                "architecture, or register your model as a plug-in (--plugin MODULE)"
            )


def _flat(value) -> list:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _flat(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _flat(v)]
    return [value]


def locate_timm_weights(name: str) -> tuple[Path | None, str]:
    """Find pretrained weights of a timm model on disk only: the HF cache, the torch hub cache, or a cfg file.

    Returns (path or None, a human description of where they come from).
    """
    import timm
    import torch.hub

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return None, f"timm has no pretrained weights for {name!r}"
    if cfg.file and Path(cfg.file).is_file():
        return Path(cfg.file), cfg.file
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for filename in names:
            hit = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit), f"huggingface.co/{repo}"
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if path.is_file():
            return path, cfg.url
    if cfg.hf_hub_id:
        repo = cfg.hf_hub_id.partition("@")[0]
        return None, (
            f"`hf download {repo} {cfg.hf_hub_filename or 'model.safetensors'}` (goes to "
            f"the Hugging Face cache, ~/.cache/huggingface/hub or $HF_HOME)"
        )
    if cfg.url:
        return None, f"{cfg.url} into {Path(torch.hub.get_dir()) / 'checkpoints'}"
    return None, f"the weights of {name!r}"


def check_timm_name(name: str, where: str) -> None:
    """An unknown timm model name is a UserError with "did you mean"."""
    import timm

    if not timm.is_model(name):
        from harness.errors import did_you_mean

        hint = did_you_mean(name, timm.list_models())
        raise UserError(f"{where}: unknown timm model {name!r}.{hint} See timm.list_models() for names")


def timm_weights_file(spec, where: str) -> Path:
    """The local weights file of a pretrained image encoder: its ``checkpoint``, or the timm/HF/torch-hub cache."""
    if spec.checkpoint:
        path = expand_user(spec.checkpoint, f"{where}.checkpoint")
        if not path.is_file():
            raise UserError(f"{where}.checkpoint: file {spec.checkpoint!r} does not exist; point it at a weights file")
        return path
    path, source = locate_timm_weights(spec.name)
    if path is None:
        raise UserError(
            f"{where}: pretrained weights for timm model {spec.name!r} are not available offline. Fetch them on a "
            f"connected machine: {source}; or download the weights file and set {where}.checkpoint: PATH; or set "
            "pretrained: false to train from scratch"
        )
    return path


def check_image_encoder(spec, where: str) -> None:
    if spec.pretrained:
        timm_weights_file(spec, where)


def check_text_encoder(spec, where: str) -> None:
    if not spec.name:
        return
    refuse_remote_code(spec.name, f"{where}.name")
    if not _hf_has(spec.name, ("config.json",)):
        raise UserError(
            f"{where}.name: {spec.name!r} is not available offline (no config.json). Put it in "
            + HF_HINT.format(name=spec.name)
        )
    if spec.pretrained and not _hf_has(spec.name, HF_WEIGHTS):
        raise UserError(
            f"{where}.name: pretrained weights of {spec.name!r} are not available offline (none of "
            f"{', '.join(HF_WEIGHTS)}). Put them in " + HF_HINT.format(name=spec.name)
        )


def check_tokenizer(name: str, where: str = "text.tokenizer") -> None:
    if name == "wordpiece":
        return
    refuse_remote_code(name, where)
    if not _hf_has(name, HF_TOKENIZER):
        raise UserError(
            f"{where}: tokenizer {name!r} is not available offline (none of {', '.join(HF_TOKENIZER)}). "
            "Put it in " + HF_HINT.format(name=name) + "; or use 'wordpiece'"
        )


def preflight(configs: dict[str, object], tokenizer: str | None) -> None:
    """Check every encoder of every model config (name -> family config: timm names, weights) and the tokenizer."""
    for name, cfg in configs.items():
        image = getattr(cfg, "image_encoder", None)
        if image is not None:
            check_timm_name(image.name, f"models.{name}.image_encoder.name")
            check_image_encoder(image, f"models.{name}.image_encoder")
        text = getattr(cfg, "text_encoder", None)
        if text is not None:
            check_text_encoder(text, f"models.{name}.text_encoder")
    if tokenizer is not None:
        check_tokenizer(tokenizer)
