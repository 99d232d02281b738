"""The deterministic WordPiece vocabulary: identical across processes, the documented algorithm and tie order, cache."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.data import text as text_mod
from harness.data import wordpiece
from harness.data.synthetic import ensure_synthetic
from harness.data.text import build_wordpiece, load_tokenizer, vocab_key
from harness.data.wordpiece import SPECIALS, bert_words, build_vocab, count_words, train_wordpiece
from harness.errors import UserError
from harness.suite.schema import TextSpec

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------------- helpers
def reference_bpe(word_counts: dict[str, int], vocab_size: int) -> tuple[list[str], list[tuple[bool, int]]]:
    """A slow, obviously correct reference: recount every pair at every step, take the max by the documented order.

    Returns the vocabulary and, per merge, whether the chosen pair's count was strictly the highest (no tie) and the
    vocabulary size after it.
    """
    segs = {w: [w[0]] + ["##" + c for c in w[1:]] for w in word_counts}
    firsts = sorted({c for w in word_counts for c in w})
    conts = sorted({u for s in segs.values() for u in s if u.startswith("##")})
    vocab = list(SPECIALS) + firsts + conts
    unique = []
    while len(vocab) < vocab_size:
        counts: Counter[tuple[str, str]] = Counter()
        for w, s in segs.items():
            for i in range(len(s) - 1):
                counts[(s[i], s[i + 1])] += word_counts[w]
        if not counts:
            break
        (a, b), top = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        new = a + b[2:]
        if new not in vocab:
            vocab.append(new)
        unique.append((list(counts.values()).count(top) == 1, len(vocab)))
        for w, s in segs.items():
            out, i = [], 0
            while i < len(s):
                if s[i : i + 2] == [a, b]:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            segs[w] = out
    return vocab, unique


def _texts_of(counts: dict[str, int]) -> list[str]:
    """Texts whose words have exactly these counts (one text per word: the word repeated)."""
    return [" ".join([w] * c) for w, c in counts.items()]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The synthetic dataset's VQA questions and COCO captions (a realistic small corpus)."""
    root = ensure_synthetic(images=200, seed=0, size=32, cache_dir=tmp_path_factory.mktemp("synthetic"))
    questions = json.loads((root / "v2_OpenEnded_mscoco_train2014_questions.json").read_text())["questions"]
    captions = json.loads((root / "annotations" / "captions_train2014.json").read_text())["annotations"]
    return {"questions": [q["question"] for q in questions], "captions": [c["caption"] for c in captions]}


def ties_corpus() -> list[str]:
    """Many words that occur once each: nearly every pair count ties with others, at every step."""
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8))) for _ in range(400)]
    return [" ".join(words[i : i + 4]) for i in range(0, 400, 4)]


# ---------------------------------------------------------------------------------- identical in fresh processes
_CHILD = """
import json, sys
from pathlib import Path
from harness.data.text import load_tokenizer
from harness.suite.schema import TextSpec
corpus = json.loads(Path(sys.argv[1]).read_text())
out = {}
for size in (150, 400):
    tok, fp = load_tokenizer(TextSpec(tokenizer="wordpiece", vocab_size=size), corpus)
    out[size] = [fp, len(tok)]
print(json.dumps(out))
"""


def test_same_vocab_and_fingerprint_in_fresh_processes(tmp_path: Path, shapes: dict[str, list[str]]) -> None:
    corpus = shapes["questions"] + shapes["captions"] + ties_corpus()
    corpus_file = tmp_path / "corpus.json"
    corpus_file.write_text(json.dumps(corpus))
    results, vocabs = [], []
    for hash_seed in ("0", "1", "12345"):
        cache = tmp_path / f"cache-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "XMBENCH_CACHE": str(cache)}
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(corpus_file)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        files = sorted(cache.glob("tokenizers/*/vocab.txt"))
        assert len(files) == 2  # built from scratch in this process's empty cache, one per vocab_size
        vocabs.append([f.read_bytes() for f in files])
    assert vocabs[0] == vocabs[1] == vocabs[2]
    assert results[0] == results[1] == results[2]
    for size, (fp, n) in results[0].items():
        assert n == int(size)  # this corpus has more than 400 possible tokens: the vocabulary is full
        assert fp.startswith("wordpiece:") and len(fp) == len("wordpiece:") + 64
    # ... and equal to what this process builds, with the fingerprint being the sha256 of vocab.txt.
    expected = "".join(t + "\n" for t in build_vocab(corpus, 150)).encode()
    assert results[0]["150"][0] == "wordpiece:" + hashlib.sha256(expected).hexdigest()


