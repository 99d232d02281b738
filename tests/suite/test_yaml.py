"""Suites load as YAML 1.2 (core schema) data, strictly typed and within bounds; every bad file is one line.

Two tables: plain YAML text -> the Python value it loads as, and a bad suite file -> fragments of its one-line message
(each also checked through ``xmbench validate``, which must exit 2).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path

import pytest
import yaml

from harness import cli
from harness.errors import UserError
from harness.suite import load_suite
from harness.suite import loader as suite_loader
from harness.suite.loader import read_yaml

# A small valid suite; the bad cases below change one line of it.
SUITE = """\
name: t
seeds: [0, 1]
hardware:
  deterministic: true
train:
  steps: 2
  batch_size: 4
  lr: 1.0e-3
datasets:
  shapes-vqa: {kind: vqa2, path: "@synthetic"}
models:
  vit:
    type: timm
    image_encoder: &vit
      name: vit_tiny_patch16_224
      args: {patch_size: 8, embed_dim: 32, depth: 1, num_heads: 2}
tasks:
  vqa: {type: vqa, dataset: shapes-vqa, models: [vit], blind_baselines: true}
"""


def _suite(old: str, new: str) -> str:
    assert old in SUITE, old
    return SUITE.replace(old, new, 1)


def _bomb(levels: int = 9) -> str:
    """'Billion laughs' under models.vit.image_encoder.args: 9 aliases per level, 9**levels leaves once expanded."""
    names = "abcdefghijklmnop"[:levels]
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in itertools.pairwise(names)]
    args = "".join(f"        {line}\n" for line in lines)
    return _suite("      args: {patch_size: 8, embed_dim: 32, depth: 1, num_heads: 2}\n", f"      args:\n{args}")


def _nested_mappings(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf: 1\n"


# ---------------------------------------------------------------------------------------------------------------------
# Plain YAML -> Python values (YAML 1.2 core schema)

NAN = object()  # marker: the loaded value must be a float NaN

VALUES = [
    # floats: exponents without a dot, a leading dot, infinities and NaN
    ("1e-3", 0.001),
    ("1E+5", 100000.0),
    (".5", 0.5),
    ("-2.5e-4", -0.00025),
    ("1.", 1.0),
    ("+1.5", 1.5),
    (".inf", math.inf),
    ("-.Inf", -math.inf),
    (".nan", NAN),
    # booleans: only true/false in three spellings
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("FALSE", False),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("n", "n"),
    ("tRUE", "tRUE"),
    # ints: decimal (leading zeros are decimal), 0o octal, 0x hex; no 1.1 sexagesimal, underscores or 0b
    ("010", 10),
    ("0o10", 8),
    ("0x1F", 31),
    ("+12", 12),
    ("-7", -7),
    ("1:20", "1:20"),
    ("1_000", "1_000"),
    ("0b11", "0b11"),
    ("-0x1F", "-0x1F"),
    # null
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("~", None),
    ("", None),
    ("nULL", "nULL"),
    # no implicit timestamps, no 1.1 value key
    ("2024-01-31", "2024-01-31"),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("=", "="),
    # quoting always gives a string
    ("'1e-3'", "1e-3"),
    ('"true"', "true"),
    # explicit core tags
    ("!!str 12", "12"),
    ("!!float 1", 1.0),
    ("!!int '010'", 10),
    ("!!bool 'false'", False),
    ("!!null ''", None),
    # sequences load as tuples
    ("[1, 2.5, x]", (1, 2.5, "x")),
    ("[]", ()),
    ("{a: [1, [2]]}", {"a": (1, (2,))}),
]


@pytest.mark.parametrize(("text", "expected"), VALUES, ids=[repr(v[0]) for v in VALUES])
def test_plain_value(tmp_path: Path, text: str, expected) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(f"v: {text}\n")
    value = read_yaml(path)["v"]
    if expected is NAN:
        assert isinstance(value, float) and math.isnan(value)
    else:
        assert value == expected and type(value) is type(expected), value


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "base: &b {x: 1, y: [1, 2]}\n"
        "over: {<<: *b, x: 3}\n"  # an explicit key overrides a merged one (not a duplicate)
        "two: {<<: [{p: 1}, {p: 2, q: 3}], r: 0}\n"  # earlier merged mappings win
        "alias: *b\n"
    )
    data = read_yaml(path)
    assert data["over"] == {"x": 3, "y": (1, 2)}
    assert data["two"] == {"p": 1, "q": 3, "r": 0}
    assert data["alias"] == {"x": 1, "y": (1, 2)}


def test_shipped_suites_load() -> None:
    root = Path(__file__).resolve().parents[2] / "suites"
    smoke = load_suite(root / "smoke.yaml")
    assert smoke.train.lr == 0.001 and smoke.seeds == (0, 1)
    assert smoke.models["xbert"].params["image_encoder"] == smoke.models["vit"].params["image_encoder"]  # anchors
    assert smoke.models["vit"].params["image_encoder"]["args"]["mlp_ratio"] == 2.0
    fusion = load_suite(root / "fusion.yaml")
    assert fusion.tasks["vqa"].models == ("bert", "single_stream", "cross_attention", "sum", "concat")


def test_safe_loader_tables_untouched() -> None:
    """The 1.2 tables live on the suite loader class only; yaml.SafeLoader still reads YAML 1.1."""
    assert yaml.safe_load("[yes, 010, 1:20]") == [True, 8, 80]
    assert suite_loader._StrictSafeLoader.yaml_implicit_resolvers is not yaml.SafeLoader.yaml_implicit_resolvers
    assert suite_loader._StrictSafeLoader.yaml_constructors is not yaml.SafeLoader.yaml_constructors


def test_strict_int_for_float_and_valid_suite(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(_suite("  lr: 1.0e-3", "  lr: 1"))
    suite = load_suite(path)
    assert suite.train.lr == 1.0 and isinstance(suite.train.lr, float)
    assert suite.seeds == (0, 1)


# ---------------------------------------------------------------------------------------------------------------------
# Bad suite files -> one line naming the file and the key path or line

BAD = [
    # strict types
    (
        "lr-quoted",
        _suite("  lr: 1.0e-3", '  lr: "1e-3"'),
        ["train.lr: expected a number, got the string '1e-3'", "(write it without quotes)"],
    ),
    (
        "batch-quoted",
        _suite("  batch_size: 4", '  batch_size: "64"'),
        ["train.batch_size: expected an integer, got the string '64'", "(write it without quotes)"],
    ),
    (
        "batch-bool",
        _suite("  batch_size: 4", "  batch_size: true"),
        ["train.batch_size: expected an integer, got the boolean True"],
    ),
    (
        "batch-float",
        _suite("  batch_size: 4", "  batch_size: 2.0"),
        ["train.batch_size: expected an integer, got the float 2.0 (write 2)"],
    ),
    ("lr-bool", _suite("  lr: 1.0e-3", "  lr: false"), ["train.lr: expected a number, got the boolean False"]),
    ("lr-nan", _suite("  lr: 1.0e-3", "  lr: .nan"), ["train.lr: input should be a finite number, got nan"]),
    ("seeds-bool", _suite("seeds: [0, 1]", "seeds: [true]"), ["seeds[0]: expected an integer, got the boolean True"]),
    (
        "seed-negative",
        _suite("seeds: [0, 1]", "seeds: [0, -1]"),
        ["seeds[1]: a seed must be an integer in 0..4294967295", "got -1"],
    ),
    (
        "seed-too-big",
        _suite("seeds: [0, 1]", "seeds: [4294967296]"),
        ["seeds[0]: a seed must be an integer in 0..4294967295", "got 4294967296"],
    ),
    (
        "bool-yes",
        _suite("  deterministic: true", "  deterministic: yes"),
        ["hardware.deterministic: expected true or false, got the string 'yes'", "write true or false"],
    ),
    (
        "bool-on",
        _suite("  deterministic: true", "  deterministic: on"),
        ["hardware.deterministic: expected true or false, got the string 'on'"],
    ),
    (
        "description-int",
        _suite("name: t", "name: t\ndescription: 010"),
        ["description: expected a string, got the integer 10 (put it in quotes)"],
    ),
    (
        "key-int",
        _suite("  shapes-vqa: {", "  1: {kind: coco, path: x}\n  shapes-vqa: {"),
        ["datasets.1: a key must be a string, got the integer 1 (put it in quotes)"],
    ),
    (
        "train-empty",
        _suite("  lr: 1.0e-3\n", "  lr: 1.0e-3\nimage:\n"),
        ["image: expected a mapping of keys, got an empty value (null)"],
    ),
    ("seeds-scalar", _suite("seeds: [0, 1]", "seeds: 0"), ["seeds: expected a list, got a number 0"]),
    (
        "int-too-long",
        _suite("  batch_size: 4", "  batch_size: " + "9" * 5000),
        ["line 7, column 15: the number 99999999999999999999... (5000 characters) is too large"],
    ),
    # tags
    (
        "tag-binary",
        _suite("name: t", "name: !!binary aGVsbG8="),
        ["line 1, column 7: tag '!!binary' is not allowed", "remove the tag"],
    ),
    ("tag-set", _suite("seeds: [0, 1]", "seeds: !!set {0, 1}"), ["line 2, column 8: tag '!!set' is not allowed"]),
    (
        "tag-timestamp",
        _suite("name: t", "name: !!timestamp 2024-01-31"),
        ["line 1, column 7: tag '!!timestamp' is not allowed"],
    ),
    (
        "tag-python",
        _suite("seeds: [0, 1]", "seeds: !!python/object/apply:os.system ['echo pwned']"),
        ["line 2, column 8: tag '!!python/object/apply:os.system' is not allowed"],
    ),
    (
        "tag-python-name",
        _suite("name: t", "name: !!python/name:os.system ''"),
        ["line 1, column 7: tag '!!python/name:os.system' is not allowed"],
    ),
    ("tag-local", _suite("name: t", "name: !secret t"), ["line 1, column 7: tag '!secret' is not allowed"]),
    (
        "tag-int-invalid",
        _suite("  batch_size: 4", "  batch_size: !!int 1_000"),
        ["line 7, column 15: !!int '1_000' is not a YAML 1.2 integer"],
    ),
    (
        "tag-bool-invalid",
        _suite("  deterministic: true", "  deterministic: !!bool yes"),
        ["line 4, column 18: !!bool 'yes' is not a YAML 1.2 boolean"],
    ),
    (
        "tag-seq-on-map",
        _suite("seeds: [0, 1]", "seeds: !!seq {a: 1}"),
        ["line 2, column 8: tag !!seq needs a list, not a mapping"],
    ),
    # structure
    ("syntax", _suite("seeds: [0, 1]", "seeds: [0, 1"), ["YAML syntax error at line 3, column"]),
    (
        "duplicate-key",
        _suite("  batch_size: 4", "  batch_size: 4\n  batch_size: 8"),
        ["line 8, column 3: duplicate key 'batch_size' (first on line 7)"],
    ),
    (
        "merge-scalar",
        _suite("  vit:\n", "  vit:\n    <<: 1\n"),
        ["line 13, column 9: '<<' (merge key) takes a mapping or a list of mappings, not a scalar"],
    ),
    (
        "nul-character",
        _suite("name: t", "name: t\x00"),
        ["line 1: character U+0000 is not allowed in a YAML file; remove it"],
    ),
    # bounds
    (
        "deep-flow",
        _suite("seeds: [0, 1]", "seeds: " + "[" * 10_000 + "]" * 10_000),
        ["line 2, column 71: YAML nested more than 64 levels deep"],
    ),
    (
        "deep-block",
        _suite("name: t\n", "name: t\nx:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(80))),
        ["line 65, column 127: YAML nested more than 64 levels deep"],
    ),
    (
        "deep-aliases",
        _suite("name: t\n", "name: t\na: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"),
        ["b[0][0][0]", "nested more than 64 levels deep once YAML aliases are expanded"],
    ),
    (
        "alias-bomb",
        _bomb(),
        ["models.vit.image_encoder.args.f[0]: YAML aliases expand past the limit of 100,000 values"],
    ),
    (
        "recursive-alias",
        _suite("      name: vit_tiny_patch16_224", "      name: &n [1, *n]"),
        ["models.vit.image_encoder.name[1] (line 15, column 13): a YAML alias refers to a collection that contains it"],
    ),
]


def _check_bad(path: Path, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    for part in expected:
        assert part in message, message
    capsys.readouterr()
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"xmbench: error: {message}\n", err


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_suite(tmp_path: Path, text: str, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    _check_bad(path, expected, capsys)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (SUITE.replace("name: t", "name: café").encode("latin-1"), "byte 0xe9 at byte offset 9 (line 1)"),
        (SUITE.encode("utf-16"), "byte 0xff at byte offset 0 (line 1)"),
    ],
    ids=["latin-1", "utf-16"],
)
def test_not_utf8(tmp_path: Path, data: bytes, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "suite.yaml"
    path.write_bytes(data)
    _check_bad(path, ["not valid UTF-8", expected, "save it as UTF-8"], capsys)


def test_huge_file_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE + "#" * (1 << 20) + "\n")
    _check_bad(path, ["bytes, over the 1 MiB limit for a suite file"], capsys)


def test_too_many_values_without_aliases(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(suite_loader, "MAX_NODES", 50)
    path = tmp_path / "suite.yaml"
    path.write_text(_suite("seeds: [0, 1]", f"seeds: [{', '.join(str(i) for i in range(60))}]"))
    _check_bad(path, ["line 2, column", "the document has more than 50 values"], capsys)


def test_alias_bomb_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(_bomb())
    start = time.perf_counter()
    with pytest.raises(UserError, match="aliases expand past the limit"):
        load_suite(path)
    assert time.perf_counter() - start < 0.5


def test_small_alias_fanout_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(_bomb(levels=3))  # 9**3 leaves: well under the budget
    suite = load_suite(path)
    args = suite.models["vit"].params["image_encoder"]["args"]
    assert len(args["c"]) == 9 and args["c"][0] == args["b"] and args["a"] == ("x",) * 9


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_chmod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    path.chmod(0)
    try:
        _check_bad(path, ["permission denied", "readable"], capsys)
    finally:
        path.chmod(0o644)


def test_unreadable_file_monkeypatched(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)

    def denied(self: Path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    _check_bad(path, ["permission denied; make the file and its folders readable (chmod u+r)"], capsys)


def test_directory_fifo_missing_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _check_bad(tmp_path, ["is a directory; pass a suite YAML file"], capsys)
    _check_bad(tmp_path / "nope.yaml", ["suite file not found"], capsys)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    _check_bad(empty, ["suite file is empty"], capsys)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.yaml"
        os.mkfifo(fifo)
        _check_bad(fifo, ["not a regular file"], capsys)  # refused without opening: no hang
