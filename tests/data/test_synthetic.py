"""Tests for the synthetic shapes dataset: on-disk formats, determinism, caching, and modality dependence of VQA."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image
from pycocotools.coco import COCO

from harness.data import synthetic
from harness.data.synthetic import GENERATOR_VERSION, default_cache_dir, ensure_synthetic, generate, split_plan
from harness.errors import UserError

KINDS = ("circle", "square", "triangle", "cross")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "ds"
    generate(root, images=120, seed=3, size=48)
    return root


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_big") / "ds"
    generate(root, images=400, seed=0, size=32)
    return root


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def vqa(root: Path) -> tuple[list[dict], list[dict]]:
    questions, annotations = [], []
    for sub in ("train2014", "val2014"):
        questions += load(root / f"v2_OpenEnded_mscoco_{sub}_questions.json")["questions"]
        annotations += load(root / f"v2_mscoco_{sub}_annotations.json")["annotations"]
    return questions, annotations


# ------------------------------------------------------------------------------------------------- layout, COCO
def test_manifest_and_layout(ds: Path) -> None:
    manifest = load(ds / "xmbench_synthetic.json")
    assert manifest["generator"] == "xmbench-shapes"
    assert [manifest[k] for k in ("version", "images", "seed", "size")] == [GENERATOR_VERSION, 120, 3, 48]
    counts = manifest["counts"]
    assert (counts["train2014"], counts["val2014"], counts["captions"], counts["questions"]) == (84, 36, 600, 360)
    assert len(list((ds / "train2014").glob("COCO_train2014_*.jpg"))) == 84
    assert sorted(p.name for p in (ds / "val2014").iterdir())[0] == "COCO_val2014_000000000085.jpg"
    with Image.open(ds / "train2014" / "COCO_train2014_000000000001.jpg") as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (48, 48))


def test_coco_instances(ds: Path) -> None:
    total_anns = 0
    for sub, n_images in (("train2014", 84), ("val2014", 36)):
        raw = load(ds / "annotations" / f"instances_{sub}.json")
        assert set(raw) == {"info", "licenses", "images", "annotations", "categories"}
        coco = quiet_coco(ds / "annotations" / f"instances_{sub}.json")
        assert len(coco.getImgIds()) == n_images
        assert sorted(coco.getCatIds()) == [1, 3, 6, 9, 11]
        assert [c["name"] for c in coco.loadCats([1, 3, 6, 9, 11])] == ["circle", "square", "triangle", "cross", "star"]
        assert coco.getAnnIds(catIds=[11]) == []  # "star" never appears
        per_image = Counter(a["image_id"] for a in raw["annotations"])
        assert set(per_image) == set(coco.getImgIds()) and set(per_image.values()) <= {1, 2, 3}
        for ann in raw["annotations"]:
            assert ann["iscrowd"] == 0
            x, y, w, h = ann["bbox"]
            assert min(x, y) >= 0 and x + w <= 48 and y + h <= 48 and w > 0 and h > 0
            poly = ann["segmentation"][0]
            assert len(poly) % 2 == 0 and len(poly) >= 6  # a triangle has 3 vertices
            xs, ys = poly[0::2], poly[1::2]
            assert min(xs) >= x - 0.02 and max(xs) <= x + w + 0.02 and min(ys) >= y - 0.02 and max(ys) <= y + h + 0.02
            assert 0 < ann["area"] <= w * h + 1e-6
            if ann["category_id"] == 1:
                assert 16 <= len(poly) // 2 <= 24
        total_anns += len(raw["annotations"])
        for img in raw["images"]:
            assert (img["width"], img["height"], img["coco_url"], img["flickr_url"]) == (48, 48, "", "")
            assert img["file_name"] == f"COCO_{sub}_{img['id']:012d}.jpg"
    files = [ds / f"annotations/instances_{sub}.json" for sub in ("train2014", "val2014")]
    ids = [a["id"] for f in files for a in load(f)["annotations"]]
    assert len(set(ids)) == len(ids) == total_anns  # unique across both files


def test_coco_captions(ds: Path) -> None:
    for sub in ("train2014", "val2014"):
        coco = quiet_coco(ds / "annotations" / f"captions_{sub}.json")
        for image_id in coco.getImgIds():
            assert len(coco.getAnnIds(imgIds=[image_id])) == 5
    captions = [a["caption"] for a in load(ds / "annotations/captions_train2014.json")["annotations"]]
    assert any(c[0].isupper() for c in captions) and any(c[0].islower() for c in captions)
    assert any(c.endswith(".") for c in captions) and any(not c.endswith(".") for c in captions)
    with_pos = sum(any(w in c.lower() for w in ("left", "right")) for c in captions)
    assert with_pos / len(captions) > 0.6


def test_captions_name_every_object(ds: Path) -> None:
    raw = load(ds / "annotations" / "instances_train2014.json")
    names = {c["id"]: c["name"] for c in raw["categories"]}
    objects = defaultdict(list)
    for ann in raw["annotations"]:
        objects[ann["image_id"]].append(names[ann["category_id"]])
    for cap in load(ds / "annotations" / "captions_train2014.json")["annotations"]:
        text = cap["caption"].lower()
        for kind in objects[cap["image_id"]]:
            assert re.search(rf"\b(red|green|blue|yellow|purple|white) {kind}\b", text), (kind, text)


# ------------------------------------------------------------------------------------------------------- Karpathy
def test_karpathy_split_file(ds: Path) -> None:
    data = load(ds / "dataset_coco.json")
    assert data["dataset"] == "coco"
    splits = Counter(img["split"] for img in data["images"])
    # 120 images: 84 train2014; of the 36 val2014: 7 restval (20%), 15 val (next 40%), 14 test.
    assert splits == {"train": 84, "restval": 7, "val": 15, "test": 14}
    captions = {}
    for sub in ("train2014", "val2014"):
        for a in load(ds / f"annotations/captions_{sub}.json")["annotations"]:
            captions.setdefault(a["image_id"], []).append(a["caption"])
    sent_ids = []
    for i, img in enumerate(data["images"]):
        assert img["imgid"] == i
        assert (ds / img["filepath"] / img["filename"]).is_file()
        assert img["split"] == ("train" if img["filepath"] == "train2014" else img["split"])
        assert [s["raw"] for s in img["sentences"]] == captions[img["cocoid"]]
        assert img["sentids"] == [s["sentid"] for s in img["sentences"]]
        for s in img["sentences"]:
            assert s["imgid"] == i and s["tokens"] == re.findall(r"[a-z0-9]+", s["raw"].lower())
        sent_ids += img["sentids"]
    assert sent_ids == list(range(600))
    val_splits = [img["split"] for img in data["images"] if img["filepath"] == "val2014"]
    assert val_splits == ["restval"] * 7 + ["val"] * 15 + ["test"] * 14  # in image-id order


def test_smallest_dataset(tmp_path: Path) -> None:
    assert Counter(s for _, _, s in split_plan(20)) == {"train": 14, "restval": 1, "val": 3, "test": 2}
    generate(tmp_path, images=20, seed=0, size=32)
    sizes = {}
    for split in ("train", "val", "test"):
        class_dirs = list((tmp_path / "imagefolder" / split).iterdir())
        assert all(any(d.iterdir()) for d in class_dirs)  # no empty class folder (ImageFolder loaders reject them)
        sizes[split] = sum(len(list(d.iterdir())) for d in class_dirs)
    assert sizes == {"train": 15, "val": 3, "test": 2}


# ------------------------------------------------------------------------------------------------------------ VQA
def test_vqa_files(ds: Path) -> None:
    for sub in ("train2014", "val2014"):
        qf = load(ds / f"v2_OpenEnded_mscoco_{sub}_questions.json")
        af = load(ds / f"v2_mscoco_{sub}_annotations.json")
        assert (qf["task_type"], qf["data_type"], qf["data_subtype"]) == ("Open-Ended", "mscoco", sub)
        assert (af["data_type"], af["data_subtype"]) == ("mscoco", sub)
        assert {"info", "license"} <= set(qf) and {"info", "license"} <= set(af)
        image_ids = {img["id"] for img in load(ds / f"annotations/instances_{sub}.json")["images"]}
        assert {q["image_id"] for q in qf["questions"]} == image_ids
        by_qid = {a["question_id"]: a for a in af["annotations"]}
        assert len(by_qid) == len(qf["questions"]) == 3 * len(image_ids)
        for q in qf["questions"]:
            assert q["question_id"] // 1000 == q["image_id"] and q["question_id"] % 1000 in (0, 1, 2)
            a = by_qid[q["question_id"]]
            assert a["image_id"] == q["image_id"]
            assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
            assert {x["answer_confidence"] for x in a["answers"]} <= {"yes", "maybe", "no"}
            assert a["answer_type"] in {"yes/no", "number", "other"}
            assert a["question_type"] in {"what color is the", "what shape is", "is there a", "how many"}
            most = Counter(x["answer"].strip().lower() for x in a["answers"]).most_common()
            assert a["multiple_choice_answer"] in {ans for ans, c in most if c == most[0][1]}
        per_image = Counter(q["image_id"] for q in qf["questions"])
        assert set(per_image.values()) == {3}


def test_vqa_answer_disagreement(big: Path) -> None:
    _, annotations = vqa(big)
    unanimous = sum(len({x["answer"] for x in a["answers"]}) == 1 for a in annotations) / len(annotations)
    assert 0.2 < unanimous < 0.4  # about 30% unanimous, the rest disagree on surface form or content
    wrong = sum(any(norm(x["answer"]) != a["multiple_choice_answer"] for x in a["answers"]) for a in annotations)
    assert 0.4 < wrong / len(annotations) < 0.75
    assert Counter(a["answer_type"] for a in annotations).keys() == {"yes/no", "number", "other"}


# VQA-style scoring: min(1, #humans who gave the answer / 3), after the official normalisation (simplified).
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}


def norm(answer: str) -> str:
    text = re.sub(r"(?<!\d)\.(?!\d)", "", answer.strip().lower())
    text = re.sub(r"[;/\[\]\"{}()=+\\_\-><@`,?!]", "", text)
    return " ".join(_NUMBERS.get(w, w) for w in text.split() if w not in ("a", "an", "the"))


def accuracy(answer: str, humans: list[str]) -> float:
    return min(1.0, sum(h == answer for h in humans) / 3)


def oracle(groups: dict[object, list[list[str]]]) -> float:
    """Mean accuracy when each group of questions gets the one answer that is best for the whole group."""
    total = count = 0
    for question_humans in groups.values():
        candidates = {h for humans in question_humans for h in humans}
        total += max(sum(accuracy(c, humans) for humans in question_humans) for c in candidates)
        count += len(question_humans)
    return total / count


def test_vqa_needs_both_modalities(big: Path) -> None:
    questions, annotations = vqa(big)
    by_qid = {a["question_id"]: a for a in annotations}
    by_text: dict[object, list[list[str]]] = defaultdict(list)
    by_image: dict[object, list[list[str]]] = defaultdict(list)
    full = []
    for q in questions:
        a = by_qid[q["question_id"]]
        humans = [norm(x["answer"]) for x in a["answers"]]
        by_text[q["question"]].append(humans)
        by_image[q["image_id"]].append(humans)
        full.append(accuracy(norm(a["multiple_choice_answer"]), humans))
    text_only, image_only, full_info = oracle(by_text), oracle(by_image), sum(full) / len(full)
    assert len(by_text) <= 30  # a small closed set of question strings
    assert text_only <= 0.45, text_only
    assert image_only <= 0.65, image_only
    assert full_info >= 0.90, full_info
    print(f"text-only {text_only:.3f} image-only {image_only:.3f} full {full_info:.3f}")


# ---------------------------------------------------------------------------------------------------- ImageFolder
def test_imagefolder(ds: Path) -> None:
    raw = {sub: load(ds / f"annotations/instances_{sub}.json") for sub in ("train2014", "val2014")}
    names = {c["id"]: c["name"] for c in raw["train2014"]["categories"]}
    main_kind = {}
    for data in raw.values():
        largest: dict[int, dict] = {}
        for ann in data["annotations"]:
            if ann["image_id"] not in largest or ann["area"] > largest[ann["image_id"]]["area"]:
                largest[ann["image_id"]] = ann
        main_kind.update({i: names[a["category_id"]] for i, a in largest.items()})
    sizes = {}
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (ds / "imagefolder" / split).iterdir()) == sorted(KINDS)
        files = list((ds / "imagefolder" / split).glob("*/*.jpg"))
        for f in files:
            image_id = int(f.stem.rsplit("_", 1)[1])
            assert main_kind[image_id] == f.parent.name
            assert f.read_bytes() == (ds / f.name.split("_")[1] / f.name).read_bytes()
        sizes[split] = len(files)
        assert {f.parent.name for f in files} == set(KINDS)  # balanced: every class in every split
    assert sizes == {"train": 84 + 7, "val": 15, "test": 14}


# -------------------------------------------------------------------------------------- determinism and caching
def digest(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_deterministic(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", images=40, seed=7, size=32)
    b = generate(tmp_path / "b", images=40, seed=7, size=32)
    generate(tmp_path / "c", images=40, seed=8, size=32)
    assert a == b
    da, db, dc = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    # manifest, jpg + imagefolder link + flickr30k link, 4 COCO, Karpathy, 4 VQA, 3 LAVIS COCO,
    # Karpathy Flickr30k, 3 LAVIS Flickr30k
    assert len(da) == 1 + 40 * 3 + 4 + 1 + 4 + 3 + 1 + 3
    assert da == db
    common = [k for k in da if k in dc]  # ImageFolder paths depend on the classes, hence on the seed
    assert len(common) > 50 and all(da[k] != dc[k] for k in common)  # every image and JSON file differs
    assert '"date_created":"2014-01-01 00:00:00"' in (tmp_path / "a/annotations/captions_train2014.json").read_text()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": 19}, "images must be an integer between 20 and 100,000 (about 1 GB, a minute to write), got 19"),
        ({"images": 100_001}, "images must be an integer between 20 and 100,000"),
        ({"size": 31}, "size must be an integer between 32 and 512 pixels, got 31"),
        ({"size": 513}, "size must be an integer between 32 and 512 pixels, got 513"),
        ({"seed": "x"}, "seed must be an integer, got 'x'"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        generate(tmp_path / "x", **kwargs)
    with pytest.raises(UserError, match=re.escape(message)):
        ensure_synthetic(cache_dir=tmp_path, **kwargs)
    assert not (tmp_path / "x").exists()


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XMBENCH_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("XMBENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "xmbench"


def test_ensure_synthetic_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XMBENCH_CACHE", str(tmp_path))
    calls = []
    real = synthetic.generate
    monkeypatch.setattr(synthetic, "generate", lambda out, **kw: calls.append(kw) or real(out, **kw))
    root = ensure_synthetic(images=40, seed=1, size=32)
    assert root == tmp_path / "synthetic" / f"shapes-n40-s1-px32-v{GENERATOR_VERSION}"
    assert load(root / "xmbench_synthetic.json")["images"] == 40
    assert ensure_synthetic(images=40, seed=1, size=32) == root
    assert calls == [{"images": 40, "seed": 1, "size": 32}]  # second call reused the cache
    assert [p.name for p in (tmp_path / "synthetic").iterdir()] == [root.name]  # no temporary dir left behind


def test_ensure_synthetic_is_atomic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    final = tmp_path / "synthetic" / f"shapes-n40-s2-px32-v{GENERATOR_VERSION}"
    real = synthetic.generate

    def interrupted(out: Path, **kw: int) -> dict:
        real(out, **kw)
        (Path(out) / "xmbench_synthetic.json").unlink()  # as if killed before the manifest was written
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic(images=40, seed=2, size=32, cache_dir=tmp_path)
    assert list((tmp_path / "synthetic").iterdir()) == []  # neither a final nor a temporary dir

    # A half-written directory at the final path (no manifest) is replaced, not reused.
    final.mkdir(parents=True)
    (final / "train2014").mkdir()
    monkeypatch.setattr(synthetic, "generate", real)
    assert ensure_synthetic(images=40, seed=2, size=32, cache_dir=tmp_path) == final
    assert len(list((final / "train2014").iterdir())) == 28

    # A concurrent generation that finished first wins; ours is discarded without error.
    before = digest(final)
    (final / "xmbench_synthetic.json").unlink()  # force a regeneration

    def racing(out: Path, **kw: int) -> dict:
        manifest = real(out, **kw)
        real(final, **kw)  # the other process completes the final dir while we are still working
        return manifest

    monkeypatch.setattr(synthetic, "generate", racing)
    assert ensure_synthetic(images=40, seed=2, size=32, cache_dir=tmp_path) == final
    assert digest(final) == before
    assert [p.name for p in (tmp_path / "synthetic").iterdir()] == [final.name]