def test_output_does_not_depend_on_text_order_or_duplicates(shapes: dict[str, list[str]]) -> None:
    corpus = shapes["captions"] + ties_corpus()
    shuffled = list(reversed(corpus)) + corpus[:50]
    assert build_vocab(corpus, 300) == build_vocab(shuffled, 300)


# ----------------------------------------------------------------------------------------- vocabulary properties
def test_specials_first_alphabet_complete_no_duplicates(shapes: dict[str, list[str]]) -> None:
    corpus = shapes["questions"] + shapes["captions"]
    vocab = build_vocab(corpus, 500)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(set(vocab)) == len(vocab)
    words = [w for t in corpus for w in re.findall(r"[a-z0-9]+|[^\sa-z0-9]", t.lower())]  # independent of the module
    chars = {c for w in words for c in w}
    later = {"##" + c for w in words for c in w[1:]}
    assert chars <= set(vocab) and later <= set(vocab)
    assert not ({"##" + c for c in chars} - later) & set(vocab)  # no ## form of a char only seen word-initially
    # The alphabet comes right after the specials, word-initial chars then ## chars, each by code point.
    n = len(chars) + len(later)
    assert vocab[5 : 5 + n] == sorted(chars) + sorted(later)


def test_most_frequent_words_are_single_tokens(shapes: dict[str, list[str]]) -> None:
    corpus = shapes["captions"]
    counts = Counter(w for t in sorted(set(corpus)) for w in re.findall(r"[a-z]+", t.lower()))  # not the module's
    ranked = [w for w, _ in counts.most_common()]
    assert ranked[:3] == ["a", "the", "in"] and len(ranked) > 40
    vocab = set(build_vocab(corpus, 80))  # ~50 alphabet units, ~30 merges: room for a few whole words only
    assert set(ranked[:8]) <= vocab
    whole = {w for w in ranked if w in vocab}
    assert 8 <= len(whole) < 20 and whole <= set(ranked[:20])  # the words that made it are frequent ones
    assert set(ranked[:20]) <= set(build_vocab(corpus, 120))


def test_vocab_size_is_respected_and_smaller_vocabularies_are_prefixes() -> None:
    corpus = ties_corpus()
    full = build_vocab(corpus, 100_000)
    words = {w for t in corpus for w in t.split()}
    alphabet = 5 + len({c for w in words for c in w}) + len({c for w in words for c in w[1:]})
    assert len(full) < 100_000 and len(full) > alphabet  # ran out of pairs: every word is one token
    assert words <= set(full)
    for size in (alphabet, alphabet + 1, alphabet + 37, 200, 401, len(full) - 1, len(full)):
        vocab = build_vocab(corpus, size)
        assert len(vocab) == size
        assert vocab == full[:size]  # greedy and deterministic: a smaller vocabulary is a prefix of a larger one


def test_alphabet_larger_than_vocab_size_keeps_the_most_used_units() -> None:
    # Words abc, abd, cab (once each). Units used: a:2 (initial in abc, abd), c:1, ##a:1, ##b:3, ##c:1, ##d:1;
    # b and d (word-initial form) are in the alphabet but never used. 4 slots: ##b, a, then the 1s by string order
    # ("##a" < "##c" < "##d" < "c"): ##a, ##c. Written word-initial first, then ##, each by code point.
    assert train_wordpiece({"abc": 1, "abd": 1, "cab": 1}, 9) == [*SPECIALS, "a", "##a", "##b", "##c"]
    assert train_wordpiece({"abc": 1}, 5) == list(SPECIALS)
    with pytest.raises(ValueError, match="smaller than the 5 special tokens"):
        train_wordpiece({"abc": 1}, 4)
    with pytest.raises(UserError, match=r"text\.vocab_size must be at least 5"):
        build_wordpiece(["abc"], 3, True, Path("/nonexistent"))


def test_limit_alphabet_keeps_most_frequent_chars_ties_by_code_point() -> None:
    # a: 3, b: 3, c: 2, d: 1. limit 1 -> "a" (ties with "b", smaller code point). Chars outside the alphabet are
    # dropped, and a char keeps the ## form of its position: "cab" -> "##a".
    assert train_wordpiece({"abc": 1, "abd": 1, "cab": 1}, 100, limit_alphabet=1) == [*SPECIALS, "a", "##a"]
    vocab = train_wordpiece({"abc": 1, "abd": 1, "cab": 1}, 100, limit_alphabet=3)
    assert "d" not in vocab and "##d" not in vocab and "abd" not in vocab and "abc" in vocab and "cab" in vocab


