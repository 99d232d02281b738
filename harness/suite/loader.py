"""YAML -> :class:`Suite`, with one-line errors that name the file, the key path and the bad value.

Suites are read as plain YAML 1.2 data (core schema) by :class:`_StrictSafeLoader`, a SafeLoader subclass with its own
resolver and constructor tables: ``1e-3`` is a float, only ``true``/``false`` are booleans (``yes``/``on`` stay
strings), no implicit timestamps, no YAML 1.1 octal or sexagesimal ints, sequences become tuples, duplicate keys are
rejected and only the core tags are accepted, so a suite can never run code. Reading is bounded: file size, nesting
depth and the size of the document with every alias expanded are capped before anything walks the data. The suite
is then validated by pydantic in strict mode (:func:`validate_data`). Semantic checks that need the registries (model
families, pairings, dataset paths) live in :func:`harness.suite.check.check_suite`.
"""

from __future__ import annotations

import re
import stat
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import UserError, available, did_you_mean
from harness.suite.schema import Suite

M = TypeVar("M", bound=BaseModel)

MAX_BYTES = 1 << 20  # a suite file larger than 1 MiB is refused before parsing
MAX_DEPTH = 64  # nesting levels (collections and scalars), counted with aliases expanded
MAX_NODES = 100_000  # values in the document with every alias expanded (guards against "billion laughs")

_CORE = "tag:yaml.org,2002:"
_NULL, _BOOL, _INT, _FLOAT, _STR = (_CORE + t for t in ("null", "bool", "int", "float", "str"))
_SEQ, _MAP, _MERGE = _CORE + "seq", _CORE + "map", _CORE + "merge"
_ALLOWED_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!map, !!seq"

# YAML 1.2.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL_RE = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL_RE = re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_RE = re.compile(
    r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)
_MERGE_RE = re.compile(r"<<\Z")
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}


class _DataError(yaml.YAMLError):
    """Well-formed YAML that a suite must not contain; the message already says where (line or key path)."""


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _at(node: Node) -> str:
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


