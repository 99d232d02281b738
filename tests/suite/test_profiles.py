"""Suite profiles (``profiles:`` + ``--profile``) and ``--set`` overrides: how they merge, what they refuse, and that
the profile reaches every fingerprint and the report."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.errors import UserError
from harness.suite.loader import load_suite
from harness.suite.profiles import apply_sets, merge, parse_set
from tests.conftest import TINY_SUITE


def _write(tmp_path: Path, suite: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _with_profiles(**profiles) -> dict:
    suite = copy.deepcopy(TINY_SUITE)
    suite["profiles"] = profiles
    return suite


def test_merge_is_recursive_for_mappings_and_replaces_everything_else() -> None:
    base = {"train": {"epochs": 10, "lr": 1e-4}, "seeds": [0, 1, 2], "image": {"size": 224}}
    overlay = {"train": {"epochs": 1}, "seeds": [0], "image": None}
    out = merge(base, overlay)
    assert out == {"train": {"epochs": 1, "lr": 1e-4}, "seeds": [0], "image": None}
    assert base["train"]["epochs"] == 10  # the base is not modified


def test_a_profile_overlays_the_suite(tmp_path: Path) -> None:
    path = _write(tmp_path, _with_profiles(quick={"train": {"steps": 1}, "seeds": [0], "image": {"size": 8}}))
    base, quick = load_suite(path), load_suite(path, "quick")
    assert base.profile is None and base.train.steps == 3 and base.seeds == (0, 1)
    assert quick.profile == "quick" and quick.train.steps == 1 and quick.seeds == (0,) and quick.image.size == 8
    assert quick.train.lr == base.train.lr  # what the profile does not name stays


@pytest.mark.parametrize(
    ("item", "path", "value"),
    [
        ("train.lr=1e-4", ("train", "lr"), 1e-4),
        ("seeds=[0,1,2]", ("seeds",), (0, 1, 2)),  # the suite loader reads sequences as tuples
        ("hardware.deterministic=false", ("hardware", "deterministic"), False),
        ("tasks.cls.prompt=what shape?", ("tasks", "cls", "prompt"), "what shape?"),
        ("train.grad_clip=null", ("train", "grad_clip"), None),
        ("image.size=032", ("image", "size"), 32),
    ],
)
def test_set_values_are_read_as_yaml(item: str, path: tuple, value) -> None:
    assert parse_set(item) == (path, value)


def test_sets_apply_after_the_profile_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path, _with_profiles(quick={"train": {"steps": 1, "lr": 0.5}}))
    suite = load_suite(path, "quick", ["train.lr=0.25", "train.steps=2", "train.lr=0.125"])
    assert suite.train.lr == 0.125 and suite.train.steps == 2
    assert suite.overrides == ("train.lr=0.25", "train.steps=2", "train.lr=0.125")


@pytest.mark.parametrize(
    ("profile", "sets", "message"),
    [
        ("quik", (), "--profile quik: {path} defines no profile 'quik'. Did you mean: 'quick'? Its profiles: quick"),
        (None, ("train.lr",), "--set 'train.lr': expected KEY.PATH=VALUE"),
        (None, ("train..lr=1",), "--set 'train..lr=1': expected KEY.PATH=VALUE"),
        (None, ("seeds.first=1",), "--set 'seeds.first=1': seeds is a list, not a mapping, so it has no key 'first'"),
        (None, ("train.lr=[1,",), "--set 'train.lr=[1,': the value is not valid YAML"),
        (None, ("train.lrr=1e-4",), "train.lrr: unknown key"),
        (None, ("train.lr=fast",), "train.lr"),
        ("quick", ("train.steps=true",), "(profile quick): train.steps"),
    ],
)
def test_bad_profiles_and_sets_are_one_line_errors(tmp_path: Path, profile, sets, message: str) -> None:
    path = _write(tmp_path, _with_profiles(quick={"train": {"steps": 1}}))
    with pytest.raises(UserError) as err:
        load_suite(path, profile, sets)
    assert message.format(path=path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profiles": ["quick"]}, "profiles: expected a mapping of profile names to overlays, got a list"),
        ({"profiles": {"quick": 3}}, "profiles.quick: expected a mapping of suite keys to override"),
        ({"profiles": {"quick": {"profiles": {}}}}, "profiles.quick: a profile cannot set 'profiles'"),
        ({"profile": "quick"}, "profile: is set on the command line (--profile NAME), not in the suite file"),
        ({"overrides": ["a=1"]}, "overrides: is set on the command line (--set KEY=VALUE), not in the suite file"),
    ],
)
def test_bad_profile_blocks_in_the_file(tmp_path: Path, change: dict, message: str) -> None:
    path = _write(tmp_path, {**copy.deepcopy(TINY_SUITE), **change})
    with pytest.raises(UserError, match="^" + str(path).replace(".", r"\.")) as err:
        load_suite(path)
    assert message in str(err.value)


def test_apply_sets_creates_missing_mappings() -> None:
    assert apply_sets({"train": {}}, ["models.vit.image_encoder.drop_path=0.1"]) == {
        "train": {},
        "models": {"vit": {"image_encoder": {"drop_path": 0.1}}},
    }


def test_validate_checks_every_profile(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, _with_profiles(quick={"train": {"steps": 1}}, broken={"train": {"epochs": 2}}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr()
    assert f"{path}: OK" in err.out and f"{path} (profile broken): train: set exactly one of" in err.err
    assert main(["validate", str(path), "--profile", "quick"]) == 0
    assert f"{path} (profile quick): OK" in capsys.readouterr().out


def test_the_profile_is_part_of_every_fingerprint(tmp_path: Path) -> None:
    """Two profiles that resolve to the same settings still plan different runs; no profile keeps the fingerprints
    a suite without profiles has."""
    from rich.console import Console

    from harness import runner

    def fingerprints(path: Path, profile: str | None) -> dict[str, str]:
        plan = runner.plan_suite(load_suite(path, profile), path, tmp_path, Console(quiet=True), build=False)
        return {r.run_id: r.fingerprint for r in plan.runs}

    plain = _write(tmp_path, copy.deepcopy(TINY_SUITE), "plain.yaml")
    profiled = _write(tmp_path, _with_profiles(a={"train": {"steps": 3}}, b={"train": {"steps": 3}}), "plain2.yaml")
    base = fingerprints(plain, None)
    assert fingerprints(profiled, None) == base  # the profiles block itself changes nothing
    a, b = fingerprints(profiled, "a"), fingerprints(profiled, "b")
    assert set(a) == set(base) and not set(a.values()) & set(base.values()) and not set(a.values()) & set(b.values())


@pytest.mark.slow
def test_the_report_says_which_profile_and_overrides_ran(tmp_path: Path) -> None:
    suite = _with_profiles(quick={"seeds": [0], "tasks": {"cls": {"models": ["vit"]}}})
    suite["tasks"] = {"cls": suite["tasks"]["cls"]}
    suite["baseline"] = "vit"
    path = _write(tmp_path, suite)
    assert main(["run", str(path), "--profile", "quick", "--set", "train.lr=0.002", "--out", str(tmp_path / "o")]) == 0
    report = (tmp_path / "o" / "report.md").read_text()
    assert "Profile: quick. Overrides (--set): train.lr=0.002." in report
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["profile"] == "quick" and summary["overrides"] == ["train.lr=0.002"]
    (spec,) = (tmp_path / "o" / "runs" / "cls" / "vit").glob("seed0-*/spec.json")
    resolved = json.loads(spec.read_text())
    assert resolved["profile"] == "quick" and resolved["train"]["lr"] == 0.002
