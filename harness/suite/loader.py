"""YAML -> :class:`Suite`, with one-line errors that name the file, the key path and the bad value.

Only ``yaml.safe_load`` semantics are used (a SafeLoader subclass that also rejects duplicate keys), so a suite can
never run code. Semantic checks that need the registries (model families, pairings, dataset paths) live in
:func:`check_suite`.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import UserError, available, did_you_mean
from harness.suite.schema import Suite


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of silently keeping the last one."""


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Read a YAML file safely; syntax errors become a one-line UserError with the line number."""
    if not path.exists():
        raise UserError(f"{path}: suite file not found; check the path (suites live in suites/*.yaml)")
    if path.is_dir():
        raise UserError(f"{path}: is a directory; pass a suite YAML file")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise UserError(f"{path}: suite file is empty; start from suites/smoke.yaml")
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserError(f"{path}: YAML syntax error at {where}: {problem}") from exc
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: YAML error: {exc}") from exc


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite file (schema only; see :func:`check_suite` for cross-references)."""
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        raise UserError(f"{path}: suite file is empty; start from suites/smoke.yaml")
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of keys (name, seeds, train, ...), got {_kind(data)}")
    data.setdefault("name", path.stem)
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {format_validation_error(exc, Suite)}") from exc


def format_validation_error(exc: ValidationError, root: type[BaseModel], prefix: tuple = ()) -> str:
    """One line for the first pydantic error (plus a count of the others)."""
    errors = exc.errors(include_url=False)
    # A misspelt key also makes the intended key "missing": report the unknown key (with its suggestion) first.
    rank = {"extra_forbidden": 0, "missing": 2}
    errors = sorted(errors, key=lambda e: rank.get(e["type"], 1))
    first = errors[0]
    loc = tuple(prefix) + _strip_tags(root, tuple(first["loc"]))
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += (str(first.get("ctx", {}).get("discriminator", "type")).strip("'"),)
    msg = _describe(first, root, tuple(first["loc"]))
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{key_path(loc) or '<top level>'}: {msg}{more}"


def key_path(loc: tuple) -> str:
    """('tasks', 'vqa', 'models', 1) -> 'tasks.vqa.models[1]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(err: dict, root: type[BaseModel], loc: tuple) -> str:
    etype, value = err["type"], err.get("input")
    if etype == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed) if allowed else ""
        listing = f" Allowed keys: {', '.join(sorted(allowed))}." if allowed else ""
        return f"unknown key {loc[-1]!r}.{hint}{listing}"
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
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",") if o.strip(" '")]
        return f"{value!r} is not allowed.{did_you_mean(str(value), options)} Expected one of: {expected}."
    if etype == "string_pattern_mismatch":
        return f"invalid name {value!r}: use letters, digits, '_', '-', '.' (starting with a letter or digit)"
    if etype in ("model_type", "dict_type"):
        return f"expected a mapping of keys, got {_kind(value)} {_short(value)}"
    if etype in ("list_type", "tuple_type"):
        return f"expected a list, got {_kind(value)} {_short(value)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if etype.endswith(("_parsing", "_type")) or etype in ("greater_than", "greater_than_equal", "less_than"):
        return f"{_lower_first(msg)}, got {_short(value)}"
    return _lower_first(msg)


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:] if s else s


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