class _StrictSafeLoader(yaml.SafeLoader):
    """Plain YAML 1.2 core-schema data: own resolver and constructor tables (``yaml.SafeLoader``'s are not touched),
    duplicate keys rejected, sequences as tuples, nesting and alias expansion bounded."""

    yaml_implicit_resolvers: typing.ClassVar[dict] = {}
    yaml_constructors: typing.ClassVar[dict] = {}
    yaml_multi_constructors: typing.ClassVar[dict] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Cap the nesting depth (PyYAML's composer recurses once per level) and the number of nodes while composing."""
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:  # stop parsing early: the expanded document can only be larger
                mark = self.peek_event().start_mark
                raise _DataError(
                    f"line {mark.line + 1}, column {mark.column + 1}: the document has more than {MAX_NODES:,} "
                    "values; a suite needs far fewer"
                )
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _DataError(
                    f"line {mark.line + 1}, column {mark.column + 1}: YAML nested more than {MAX_DEPTH} levels deep; "
                    "a suite needs only a few levels: close the brackets or reduce the indentation"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    # -- constructors (registered below) --------------------------------------------------------------------------

    def _scalar(self, node: Node, tag: str) -> str:
        if not isinstance(node, ScalarNode):
            raise _DataError(
                f"{_at(node)}: tag {_short_tag(tag)} needs a single value, not a {node.id}; remove the tag"
            )
        return node.value

    def construct_core_null(self, node: Node) -> None:
        value = self._scalar(node, _NULL)
        if not _NULL_RE.match(value):
            _bad_scalar(node, value, "null (null, ~ or nothing)")
        return None

    def construct_core_bool(self, node: Node) -> bool:
        value = self._scalar(node, _BOOL)
        if not _BOOL_RE.match(value):
            _bad_scalar(node, value, "boolean (true or false)")
        return value.lower() == "true"

    def construct_core_int(self, node: Node) -> int:
        value = self._scalar(node, _INT)
        if not _INT_RE.match(value):
            _bad_scalar(node, value, "integer (decimal, 0o octal or 0x hex)")
        return _checked(node, _to_int, value)

    def construct_core_float(self, node: Node) -> float:
        value = self._scalar(node, _FLOAT)
        if _INT_RE.match(value):
            return _checked(node, lambda v: float(_to_int(v)), value)
        if not _FLOAT_RE.match(value):
            _bad_scalar(node, value, "number (e.g. 0.5, 1e-3, .inf)")
        return _to_float(value)

    def construct_core_str(self, node: Node) -> str:
        return self._scalar(node, _STR)

    def construct_core_seq(self, node: Node) -> tuple:
        if not isinstance(node, SequenceNode):
            raise _DataError(f"{_at(node)}: tag !!seq needs a list, not a {node.id}; remove the tag")
        return tuple(self.construct_object(child) for child in node.value)

    def construct_core_map(self, node: Node) -> dict:
        """A mapping; ``<<`` merges mappings (explicit keys win, earlier merged mappings win over later ones)."""
        if not isinstance(node, MappingNode):
            raise _DataError(f"{_at(node)}: tag !!map needs a mapping, not a {node.id}; remove the tag")
        merged: dict = {}
        explicit: dict = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                key: Any = "<<"
            else:
                key = self.construct_object(key_node)
                try:
                    hash(key)
                except TypeError:
                    raise _DataError(f"{_at(key_node)}: {_kind(key)} cannot be a key; use a plain name") from None
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first_line[key] + 1})", key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        raise _DataError(
                            f"{_at(source)}: '<<' (merge key) takes a mapping or a list of mappings, "
                            f"not a {source.id}; write '<<: *anchor' with an anchored mapping"
                        )
                    for k, v in self.construct_object(source).items():
                        merged.setdefault(k, v)
            else:
                explicit[key] = self.construct_object(value_node)
        return {**merged, **explicit}

    def construct_not_allowed(self, node: Node) -> Any:
        raise _DataError(
            f"{_at(node)}: tag {_short_tag(node.tag)!r} is not allowed: a suite is plain data (allowed tags: "
            f"{_ALLOWED_TAGS}); remove the tag"
        )


for _tag, _regexp, _first in (
    (_NULL, _NULL_RE, ["~", "n", "N", ""]),
    (_BOOL, _BOOL_RE, list("tTfF")),
    (_INT, _INT_RE, list("-+0123456789")),
    (_FLOAT, _FLOAT_RE, list("-+0123456789.")),
    (_MERGE, _MERGE_RE, ["<"]),
):
    _StrictSafeLoader.add_implicit_resolver(_tag, _regexp, _first)
for _tag, _constructor in (
    (_NULL, _StrictSafeLoader.construct_core_null),
    (_BOOL, _StrictSafeLoader.construct_core_bool),
    (_INT, _StrictSafeLoader.construct_core_int),
    (_FLOAT, _StrictSafeLoader.construct_core_float),
    (_STR, _StrictSafeLoader.construct_core_str),
    (_SEQ, _StrictSafeLoader.construct_core_seq),
    (_MAP, _StrictSafeLoader.construct_core_map),
    (None, _StrictSafeLoader.construct_not_allowed),
):
    _StrictSafeLoader.add_constructor(_tag, _constructor)


def _to_int(value: str) -> int:
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)


def _to_float(value: str) -> float:
    lowered = value.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(value)


def _checked(node: Node, convert: typing.Callable[[str], Any], value: str) -> Any:
    """An int of more than 100 characters is refused: no suite needs one, and huge ints break conversions."""
    if len(value) <= 100:
        try:
            return convert(value)
        except (ValueError, OverflowError):
            pass
    raise _DataError(f"{_at(node)}: the number {value[:20]}... ({len(value)} characters) is too large for a suite")


