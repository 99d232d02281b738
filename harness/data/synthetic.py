"""Synthetic shapes dataset, written on disk in the same formats as the real datasets.

:func:`generate` renders ``images`` small pictures of 1-3 coloured shapes in a 2x2 grid and writes them as
COCO 2014 (images, instances, captions), a Karpathy split file (``dataset_coco.json``), VQA v2 (questions and
annotations) and an ImageFolder tree, so the loaders for real COCO / Flickr30k / VQA read it unchanged. The
output is byte-for-byte deterministic for a given ``(images, seed, size)``. With ``dicom=True`` (needs pydicom) it
also writes ``imagefolder_dicom/``, the same tree as DICOM files (see :func:`_write_dicom`); without it the output
is exactly what it was.

Design: VQA needs both modalities (the answer to "what color is the shape in the top left?" depends on the image,
and which of the image's facts is asked depends on the question); the ImageFolder class is the kind of the large
("main") shape, so it is solvable from pixels; and captions name every shape's colour and kind, and most name
positions, so they identify their image for retrieval.

:func:`ensure_synthetic` caches one dataset per argument set under :func:`default_cache_dir`.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from harness.data.synthetic_text import KINDS, SceneObject, human_answers, make_captions, make_questions
from harness.errors import UserError, expand_user
from harness.jsonio import loads

GENERATOR_VERSION = 2  # 2: Flickr30k layout and LAVIS/BLIP retrieval files
GENERATOR_NAME = "xmbench-shapes"
MANIFEST_NAME = "xmbench_synthetic.json"

COLOR_RGB = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
    "purple": (140, 60, 170),
    "white": (245, 245, 245),
}
# COCO-like category ids with gaps; "star" never appears (a class without positives, as in subsets of real COCO).
CATEGORY_IDS = {"circle": 1, "square": 3, "triangle": 6, "cross": 9, "star": 11}

_FIXED_DATE = "2014-01-01 00:00:00"
_LICENSE = {"url": "https://www.apache.org/licenses/LICENSE-2.0", "id": 1, "name": "Apache License 2.0"}
_CIRCLE_VERTICES = 20


def _info(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "url": "",
        "version": str(GENERATOR_VERSION),
        "year": 2014,
        "contributor": "xmbench synthetic generator",
        "date_created": _FIXED_DATE,
    }


MIN_IMAGES = 20
MAX_IMAGES = 100_000
"""Bounds of ``images``: a split needs a few images of every kind; more than 100k would take hours and many GB."""


def _validate(images: Any, seed: Any, size: Any) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not is_int(images) or not MIN_IMAGES <= images <= MAX_IMAGES:
        raise UserError(
            f"synthetic data: images must be an integer between {MIN_IMAGES} and {MAX_IMAGES:,} (about 1 GB, a minute "
            f"to write), got {images!r}"
        )
    if not is_int(size) or not 32 <= size <= 512:
        raise UserError(f"synthetic data: size must be an integer between 32 and 512 pixels, got {size!r}")
    if not is_int(seed):
        raise UserError(f"synthetic data: seed must be an integer, got {seed!r}")


def split_plan(images: int) -> list[tuple[int, str, str]]:
    """Return ``(image_id, coco_folder, karpathy_split)`` for image ids ``1..images``.

    The first ``round(0.7 * images)`` ids are ``train2014`` (Karpathy "train"); of the ``val2014`` ids in order,
    the first 20% are "restval", the next 40% "val" and the rest "test".
    """
    n_train = round(0.7 * images)
    n_val = images - n_train
    restval_end, val_end = round(0.2 * n_val), round(0.6 * n_val)
    plan = []
    for image_id in range(1, images + 1):
        if image_id <= n_train:
            plan.append((image_id, "train2014", "train"))
        else:
            j = image_id - n_train - 1
            split = "restval" if j < restval_end else "val" if j < val_end else "test"
            plan.append((image_id, "val2014", split))
    return plan


def _main_kinds(plan: list[tuple[int, str, str]], rng: random.Random) -> dict[int, str]:
    """Balanced main-object kinds within each split, so every ImageFolder split has every class (given 4 images)."""
    out: dict[int, str] = {}
    for split in ("train", "restval", "val", "test"):
        ids = [i for i, _, s in plan if s == split]
        kinds = [KINDS[j % len(KINDS)] for j in range(len(ids))]
        rng.shuffle(kinds)
        out.update(zip(ids, kinds))
    return out


def _scene(main_kind: str, size: int, rng: random.Random) -> list[SceneObject]:
    n = rng.randint(1, 3)
    kinds = [main_kind, *rng.sample([k for k in KINDS if k != main_kind], n - 1)]
    colors = rng.sample(list(COLOR_RGB), n)
    cells = rng.sample(range(4), n)
    jitter = size / 32
    objects = []
    for i in range(n):
        row, col = divmod(cells[i], 2)
        cx = round((col + 0.5) * size / 2 + rng.uniform(-jitter, jitter), 2)
        cy = round((row + 0.5) * size / 2 + rng.uniform(-jitter, jitter), 2)
        r = round((0.2 if i == 0 else 0.12) * size, 2)
        objects.append(SceneObject(kinds[i], colors[i], cells[i], i == 0, cx, cy, r))
    return objects


def _polygon(obj: SceneObject) -> list[tuple[float, float]]:
    cx, cy, r = obj.cx, obj.cy, obj.r
    if obj.kind == "circle":
        steps = [2 * math.pi * k / _CIRCLE_VERTICES for k in range(_CIRCLE_VERTICES)]
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in steps]
    if obj.kind == "square":
        h = 0.9 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if obj.kind == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    t = r / 2  # cross: two bars of width r (half-width r/2)
    return [
        (cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t), (cx + r, cy - t), (cx + r, cy + t), (cx + t, cy + t),
        (cx + t, cy + r), (cx - t, cy + r), (cx - t, cy + t), (cx - r, cy + t), (cx - r, cy - t), (cx - t, cy - t),
    ]  # fmt: skip


def _annotation(obj: SceneObject, ann_id: int, image_id: int) -> dict[str, Any]:
    points = [(round(x, 2), round(y, 2)) for x, y in _polygon(obj)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if obj.kind == "circle":
        x0, y0, w, h = obj.cx - obj.r, obj.cy - obj.r, 2 * obj.r, 2 * obj.r
        area = math.pi * obj.r**2
    else:
        x0, y0, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
        area = 0.5 * abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1])))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": CATEGORY_IDS[obj.kind],
        "segmentation": [[c for p in points for c in p]],
        "area": round(area, 4),
        "bbox": [round(x0, 2), round(y0, 2), round(w, 2), round(h, 2)],
        "iscrowd": 0,
    }


def _render(objects: list[SceneObject], size: int, rng: random.Random) -> Image.Image:
    grey = 60 + rng.randint(-5, 5)
    img = Image.new("RGB", (size, size), (grey, grey, grey))
    draw = ImageDraw.Draw(img)
    for obj in objects:
        fill = COLOR_RGB[obj.color]
        if obj.kind == "circle":
            draw.ellipse([obj.cx - obj.r, obj.cy - obj.r, obj.cx + obj.r, obj.cy + obj.r], fill=fill)
        else:
            draw.polygon(_polygon(obj), fill=fill)
    return img


def _write_json(path: Path, obj: Any) -> None:
    # json.dumps uses the C encoder; json.dump to a file does not (several times slower).
    path.write_text(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), encoding="utf-8")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _write_lavis(folder: Path, pattern: str, karpathy: list[dict[str, Any]], image_of, id_of) -> None:
    """LAVIS/BLIP retrieval files: train = one entry per caption (train + restval); val/test = caption lists."""
    folder.mkdir(parents=True, exist_ok=True)
    train = [
        {"image": image_of(e), "caption": s["raw"], "image_id": id_of(e)}
        for e in karpathy
        if e["split"] in ("train", "restval")
        for s in e["sentences"]
    ]
    _write_json(folder / pattern.format("train"), train)
    for split in ("val", "test"):
        rows = [
            {"image": image_of(e), "caption": [s["raw"] for s in e["sentences"]]}
            for e in karpathy
            if e["split"] == split
        ]
        _write_json(folder / pattern.format(split), rows)


def _write_flickr30k(root: Path, karpathy: list[dict[str, Any]]) -> None:
    """The same images and captions in the Flickr30k layout: Karpathy ``dataset_flickr30k.json`` (no restval split,
    no filepath) with ``flickr30k-images/``, plus LAVIS ``annotations/flickr30k_{split}.json``."""
    flickr = root / "flickr30k"
    (flickr / "flickr30k-images").mkdir(parents=True, exist_ok=True)
    entries = []
    for e in karpathy:
        name = f"{e['cocoid']}.jpg"
        _link_or_copy(root / e["filepath"] / e["filename"], flickr / "flickr30k-images" / name)
        split = "train" if e["split"] == "restval" else e["split"]
        entries.append(
            {
                "sentids": e["sentids"],
                "imgid": e["imgid"],
                "sentences": e["sentences"],
                "split": split,
                "filename": name,
            }
        )
    _write_json(flickr / "dataset_flickr30k.json", {"images": entries, "dataset": "flickr30k"})
    _write_lavis(
        flickr / "annotations",
        "flickr30k_{}.json",
        entries,
        lambda e: f"flickr30k-images/{e['filename']}",
        lambda e: e["filename"].split(".")[0],
    )


DICOM_FOLDER = "imagefolder_dicom"
DICOM_SLOPE, DICOM_INTERCEPT = "0.0625", "-1024"  # x = stored / 16 - 1024
DICOM_CENTER, DICOM_WIDTH = "-896", "256"  # the window [-1024, -769] -> 0..255, one grey level per unit of x
DICOM_VERSION_NAME = "XMBENCH_SYNTH_2"  # ImplementationVersionName (<= 16 chars): the bytes do not name pydicom


def _write_dicom(pydicom: Any, path: Path, grey: Any, *, monochrome1: bool, seed: int, size: int, uid: str) -> None:
    """One 16-bit Secondary Capture DICOM file (Explicit VR Little Endian) whose decoded pixels are ``grey``.

    ``grey`` (H, W uint8) is the luminance of the synthetic JPEG (PIL ``convert("L")``: ITU-R 601-2). Stored values
    are 12-bit, ``s = 16 * g`` (MONOCHROME2) or ``s = 16 * (255 - g)`` (MONOCHROME1, minimum is white); the file says
    RescaleSlope 0.0625, RescaleIntercept -1024 (so ``x = g - 1024``, resp. ``x = 255 - g - 1024``), WindowCenter
    -896, WindowWidth 256. The PS3.3 linear window then gives ``(x + 896.5) / 255 + 0.5 = g / 255`` (resp. ``1 - g /
    255``, inverted back), so the pipeline of :mod:`harness.data.dicom` returns ``g`` exactly. UIDs come from
    ``generate_uid`` with the generator, seed, size and file as entropy, so the bytes are reproducible.
    """
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    def make_uid(*parts: str) -> str:
        return generate_uid(entropy_srcs=[GENERATOR_NAME, str(GENERATOR_VERSION), str(seed), str(size), *parts])

    grey = np.asarray(grey, dtype=np.uint16)
    stored = 16 * (255 - grey) if monochrome1 else 16 * grey
    sop = make_uid("sop", uid)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(entropy_srcs=[GENERATOR_NAME, "implementation"])
    meta.ImplementationVersionName = DICOM_VERSION_NAME
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = make_uid("study")
    ds.SeriesInstanceUID = make_uid("series", str(Path(uid).parent))
    ds.StudyDate = ds.ContentDate = "20140101"
    ds.StudyTime = ds.ContentTime = "000000"
    ds.PatientName = "Synthetic^Shapes"
    ds.PatientID = f"{GENERATOR_NAME}-{seed}"
    ds.Modality = "OT"
    ds.ConversionType = "SYN"  # a synthetic image
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ImageComments = "xmbench synthetic shapes: luminance of the JPEG of the same name"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.Rows, ds.Columns = int(grey.shape[0]), int(grey.shape[1])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = DICOM_SLOPE, DICOM_INTERCEPT, "US"
    ds.WindowCenter, ds.WindowWidth = DICOM_CENTER, DICOM_WIDTH
    ds.PixelData = stored.astype("<u2").tobytes()
    if int(pydicom.__version__.split(".")[0]) >= 3:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    else:  # pragma: no cover - pydicom 2.4
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)


def _import_pydicom() -> Any:
    try:
        import pydicom
    except ImportError:
        raise UserError(
            "synthetic data: writing DICOM files (--dicom) needs pydicom, which is not installed; install it with "
            "pip install 'xmbench[dicom]'"
        ) from None
    return pydicom


def generate(
    out: str | Path, *, images: int = 1000, seed: int = 0, size: int = 64, dicom: bool = False
) -> dict[str, Any]:
    """Write the synthetic dataset under ``out`` (created if needed) and return its manifest.

    The manifest is written last, to ``out/xmbench_synthetic.json``; its presence marks a complete dataset.
    Raises :class:`~harness.errors.UserError` for invalid arguments (``images >= 20``, ``32 <= size <= 512``).
    With ``dicom``, also ``out/imagefolder_dicom/``: the ``imagefolder/`` tree (same split and class folders, same
    file stems) as ``.dcm`` files holding each JPEG's luminance; every fourth image (``imgid % 4 == 3``) is
    MONOCHROME1 (see :func:`_write_dicom`). The manifest then counts them under ``counts.imagefolder_dicom``.
    """
    _validate(images, seed, size)
    pydicom = _import_pydicom() if dicom else None
    root = Path(out)
    plan = split_plan(images)
    scene_rng = random.Random(f"{GENERATOR_NAME}/{seed}/scene")
    caption_rng = random.Random(f"{GENERATOR_NAME}/{seed}/captions")
    vqa_rng = random.Random(f"{GENERATOR_NAME}/{seed}/vqa")
    main_kinds = _main_kinds(plan, scene_rng)

    for sub in ("train2014", "val2014", "annotations"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).unlink(missing_ok=True)  # rewritten last: a stale one must not vouch for a partial rewrite
    # Class folders are made on demand: an empty one is an error for ImageFolder loaders. With balanced classes,
    # every split of 4+ images has all four (only tiny datasets, images < 34, miss a class in val or test).
    folder_of_split = {"train": "train", "restval": "train", "val": "val", "test": "test"}

    coco: dict[str, dict[str, list[dict[str, Any]]]] = {
        sub: {"images": [], "instances": [], "captions": [], "questions": [], "answers": []}
        for sub in ("train2014", "val2014")
    }
    karpathy: list[dict[str, Any]] = []
    ann_id = caption_id = sent_id = 0
    counts: dict[str, Any] = {"karpathy": dict.fromkeys(("train", "restval", "val", "test"), 0)}
    counts["imagefolder"] = {s: dict.fromkeys(KINDS, 0) for s in ("train", "val", "test")}
    dicom_counts = {"files": 0, "monochrome1": 0}

    for imgid, (image_id, sub, split) in enumerate(plan):
        objects = _scene(main_kinds[image_id], size, scene_rng)
        file_name = f"COCO_{sub}_{image_id:012d}.jpg"
        path = root / sub / file_name
        _render(objects, size, scene_rng).save(path, "JPEG", quality=95, subsampling=0)
        folder = folder_of_split[split]
        class_dir = root / "imagefolder" / folder / objects[0].kind
        class_dir.mkdir(parents=True, exist_ok=True)
        _link_or_copy(path, class_dir / file_name)
        counts["karpathy"][split] += 1
        counts["imagefolder"][folder][objects[0].kind] += 1
        if pydicom is not None:
            dicom_dir = root / DICOM_FOLDER / folder / objects[0].kind
            dicom_dir.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as jpeg:
                grey = jpeg.convert("L")
            name = f"{folder}/{objects[0].kind}/{Path(file_name).stem}.dcm"
            monochrome1 = imgid % 4 == 3
            _write_dicom(
                pydicom, root / DICOM_FOLDER / name, grey, monochrome1=monochrome1, seed=seed, size=size, uid=name
            )
            dicom_counts["files"] += 1
            dicom_counts["monochrome1"] += monochrome1

        part = coco[sub]
        part["images"].append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": size,
                "height": size,
                "license": 1,
                "date_captured": _FIXED_DATE,
                "coco_url": "",
                "flickr_url": "",
            }
        )
        for obj in objects:
            ann_id += 1
            part["instances"].append(_annotation(obj, ann_id, image_id))

        sentences = []
        for caption in make_captions(objects, caption_rng):
            caption_id += 1
            part["captions"].append({"id": caption_id, "image_id": image_id, "caption": caption})
            tokens = re.findall(r"[a-z0-9]+", caption.lower())
            sentences.append({"tokens": tokens, "raw": caption, "imgid": imgid, "sentid": sent_id})
            sent_id += 1
        karpathy.append(
            {
                "filepath": sub,
                "sentids": [s["sentid"] for s in sentences],
                "filename": file_name,
                "imgid": imgid,
                "split": split,
                "sentences": sentences,
                "cocoid": image_id,
            }
        )

        for k, q in enumerate(make_questions(objects, vqa_rng)):
            qid = image_id * 1000 + k
            answers, mca = human_answers(q, vqa_rng)
            part["questions"].append({"image_id": image_id, "question": q.text, "question_id": qid})
            part["answers"].append(
                {
                    "question_type": q.question_type,
                    "multiple_choice_answer": mca,
                    "answers": answers,
                    "image_id": image_id,
                    "answer_type": q.answer_type,
                    "question_id": qid,
                }
            )

    categories = [{"id": cid, "name": name, "supercategory": "shape"} for name, cid in CATEGORY_IDS.items()]
    vqa_license = {"url": _LICENSE["url"], "name": _LICENSE["name"]}
    for sub, part in coco.items():
        head = {"info": _info(f"xmbench synthetic shapes ({sub})"), "licenses": [_LICENSE], "images": part["images"]}
        _write_json(
            root / "annotations" / f"instances_{sub}.json",
            {**head, "annotations": part["instances"], "categories": categories},
        )
        _write_json(root / "annotations" / f"captions_{sub}.json", {**head, "annotations": part["captions"]})
        vqa_head = {"info": _info(f"xmbench synthetic VQA ({sub})"), "license": vqa_license}
        _write_json(
            root / f"v2_OpenEnded_mscoco_{sub}_questions.json",
            {
                **vqa_head,
                "task_type": "Open-Ended",
                "data_type": "mscoco",
                "data_subtype": sub,
                "questions": part["questions"],
            },
        )
        _write_json(
            root / f"v2_mscoco_{sub}_annotations.json",
            {**vqa_head, "data_type": "mscoco", "data_subtype": sub, "annotations": part["answers"]},
        )
    _write_json(root / "dataset_coco.json", {"images": karpathy, "dataset": "coco"})
    _write_lavis(
        root / "annotations",
        "coco_karpathy_{}.json",
        karpathy,
        lambda e: f"{e['filepath']}/{e['filename']}",
        lambda e: f"coco_{e['cocoid']}",
    )
    _write_flickr30k(root, karpathy)

    counts.update(
        {
            "train2014": len(coco["train2014"]["images"]),
            "val2014": len(coco["val2014"]["images"]),
            "objects": ann_id,
            "captions": caption_id,
            "questions": sum(len(p["questions"]) for p in coco.values()),
            "categories": len(categories),
        }
    )
    if pydicom is not None:  # only then: the manifest of a dataset without DICOM files is what it was
        counts[DICOM_FOLDER] = dicom_counts
    manifest = {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "images": images,
        "seed": seed,
        "size": size,
        "counts": counts,
    }
    with open(root / MANIFEST_NAME, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def default_cache_dir() -> Path:
    """Return ``$XMBENCH_CACHE`` if set (and not empty), else ``~/.cache/xmbench``."""
    from harness.data.text import cache_root

    return cache_root()


def _read_manifest(root: Path, images: int, seed: int, size: int) -> dict[str, Any] | None:
    """The manifest of a complete dataset made with these arguments, else None."""
    try:
        manifest = loads((root / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    expected = {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, "images": images, "seed": seed, "size": size}
    ok = isinstance(manifest, dict) and all(manifest.get(k) == v for k, v in expected.items())
    return manifest if ok else None


def ensure_synthetic(images: int = 1000, seed: int = 0, size: int = 64, cache_dir: Path | None = None) -> Path:
    """Return the cached synthetic dataset for these arguments, generating it on first use.

    The path is ``<cache_dir or default_cache_dir()>/synthetic/shapes-n{images}-s{seed}-px{size}-v{VERSION}``.
    Generation goes to a temporary sibling directory that is renamed into place once complete, so an interrupted
    or concurrent generation never leaves a half-written dataset at the final path.
    """
    _validate(images, seed, size)
    parent = expand_user(cache_dir, "cache_dir") if cache_dir is not None else default_cache_dir()
    parent = parent / "synthetic"
    final = parent / f"shapes-n{images}-s{seed}-px{size}-v{GENERATOR_VERSION}"
    if _read_manifest(final, images, seed, size) is not None:
        return final
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the renamed dataset should be readable like any cache entry
    except OSError as e:
        raise UserError(
            f"cannot write the synthetic data cache {parent}: {e.strerror or e}; set XMBENCH_CACHE to a writable dir"
        ) from e
    try:
        generate(tmp, images=images, seed=seed, size=size)
        if final.exists() and _read_manifest(final, images, seed, size) is None:
            shutil.rmtree(final, ignore_errors=True)  # an incomplete or foreign directory: replace it
        try:
            os.rename(tmp, final)
        except OSError:
            if _read_manifest(final, images, seed, size) is None:  # no concurrent winner: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # no-op after a successful rename
    return final
