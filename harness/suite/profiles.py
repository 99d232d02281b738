"""Named profiles (``profiles: {quick: {...}}``, ``--profile quick``) and ``--set key.path=value`` overrides.

A profile is an overlay on the suite document, merged before validation: mappings merge key by key, recursively;
any other value (a number, a string, a list, null) replaces what the suite has. So a ``quick`` profile can swap in
the synthetic data (``datasets: {coco: {path: "@synthetic"}}``), tiny encoders and a short schedule while the base
document stays the real recipe on real data. ``--set`` overrides come after the profile, in the order given; each
value is read as one YAML scalar or flow collection with the suite's own loader (``--set train.lr=1e-4`` is a float,
``--set seeds=[0,1,2]`` a list). The selected profile and every override are kept on the :class:`Suite`
(``profile``, ``overrides``): the profile is part of every run's fingerprint, and the report names both.
"""

from __future__ import annotations

import copy
from typing import Any

from harness.errors import UserError, did_you_mean

RESERVED = ("profile", "overrides")  # set by the command line, never by the file


def merge(base: Any, overlay: Any) -> Any:
    """``overlay`` on ``base``: mappings merge recursively; anything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def apply_profile(data: dict, profile: str | None, where: str) -> dict:
    """The suite document with ``profile``'s overlay applied and the ``profiles`` block removed."""
    for key in RESERVED:
        if key in data:
            flag = "--profile NAME" if key == "profile" else "--set KEY=VALUE"
            raise UserError(f"{where}: {key}: is set on the command line ({flag}), not in the suite file; remove it")
    profiles = data.pop("profiles", None)
    if profiles is None:
        profiles = {}
    if not isinstance(profiles, dict):
        raise UserError(f"{where}: profiles: expected a mapping of profile names to overlays, got {_kind(profiles)}")
    for name, overlay in profiles.items():
        if not isinstance(name, str) or not isinstance(overlay, dict):
            raise UserError(
                f"{where}: profiles.{name}: expected a mapping of suite keys to override (e.g. train: {{epochs: 1}}), "
                f"got {_kind(overlay)}"
            )
        if "profiles" in overlay or any(k in overlay for k in RESERVED):
            raise UserError(f"{where}: profiles.{name}: a profile cannot set 'profiles', 'profile' or 'overrides'")
    if profile is None:
        return data
    if profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise UserError(
            f"--profile {profile}: {where} defines no profile {profile!r}.{did_you_mean(profile, list(profiles))} "
            f"Its profiles: {known}"
        )
    return merge(data, profiles[profile])


def profile_names(data: Any) -> list[str]:
    """The profile names a loaded suite document defines (for ``validate``, which checks every one)."""
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return sorted(profiles) if isinstance(profiles, dict) else []


def parse_set(item: str) -> tuple[tuple[str, ...], Any]:
    """``"train.lr=1e-4"`` -> (("train", "lr"), 1e-4); the value is read with the suite's YAML loader."""
    import yaml

    from harness.suite.loader import _StrictSafeLoader

    key, sep, raw = item.partition("=")
    path = tuple(key.strip().split("."))
    if not sep or not key.strip() or any(not p for p in path):
        raise UserError(
            f"--set {item!r}: expected KEY.PATH=VALUE, e.g. --set train.lr=1e-4 or --set tasks.cls.models=[vit]"
        )
    try:
        value = yaml.load(raw, Loader=_StrictSafeLoader) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"--set {item!r}: the value is not valid YAML ({problem})") from None
    except Exception as exc:  # the loader's own data errors (tags, bounds)
        raise UserError(f"--set {item!r}: {exc}") from None
    return path, value


def apply_sets(data: dict, items: list[str] | tuple[str, ...]) -> dict:
    """Each ``KEY.PATH=VALUE`` set into the document; missing mappings on the way are created (a misspelt key is
    then an unknown key, reported by validation with its path)."""
    for item in items:
        path, value = parse_set(item)
        node: Any = data
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise UserError(
                    f"--set {item!r}: {where} is {_kind(nxt)}, not a mapping, so it has no key {path[i + 1]!r}"
                )
            node = nxt
        node[path[-1]] = value
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value!r})"