def _bad_scalar(node: Node, value: str, what: str) -> typing.NoReturn:
    raise _DataError(
        f"{_at(node)}: {_short_tag(node.tag)} {value!r} is not a YAML 1.2 {what}; fix the value or remove the tag"
    )


def resolve_scalar(text: str) -> Any:
    """How a plain (unquoted) YAML scalar reads under the core schema: ``'1e-3'`` -> 0.001, ``'yes'`` -> 'yes'."""
    if _NULL_RE.match(text):
        return None
    if _BOOL_RE.match(text):
        return text.lower() == "true"
    try:
        if _INT_RE.match(text):
            return _to_int(text)
        if _FLOAT_RE.match(text):
            return _to_float(text)
    except ValueError:  # an int of more than 4300 digits
        pass
    return text


def _check_expansion(root: Node) -> None:
    """Refuse documents that are too large or too deep once every alias is expanded, or that contain themselves.

    Subtree sizes are memoised per node, so this is linear in the number of distinct nodes and stops at the budget:
    an alias bomb is refused without being walked."""
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, expanded height)
    on_path: set[int] = set()
    count = 0
    aliased = False

    def where(path: tuple) -> str:
        return (key_path(path[:12]) + ("..." if len(path) > 12 else "")) or "<top level>"

    def too_big(path: tuple) -> _DataError:
        if aliased:
            return _DataError(
                f"{where(path)}: YAML aliases expand past the limit of {MAX_NODES:,} values (an alias bomb?); a suite "
                "needs far fewer: write the values out or nest fewer aliases"
            )
        return _DataError(f"{where(path)}: the document has more than {MAX_NODES:,} values; a suite needs far fewer")

    def too_deep(node: Node, path: tuple) -> _DataError:
        return _DataError(
            f"{where(path)} ({_at(node)}): nested more than {MAX_DEPTH} levels deep once YAML "
            "aliases are expanded; nest fewer aliases"
        )

    def visit(node: Node, depth: int, path: tuple) -> tuple[int, int]:
        nonlocal count, aliased
        known = memo.get(id(node))
        if known is not None:
            aliased = True
            if count + known[0] > MAX_NODES:
                raise too_big(path)
            if depth + known[1] - 1 > MAX_DEPTH:
                raise too_deep(node, path)
            count += known[0]
            return known
        count += 1
        if count > MAX_NODES:
            raise too_big(path)
        if depth > MAX_DEPTH:
            raise too_deep(node, path)
        if isinstance(node, ScalarNode):
            memo[id(node)] = (1, 1)
            return 1, 1
        if id(node) in on_path:
            raise _DataError(
                f"{where(path)} ({_at(node)}): a YAML alias refers to a collection that contains "
                "it (a recursive structure); a suite cannot be recursive"
            )
        on_path.add(id(node))
        size, height = 1, 1
        if isinstance(node, SequenceNode):
            children = [(child, (*path, i)) for i, child in enumerate(node.value)]
        else:
            children = []
            for key_node, value_node in node.value:
                part = key_node.value if isinstance(key_node, ScalarNode) else "?"
                children += [(key_node, path), (value_node, (*path, part))]
        for child, child_path in children:
            child_size, child_height = visit(child, depth + 1, child_path)
            size += child_size
            height = max(height, child_height + 1)
        on_path.discard(id(node))
        memo[id(node)] = (size, height)
        return size, height

    visit(root, 1, ())


def read_yaml(path: Path) -> Any:
    """Read a YAML file safely and within bounds; every problem becomes a one-line UserError naming the file."""
    text = _read_text(path)
    if not text.strip():
        raise UserError(f"{path}: suite file is empty; start from suites/smoke.yaml")
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)
    except _DataError as exc:
        raise UserError(f"{path}: {exc}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserError(f"{path}: YAML syntax error at {where}: {problem}") from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise UserError(
            f"{path}: line {line}: character U+{char:04X} is not allowed in a YAML file; remove it"
        ) from exc
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: YAML error: {exc}") from exc
    except RecursionError as exc:  # the depth caps above should make this unreachable
        raise UserError(f"{path}: YAML nested too deeply; a suite needs only a few levels") from exc