def test_tie_breaking_follows_the_documented_order() -> None:
    # Words abc, abd, cab once each. Alphabet: a b c d, then ##a ##b ##c ##d.
    # Pairs: (a,##b)=2, (##b,##c)=1, (##b,##d)=1, (c,##a)=1, (##a,##b)=1.
    # 1. (a,##b) -> "ab" (highest count). Now abc = ab ##c, abd = ab ##d, cab = c ##a ##b; all pairs count 1:
    #    ("##a","##b") < ("ab","##c") < ("ab","##d") < ("c","##a")  (code points: "#" < "a" < "c").
    # 2. "##ab": cab = c ##ab. Pairs: (ab,##c), (ab,##d), (c,##ab), all 1.
    # 3. "abc", 4. "abd", 5. "cab". Then no pair is left.
    expected = [*SPECIALS, "a", "b", "c", "d", "##a", "##b", "##c", "##d", "ab", "##ab", "abc", "abd", "cab"]
    assert train_wordpiece({"abc": 1, "abd": 1, "cab": 1}, 1000) == expected
    assert build_vocab(["abc abd", "Cab"], 15) == expected[:15]  # the cut falls among tied merges: ##ab, not abc
    # A 3-letter word alone: (##b,##c) and (a,##b) tie, "##b" < "a", so "##bc" comes before "abc".
    assert train_wordpiece({"abc": 7}, 100) == [*SPECIALS, "a", "b", "c", "##b", "##c", "##bc", "abc"]


def test_incremental_counts_match_the_reference_on_random_corpora() -> None:
    rng = random.Random(1)
    for _ in range(40):
        letters = "abcd"[: rng.randint(1, 4)]  # few letters: repeated chars, overlapping pairs (aaaa), many ties
        counts = {
            "".join(rng.choice(letters) for _ in range(rng.randint(1, 8))): rng.randint(1, 5)
            for _ in range(rng.randint(1, 30))
        }
        full, merges = reference_bpe(counts, 10_000)
        n_alphabet = len(full) - len({n for _, n in merges})
        for size in (n_alphabet, rng.randint(n_alphabet, len(full)), len(full), len(full) + 3):
            assert train_wordpiece(counts, size) == reference_bpe(counts, size)[0], (counts, size)


def test_same_vocabulary_as_tokenizers_where_no_tie_decides() -> None:
    """Without ties the ``tokenizers`` trainer is deterministic too, and must agree (as a set: it orders ## chars by
    first sight); the vocabulary size stops before the reference's first tied merge."""
    from tokenizers import BertWordPieceTokenizer

    rng = random.Random(2)
    words = sorted({"".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 6))) for _ in range(120)})
    counts = {w: rng.randint(1, 2000) for w in words}
    full, merges = reference_bpe(counts, 10_000)
    tie_free = [unique for unique, _ in merges].index(False)
    assert tie_free >= 20
    size = merges[tie_free - 1][1]  # the vocabulary size after the last merge before the first tie
    n_alphabet = len(full) - len({n for _, n in merges})
    ours = build_vocab(_texts_of(counts), size)
    assert ours == full[:size] and len(ours) == size
    hf = BertWordPieceTokenizer(lowercase=True)
    hf.train_from_iterator(
        _texts_of(counts), vocab_size=size, min_frequency=1, special_tokens=list(SPECIALS), show_progress=False
    )
    hf_vocab = hf.get_vocab()
    assert set(hf_vocab) == set(ours)
    assert sorted(hf_vocab, key=hf_vocab.get)[n_alphabet:] == ours[n_alphabet:]  # and the same merge order


# --------------------------------------------------------------------------------------------- words and tokenizer
_ASCII = [chr(i) for i in range(128)]


@pytest.mark.parametrize("lowercase", [True, False])
def test_ascii_fast_path_splits_like_the_tokenizers_objects(lowercase: bool) -> None:
    strings = [a + b for a in _ASCII for b in _ASCII] + _ASCII
    rng = random.Random(3)
    strings += ["".join(rng.choice(_ASCII) for _ in range(rng.randint(0, 30))) for _ in range(2000)]
    for s in strings:
        assert count_words([s], lowercase) == Counter(bert_words(s, lowercase)), repr(s)
    expected = Counter(w for s in strings for w in bert_words(s, lowercase))
    assert count_words(strings, lowercase) == expected  # joined in chunks: nothing merges across texts


