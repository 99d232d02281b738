"""A deterministic WordPiece vocabulary trainer (the algorithm of the ``tokenizers`` WordPiece trainer, canonical).

Why not ``tokenizers.BertWordPieceTokenizer.train``: its trainer walks Rust hash maps with a per-process random
state, so the ids of the ``##`` tokens, and through them which of several equally frequent pairs is merged first
(and, at the vocabulary-size cut, which tied merges make it in), change from one process to the next. The same
texts then give a different ``vocab.txt`` on every run, machine and CI job.

This trainer gives a vocabulary that depends only on the words and their counts (so on the texts, ``vocab_size``
and ``lowercase``), byte-identical across processes, hash seeds and machines:

1. Words: each text is normalised and pre-tokenised exactly as ``BertWordPieceTokenizer`` does (BERT normaliser:
   clean text, pad Chinese characters, strip accents when lowercasing, lowercase; BERT pre-tokeniser: split on
   whitespace and isolate punctuation), counting every word occurrence (:func:`count_words`).
2. Alphabet: every character of the words (at most ``limit_alphabet``, the most frequent ones), in its word-initial
   form, and the ``##`` form of every character that occurs after the first position of a word. A word is split
   into these units (characters outside the alphabet are dropped, as in ``tokenizers``).
3. Merges (BPE with the ``##`` continuing-subword prefix): repeatedly merge, in every word, the adjacent pair
   ``(a, ##b)`` or ``(##a, ##b)`` with the highest count (summed over words, times word counts) into ``ab`` /
   ``##ab``, adding the new token to the vocabulary unless it is already there, until the vocabulary holds
   ``vocab_size`` tokens or no pair is left. Pair counts are updated incrementally, through an index from each pair
   to the words that contain it.

Tie-breaking (every choice is by a total order, never by hash or insertion order); strings compare in Python's
order, i.e. by Unicode code points, so ``"##"`` (U+0023) sorts before digits and letters:

* merges: highest count first; among equal counts the smallest pair ``(left, right)`` compared as a tuple of
  strings, e.g. at equal counts ``("##a", "##b")`` < ``("a", "##b")`` < ``("a", "##c")`` < ``("b", "##a")``;
* ``limit_alphabet``: the most frequent characters are kept; among equal counts the smaller code point;
* an alphabet larger than ``vocab_size`` allows: the units with the highest count in the split words are kept;
  among equal counts the smaller string.

Vocabulary order: the special tokens, then the word-initial characters by code point, then the ``##`` characters by
code point, then the merged tokens in the order they were made. The vocabulary never exceeds ``vocab_size``
(``tokenizers`` keeps the whole alphabet even when it is larger).

Differences from ``tokenizers`` besides the tie order: ``tokenizers`` lists ``##`` characters in first-seen order,
and, when a pair is created again after it was queued, may merge the words where it appeared last before the
others. Here a merge applies to every occurrence of the pair at once, with exact counts.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cache
from itertools import pairwise

SPECIALS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PREFIX = "##"
LIMIT_ALPHABET = 1000  # BertWordPieceTokenizer.train's default
# Part of the vocabulary cache key: change it whenever the vocabulary for given inputs can change.
VERSION = "xmbench-wordpiece-1"

# ASCII after the BERT normaliser: control characters (other than \t \n \r) and DEL removed, \t \n \r -> space.
_ASCII_CLEAN = {c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]} | {
    0x09: " ",
    0x0A: " ",
    0x0D: " ",
}
# The BERT pre-tokeniser on ASCII: runs of letters/digits, and every ASCII punctuation character on its own.
_ASCII_WORDS = re.compile(r"[0-9A-Za-z]+|[!-/:-@\[-`{-~]")


@cache
def _bert_pipeline(lowercase: bool):
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    return normalizer, pre_tokenizers.BertPreTokenizer()


def bert_words(text: str, lowercase: bool) -> list[str]:
    """The words of ``text`` after the BERT normaliser and pre-tokeniser (what a WordPiece model sees)."""
    normalizer, pre_tokenizer = _bert_pipeline(lowercase)
    return [w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]


def count_words(texts: Iterable[str], lowercase: bool) -> Counter[str]:
    """Count the words of ``texts`` as :func:`bert_words` splits them.

    ASCII texts (nearly all of VQA, COCO, Flickr30k) take a fast path, a regular expression on the whole batch that
    gives the same words as the ``tokenizers`` objects (checked character by character in the tests); other texts
    go through the ``tokenizers`` normaliser and pre-tokeniser.
    """
    counts: Counter[str] = Counter()
    ascii_texts = []
    for text in texts:
        if text.isascii():
            ascii_texts.append(text)
        else:
            counts.update(bert_words(text, lowercase))
    for start in range(0, len(ascii_texts), 65536):
        chunk = "\n".join(ascii_texts[start : start + 65536]).translate(_ASCII_CLEAN)
        counts.update(_ASCII_WORDS.findall(chunk.lower() if lowercase else chunk))
    return counts


def build_vocab(
    texts: Iterable[str],
    vocab_size: int,
    lowercase: bool = True,
    specials: Iterable[str] = SPECIALS,
    limit_alphabet: int = LIMIT_ALPHABET,
) -> list[str]:
    """The WordPiece vocabulary (tokens in id order) of the unique ``texts``; duplicates and order do not matter."""
    return train_wordpiece(count_words(sorted(set(texts)), lowercase), vocab_size, specials, limit_alphabet)


def train_wordpiece(
    word_counts: Mapping[str, int],
    vocab_size: int,
    specials: Iterable[str] = SPECIALS,
    limit_alphabet: int = LIMIT_ALPHABET,
) -> list[str]:
    """Train a WordPiece vocabulary on ``{word: count}``; returns the tokens in id order (see the module docstring)."""
    specials = list(dict.fromkeys(specials))
    if vocab_size < len(specials):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the {len(specials)} special tokens")
    words = sorted((w, int(c)) for w, c in word_counts.items() if c > 0 and w)

    alphabet_counts: Counter[str] = Counter()
    for word, count in words:
        for ch in word:
            alphabet_counts[ch] += count
    alphabet = set(alphabet_counts)
    if len(alphabet) > limit_alphabet:
        alphabet = set(sorted(alphabet, key=lambda ch: (-alphabet_counts[ch], ord(ch)))[:limit_alphabet])

    # Split every word into alphabet units; chars outside the alphabet are dropped, position decides the ## prefix.
    segs: list[list[str]] = []
    freqs: list[int] = []
    unit_counts: Counter[str] = Counter()
    for word, count in words:
        seg = [ch if i == 0 else PREFIX + ch for i, ch in enumerate(word) if ch in alphabet]
        for unit in seg:
            unit_counts[unit] += count
        segs.append(seg)
        freqs.append(count)

    units = [u for u in [*alphabet, *(u for u in unit_counts if u.startswith(PREFIX))] if u not in specials]
    room = vocab_size - len(specials)
    if len(units) > room:  # the alphabet alone does not fit: keep the most used units, nothing to merge
        units = sorted(units, key=lambda u: (-unit_counts[u], u))[:room]
        return specials + sorted(units, key=_unit_order)
    vocab = specials + sorted(units, key=_unit_order)
    return _merge_until(vocab, set(vocab), segs, freqs, vocab_size)


def _unit_order(unit: str) -> tuple[bool, str]:
    """Word-initial characters first, then ``##`` characters, each by code point."""
    return unit.startswith(PREFIX), unit


