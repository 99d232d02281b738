"""Tokenisation shared by every model that reads text.

``text.tokenizer: wordpiece`` builds a BERT WordPiece vocabulary from the suite's training texts (deterministic:
sorted unique texts, fixed vocabulary size), cached by content hash. Any other value is a Hugging Face tokenizer
name or local directory, loaded offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from harness.errors import UserError
from harness.suite.schema import TextSpec

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def cache_root() -> Path:
    """$XMBENCH_CACHE or ~/.cache/xmbench."""
    return Path(os.environ.get("XMBENCH_CACHE") or Path.home() / ".cache" / "xmbench").expanduser()


def load_tokenizer(spec: TextSpec, corpus: list[str] | None = None, cache_dir: Path | None = None):
    """Return ``(tokenizer, fingerprint)``; a ``wordpiece`` tokenizer is built from ``corpus`` on first use."""
    from transformers import AutoTokenizer, BertTokenizer

    if spec.tokenizer == "wordpiece":
        if not corpus:
            raise UserError("text.tokenizer: 'wordpiece' needs training texts, but the suite's tasks have none")
        vocab = build_wordpiece(corpus, spec.vocab_size, spec.lowercase, cache_dir or cache_root())
        tok = BertTokenizer(vocab=str(vocab), do_lower_case=spec.lowercase)
        return tok, "wordpiece:" + _sha(vocab.read_bytes())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        tok = AutoTokenizer.from_pretrained(spec.tokenizer, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"text.tokenizer: cannot load tokenizer {spec.tokenizer!r} offline ({type(exc).__name__}). Download it on "
            f"a connected machine (`huggingface-cli download {spec.tokenizer}`) into the Hugging Face cache, or save "
            "it with save_pretrained() to a directory and give that path; or use 'wordpiece'"
        ) from exc
    return tok, "hf:" + _sha(repr(sorted(tok.get_vocab().items())).encode())


def build_wordpiece(corpus: list[str], vocab_size: int, lowercase: bool, cache_dir: Path) -> Path:
    """Train (or reuse) a WordPiece vocabulary; returns the path of ``vocab.txt``."""
    from tokenizers import BertWordPieceTokenizer

    texts = sorted(set(corpus))
    key = _sha("\n".join(texts).encode() + f"|{vocab_size}|{lowercase}".encode())[:20]
    final = cache_dir / "tokenizers" / key
    if (final / "vocab.txt").is_file():
        return final / "vocab.txt"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        trainer = BertWordPieceTokenizer(lowercase=lowercase)
        trainer.train_from_iterator(
            texts, vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIALS, show_progress=False
        )
        trainer.save_model(str(tmp))
        with contextlib.suppress(OSError):  # another process won the race: use its vocabulary
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "vocab.txt"


def tokenize(
    tokenizer,
    texts: list[str],
    max_length: int,
    truncation: bool = True,
    fingerprint: str | None = None,
    cache_dir: Path | None = None,
):
    """Pad/truncate to ``max_length``: returns (input_ids, attention_mask) as (N, max_length) long tensors.

    With ``truncation=False`` a text longer than ``max_length`` tokens is an error. With a tokenizer ``fingerprint``
    the result is cached on disk (``<cache>/tokens/<key>.npz``), keyed by the fingerprint, the settings and the texts.
    """
    import numpy as np
    import torch

    path = None
    if fingerprint is not None:
        h = hashlib.sha256(f"{fingerprint}|{max_length}|{truncation}|{len(texts)}".encode())
        for t in texts:
            h.update(t.encode())
            h.update(b"\0")
        path = (cache_dir or cache_root()) / "tokens" / f"{h.hexdigest()[:32]}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return torch.from_numpy(z["ids"].astype(np.int64)), torch.from_numpy(z["mask"].astype(np.int64))
    if not truncation:
        lengths = [len(x) for x in tokenizer(texts, add_special_tokens=True)["input_ids"]]
        too_long = [i for i, n in enumerate(lengths) if n > max_length]
        if too_long:
            i = too_long[0]
            raise UserError(
                f"text.truncation is false but {len(too_long)} text(s) exceed text.max_length={max_length} tokens, "
                f"e.g. {texts[i][:80]!r} ({lengths[i]} tokens); raise max_length or set truncation: true"
            )
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if path is not None:
        import io

        from harness.results.store import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, ids=ids.numpy().astype(np.int32), mask=mask.numpy().astype(np.int8))
        atomic_write_bytes(path, buf.getvalue())
    return ids, mask


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
