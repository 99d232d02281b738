"""Bad inputs as a new user makes them, across every command: each is ONE line ``xmbench: error: ...`` and exit 2.

One table: ``(id, setup, argv, fragments)``. ``setup(b)`` builds the bad input under ``b.tmp`` (see :class:`Bench`)
and returns the names that ``argv`` and ``fragments`` use as ``{placeholders}``. Every row asserts exit code 2, that
the last stderr line is the error (``run``, ``plan`` and ``report`` log progress lines before it), that it is the only
``xmbench:`` line, that it holds every fragment, and that there is no traceback and no "internal error". A row that
needs earlier finished runs copies a small finished results folder (one task, one model, one seed, ``steps: 2``)
and checks afterwards that every file in it is byte-identical.

The inputs that are valid but odd (a decompression bomb under ``on_bad_sample: skip``, hidden macOS files in an image
folder, a damaged cache, a hand-edited run record) must succeed sensibly instead: they are the tests after the table.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli import main
from tests.conftest import TINY_BERT, TINY_VIT

# ---------------------------------------------------------------------------------------------------------------------
# The small world every row starts from: synthetic data in the real layouts, a tiny suite, one finished run.
# ---------------------------------------------------------------------------------------------------------------------

TASKS = {
    "vqa": {"type": "vqa", "dataset": "vqa", "models": ["xbert"], "answer_min_count": 1},
    "cls": {"type": "classification", "dataset": "cls", "models": ["vit"]},
    "ret": {"type": "retrieval", "dataset": "coco", "models": ["xbert"], "k_test": 2, "embed_dim": 8},
    "ml": {"type": "multilabel", "dataset": "coco", "models": ["vit"]},
}


def suite_dict(root: Path, task: str = "cls", **changes) -> dict:
    """The tiny suite on the data at ``root``, running one task; ``changes`` set keys (``a__b=value``)."""
    suite = {
        "name": "bad",
        "seeds": [0],
        "hardware": {"device": "cpu", "precision": "fp32", "threads": 2},
        "train": {"steps": 2, "batch_size": 8, "lr": 1e-3},
        "image": {"size": 16},
        "text": {"tokenizer": "wordpiece", "vocab_size": 120, "max_length": 16},
        "datasets": {
            "vqa": {"kind": "vqa2", "path": str(root)},
            "coco": {"kind": "coco", "path": str(root)},
            "cls": {"kind": "imagefolder", "path": str(root / "imagefolder")},
        },
        "models": {
            "vit": {"type": "timm", "image_encoder": copy.deepcopy(TINY_VIT)},
            "xbert": {"type": "xbert", "image_encoder": copy.deepcopy(TINY_VIT), "text_encoder": TINY_BERT},
        },
        "tasks": {task: copy.deepcopy(TASKS[task])},
    }
    for key, value in changes.items():
        node = suite
        *parents, last = key.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return suite


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, xm_cache: Path) -> dict[str, Path]:
    """Synthetic data (never changed: rows corrupt copies) and a finished results folder of the tiny suite on it."""
    from harness.data.synthetic import generate

    root = tmp_path_factory.mktemp("bad-inputs")
    data = root / "data"
    generate(data, images=40, seed=0, size=32)
    suite = root / "suite.yaml"
    suite.write_text(yaml.safe_dump(suite_dict(data)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XMBENCH_CACHE", str(xm_cache))
        assert main(["run", str(suite), "--out", str(root / "out")]) == 0
    return {"data": data, "out": root / "out"}


class Bench:
    """What a row's setup works with: ``tmp`` (its own folder), ``mp`` (monkeypatch), a corruptible copy of the
    data, suites, a copy of the finished results folder, and checks to run after the command."""

    def __init__(self, tmp: Path, mp: pytest.MonkeyPatch, world: dict[str, Path]) -> None:
        self.tmp, self.mp, self.world = tmp, mp, world
        self.after: list[Callable[[], None]] = []

    def data(self) -> Path:
        """A copy of the synthetic data to corrupt."""
        root = self.tmp / "data"
        if not root.exists():
            shutil.copytree(self.world["data"], root, symlinks=True)
        return root

    def suite(self, task: str = "cls", data: Path | None = None, name: str = "suite.yaml", **changes) -> Path:
        """A suite file; on the intact data (the finished run's) unless ``data`` is given."""
        path = self.tmp / name
        path.write_text(yaml.safe_dump(suite_dict(data or self.world["data"], task, **changes), allow_unicode=True))
        return path

    def finished(self, check: bool = True) -> Path:
        """A copy of the finished results folder; its runs are checked byte-identical after the command (the reports
        beside them are rebuilt by design)."""
        out = self.tmp / "out"
        shutil.copytree(self.world["out"], out, symlinks=True)
        before = digest(out / "runs")
        if check:
            self.after.append(lambda: _same_files(out / "runs", before))
        return out

    def plugin(self, name: str, source: str) -> str:
        """A --plugin module ``name`` (importable from ``tmp``)."""
        (self.tmp / f"{name}.py").write_text(source)
        self.mp.syspath_prepend(str(self.tmp))
        return name


def _same_files(out: Path, before: dict[str, str]) -> None:
    after = {k: v for k, v in digest(out).items() if k in before}
    assert after == before, "a finished run's files changed"


def _run_folder(out: Path) -> Path:
    return next(p for p in (out / "runs").glob("*/*/*") if p.is_dir())


def _refuse(code: int, when: Callable[[str], bool] = lambda path: True):
    """A stand-in for tempfile.mkstemp that fails with errno ``code`` (as a read-only or full disk does)."""
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if when(str(dir)):
            raise OSError(code, os.strerror(code), str(dir))
        return real(*args, dir=dir, **kwargs)

    return mkstemp


def _edit(path: Path, fn: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 60-byte PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def _first(folder: Path, pattern: str = "*.jpg") -> Path:
    return sorted(folder.glob(pattern))[0]


def _vqa_results(b: Bench, fn: Callable[[list], object] | None = None) -> dict:
    data = b.world["data"]
    questions = data / "v2_OpenEnded_mscoco_val2014_questions.json"
    results = [
        {"question_id": q["question_id"], "answer": "yes"} for q in json.loads(questions.read_text())["questions"]
    ]
    if fn:
        fn(results)
    path = b.tmp / "results.json"
    path.write_text(json.dumps(results))
    return {"q": questions, "a": data / "v2_mscoco_val2014_annotations.json", "results": path}


# ---------------------------------------------------------------------------------------------------------------------
# Setups
# ---------------------------------------------------------------------------------------------------------------------


def suite_not_utf8(b: Bench) -> dict:
    path = b.tmp / "suite.yaml"
    path.write_bytes(b.suite().read_bytes() + "# caf\xe9\n".encode("latin-1"))
    return {"suite": path}


def suite_unreadable(b: Bench) -> dict:
    path = b.suite()
    real = Path.open

    def deny(self, *args, **kwargs):
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    b.mp.setattr(Path, "open", deny)
    return {"suite": path}


def suite_deep(b: Bench) -> dict:
    path = b.suite()
    path.write_text(path.read_text() + "description: " + "[" * 5000 + "]" * 5000 + "\n")
    return {"suite": path}


def suite_huge(b: Bench) -> dict:
    path = b.suite()
    path.write_text(path.read_text() + "#" + "x" * (2 << 20) + "\n")
    return {"suite": path}


def suite_alias_bomb(b: Bench) -> dict:
    """A billion laughs in a model's arguments: 9 levels of 9 aliases (387 million values when expanded)."""
    path = b.suite()
    levels = ", ".join(f"l{i + 1}: &l{i + 1} [" + ", ".join([f"*l{i}"] * 9) + "]" for i in range(8))
    bomb = f"    args: {{l0: &l0 [1, 2, 3, 4, 5, 6, 7, 8, 9], {levels}}}\n"
    text = path.read_text().replace("  vit:\n", "  vit:\n" + bomb, 1)
    assert bomb in text
    path.write_text(text)
    return {"suite": path}


def suite_null_key(b: Bench) -> dict:
    path = b.suite()
    path.write_text(path.read_text() + "~: x\n")
    return {"suite": path}


def annotation_missing_key(b: Bench) -> dict:
    data = b.data()
    _edit(data / "v2_OpenEnded_mscoco_val2014_questions.json", lambda d: d["questions"][0].pop("image_id"))
    return {"suite": b.suite("vqa", data), "data": data}


def annotation_wrong_type(b: Bench) -> dict:
    data = b.data()
    _edit(data / "annotations" / "instances_val2014.json", lambda d: d["annotations"][0].update(area="big"))
    return {"suite": b.suite("ml", data), "data": data}


def annotation_empty_split(b: Bench) -> dict:
    data = b.data()
    _edit(data / "annotations" / "instances_val2014.json", lambda d: d.update(images=[], annotations=[]))
    return {"suite": b.suite("ml", data), "data": data}


def annotation_control_chars(b: Bench) -> dict:
    """An ANSI escape and a bidi override in a file name from an annotation file: shown escaped, never raw."""
    data = b.data()

    def rename(d: dict) -> None:
        first = next(i for i in d["images"] if i["split"] == "train")
        first["filename"] = "red\x1b[31mdanger\u202egpj.jpg"

    _edit(data / "dataset_coco.json", rename)
    return {"suite": b.suite("ret", data), "data": data}


def bomb_image(b: Bench) -> dict:
    data = b.data()
    victim = _first(data / "imagefolder" / "test" / "circle")
    victim.write_bytes(_bomb_png())
    return {"suite": b.suite("cls", data), "victim": victim}


def fifo_image(b: Bench) -> dict:
    """A named pipe named like an image (it would block the decoder forever)."""
    data = b.data()
    victim = _first(data / "imagefolder" / "train" / "circle")
    victim.unlink()
    os.mkfifo(victim)
    return {"suite": b.suite("cls", data), "victim": victim}


def dangling_image(b: Bench) -> dict:
    data = b.data()
    victim = _first(data / "imagefolder" / "train" / "circle")
    victim.unlink()
    victim.symlink_to(b.tmp / "nowhere.jpg")
    return {"suite": b.suite("cls", data), "victim": victim}


def unreadable_image(b: Bench) -> dict:
    from PIL import Image

    data = b.data()
    victim = _first(data / "imagefolder" / "train" / "circle")
    real = Image.open

    def deny(fp, *args, **kwargs):
        if str(fp) == str(victim):
            raise PermissionError(errno.EACCES, "Permission denied", str(fp))
        return real(fp, *args, **kwargs)

    b.mp.setattr(Image, "open", deny)
    return {"suite": b.suite("cls", data), "victim": victim}


def out_refused(code: int) -> Callable[[Bench], dict]:
    def setup(b: Bench) -> dict:
        out = b.finished()
        b.mp.setattr(tempfile, "mkstemp", _refuse(code))
        return {"suite": b.suite(seeds=[0, 1]), "out": out}

    return setup


def out_fsync_full(b: Bench) -> dict:
    """The disk fills up at fsync (an OSError that names no file)."""
    out = b.finished()

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    b.mp.setattr(os, "fsync", fsync)
    return {"suite": b.suite(seeds=[0, 1]), "out": out}


def out_no_flock(b: Bench) -> dict:
    import fcntl

    out = b.finished()

    def flock(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    b.mp.setattr(fcntl, "flock", flock)
    return {"suite": b.suite(seeds=[0, 1]), "out": out}


def out_is_a_file(b: Bench) -> dict:
    (b.tmp / "file").write_text("x")
    return {"suite": b.suite(), "out": b.tmp / "file"}


def report_html_folder(b: Bench) -> dict:
    out = b.finished()
    (out / "report.html").unlink()
    (out / "report.html").mkdir()
    return {"suite": b.suite(), "out": out}


def metrics_json_folder(b: Bench) -> dict:
    """A damaged run is run again; writing its record then fails on the folder in the way."""
    out = b.finished(check=False)
    run = _run_folder(out)
    (run / "metrics.json").unlink()
    (run / "metrics.json").mkdir()
    return {"suite": b.suite(), "out": out, "run": run}


def runs_deleted(b: Bench) -> dict:
    out = b.finished(check=False)
    shutil.rmtree(out / "runs")
    return {"suite": b.suite(), "out": out}


def cache_full(b: Bench) -> dict:
    """The disk fills up while the decoded-image cache is written (pwrite names no file)."""
    import harness.data.image_cache as image_cache

    def write_at(fd: int, data, offset: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    b.mp.setattr(image_cache, "_write_at", write_at)
    b.mp.setenv("XMBENCH_CACHE", str(b.tmp / "cache"))
    return {"suite": b.suite(image={"size": 24}), "out": b.tmp / "out", "cache": b.tmp / "cache"}


def cache_not_writable(b: Bench) -> dict:
    cache = b.tmp / "cache"
    b.mp.setenv("XMBENCH_CACHE", str(cache))
    b.mp.setattr(tempfile, "mkdtemp", lambda *a, dir=None, **k: _raise(OSError(errno.EACCES, "Permission denied", dir)))
    return {"suite": b.suite("vqa"), "out": b.tmp / "out", "cache": cache}


def _raise(exc: BaseException):
    raise exc


def env(name: str, value: str, **changes) -> Callable[[Bench], dict]:
    def setup(b: Bench) -> dict:
        b.mp.setenv(name, value)
        return {"suite": b.suite(**changes), "out": b.tmp / "out"}

    return setup


def score_files(b: Bench) -> dict:
    scores = b.tmp / "scores.npy"
    np.save(scores, np.random.default_rng(0).random((6, 3)))
    labels = b.tmp / "labels.npy"
    np.save(labels, np.array([0, 1, 2, 0, 1, 2]))
    empty = b.tmp / "empty.npy"
    empty.write_bytes(b"")
    zero_rows = b.tmp / "zero.npy"
    np.save(zero_rows, np.zeros((0, 3)))
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header += " " * (117 - len(header)) + "\n"
    bomb = b.tmp / "bomb.npy"
    bomb.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64)
    lavis = b.tmp / "lavis.json"
    lavis.write_text(json.dumps([{"image": f"{i}.jpg", "caption": [f"c{i}a", f"c{i}b"]} for i in range(3)]))
    return {"scores": scores, "labels": labels, "empty": empty, "zero": zero_rows, "bomb": bomb, "lavis": lavis}


def instances(b: Bench, fn: Callable[[dict], object]) -> Path:
    path = b.tmp / "instances.json"
    shutil.copy(b.world["data"] / "annotations" / "instances_val2014.json", path)
    _edit(path, fn)
    return path


def detection_no_categories(b: Bench) -> dict:
    gt = instances(b, lambda d: d.update(categories=[]))
    results = b.tmp / "dets.json"
    results.write_text(json.dumps([{"image_id": 29, "category_id": 1, "bbox": [0, 0, 4, 4], "score": 0.5}]))
    return {"gt": gt, "results": results}


def vqa_no_questions(b: Bench) -> dict:
    questions = b.tmp / "questions.json"
    questions.write_text('{"questions": []}')
    return {**_vqa_results(b), "q": questions}


def multilabel_no_labels(b: Bench) -> dict:
    gt = instances(b, lambda d: d.update(annotations=[]))
    n_images, n_classes = len(json.loads(gt.read_text())["images"]), 5
    scores = b.tmp / "scores.npy"
    np.save(scores, np.zeros((n_images, n_classes)))
    return {"gt": gt, "scores": scores}


PLUGIN_HEAD = """
import sys  # noqa: F401 (used by the factories below)

from torch import nn
from harness.models import user_model
from harness.models.base import XModel


class Img(XModel):
    kind = "image"
    modalities = frozenset({"image"})

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 8)
        self.feature_dim = 8

    def forward(self, batch):
        return {"pooled": self.lin(batch["image"].float().mean(dim=(2, 3)))}
"""


def plugin_model(name: str, body: str, cmd: str = "validate") -> Callable[[Bench], dict]:
    """A --plugin module registering the image model ``name`` whose factory body is ``body``; the suite uses it."""

    def setup(b: Bench) -> dict:
        source = PLUGIN_HEAD + f"\n\n@user_model({name!r}, kind='image', modalities={{'image'}})\ndef f(ctx):\n"
        source += "".join(f"    {line}\n" for line in body.splitlines())
        module = b.plugin(f"plugin_{name}", source)
        return {"suite": b.suite(models__vit={"type": name}), "plugin": module, "out": b.tmp / "out"}

    return setup


def plugin_import(name: str, source: str) -> Callable[[Bench], dict]:
    def setup(b: Bench) -> dict:
        return {"plugin": b.plugin(name, source)}

    return setup


def cuda_index(b: Bench) -> dict:
    import torch

    b.mp.setattr(torch.cuda, "is_available", lambda: True)
    b.mp.setattr(torch.cuda, "device_count", lambda: 1)
    return {"suite": b.suite(hardware={"device": "cuda:3"}), "out": b.tmp / "out"}


def none(b: Bench) -> dict:
    return {"suite": b.suite(), "out": b.tmp / "out"}


def suite_with(**changes) -> Callable[[Bench], dict]:
    def setup(b: Bench) -> dict:
        task = changes.pop("task", "cls")
        return {"suite": b.suite(task, **changes), "out": b.tmp / "out"}

    return setup


# ---------------------------------------------------------------------------------------------------------------------
# The table: (id, setup, argv, fragments of the one error line)
# ---------------------------------------------------------------------------------------------------------------------

CASES = [
    # -- suite files ---------------------------------------------------------------------------------------------------
    (
        "suite-not-utf8",
        suite_not_utf8,
        ["validate", "{suite}"],
        ["{suite}: not valid UTF-8: byte 0xe9", "save it as UTF-8"],
    ),
    ("suite-unreadable", suite_unreadable, ["run", "{suite}"], ["{suite}: permission denied", "chmod u+r"]),
    ("suite-deep", suite_deep, ["validate", "{suite}"], ["{suite}: line", "YAML nested more than 64 levels deep"]),
    ("suite-huge", suite_huge, ["validate", "{suite}"], ["{suite}: suite file is 2,", "over the 1 MiB limit"]),
    (
        "alias-bomb-validate",
        suite_alias_bomb,
        ["validate", "{suite}"],
        ["{suite}: models.vit.args.", "YAML aliases expand past the limit of 100,000 values (an alias bomb?)"],
    ),
    (
        "alias-bomb-run",
        suite_alias_bomb,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{suite}: models.vit.args.", "alias bomb"],
    ),
    (
        "suite-null-key",
        suite_null_key,
        ["validate", "{suite}"],
        ["{suite}: <top level>: a key must be a string, got null"],
    ),
    (
        "vocab-size-below-specials",
        suite_with(text={"tokenizer": "wordpiece", "vocab_size": 1}),
        ["validate", "{suite}"],
        ["{suite}: text.vocab_size: input should be greater than or equal to 5, got 1"],
    ),
    (
        "image-std-zero",
        suite_with(image={"size": 16, "std": [0.2, 0, 0.2]}),
        ["validate", "{suite}"],
        ["{suite}: image.std[1]: input should be greater than 0, got 0"],
    ),
    (
        "synthetic-images-huge",
        suite_with(synthetic={"images": 10**9}),
        ["validate", "{suite}"],
        ["{suite}: synthetic.images: input should be less than or equal to 100000, got 1000000000"],
    ),
    (
        "split-ratios-sum",
        suite_with(datasets__cls__split_ratios=[0.5, 0.1, 0.1]),
        ["validate", "{suite}"],
        ["{suite}: datasets.cls.split_ratios: the train, val and test fractions must sum to 1, got [0.5, 0.1, 0.1]"],
    ),
    (
        "imagefolder-split-unknown",
        suite_with(tasks__cls__test_split="validation"),
        ["run", "{suite}", "--out", "{out}"],
        ["{suite}: tasks.cls.test_split: 'validation' is not a split of a imagefolder dataset; use one of train, val"],
    ),
    (
        "bert-config-wrong-type",
        suite_with(
            task="vqa",
            models__xbert={
                "type": "xbert",
                "image_encoder": TINY_VIT,
                "text_encoder": {"config": {"hidden_size": "big"}},
            },
        ),
        ["validate", "{suite}"],
        ["{suite}: models.xbert.text_encoder.config: invalid BertConfig arguments", "'hidden_size'"],
    ),
    (
        "dataset-path-unknown-user",
        suite_with(datasets__cls__path="~no_such_user_xmbench/data"),
        ["validate", "{suite}"],
        ["{suite}: datasets.cls.path: cannot expand '~no_such_user_xmbench/data'", "without '~'"],
    ),
    # -- suite values that only the run can check: the message still names the suite file --------------------------
    (
        "fp16-on-cpu",
        suite_with(hardware={"device": "cpu", "precision": "fp16"}),
        ["run", "{suite}", "--out", "{out}"],
        ["{suite}: hardware.precision: fp16 needs a CUDA device"],
    ),
    (
        "cuda-index-out-of-range",
        cuda_index,
        ["run", "{suite}", "--out", "{out}"],
        ["{suite}: hardware.device: 'cuda:3' requested but this machine has 1 CUDA device(s) (cuda:0..cuda:0)"],
    ),
    (
        "answer-vocab-empty",
        suite_with(task="vqa", tasks__vqa__answer_min_count=10**6),
        ["run", "{suite}", "--out", "{out}"],
        ["{suite}: tasks.vqa.answer_min_count: answer vocabulary is empty: no answer occurs 1000000+ times"],
    ),
    # -- dataset files -------------------------------------------------------------------------------------------------
    (
        "annotation-missing-key",
        annotation_missing_key,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{data}/v2_OpenEnded_mscoco_val2014_questions.json: questions[0]: missing key 'image_id' (question_id 29000)"],
    ),
    (
        "annotation-wrong-type",
        annotation_wrong_type,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ['{data}/annotations/instances_val2014.json: annotations[0].area: expected a number, got "big"'],
    ),
    (
        "annotation-empty-split",
        annotation_empty_split,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{data}/annotations/instances_val2014.json: split 'val2014' of dataset 'coco' has no samples"],
    ),
    (
        "annotation-control-characters",
        annotation_control_chars,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{data}/dataset_coco.json: image ", "red\\x1b[31mdanger\\u202egpj.jpg is missing"],
    ),
    (
        "image-decompression-bomb",
        bomb_image,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{victim}: cannot decode image (Image size (10000000000 pixels) exceeds limit", "on_bad_sample: skip"],
    ),
    (
        "image-named-pipe",
        fifo_image,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{victim}: image file is not a regular file (a pipe, socket or device)"],
    ),
    (
        "image-dangling-link",
        dangling_image,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{victim}: image file is a symbolic link to nothing"],
    ),
    (
        "image-unreadable",
        unreadable_image,
        ["run", "{suite}", "--out", "{tmp}/out"],
        ["{victim}: cannot read image (Permission denied); check the file and its permissions"],
    ),
    # -- output folder, results folder, cache ----------------------------------------------------------------------
    (
        "out-read-only",
        out_refused(errno.EROFS),
        ["run", "{suite}", "--out", "{out}"],
        ["{out}/runs/", "Read-only file system; the file system is read-only; choose a writable location (--out)"],
    ),
    (
        "out-full",
        out_refused(errno.ENOSPC),
        ["run", "{suite}", "--out", "{out}"],
        ["{out}/runs/", "No space left on device; the disk is full", "(--out); finished runs are kept"],
    ),
    (
        "out-full-at-fsync",
        out_fsync_full,
        ["run", "{suite}", "--out", "{out}"],
        ["{out}/runs/", "/spec.json: No space left on device; the disk is full"],
    ),
    (
        "out-without-flock",
        out_no_flock,
        ["run", "{suite}", "--out", "{out}"],
        ["{out}/runs/", "/.lock: No locks available; the file system does not support locks (flock)"],
    ),
    (
        "out-is-a-file",
        out_is_a_file,
        ["run", "{suite}", "--out", "{out}"],
        ["{out}/runs/", "Not a directory; a part of the path is a file, not a folder"],
    ),
    (
        "report-html-is-a-folder",
        report_html_folder,
        ["report", "{suite}", "--out", "{out}"],
        ["{out}/report.html: Is a directory; it is a folder where a file is expected"],
    ),
    (
        "metrics-json-is-a-folder",
        metrics_json_folder,
        ["run", "{suite}", "--out", "{out}"],
        ["{run}/metrics.json: Is a directory"],
    ),
    ("runs-deleted", runs_deleted, ["report", "{suite}", "--out", "{out}"], ["{out}: no runs/ folder"]),
    (
        "cache-full",
        cache_full,
        ["run", "{suite}", "--out", "{out}"],
        ["{cache}/images/", "No space left on device; the disk is full; free some space", "(XMBENCH_CACHE)"],
    ),
    (
        "cache-not-writable",
        cache_not_writable,
        ["run", "{suite}", "--out", "{out}"],
        ["{cache}/tokenizers: Permission denied; check the permissions, or choose another location (XMBENCH_CACHE)"],
    ),
    (
        "cache-env-unknown-user",
        env("XMBENCH_CACHE", "~no_such_user_xmbench/cache"),
        ["run", "{suite}", "--out", "{out}"],
        ["$XMBENCH_CACHE: cannot expand '~no_such_user_xmbench/cache'"],
    ),
    (
        "data-env-unknown-user",
        env("XMBENCH_DATA", "~no_such_user_xmbench", datasets__cls__path="imagefolder"),
        ["validate", "{suite}"],
        ["$XMBENCH_DATA: cannot expand '~no_such_user_xmbench'"],
    ),
    (
        "data-root-unknown-user",
        none,
        ["validate", "{suite}", "--data-root", "~no_such_user_xmbench"],
        ["--data-root: cannot expand '~no_such_user_xmbench'"],
    ),
    # -- command line --------------------------------------------------------------------------------------------------
    ("data-without-action", none, ["data"], ["xmbench data: missing ACTION: one of synth"]),
    ("score-without-metric", none, ["score"], ["xmbench score: missing METRIC: one of vqa, retrieval"]),
    ("out-empty", none, ["run", "{suite}", "--out", ""], ["xmbench run: argument --out: empty path"]),
    ("data-root-empty", none, ["validate", "{suite}", "--data-root", ""], ["argument --data-root: empty path"]),
    ("synth-out-empty", none, ["data", "synth", "--out", ""], ["xmbench data synth: argument --out: empty path"]),
    (
        "synth-images-huge",
        none,
        ["data", "synth", "--out", "{tmp}/synth", "--images", "1000000000"],
        ["synthetic data: images must be an integer between 20 and 100,000", "got 1000000000"],
    ),
    (
        "report-device-unknown",
        none,
        ["report", "{suite}", "--device", "tpu"],
        ["xmbench report: argument --device: expected cpu, cuda, cuda:N or mps, got 'tpu'"],
    ),
    # -- plug-ins and the models they register -------------------------------------------------------------------------
    (
        "plugin-exits-at-import",
        plugin_import("plugin_exits", "import sys\nsys.exit(0)\n"),
        ["list", "models", "--plugin", "{plugin}"],
        ["--plugin plugin_exits: importing it called sys.exit(0)"],
    ),
    (
        "plugin-raises-base-exception",
        plugin_import("plugin_base_exc", "class Stop(BaseException):\n    pass\n\nraise Stop('no')\n"),
        ["list", "models", "--plugin", "{plugin}"],
        ["--plugin plugin_base_exc: importing it failed: Stop: no"],
    ),
    (
        "plugin-given-as-file",
        none,
        ["list", "models", "--plugin", "mypkg/models.py"],
        ["--plugin mypkg/models.py: cannot import it", "such as 'mypkg.models', not a file path"],
    ),
    (
        "model-factory-raises",
        plugin_model("bi_zero", "return 1 / 0"),
        ["validate", "{suite}", "--plugin", "{plugin}"],
        ["{suite}: models.vit: building the 'bi_zero' model failed: ZeroDivisionError: division by zero"],
    ),
    (
        "model-factory-exits",
        plugin_model("bi_exit", "sys.exit(3)"),
        ["validate", "{suite}", "--plugin", "{plugin}"],
        ["a --plugin module or a registered model) called sys.exit(3)"],
    ),
    (
        "model-factory-out-of-memory",
        plugin_model("bi_memory", "raise MemoryError()"),
        ["validate", "{suite}", "--plugin", "{plugin}"],
        ["out of memory (MemoryError); lower train.batch_size"],
    ),
    (
        "model-forward-raises",
        plugin_model("bi_forward", "m = Img()\nm.forward = lambda batch: {}['pooled']\nreturn m"),
        ["run", "{suite}", "--plugin", "{plugin}", "--out", "{out}"],
        ["{suite}: models.vit (bi_forward): forward(batch) raised KeyError: 'pooled'"],
    ),
    # A run that fails while training (out of memory, a non-finite loss) is not bad input: exit 1 with every
    # failed run listed (tests/test_runner.py).
    # -- score inputs --------------------------------------------------------------------------------------------------
    (
        "results-missing-key",
        lambda b: _vqa_results(b, lambda r: r[3].pop("answer")),
        ["score", "vqa", "--questions", "{q}", "--annotations", "{a}", "--results", "{results}"],
        ["{results}: [3]: missing key 'answer'"],
    ),
    (
        "npy-0-bytes",
        score_files,
        ["score", "classification", "--scores", "{empty}", "--labels", "{labels}"],
        ["{empty}: score matrix is empty (0 bytes)"],
    ),
    (
        "npy-wrong-shape",
        score_files,
        ["score", "retrieval", "--annotations", "{lavis}", "--scores", "{scores}"],
        ["{scores}: expected shape (images, texts) = (3, 6) from lavis.json", "got (6, 3)"],
    ),
    (
        "npy-header-bomb",
        score_files,
        ["score", "classification", "--scores", "{bomb}", "--labels", "{labels}"],
        [
            "{bomb}: score matrix is not a readable numeric .npy array (its header says shape (1000000, 1000000)",
            "8,000,000,000,000 bytes of float64, but the file holds 64 bytes of data: truncated or corrupt",
        ],
    ),
    (
        "npy-zero-rows",
        score_files,
        ["score", "classification", "--scores", "{zero}", "--labels", "{labels}"],
        ["{zero}: the score matrix has shape (0, 3)"],
    ),
    (
        "topk-zero",
        score_files,
        ["score", "classification", "--scores", "{scores}", "--labels", "{labels}", "--topk", "0"],
        ["argument --topk: must be a positive integer, got 0"],
    ),
    (
        "vqa-no-questions",
        vqa_no_questions,
        ["score", "vqa", "--questions", "{q}", "--annotations", "{a}", "--results", "{results}"],
        ["{q}: 'questions' is empty; there is nothing to score"],
    ),
    (
        "multilabel-no-positive",
        multilabel_no_labels,
        ["score", "multilabel", "--annotations", "{gt}", "--scores", "{scores}"],
        ["{gt}: no image has a label"],
    ),
    (
        "detection-no-categories",
        detection_no_categories,
        ["score", "detection", "--annotations", "{gt}", "--results", "{results}"],
        ["{gt}: 'categories' is empty"],
    ),
]


@pytest.mark.parametrize(("setup", "argv", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(world, tmp_path, monkeypatch, capsys, setup, argv, fragments) -> None:
    bench = Bench(tmp_path, monkeypatch, world)
    names = {"tmp": tmp_path, **setup(bench)}
    capsys.readouterr()
    try:
        code = main([a.format(**names) for a in argv])
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert lines and lines[-1].startswith("xmbench: error: "), err
    assert not any(line.startswith("xmbench:") for line in lines[:-1]), err  # progress lines only before it
    if argv[0] not in ("run", "plan", "report"):  # only these commands log progress
        assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert "\x1b" not in err and "\u202e" not in err, err
    for fragment in fragments:
        assert fragment.format(**names) in lines[-1], lines[-1]
    for check in bench.after:
        check()


def test_the_table_covers_every_command() -> None:
    commands = {c[2][0] for c in CASES}
    assert commands == {"run", "validate", "report", "list", "data", "score"}
    assert len({c[0] for c in CASES}) == len(CASES)


# ---------------------------------------------------------------------------------------------------------------------
# Valid but odd inputs: a sensible success, never a crash
# ---------------------------------------------------------------------------------------------------------------------


def test_a_decompression_bomb_is_skipped_and_counted_under_skip(world, tmp_path, monkeypatch) -> None:
    bench = Bench(tmp_path, monkeypatch, world)
    names = bomb_image(bench)
    suite = bench.suite("cls", tmp_path / "data", datasets__cls__on_bad_sample="skip")
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 0
    skipped = json.loads(next((tmp_path / "out" / "runs").rglob("skipped.json")).read_text())
    assert skipped["count"] == 1 and str(names["victim"]) in skipped["samples"][0]
    assert "exceeds limit" in skipped["samples"][0]


def test_hidden_files_in_an_image_folder_are_not_samples(world, tmp_path, monkeypatch) -> None:
    """macOS copies leave ``._x.jpg`` resource forks and ``.DS_Store`` files: never read as images."""
    bench = Bench(tmp_path, monkeypatch, world)
    data = bench.data()
    circle = data / "imagefolder" / "train" / "circle"
    (circle / "._COCO_train2014_000000000009.jpg").write_bytes(b"\0\5\x16\7 AppleDouble")
    (circle / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (circle / ".ipynb_checkpoints").mkdir()
    (circle / ".ipynb_checkpoints" / "x.jpg").write_bytes(b"not an image")
    assert main(["run", str(bench.suite("cls", data)), "--out", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize(
    "damage",
    [b"", b"\xff\xfe not utf-8", b"[PAD]\n[PAD]\n"],
    ids=["empty", "not-utf8", "duplicates"],
)
def test_a_damaged_tokenizer_cache_is_rebuilt(world, tmp_path, monkeypatch, damage) -> None:
    monkeypatch.setenv("XMBENCH_CACHE", str(tmp_path / "cache"))
    bench = Bench(tmp_path, monkeypatch, world)
    suite = bench.suite("vqa")
    assert main(["run", str(suite), "--out", str(tmp_path / "a")]) == 0
    (vocab,) = (tmp_path / "cache" / "tokenizers").glob("*/vocab.txt")
    good = vocab.read_bytes()
    vocab.write_bytes(damage)
    assert main(["run", str(suite), "--out", str(tmp_path / "b")]) == 0
    assert vocab.read_bytes() == good


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: "[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
        (lambda d: json.dumps({**d, "timings": {**d["timings"], "train_seconds": "slow"}}), "timings.train_seconds"),
        (lambda d: json.dumps({**d, "main_metric": 7}), "main_metric is an integer 7, not a string or null"),
        (lambda d: json.dumps({**d, "env": [1, 2]}), "env is a list [1, 2], not a mapping"),
        (lambda d: json.dumps({**d, "cost": {"params": "many"}}), "cost.params is a string"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "timings"}), None),
    ],
    ids=["deep", "timings-type", "main-metric-type", "env-type", "cost-type", "no-timings"],
)
def test_a_hand_edited_run_record_is_a_failed_run_in_the_report(world, tmp_path, monkeypatch, capsys, damage, reason):
    """A damaged metrics.json never crashes ``report`` or ``plan``: it is shown as a failed run, with the reason."""
    bench = Bench(tmp_path, monkeypatch, world)
    out = tmp_path / "out"
    shutil.copytree(world["out"], out)
    record = _run_folder(out) / "metrics.json"
    record.write_text(damage(json.loads(record.read_text())))
    suite = bench.suite()
    assert main(["report", str(suite), "--out", str(out)]) == 0
    assert main(["plan", str(suite), "--out", str(out), "--json"]) == 0
    state = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"][0]["state"]
    md = (out / "report.md").read_text()
    if reason is None:  # a record without timings is still a finished run
        assert state == "ok"
    else:
        assert state == "failed" and reason in md and "corrupt run record" in md


def test_ranges_that_are_odd_but_valid_run(world, tmp_path, monkeypatch) -> None:
    """A batch larger than the dataset, the shortest text length, one step: a sensible success."""
    bench = Bench(tmp_path, monkeypatch, world)
    suite = bench.suite(
        "vqa",
        train={"steps": 1, "batch_size": 100_000, "eval_batch_size": 10**9, "lr": 1e-3},
        text={"tokenizer": "wordpiece", "vocab_size": 6, "max_length": 4},
        datasets__unused={"kind": "coco", "path": str(tmp_path / "nowhere")},
        models__unused={"type": "timm", "image_encoder": TINY_VIT},
    )
    assert main(["run", str(suite), "--out", str(tmp_path / "out")]) == 0
