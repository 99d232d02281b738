"""Tokenisation shared by every model that reads text.

``text.tokenizer: wordpiece`` builds a BERT WordPiece vocabulary from the suite's training texts with
:mod:`harness.data.wordpiece`: canonical (it depends only on the sorted unique texts, ``vocab_size`` and
``lowercase``) and byte-identical on every machine, cached under ``<cache>/tokenizers/<key>/vocab.txt``, the key a
hash of the trainer version and those inputs. It is applied with ``transformers.BertTokenizer`` (standard WordPiece,
longest match first). Any other value is a Hugging Face tokenizer name or local directory, loaded offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from harness.data import wordpiece
from harness.errors import UserError, expand_user
from harness.suite.schema import TextSpec

SPECIALS = list(wordpiece.SPECIALS)


def cache_root() -> Path:
    """$XMBENCH_CACHE (when set and not blank) or ~/.cache/xmbench; a one-line error when '~' cannot be expanded."""
    env = os.environ.get("XMBENCH_CACHE", "").strip()
    return expand_user(env or "~/.cache/xmbench", "$XMBENCH_CACHE" if env else "the default cache (~/.cache/xmbench)")


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
    from harness.models.weights import refuse_remote_code

    refuse_remote_code(spec.tokenizer, "text.tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(spec.tokenizer, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"text.tokenizer: cannot load tokenizer {spec.tokenizer!r} offline ({type(exc).__name__}). Download it on "
            f"a connected machine (`hf download {spec.tokenizer}`) into the Hugging Face cache, or save "
            "it with save_pretrained() to a directory and give that path; or use 'wordpiece'"
        ) from exc
    return tok, "hf:" + _sha(repr(sorted(tok.get_vocab().items())).encode())


def build_wordpiece(corpus: list[str], vocab_size: int, lowercase: bool, cache_dir: Path) -> Path:
    """Train (or reuse) the canonical WordPiece vocabulary of ``corpus``; returns the path of ``vocab.txt``.

    The vocabulary depends only on the sorted unique texts, ``vocab_size`` and ``lowercase`` (see
    :mod:`harness.data.wordpiece`); the cache key also holds ``wordpiece.VERSION``, so vocabularies of an older
    trainer (including the ``tokenizers`` trainer used before, whose output varied between processes) are never
    reused.
    """
    if vocab_size < len(SPECIALS):
        raise UserError(f"text.vocab_size must be at least {len(SPECIALS)} (the special tokens), got {vocab_size}")
    texts = sorted(set(corpus))
    key = vocab_key(texts, vocab_size, lowercase)
    final = cache_dir / "tokenizers" / key
    if _valid_vocab(final / "vocab.txt", vocab_size):
        return final / "vocab.txt"
    vocab = wordpiece.build_vocab(texts, vocab_size, lowercase)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it 0700; a cache entry should be readable like the rest of the cache
        (tmp / "vocab.txt").write_text("".join(t + "\n" for t in vocab), encoding="utf-8", newline="\n")
        if final.exists() and not _valid_vocab(final / "vocab.txt", vocab_size):
            shutil.rmtree(final, ignore_errors=True)  # an incomplete, damaged or foreign directory: replace it
        with contextlib.suppress(OSError):  # another process won the race: use its (identical) vocabulary
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "vocab.txt"


def _valid_vocab(path: Path, vocab_size: int) -> bool:
    """Whether a cached ``vocab.txt`` is usable: UTF-8, at most ``vocab_size`` distinct non-empty tokens, the special
    tokens included. A damaged entry (emptied, truncated, overwritten) is rebuilt instead of crashing the tokenizer."""
    try:
        tokens = path.read_bytes().decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError):
        return False
    if tokens and tokens[-1] == "":
        tokens.pop()
    return (
        0 < len(tokens) <= vocab_size
        and all(tokens)
        and len(set(tokens)) == len(tokens)
        and set(SPECIALS) <= set(tokens)
    )


def vocab_key(texts: list[str], vocab_size: int, lowercase: bool) -> str:
    """Cache key of the vocabulary of the sorted unique ``texts``: the trainer version, the settings and the texts."""
    h = hashlib.sha256(f"{wordpiece.VERSION}|{vocab_size}|{lowercase}|{len(texts)}\n".encode())
    for t in texts:
        data = t.encode()
        h.update(b"%d:" % len(data))  # length-prefixed, so no two lists of texts hash the same bytes
        h.update(data)
    return h.hexdigest()[:20]


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
            try:
                with np.load(path, allow_pickle=False) as z:
                    ids, mask = z["ids"].astype(np.int64), z["mask"].astype(np.int64)
                if ids.shape == mask.shape == (len(texts), max_length):
                    return torch.from_numpy(ids), torch.from_numpy(mask)
            except Exception:  # a damaged cache file (truncated, overwritten) is a miss: tokenise again
                pass
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