def _merge_until(vocab: list[str], known: set[str], segs: list[list[str]], freqs: list[int], size: int) -> list[str]:
    pair_counts: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for i, seg in enumerate(segs):
        for pair in pairwise(seg):
            pair_counts[pair] += freqs[i]
            where.setdefault(pair, set()).add(i)
    # Max-heap on count, then min on (left, right): entries (-count, left, right), stale ones skipped when popped.
    heap = [(-count, a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)
    cut = len(PREFIX)
    while len(vocab) < size and heap:
        neg, a, b = heapq.heappop(heap)
        pair = (a, b)
        if pair_counts.get(pair, 0) != -neg or neg == 0:
            continue  # stale: the count changed since this entry was pushed (a newer entry carries the new count)
        new = a + b[cut:]
        if new not in known:
            known.add(new)
            vocab.append(new)
        changed: set[tuple[str, str]] = set()
        for i in where.pop(pair):  # any order: the updates add up, and heap entries are totally ordered
            old = segs[i]
            merged = _merge_word(old, a, b, new)
            f = freqs[i]
            delta: dict[tuple[str, str], int] = {}  # change of each pair's number of occurrences in this word
            for p in pairwise(old):
                delta[p] = delta.get(p, 0) - 1
            gone = set(delta)  # pairs the word no longer has
            for p in pairwise(merged):
                delta[p] = delta.get(p, 0) + 1
                gone.discard(p)
            for p, d in delta.items():
                if d:
                    pair_counts[p] += d * f
                    changed.add(p)
                    if d > 0:
                        where.setdefault(p, set()).add(i)
            for p in gone:
                if p != pair:  # the merged pair's index entry is already gone
                    where[p].discard(i)
            segs[i] = merged
        for p in changed:
            count = pair_counts[p]
            if count > 0:
                heapq.heappush(heap, (-count, p[0], p[1]))
            else:
                del pair_counts[p]
                where.pop(p, None)
    return vocab


def _merge_word(seg: list[str], a: str, b: str, new: str) -> list[str]:
    """Replace every ``a b`` in ``seg`` by ``new``, left to right, without overlaps."""
    out = []
    i, n = 0, len(seg)
    while i < n:
        if i + 1 < n and seg[i] == a and seg[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(seg[i])
            i += 1
    return out
