"""The decoded-image cache: keys, hits without decoding, bad files, atomic builds, memory mapping."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from harness.data import image_cache, images
from harness.data.image_cache import CACHE_VERSION, cache_key, clear_memo, files_fingerprint, load_images
from harness.errors import UserError


@pytest.fixture(autouse=True)
def _fresh_memo():
    clear_memo()
    yield
    clear_memo()


def _jpegs(folder: Path, n: int = 5) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i}.jpg" if i % 2 else folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (12 + i, 20 - i, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_miss_writes_cache_and_hit_does_not_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _jpegs(tmp_path / "img")
    cache = tmp_path / "cache"
    first, bad = load_images(paths, size=8, cache_dir=cache, workers=2)
    key = cache_key(paths, size=8, resize="squash", interpolation="bicubic", fingerprint="")
    assert bad == [] and len(key) == 64
    assert _files(cache / "images") == [f"{key}.json", f"{key}.u8"]
    assert (cache / "images" / f"{key}.u8").stat().st_size == 5 * 3 * 8 * 8
    meta = json.loads((cache / "images" / f"{key}.json").read_text())
    assert meta["n"] == 5 and meta["size"] == 8 and meta["version"] == CACHE_VERSION and meta["bad"] == []
    assert meta["resize"] == "squash" and meta["interpolation"] == "bicubic" and meta["fingerprint"] == ""
    for i, p in enumerate(paths):
        assert np.array_equal(first[i].numpy(), images.load_image(p, 8))

    again, _ = load_images(paths, size=8, cache_dir=cache)
    assert again is first  # the in-process memo

    clear_memo()

    def refuse(*args, **kwargs):
        raise AssertionError("a cache hit must not decode")

    monkeypatch.setattr(images, "load_image", refuse)
    hit, bad = load_images(paths, size=8, cache_dir=cache)
    assert hit is not first and bad == []
    assert torch.equal(hit, first)


def test_shorter_crop_and_bilinear_match_load_image(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path / "img", 3)
    got, _ = load_images(paths, size=6, resize="shorter_crop", interpolation="bilinear", cache_dir=tmp_path / "c")
    for i, p in enumerate(paths):
        assert np.array_equal(got[i].numpy(), images.load_image(p, 6, "shorter_crop", "bilinear"))


def test_key_changes_with_every_input(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    base = {"size": 8, "resize": "squash", "interpolation": "bicubic", "fingerprint": "fp"}
    keys = {
        cache_key(paths, **base),
        cache_key(paths, **{**base, "size": 9}),
        cache_key(paths, **{**base, "resize": "shorter_crop"}),
        cache_key(paths, **{**base, "interpolation": "bilinear"}),
        cache_key(paths, **{**base, "fingerprint": "fp2"}),
        cache_key(paths[::-1], **base),
        cache_key(paths[:1], **base),
    }
    assert len(keys) == 7
    assert cache_key(list(paths), **base) == cache_key(tuple(paths), **base)


def test_different_settings_are_different_files(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path / "img", 2)
    cache = tmp_path / "cache"
    load_images(paths, size=8, cache_dir=cache)
    load_images(paths, size=4, cache_dir=cache)
    load_images(paths, size=8, resize="shorter_crop", cache_dir=cache)
    load_images(paths, size=8, fingerprint="other", cache_dir=cache)
    load_images(paths[:1], size=8, cache_dir=cache)
    assert len([n for n in _files(cache / "images") if n.endswith(".u8")]) == 5
    assert len([n for n in _files(cache / "images") if n.endswith(".json")]) == 5


def test_files_fingerprint_follows_file_edits(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path / "img", 2)
    before = files_fingerprint(paths)
    assert before == files_fingerprint(paths) and before.startswith("stat:")
    Image.new("RGB", (3, 3), (1, 2, 3)).save(paths[0])
    assert files_fingerprint(paths) != before
    assert files_fingerprint([tmp_path / "missing.jpg"]) != files_fingerprint(paths[:1])


def test_skip_bad_collects_and_persists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _jpegs(tmp_path / "img", 3)
    corrupt = tmp_path / "img" / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg")
    paths = [paths[0], tmp_path / "img" / "missing.jpg", paths[1], corrupt, paths[2]]
    cache = tmp_path / "cache"
    got, bad = load_images(paths, size=8, cache_dir=cache, skip_bad=True, workers=2)
    assert [i for i, _ in bad] == [1, 3]
    # reasons leave out the path: the caller knows which file each index is
    assert bad[0][1] == "image file is missing"
    assert bad[1][1].startswith("cannot decode image (")
    assert "\n" not in bad[0][1] + bad[1][1]
    assert int(got[1].sum()) == 0 and int(got[3].sum()) == 0 and int(got[0].sum()) > 0
    meta = next((cache / "images").glob("*.json"))
    assert [i for i, _ in json.loads(meta.read_text())["bad"]] == [1, 3]

    clear_memo()
    monkeypatch.setattr(images, "load_image", lambda *a, **k: pytest.fail("a cache hit must not decode"))
    hit, bad_again = load_images(paths, size=8, cache_dir=cache, skip_bad=True)
    assert bad_again == bad and torch.equal(hit, got)
    # the same cache entry without skip_bad stops at the first bad file, naming it
    with pytest.raises(UserError, match=r"^ann.json: .*missing.jpg: image file is missing"):
        load_images(paths, size=8, cache_dir=cache, where="ann.json")


def test_bad_file_raises_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path / "img", 3)
    corrupt = tmp_path / "img" / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg")
    cache = tmp_path / "cache"
    for workers in (1, 3):
        with pytest.raises(
            UserError, match=r"^captions.json: .*corrupt.jpg: cannot decode image .*on_bad_sample: skip"
        ):
            load_images([*paths, corrupt], size=8, cache_dir=cache, workers=workers, where="captions.json")
    with pytest.raises(UserError, match=r"nope.jpg: image file is missing"):
        load_images([tmp_path / "nope.jpg"], size=8, cache_dir=cache)
    assert _files(cache / "images") == []


def test_not_enough_disk_space_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _jpegs(tmp_path / "img", 2)
    monkeypatch.setattr(image_cache.shutil, "disk_usage", lambda _: SimpleNamespace(free=100))
    with pytest.raises(UserError, match=r"^image cache: 2 images at 8px need 0.00 GiB in .*images, but only 0.00 GiB"):
        load_images(paths, size=8, cache_dir=tmp_path / "cache")
    assert _files(tmp_path / "cache" / "images") == []


def test_interrupted_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _jpegs(tmp_path / "img", 6)
    real = images.load_image
    calls = []

    def flaky(path, *args):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt  # e.g. Ctrl-C midway
        return real(path, *args)

    monkeypatch.setattr(images, "load_image", flaky)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        load_images(paths, size=8, cache_dir=cache)
    assert len(calls) == 4
    assert _files(cache / "images") == []  # no final file and no temporary left behind
    # a leftover data file without its sidecar (a build killed between the two renames) is not a hit
    monkeypatch.setattr(images, "load_image", real)
    key = cache_key(paths, size=8, resize="squash", interpolation="bicubic", fingerprint="")
    (cache / "images" / f"{key}.u8").write_bytes(b"\1" * (6 * 3 * 8 * 8))
    got, _ = load_images(paths, size=8, cache_dir=cache)
    assert np.array_equal(got[0].numpy(), real(paths[0], 8))


def test_tensor_is_a_view_of_the_cache_file(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path / "img", 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in particular torch's "non-writable NumPy array" warning
        got, _ = load_images(paths, size=16, cache_dir=tmp_path / "cache")
    assert got.dtype == torch.uint8 and tuple(got.shape) == (4, 3, 16, 16) and got.is_contiguous()
    data_file = next((tmp_path / "cache" / "images").glob("*.u8"))
    assert got.untyped_storage().nbytes() == data_file.stat().st_size == 4 * 3 * 16 * 16
    maps = Path("/proc/self/maps")
    if maps.is_file():  # Linux: the tensor's memory is a mapping of the cache file, not a private copy
        ptr = got.data_ptr()
        owners = []
        for line in maps.read_text().splitlines():
            fields = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= ptr < hi:
                owners.append(fields[5] if len(fields) > 5 else "")
        assert owners == [str(data_file.resolve())]
    # writes stay private to the process (copy-on-write), the file is untouched
    got[0].fill_(7)
    clear_memo()
    fresh, _ = load_images(paths, size=16, cache_dir=tmp_path / "cache")
    assert np.array_equal(fresh[0].numpy(), images.load_image(paths[0], 16))


def test_default_location_and_other_process_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _jpegs(tmp_path / "img", 2)
    monkeypatch.setenv("XMBENCH_CACHE", str(tmp_path / "env-cache"))
    got, _ = load_images(paths, size=8)
    assert len(list((tmp_path / "env-cache" / "images").glob("*.u8"))) == 1
    # what another process sees: a fresh memo, the same files
    image_cache._MEMO.clear()
    assert torch.equal(load_images(paths, size=8)[0], got)


def test_empty_list(tmp_path: Path) -> None:
    empty, bad = load_images([], size=8, cache_dir=tmp_path)
    assert tuple(empty.shape) == (0, 3, 8, 8) and empty.dtype == torch.uint8 and bad == []
    assert not (tmp_path / "images").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "Expected `size` to be a positive int, but got 0"),
        ({"resize": "stretch"}, "Expected `resize` to be one of ('squash', 'shorter_crop'), but got 'stretch'"),
        (
            {"interpolation": "nearest"},
            "Expected `interpolation` to be one of ('bicubic', 'bilinear'), but got 'nearest'",
        ),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        load_images([tmp_path / "x.jpg"], **{"size": 8, **kwargs}, cache_dir=tmp_path)
    assert str(info.value) == message


def test_decode_images_wrapper_uses_the_cache(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path / "img", 2)
    from harness.data.image_cache import decode_images

    got = decode_images(paths, 8)
    assert got is decode_images(paths, 8)
    assert np.array_equal(got[1].numpy(), images.load_image(paths[1], 8))


def test_another_process_hits_the_cache(tmp_path: Path) -> None:
    paths = _jpegs(tmp_path / "img", 3)
    cache = tmp_path / "cache"
    got, _ = load_images(paths, size=8, cache_dir=cache)
    script = (
        "import sys; from pathlib import Path; from harness.data import images; "
        "from harness.data.image_cache import load_images\n"
        "def refuse(*a, **k): raise SystemExit('decoded on a cache hit')\n"
        "images.load_image = refuse\n"
        "t, bad = load_images([Path(p) for p in sys.argv[2:]], size=8, cache_dir=Path(sys.argv[1]))\n"
        "print(int(t.long().sum()), len(bad))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, str(cache), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(int(got.long().sum())), "0"]


def test_concurrent_builders_both_get_valid_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _jpegs(tmp_path / "img", 4)
    real = images.load_image
    meet = threading.Barrier(2, timeout=10)
    first_call = threading.local()

    def rendezvous(path, *args):
        if not getattr(first_call, "seen", False):  # both threads are building before either finishes
            first_call.seen = True
            meet.wait()
        return real(path, *args)

    monkeypatch.setattr(images, "load_image", rendezvous)
    cache = tmp_path / "cache"
    results: list[torch.Tensor] = []

    def build() -> None:
        results.append(load_images(paths, size=8, cache_dir=cache)[0])

    threads = [threading.Thread(target=build) for _ in range(2)]  # the same call, at the same time
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2 and torch.equal(results[0], results[1])
    assert len(_files(cache / "images")) == 2  # one .u8 and one .json, no temporaries
    clear_memo()
    monkeypatch.setattr(images, "load_image", real)
    assert torch.equal(load_images(paths, size=8, cache_dir=cache)[0], results[0])
