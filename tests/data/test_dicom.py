"""DICOM image folders: the synthetic ``.dcm`` mirror decodes to the JPEGs' luminance, the window formula against a
hand computation, overrides, MONOCHROME1, channels, refused and corrupt files, a missing pydicom, the schema."""

from __future__ import annotations

import hashlib
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.data.dicom import DicomOptions, read_dicom, window
from harness.data.image_cache import load_images
from harness.data.imagefolder import load_imagefolder
from harness.data.images import BadImage, load_image
from harness.errors import UserError
from tests.conftest import TINY_VIT

pydicom = pytest.importorskip("pydicom", reason="DICOM support is the optional extra xmbench[dicom] (pydicom)")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid  # noqa: E402

RATIOS = (0.7, 0.15, 0.15)


def _write(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", **tags) -> Path:
    """A Secondary Capture file of ``pixels`` (uint16 grey, or uint8 (H, W, 3) colour) with extra ``tags``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid = generate_uid(entropy_srcs=[str(path)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta, ds.preamble = meta, b"\0" * 128
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = SecondaryCaptureImageStorage, uid, "OT"
    colour = pixels.dtype == np.uint8
    ds.Rows, ds.Columns = pixels.shape[:2] if colour else pixels.shape[-2:]
    ds.PhotometricInterpretation = photometric
    if colour:
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    else:
        ds.SamplesPerPixel = 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.PixelData = pixels.astype("<u2" if ds.BitsAllocated == 16 else "u1").tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def _ramp() -> np.ndarray:
    return np.arange(4096, dtype=np.uint16).reshape(64, 64)  # every 12-bit stored value once


def _hand_window(x: int, c: Fraction, w: Fraction) -> int:
    """PS3.3 C.11.2.1.2.1, exactly (fractions), to 0..255 with halves rounded up."""
    if x <= c - Fraction(1, 2) - (w - 1) / 2:
        return 0
    if x > c - Fraction(1, 2) + (w - 1) / 2:
        return 255
    y = ((x - (c - Fraction(1, 2))) / (w - 1) + Fraction(1, 2)) * 255
    return int(y + Fraction(1, 2))  # floor(y + 1/2), y >= 0


# --- (1) the synthetic DICOM folder decodes to the JPEG folder's luminance -------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.data.synthetic import generate

    root = tmp_path_factory.mktemp("dicom") / "data"
    generate(root, images=20, seed=0, size=32, dicom=True)
    return root


def test_synthetic_dicom_folder_is_the_jpegs_luminance(synth: Path, tmp_path: Path) -> None:
    from PIL import Image

    manifest = json.loads((synth / "xmbench_synthetic.json").read_text())
    assert manifest["counts"]["imagefolder_dicom"] == {"files": 20, "monochrome1": 5}
    monochrome1 = 0
    for split in ("train", "val", "test"):
        jpg = load_imagefolder(synth / "imagefolder", split, RATIOS, 0)
        dcm = load_imagefolder(synth / "imagefolder_dicom", split, RATIOS, 0)
        assert [Path(i).with_suffix(".dcm").as_posix() for i in jpg.ids] == [Path(i).as_posix() for i in dcm.ids]
        assert dcm.labels == jpg.labels and dcm.classes == jpg.classes
        for size in (32, 16):  # native size, and through the resize path
            cached, bad = load_images(dcm.paths, size=size, cache_dir=tmp_path, fingerprint="t")
            assert bad == []
            for i, (pj, pd) in enumerate(zip(jpg.paths, dcm.paths)):
                with Image.open(pj) as im:
                    grey = im.convert("L")
                if size != 32:
                    grey = grey.resize((size, size), Image.Resampling.BICUBIC)
                expected = np.repeat(np.asarray(grey)[None], 3, axis=0)
                assert np.array_equal(load_image(pd, size), expected), pd
                assert np.array_equal(cached[i].numpy(), expected), pd
        monochrome1 += sum(pydicom.dcmread(p).PhotometricInterpretation == "MONOCHROME1" for p in dcm.paths)
    assert monochrome1 == 5  # the inversion path is exercised by the synthetic data


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_generate_without_dicom_is_unchanged_and_with_it_reproducible(synth: Path, tmp_path: Path) -> None:
    from harness.data.synthetic import generate

    generate(tmp_path / "plain", images=20, seed=0, size=32)
    generate(tmp_path / "again", images=20, seed=0, size=32, dicom=True)
    with_dicom, plain = _digests(synth), _digests(tmp_path / "plain")
    assert _digests(tmp_path / "again") == with_dicom  # byte-for-byte reproducible, UIDs included
    assert {k: v for k, v in with_dicom.items() if not k.startswith("imagefolder_dicom/")}.keys() == plain.keys()
    for name, digest in plain.items():
        if name != "xmbench_synthetic.json":
            assert with_dicom[name] == digest, name
    manifest = json.loads((synth / "xmbench_synthetic.json").read_text())
    del manifest["counts"]["imagefolder_dicom"]
    assert manifest == json.loads((tmp_path / "plain" / "xmbench_synthetic.json").read_text())


# --- (2) window formula, rescale, overrides ------------------------------------------------------------------


def test_window_formula_against_a_hand_computation(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ct.dcm", _ramp(), RescaleSlope="1", RescaleIntercept="-1024", WindowCenter="40", WindowWidth="400"
    )
    out = read_dicom(path)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    x = _ramp().astype(int) - 1024  # modality LUT: HU from -1024 to 3071
    grey = out[:, :, 0]
    # c=40, w=400: 0 up to x = -160, 255 above x = 239; by hand: ((x - 39.5) / 399 + 0.5) * 255, rounded
    for hu, expected in {-1024: 0, -160: 0, -159: 1, 0: 102, 40: 128, 100: 166, 238: 254, 239: 255, 3071: 255}.items():
        assert grey[x == hu].item() == expected, hu
    hand = np.array([_hand_window(int(v), Fraction(40), Fraction(400)) for v in x.ravel()]).reshape(x.shape)
    assert np.array_equal(grey, hand)
    assert np.array_equal(window(x, 40, 400), hand)


def test_suite_settings_beat_the_tags(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ct.dcm", _ramp(), RescaleSlope="1", RescaleIntercept="-1024", WindowCenter="40", WindowWidth="400"
    )
    stored = _ramp().astype(int)
    out = read_dicom(path, DicomOptions(window_center=500, window_width=1000))[:, :, 0]
    hand = [_hand_window(v - 1024, Fraction(500), Fraction(1000)) for v in stored.ravel()]
    assert out.ravel().tolist() == hand
    # slope 0.5, intercept 0 from the suite (the tags say 1 and -1024), the file's window
    out = read_dicom(path, DicomOptions(rescale_slope=0.5, rescale_intercept=0.0))[:, :, 0]
    hand = [_hand_window(Fraction(v, 2), Fraction(40), Fraction(400)) for v in stored.ravel()]
    assert out.ravel().tolist() == hand


def test_defaults_first_of_multivalued_window_and_min_max(tmp_path: Path) -> None:
    stored = _ramp()
    # no rescale tags: slope 1, intercept 0; WindowCenter/Width with two values: the first pair is used
    multi = _write(tmp_path / "multi.dcm", stored, WindowCenter=["2048", "100"], WindowWidth=["1024", "50"])
    hand = [_hand_window(int(v), Fraction(2048), Fraction(1024)) for v in stored.ravel()]
    assert read_dicom(multi)[:, :, 0].ravel().tolist() == hand
    # no window tags: the image's minimum and maximum, i.e. round(255 * (x - lo) / (hi - lo))
    bare = _write(tmp_path / "bare.dcm", stored, RescaleSlope="2", RescaleIntercept="10")
    x = stored.astype(int) * 2 + 10
    lo, hi = int(x.min()), int(x.max())
    expected = [int(Fraction(255 * (v - lo), hi - lo) + Fraction(1, 2)) for v in x.ravel()]
    assert read_dicom(bare)[:, :, 0].ravel().tolist() == expected
    assert read_dicom(bare)[0, 0, 0] == 0 and read_dicom(bare)[-1, -1, 0] == 255


# --- (3) MONOCHROME1, (4) channels, RGB ----------------------------------------------------------------------


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    tags = {"WindowCenter": "2048", "WindowWidth": "4096"}
    mono2 = read_dicom(_write(tmp_path / "m2.dcm", _ramp(), **tags))
    path = _write(tmp_path / "m1.dcm", _ramp(), "MONOCHROME1", **tags)
    assert np.array_equal(read_dicom(path), 255 - mono2)
    assert np.array_equal(read_dicom(path, DicomOptions(invert_monochrome1=False)), mono2)
    assert read_dicom(path)[0, 0, 0] == 255  # the smallest stored value is white


def test_grey_is_repeated_to_three_channels_and_resized(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.dcm", _ramp(), WindowCenter="2048", WindowWidth="4096")
    out = read_dicom(path)
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out[:, :, 0], out[:, :, 1]) and np.array_equal(out[:, :, 0], out[:, :, 2])
    small = load_image(path, 16, "shorter_crop", "bilinear")
    assert small.shape == (3, 16, 16) and np.array_equal(small[0], small[2])


def test_rgb_passes_through_without_windowing(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    path = _write(tmp_path / "rgb.dcm", rgb, "RGB", WindowCenter="10", WindowWidth="2")
    assert np.array_equal(read_dicom(path, DicomOptions(window_center=0, window_width=1)), rgb)
    assert np.array_equal(load_image(path, 6, "shorter_crop"), rgb[1:7].transpose(2, 0, 1))


def test_ybr_full_is_converted_to_rgb(tmp_path: Path) -> None:
    from pydicom.pixels import convert_color_space

    rgb = np.random.default_rng(0).integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    path = _write(tmp_path / "ybr.dcm", convert_color_space(rgb, "RGB", "YBR_FULL"), "YBR_FULL")
    assert np.abs(read_dicom(path).astype(int) - rgb).max() <= 1  # YCbCr round trip in uint8


# --- refused files and corrupt files -------------------------------------------------------------------------


def _detail(path: Path) -> str:
    with pytest.raises(BadImage) as info:
        load_image(path, 16)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    return info.value.detail


def test_refused_and_corrupt_files_are_bad_images(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.dcm", _ramp(), WindowCenter="2048", WindowWidth="4096")
    (tmp_path / "random.dcm").write_bytes(np.random.default_rng(1).bytes(600))
    assert _detail(tmp_path / "random.dcm") == "not a DICOM file (no 'DICM' prefix after the 128-byte preamble)"
    (tmp_path / "cut.dcm").write_bytes(good.read_bytes()[:-100])
    assert _detail(tmp_path / "cut.dcm").startswith("cannot decode DICOM pixel data (ValueError: The number of bytes")
    (tmp_path / "header.dcm").write_bytes(good.read_bytes()[:200])
    assert _detail(tmp_path / "header.dcm") == "DICOM file has no Pixel Data element (truncated, or not an image)"
    frames = np.concatenate([_ramp(), _ramp()])
    multi = _write(tmp_path / "multi.dcm", frames.reshape(2, 64, 64), NumberOfFrames=2)
    assert _detail(multi) == "multi-frame DICOM file (2 frames) is not supported"
    width0 = _write(tmp_path / "w0.dcm", _ramp(), WindowCenter="40", WindowWidth="0")
    assert _detail(width0) == "DICOM WindowWidth is 0, below 1 (the standard requires >= 1)"
    palette = _write(tmp_path / "pal.dcm", _ramp(), "PALETTE COLOR")
    assert _detail(palette).startswith("DICOM PhotometricInterpretation 'PALETTE COLOR' is not supported")


def test_compressed_without_a_decoder_is_a_bad_image(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    path = _write(tmp_path / "jls.dcm", _ramp())
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\0" * 40])  # not decodable, with or without a plug-in
    ds["PixelData"].VR = "OB"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    detail = _detail(path)
    assert detail.startswith("cannot decode DICOM pixel data compressed as JPEG-LS Lossless Image Compression (")
    with pytest.raises(BadImage, match="install a pydicom decoder for it"):
        load_image(path, 16)


# --- (5) a corrupt .dcm in a suite: exit 2 under error, counted under skip -----------------------------------


def _suite(tmp_path: Path, root: Path, policy: str) -> Path:
    suite = {
        "name": "dicom",
        "seeds": [0],
        "hardware": {"device": "cpu", "threads": 2},
        "train": {"steps": 1, "batch_size": 8},
        "image": {"size": 16},
        "datasets": {"cls": {"kind": "imagefolder", "path": str(root), "on_bad_sample": policy}},
        "models": {"vit": {"type": "timm", "image_encoder": TINY_VIT}},
        "tasks": {"cls": {"type": "classification", "dataset": "cls", "models": ["vit"]}},
    }
    path = tmp_path / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@pytest.fixture
def corrupt_folder(synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    import shutil

    monkeypatch.setenv("XMBENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "dcm"
    shutil.copytree(synth / "imagefolder_dicom", root)
    bad = sorted((root / "test").rglob("*.dcm"))[0]
    bad.write_bytes(b"\x00" * 50 + b"not a dicom file")
    return root, bad


def test_corrupt_dicom_stops_the_run_with_one_line(corrupt_folder, tmp_path: Path, capsys) -> None:
    root, bad = corrupt_folder
    assert main(["run", str(_suite(tmp_path, root, "error")), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("xmbench: error: ") and f"{bad}: not a DICOM file" in line, line
    assert "on_bad_sample: skip" in line


def test_corrupt_dicom_is_skipped_and_counted(corrupt_folder, tmp_path: Path) -> None:
    root, bad = corrupt_folder
    out = tmp_path / "out"
    assert main(["run", str(_suite(tmp_path, root, "skip")), "--out", str(out)]) == 0
    skipped = json.loads(next((out / "runs").rglob("skipped.json")).read_text())
    assert skipped["count"] == 1 and str(bad) in skipped["samples"][0]
    assert "not a DICOM file" in skipped["samples"][0]


# --- (6) pydicom missing ---------------------------------------------------------------------------------------


def test_missing_pydicom_is_one_line_and_stops_under_skip(synth: Path, tmp_path: Path, monkeypatch) -> None:
    from harness.data.synthetic import generate

    path = next((synth / "imagefolder_dicom").rglob("*.dcm"))
    monkeypatch.setitem(sys.modules, "pydicom", None)  # `import pydicom` raises ImportError
    expected = f"{path}: DICOM files need pydicom, which is not installed; install it with pip install 'xmbench[dicom]'"
    with pytest.raises(UserError) as info:
        load_image(path, 16)
    assert str(info.value) == expected and not isinstance(info.value, BadImage)
    with pytest.raises(UserError, match=r"pip install 'xmbench\[dicom\]'"):  # not one bad sample: never skipped
        load_images([path], size=16, cache_dir=tmp_path, skip_bad=True)
    with pytest.raises(UserError, match=r"--dicom\) needs pydicom.*pip install 'xmbench\[dicom\]'"):
        generate(tmp_path / "s", images=20, size=32, dicom=True)


# --- settings reach the cache key; (7) the schema ---------------------------------------------------------------


def test_dicom_settings_are_part_of_the_image_cache_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "ct.dcm", _ramp(), WindowCenter="2048", WindowWidth="4096")
    default, _ = load_images([path], size=8, cache_dir=tmp_path, fingerprint="k")
    same, _ = load_images([path], size=8, cache_dir=tmp_path, fingerprint="k", dicom=DicomOptions())
    narrow, _ = load_images(
        [path], size=8, cache_dir=tmp_path, fingerprint="k", dicom=DicomOptions(window_center=0, window_width=1)
    )
    assert same is default  # the defaults are the key of no settings
    assert narrow is not default and int(narrow.min()) == 255  # every x = s >= 0 is above c - 0.5
    assert not np.array_equal(narrow.numpy(), default.numpy())
    assert len(list((tmp_path / "images").glob("*.u8"))) == 2


def _load(tmp_path: Path, dicom) -> object:
    from harness.suite import load_suite

    suite = yaml.safe_load(_suite(tmp_path, tmp_path, "error").read_text())
    if dicom is not None:
        suite["datasets"]["cls"]["dicom"] = dicom
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return load_suite(path)


@pytest.mark.parametrize(
    ("dicom", "message"),
    [
        (
            {"window_center": 40, "window_width": 0},
            "datasets.cls.dicom.window_width: the window width must be at least 1 (DICOM PS3.3 C.11.2.1.2), got 0",
        ),
        ({"window_center": 40, "window_width": 400, "windw": 1}, "datasets.cls.dicom.windw: unknown key 'windw'"),
        ({"window_center": 40}, "datasets.cls.dicom: set both window_center and window_width, or neither"),
        ({"rescale_slope": 0}, "datasets.cls.dicom.rescale_slope: a rescale slope of 0 maps every pixel"),
    ],
    ids=["width-0", "unknown-key", "center-alone", "slope-0"],
)
def test_schema_rejects_bad_dicom_blocks(tmp_path: Path, dicom: dict, message: str) -> None:
    with pytest.raises(UserError) as info:
        _load(tmp_path, dicom)
    assert message in str(info.value), str(info.value)
    assert str(info.value).startswith(str(tmp_path / "s.yaml"))


def test_dicom_block_is_in_the_dataset_spec_only_when_set(tmp_path: Path) -> None:
    plain = _load(tmp_path, None).datasets["cls"]
    assert "dicom" not in plain.model_dump(mode="json")
    spec = _load(tmp_path, {"window_center": 40, "window_width": 400}).datasets["cls"]
    assert spec.model_dump(mode="json")["dicom"] == {
        "rescale_slope": None,
        "rescale_intercept": None,
        "window_center": 40.0,
        "window_width": 400.0,
        "invert_monochrome1": True,
    }
    assert DicomOptions.from_spec(spec.dicom) == DicomOptions(window_center=40.0, window_width=400.0)


def test_the_example_in_docs_datasets_loads(tmp_path: Path) -> None:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "dicom:" in b]
    example = yaml.safe_load(block)["datasets"]["ct"]
    spec = _load(tmp_path, example["dicom"]).datasets["cls"].dicom
    assert (spec.window_center, spec.window_width, spec.invert_monochrome1) == (40.0, 400.0, True)