def test_non_ascii_texts_use_the_bert_normaliser() -> None:
    texts = ["Café NAÏVE", "東京タワー!", "a\u00a0b\u2028c", "x\u200by", "Straße"]
    assert count_words(texts, True) == Counter(
        ["cafe", "naive", "東", "京", "タワー", "!", "a", "b", "c", "xy", "straße"]
    )
    assert count_words(["Café"], False) == Counter(["Café"])


def test_tokenizer_round_trips_corpus_sentences(shapes: dict[str, list[str]]) -> None:
    from tokenizers import decoders

    corpus = shapes["questions"] + shapes["captions"]
    tok, _ = load_tokenizer(TextSpec(tokenizer="wordpiece", vocab_size=120), corpus)
    assert len(tok) == 120 and tok.convert_ids_to_tokens(list(range(5))) == list(SPECIALS)
    for q in sorted(set(shapes["questions"])):  # e.g. "What color is the shape in the top left?"
        ids = tok(q)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == q.lower()
    assert any(t.startswith("##") for q in shapes["questions"] for t in tok.tokenize(q))  # not all whole words
    backend = tok.backend_tokenizer
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # keep "shapes :" as the pre-tokeniser split it
    for c in sorted(set(shapes["captions"]))[:300]:
        words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(c))]
        ids = tok(c)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == " ".join(words)


# -------------------------------------------------------------------------------------------------------- cache
def test_cached_vocabulary_is_reused_without_rebuilding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = ties_corpus()
    first = build_wordpiece(corpus, 200, True, tmp_path)
    assert first == tmp_path / "tokenizers" / vocab_key(sorted(set(corpus)), 200, True) / "vocab.txt"
    assert first.read_text(encoding="utf-8").splitlines() == build_vocab(corpus, 200)

    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached vocabulary")

    monkeypatch.setattr(wordpiece, "build_vocab", no_rebuild)
    assert build_wordpiece(list(reversed(corpus)) + corpus, 200, True, tmp_path) == first
    tok, fp = load_tokenizer(TextSpec(tokenizer="wordpiece", vocab_size=200), corpus, cache_dir=tmp_path)
    assert fp == "wordpiece:" + hashlib.sha256(first.read_bytes()).hexdigest() and len(tok) == 200
    with pytest.raises(AssertionError, match="rebuilt"):  # another size is another entry
        build_wordpiece(corpus, 201, True, tmp_path)


def test_old_format_cache_entry_is_ignored(tmp_path: Path) -> None:
    corpus = ties_corpus()
    texts = sorted(set(corpus))
    # The key of the previous (tokenizers-trained, non-canonical) cache: sha256 of texts and settings, no version.
    old_key = hashlib.sha256("\n".join(texts).encode() + b"|200|True").hexdigest()[:20]
    old = tmp_path / "tokenizers" / old_key / "vocab.txt"
    old.parent.mkdir(parents=True)
    old.write_text("".join(t + "\n" for t in [*SPECIALS, "stale"]))
    path = build_wordpiece(corpus, 200, True, tmp_path)
    assert path != old and old.read_text().endswith("stale\n")
    assert path.read_text(encoding="utf-8").splitlines() == build_vocab(corpus, 200)


def test_trainer_version_is_part_of_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = sorted(set(ties_corpus()))
    key = vocab_key(texts, 200, True)
    assert len(key) == 20 and key != vocab_key(texts, 201, True) and key != vocab_key(texts, 200, False)
    assert key != vocab_key(texts[1:], 200, True) and key != vocab_key(["ab", "c"], 200, True)
    assert vocab_key(["ab", "c"], 200, True) != vocab_key(["a", "bc"], 200, True)
    monkeypatch.setattr(wordpiece, "VERSION", wordpiece.VERSION + "-next")
    assert vocab_key(texts, 200, True) != key


def test_incomplete_cache_directory_is_replaced(tmp_path: Path) -> None:
    corpus = ["what is it?"]
    final = tmp_path / "tokenizers" / vocab_key(corpus, 50, True)
    final.mkdir(parents=True)
    (final / "junk").write_text("x")
    path = build_wordpiece(corpus, 50, True, tmp_path)
    assert path == final / "vocab.txt" and path.read_text().splitlines() == build_vocab(corpus, 50)


def test_offline_hint_names_the_current_hf_cli(tmp_path: Path) -> None:
    spec = TextSpec(tokenizer=str(tmp_path / "no-such-tokenizer"))
    with pytest.raises(UserError, match=r"`hf download .*no-such-tokenizer`") as info:
        load_tokenizer(spec)
    assert "huggingface-cli" not in str(info.value)
    assert list(SPECIALS) == text_mod.SPECIALS