def _unreadable(path: Path, exc: OSError) -> UserError:
    if isinstance(exc, FileNotFoundError):
        return UserError(f"{path}: suite file not found; check the path (suites live in suites/*.yaml)")
    if isinstance(exc, PermissionError):
        return UserError(f"{path}: permission denied; make the file and its folders readable (chmod u+r)")
    return UserError(f"{path}: cannot read the suite file: {exc.strerror or exc}")


def _read_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_BYTES, valid UTF-8."""
    try:
        info = path.stat()
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{path}: is a directory; pass a suite YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path}: not a regular file (a device, pipe or socket); pass a suite YAML file")
    if info.st_size > MAX_BYTES:
        raise UserError(_too_large(path, f"{info.st_size:,} bytes"))
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if len(data) > MAX_BYTES:
        raise UserError(_too_large(path, f"more than {MAX_BYTES:,} bytes"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(
            f"{path}: not valid UTF-8: byte 0x{data[exc.start]:02x} at byte offset {exc.start} (line {line}); "
            "save it as UTF-8"
        ) from None


def _too_large(path: Path, size: str) -> str:
    return (
        f"{path}: suite file is {size}, over the {MAX_BYTES >> 20} MiB limit for a suite file; a suite is a short "
        "declarative file: move data out of it"
    )


def load_suite(path: str | Path, profile: str | None = None, sets: tuple[str, ...] | list[str] = ()) -> Suite:
    """Load and validate a suite file (schema only; see :func:`check_suite` for cross-references), with a named
    profile's overlay and ``--set`` overrides applied first (:mod:`harness.suite.profiles`)."""
    from harness.suite.profiles import apply_profile, apply_sets

    path = Path(path)
    data = read_yaml(path)
    if data is None:
        raise UserError(f"{path}: suite file is empty; start from suites/smoke.yaml")
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of keys (name, seeds, train, ...), got {_kind(data)}")
    data = apply_sets(apply_profile(data, profile, str(path)), sets)
    data.setdefault("name", path.stem)
    if profile is not None:
        data["profile"] = profile
    if sets:
        data["overrides"] = tuple(sets)
    where = str(path) if profile is None else f"{path} (profile {profile})"
    return validate_data(Suite, data, where)


def suite_profiles(path: str | Path) -> list[str]:
    """The profile names a suite file defines."""
    from harness.suite.profiles import profile_names

    return profile_names(read_yaml(Path(path)))


def validate_data(model_cls: type[M], data: Any, where: str, prefix: tuple = ()) -> M:
    """Validate loaded suite data against ``model_cls`` in pydantic strict mode; errors become one UserError line.

    Strict: a quoted number, a boolean for a number or a float for an int is an error (an int for a float is fine).
    Lists are accepted as tuples (YAML sequences load as tuples). ``where`` is the file, ``prefix`` the key path of
    ``data`` inside it, e.g. ``('models', 'vit')``."""
    try:
        return model_cls.model_validate(_tuples(data), strict=True)
    except ValidationError as exc:
        raise UserError(f"{where}: {format_validation_error(exc, model_cls, prefix)}") from exc


def _tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


def format_validation_error(exc: ValidationError, root: type[BaseModel], prefix: tuple = ()) -> str:
    """One line for the first pydantic error (plus a count of the others)."""
    errors = exc.errors(include_url=False)
    # A length error "after validation" only echoes a failed item below it: report the item alone.
    errors = [e for e in errors if not _echo(e, errors)] or errors
    # A misspelt key also makes the intended key "missing": report the unknown key (with its suggestion) first.
    rank = {"extra_forbidden": 0, "missing": 2}
    errors = sorted(errors, key=lambda e: rank.get(e["type"], 1))
    first = errors[0]
    raw_loc = tuple(first["loc"])
    if first["type"] == "missing" and raw_loc and isinstance(raw_loc[-1], int):  # a fixed-length list too short
        raw_loc = raw_loc[:-1]
        first = {**first, "type": "missing_item", "loc": raw_loc}
    is_key = bool(raw_loc) and raw_loc[-1] == "[key]"
    if is_key:  # a bad mapping key: ('datasets', 1, '[key]') -> 'datasets.1'
        raw_loc = (*raw_loc[:-2], str(raw_loc[-2]))
    if first["type"] == "invalid_key":  # a null/number key of a fixed mapping: ('None',) -> the mapping itself
        raw_loc, is_key = raw_loc[:-1], True
        first = {**first, "type": "string_type"}
    loc = tuple(prefix) + _strip_tags(root, raw_loc)
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += (str(first.get("ctx", {}).get("discriminator", "type")).strip("'"),)
    msg = _describe(first, root, raw_loc, is_key)
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{key_path(loc) or '<top level>'}: {msg}{more}"


def _echo(err: dict, errors: list[dict]) -> bool:
    loc = tuple(err["loc"])
    return err["type"] in ("too_short", "too_long") and any(
        len(o["loc"]) > len(loc) and tuple(o["loc"][: len(loc)]) == loc for o in errors
    )


def key_path(loc: tuple) -> str:
    """('tasks', 'vqa', 'models', 1) -> 'tasks.vqa.models[1]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# pydantic type errors -> what the key expects
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _describe(err: dict, root: type[BaseModel], loc: tuple, is_key: bool = False) -> str:
    etype, value = err["type"], err.get("input")
    if is_key and etype in _EXPECTED:
        return f"a key must be a string, got {_phrase(value)} (put it in quotes)"
    if etype in _EXPECTED:
        return f"expected {_EXPECTED[etype]}, got {_phrase(value)}{_type_hint(etype, value)}"
    if etype == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed) if allowed else ""
        listing = f" Allowed keys: {', '.join(sorted(allowed))}." if allowed else ""
        return f"unknown key {loc[-1]!r}.{hint}{listing}"
    if etype == "missing_item":
        node = _unwrap(_walk(root, loc)[1])
        args = typing.get_args(node) if typing.get_origin(node) is tuple else ()
        need = f"{len(args)} items" if args and Ellipsis not in args else "more items"
        return f"expected {need}, got {len(value)}: {_short(value)}"
    if etype in ("too_short", "too_long"):
        ctx = err.get("ctx", {})
        bound = ctx.get("min_length") if etype == "too_short" else ctx.get("max_length")
        noun = "entr" if ctx.get("field_type") == "Dictionary" else "item"
        plural = "y" if noun == "entr" and bound == 1 else "ies" if noun == "entr" else "" if bound == 1 else "s"
        which = "at least" if etype == "too_short" else "at most"
        return f"expected {which} {bound} {noun}{plural}, got {ctx.get('actual_length')}: {_short(value)}"
    if etype == "missing":
        return f"missing required key {loc[-1]!r}" if loc else "missing required value"
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        tag = ctx.get("tag", value)
        field = ctx.get("discriminator", "type").strip("'")
        if etype == "union_tag_not_found":
            return f"missing required key {field!r}; one of: {', '.join(tags)}"
        return f"unknown {field} {tag!r}.{did_you_mean(str(tag), tags)} Allowed: {', '.join(tags)}."
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        raw = [o.strip() for o in expected.replace(" or ", ",").split(",") if o.strip()]
        options = [o.strip("'") for o in raw]
        if isinstance(value, str) and value in raw:  # a quoted 2014 for Literal[2014, 2017]
            return f"expected one of: {expected}, got the string {value!r} (write it without quotes)"
        return f"{_short(value)} is not allowed.{did_you_mean(str(value), options)} Expected one of: {expected}."
    if etype == "string_pattern_mismatch":
        return f"invalid name {value!r}: use letters, digits, '_', '-', '.' (starting with a letter or digit)"
    if etype in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys, got {_got(value)}"
    if etype in ("list_type", "tuple_type"):
        return f"expected a list, got {_got(value)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if etype.endswith(("_parsing", "_type")) or etype in (
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
    ):
        return f"{_lower_first(msg)}, got {_short(value)}"
    return _lower_first(msg)


def _got(value: Any) -> str:
    return "an empty value (null)" if value is None else f"{_kind(value)} {_short(value)}"


def _phrase(value: Any) -> str:
    """'the boolean True', 'the string '1e-3'', ... for type-error messages."""
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value!r}"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    if value is None:
        return "null (an empty value)"
    return f"{_kind(value)} {_short(value)}"


def _type_hint(etype: str, value: Any) -> str:
    """What to write instead, when it is clear."""
    expected = _EXPECTED[etype]
    if isinstance(value, str):
        plain = resolve_scalar(value)
        numeric = isinstance(plain, (int, float)) and not isinstance(plain, bool)
        if (expected == "a number" and numeric) or (expected == "an integer" and type(plain) is int):
            return " (write it without quotes)"
        if expected == "true or false":
            if isinstance(plain, bool):
                return " (write it without quotes)"
            if value.lower() in _YAML11_BOOLS:
                return " (YAML 1.2 reads it as a string: write true or false)"
    if expected == "an integer" and isinstance(value, float) and value.is_integer():
        return f" (write {int(value)})"
    if expected == "a string" and isinstance(value, (bool, int, float)):
        return " (put it in quotes)"
    return ""


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:] if s else s


def _kind(value: Any) -> str:
    kinds = {dict: "a mapping", list: "a list", tuple: "a list", str: "a string", int: "a number", float: "a number"}
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return kinds.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(_as_lists(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _as_lists(value: Any, depth: int = 0) -> Any:
    """Tuples shown as YAML lists: (0, 1) -> [0, 1] (only a few levels: this is for a 60-character preview)."""
    if depth > 4:
        return value
    if isinstance(value, (tuple, list)):
        return [_as_lists(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _as_lists(v, depth + 1) for k, v in value.items()}
    return value


def _walk(root: type[BaseModel], loc: tuple) -> tuple[tuple, Any]:
    """Follow ``loc`` through the schema. Pydantic inserts the tag of a tagged union into the loc: consume it by
    switching to that variant. Returns (loc without tags, schema node at the end or None)."""
    out: list = []
    node: Any = root
    for part in loc:
        variants = _union_models(node)
        if variants and isinstance(part, str) and part in variants:
            node = variants[part]
            continue
        out.append(part)
        node = _child(node, part) if node is not None else None
    return tuple(out), node


def _strip_tags(root: type[BaseModel], loc: tuple) -> tuple:
    return _walk(root, loc)[0]


def _allowed_keys(root: type[BaseModel], loc: tuple) -> list[str]:
    node = _walk(root, loc)[1]
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _union_models(tp: Any) -> dict[str, type[BaseModel]]:
    tp = _unwrap(tp)
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return {}
    out = {}
    for arm in typing.get_args(tp):
        if isinstance(arm, type) and issubclass(arm, BaseModel):
            for name in ("type", "kind"):
                field = arm.model_fields.get(name)
                if field is not None:
                    for tag in typing.get_args(field.annotation):
                        out[str(tag)] = arm
    return out


def _child(node: Any, part: Any) -> Any:
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        field = node.model_fields.get(part) if isinstance(part, str) else None
        return _unwrap(field.annotation) if field else None
    origin = typing.get_origin(node)
    args = typing.get_args(node)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            child = _child(arm, part)
            if child is not None:
                return child
    return None


def unknown_name(kind: str, name: str, choices: list[str] | dict) -> str:
    """Message body for a reference to an undefined name."""
    return f"unknown {kind} {name!r}.{did_you_mean(name, choices)} {available(choices)}"
