"""Train and forward FLOPs per sample of every (task, model) pairing of the claims suites' real profiles, and the
H100 GPU-hours they imply.

``.venv/bin/python benchmarks/claims_cost.py [--out FILE.json] [--suites 000,002] [--keep DIR]``

For each of ``suites/claims/000.yaml`` ... ``004.yaml`` the real (default) profile is run with ``xmbench run`` and
``--set`` overrides for only what cannot be had offline or is not needed to count FLOPs:

* every ``image_encoder.pretrained`` -> false (random init: FLOPs do not depend on weights);
* every ``text_encoder`` named ``bert-base-uncased`` -> the same BERT-base architecture built from a ``BertConfig``
  (hidden 768, 12 layers, 12 heads, intermediate 3072), keeping its dropout;
* ``text.tokenizer`` -> ``wordpiece`` with ``vocab_size: 30522`` (the text is padded to the suite's real
  ``max_length``, so the sequence length, hence the FLOPs, is the real one; the synthetic captions give a smaller
  vocabulary, so the word-embedding table is smaller: ``params_vocab30522`` adds the missing rows back);
* every dataset -> ``@synthetic`` (40 images at the suite's ``image.size``);
* hardware -> CPU fp32, one seed, ``train: {steps: 1, validation: false, grad_accum: 1}`` and a small micro-batch.

The micro-batch is 2, except in suites whose retrieval tasks train fusion models (001, 003): there it is 6, so that
the first training batch (the one ``harness/execute.py::_count_flops`` counts: the first ``batch_size`` train
examples, in order) spans two images. A retrieval example is one caption and the synthetic images have five
captions each, so a batch of 2 holds two captions of one image: no in-batch negative, no ITM loss
(``RetrievalTask._itm_loss`` returns 0) and the fusion's FLOPs would not be counted. With 6, every row has a
negative and the ITM term fuses 3 pairs per sample, as at the real batch of 64. Everything else the count sees
(matmuls, convolutions, attention) is linear in the batch, up to the B x B ITC similarities (negligible).

The FLOPs are the harness's own (``harness/train/measure.py``: ``torch.utils.flop_counter`` on one real
micro-batch, forward + backward in train mode; forward on one eval example), read back from each run's
``runs/<task>/<model>/seed0-*/metrics.json`` (``cost``).

GPU-hours per seed = ``train_flops_per_sample x samples_per_epoch x epochs / (989e12 x MFU)`` with the dense
bf16/fp16 peak of an H100 SXM (989 TFLOP/s) and an assumed MFU of 0.35; ``samples_per_epoch`` is in ``SAMPLES``
below, with where it comes from. Zero-shot trains nothing: its row is the forward cost of scoring 10,000 images.
Detection rows also get the FLOPs with COCO's 80 classes (the synthetic data has 5): the only layer whose size
depends on the class count is FCOS's ``cls_logits`` 3x3 conv, ``2 x 9 x fpn_channels x classes`` FLOPs per pyramid
location forward, 3x that for training (forward, input gradient, weight gradient).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("000", "001", "002", "003", "004")

BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
BERT_VOCAB = 30522
H100_PEAK = 989e12  # dense bf16/fp16 tensor-core FLOP/s of an H100 SXM (harness/train/measure.py PEAK_TFLOPS)
MFU = 0.35  # an assumption
SYNTHETIC_IMAGES = 40
COCO_CLASSES = 80
PER_10K = 10_000

# micro-batch of the counted step per suite (see the module docstring: retrieval with fusion needs 2 images)
BATCH = {"001": 6, "003": 6}
BATCH_DEFAULT = 2

# (dataset kind, task type) -> (training samples per epoch, why)
SAMPLES: dict[tuple[str, str], tuple[int, str]] = {
    ("coco", "retrieval"): (
        566_747,
        "COCO Karpathy train + restval (113,287 images, 566,747 captions); one retrieval example is one caption "
        "(harness/tasks/retrieval.py RetrievalTask.prepare: Examples over rec.texts; restval folded in by "
        "harness/data/kinds.py _CaptionKind.load_retrieval, fold_restval: true)",
    ),
    ("flickr30k", "retrieval"): (
        145_000,
        "Flickr30k Karpathy train (29,000 images x 5 captions); one example per caption, as for COCO",
    ),
    ("coco", "detection"): (
        74_505,
        "COCO train2014 (82,783 images) minus the held-out 10% val split (round(0.1 x 82,783) = 8,278 images): "
        "harness/data/kinds.py CocoKind.splits (train{year}, None, val{year}) and DatasetKind.heldout_fraction",
    ),
    ("coco", "multilabel"): (
        74_505,
        "COCO train2014 (82,783 images) minus the held-out 10% val split, as for detection",
    ),
    ("vqa2", "vqa"): (
        399_381,
        "VQA v2 train2014 (443,757 questions) minus the questions of the held-out 10% of its images (~0.9 x; "
        "harness/data/kinds.py Vqa2Kind.splits and DatasetKind.heldout_fraction): approximate",
    ),
    ("imagefolder", "classification"): (PER_10K, "per 10,000 training images (the folder's size is not known)"),
}


def _yaml(value: Any) -> str:
    """A ``--set`` value: JSON is YAML flow syntax."""
    return json.dumps(value)


def overrides(path: Path, batch_size: int) -> list[str]:
    """The ``--set`` items that make the real profile of ``path`` runnable offline on CPU in one step."""
    from harness.suite.loader import read_yaml

    data = read_yaml(path)
    sets = []
    for name, model in data.get("models", {}).items():
        if isinstance(model.get("image_encoder"), dict):
            sets.append(f"models.{name}.image_encoder.pretrained=false")
        text = model.get("text_encoder")
        if isinstance(text, dict) and text.get("name") == "bert-base-uncased":
            spec: dict[str, Any] = {"name": None, "pretrained": False, "config": BERT_BASE}
            if "dropout" in text:
                spec["dropout"] = text["dropout"]
            if "pooling" in text:
                spec["pooling"] = text["pooling"]
            sets.append(f"models.{name}.text_encoder={_yaml(spec)}")
    for name in data.get("datasets", {}):
        sets.append(f"datasets.{name}.path={_yaml('@synthetic')}")
    size = data.get("image", {}).get("size", 224)
    sets += [
        "text.tokenizer=wordpiece",
        f"text.vocab_size={BERT_VOCAB}",
        f"synthetic={_yaml({'images': SYNTHETIC_IMAGES, 'seed': 0, 'size': size})}",
        f"hardware={_yaml({'device': 'cpu', 'precision': 'fp32', 'workers': 0, 'deterministic': True, 'threads': 2})}",
        "seeds=[0]",
        "train.epochs=null",
        "train.steps=1",
        f"train.batch_size={batch_size}",
        "train.grad_accum=1",
        "train.validation=false",
    ]
    return sets


def run_suite(name: str, work: Path) -> dict[str, Any]:
    """Run one suite's real profile with the overrides; return its wall time, log and the run folder."""
    path = ROOT / "suites" / "claims" / f"{name}.yaml"
    out, cache = work / name / "out", work / name / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "harness", "run", str(path), "--out", str(out)]
    for item in overrides(path, BATCH.get(name, BATCH_DEFAULT)):
        argv += ["--set", item]
    env = {**os.environ, "XMBENCH_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (work / name / "log.txt").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    return {"seconds": seconds, "rc": done.returncode, "out": out, "cache": cache, "stderr": done.stderr[-2000:]}


def vocab_size(cache: Path) -> int | None:
    """Tokens of the suite's wordpiece vocabulary (one per suite, under its own cache)."""
    files = sorted(cache.rglob("vocab.txt"))
    if len(files) != 1:
        return None
    return sum(1 for line in files[0].read_text(encoding="utf-8").splitlines() if line.strip())


def _pyramid_locations(image_size: int, strides: list[int]) -> int:
    return sum(math.ceil(image_size / s) ** 2 for s in strides)


def rows_of(name: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (task, model) pairing of the suite: the measured cost, the 80-class and vocabulary
    adjustments and the GPU-hour estimate."""
    from harness.suite.loader import load_suite

    suite = load_suite(ROOT / "suites" / "claims" / f"{name}.yaml")  # the real profile, as written
    vocab = vocab_size(result["cache"])
    rows = []
    records = {}
    for f in sorted(result["out"].glob("runs/*/*/seed0-*/metrics.json")):
        rec = json.loads(f.read_text())
        records[(rec["task"], rec["model"])] = (rec, f.parent)
    for task_name, task in suite.tasks.items():
        for model in task.models:
            row: dict[str, Any] = {"suite": f"claims-{name}", "task": task_name, "model": model, "type": task.type}
            row["dataset"] = suite.datasets[task.dataset].kind
            row["epochs"] = None if task.type == "zero_shot" else suite.train.epochs
            row["seeds"] = len(suite.seeds)
            rows.append(row)
            found = records.get((task_name, model))
            if found is None:
                row["status"] = "missing"
                row["error"] = "no metrics.json (see the suite's log)"
                continue
            rec, folder = found
            cost = rec["cost"]
            row["status"] = rec["status"]
            row["error"] = rec.get("error") or cost.get("flops_error")
            row["params"] = cost["params"]
            has_text = "text_encoder" in suite.models[model].params
            row["params_vocab30522"] = (
                cost["params"] + (BERT_VOCAB - vocab) * BERT_BASE["hidden_size"] if has_text and vocab else None
            )
            row["vocab_measured"] = vocab if has_text else None
            row["forward_flops_per_sample"] = cost.get("forward_flops_per_sample")
            row["train_flops_per_sample"] = cost.get("train_flops_per_sample")
            row["train_wall_s"] = rec["timings"].get("train_seconds")
            if task.type == "detection":
                _coco_classes(row, rec, folder, task, suite.image.size)
            _gpu_hours(row)
    return rows


def _coco_classes(row: dict[str, Any], rec: dict[str, Any], folder: Path, task: Any, size: int) -> None:
    label_map = folder / "label_map.json"
    strides = rec.get("notes", {}).get("strides")
    if not label_map.is_file() or not strides or row["forward_flops_per_sample"] is None:
        return
    classes = len(json.loads(label_map.read_text())["classes"])
    locations = _pyramid_locations(size, strides)
    extra = 2 * 9 * task.fpn_channels * (COCO_CLASSES - classes) * locations
    row["detection_adjust"] = {"synthetic_classes": classes, "locations": locations, "strides": strides}
    row["forward_flops_80cls"] = row["forward_flops_per_sample"] + extra
    if row["train_flops_per_sample"] is not None:
        row["train_flops_80cls"] = row["train_flops_per_sample"] + 3 * extra


def _gpu_hours(row: dict[str, Any]) -> None:
    rate = H100_PEAK * MFU
    if row["type"] == "zero_shot":
        if row["forward_flops_per_sample"]:
            row["samples_per_epoch"] = PER_10K
            row["samples_note"] = "no training: forward (image tower) of 10,000 test images; text prompts not counted"
            row["gpu_hours_per_seed"] = row["forward_flops_per_sample"] * PER_10K / rate / 3600
        return
    n, why = SAMPLES[(row["dataset"], row["type"])]
    row["samples_per_epoch"], row["samples_note"] = n, why
    flops = row.get("train_flops_80cls") or row.get("train_flops_per_sample")
    if flops:
        row["gpu_hours_per_seed"] = flops * n * row["epochs"] / rate / 3600


def _g(value: Any, scale: float, digits: int) -> str:
    return "—" if value is None else f"{value / scale:,.{digits}f}"


def _h(hours: float | None) -> str:
    return "—" if hours is None else f"{hours:.3g}"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| suite | task | model | params (M) | params @30522 vocab (M) | forward GFLOPs/sample | train GFLOPs/sample "
        "| status |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        train = _g(r.get("train_flops_per_sample"), 1e9, 2)
        fwd = _g(r.get("forward_flops_per_sample"), 1e9, 2)
        if "train_flops_80cls" in r:
            train += f" ({_g(r['train_flops_80cls'], 1e9, 2)} at 80 cls)"
            fwd += f" ({_g(r['forward_flops_80cls'], 1e9, 2)} at 80 cls)"
        lines.append(
            f"| {r['suite']} | {r['task']} | {r['model']} | {_g(r.get('params'), 1e6, 1)} "
            f"| {_g(r.get('params_vocab30522'), 1e6, 1)} | {fwd} | {train} | {r.get('status')} |"
        )
    lines += [
        "",
        f"H100 GPU-hours = train FLOPs/sample x samples/epoch x epochs / ({H100_PEAK / 1e12:.0f} TFLOP/s x MFU "
        f"{MFU}); training only (no per-epoch val or test evaluation)",
        "",
        "| suite | task | model | samples/epoch | epochs | GPU-h per seed | GPU-h all seeds |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        h = r.get("gpu_hours_per_seed")
        all_seeds = None if h is None else h * r["seeds"]
        lines.append(
            f"| {r['suite']} | {r['task']} | {r['model']} | {r.get('samples_per_epoch') or '—':,} "
            f"| {r['epochs'] or '—'} | {_h(h)} | {_h(all_seeds)} ({r['seeds']}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--suites", default=",".join(SUITES), help="comma-separated suite numbers (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders and logs here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.suites.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown suites {unknown}; known: {', '.join(SUITES)}")
    rows, walls = [], {}
    with tempfile.TemporaryDirectory(prefix="claims-cost-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in names:
            result = run_suite(name, work)
            walls[f"claims-{name}"] = round(result["seconds"], 1)
            print(f"claims-{name}: {result['seconds']:.0f}s (exit {result['rc']})", file=sys.stderr, flush=True)
            if result["rc"] != 0:
                print(result["stderr"], file=sys.stderr)
            rows += rows_of(name, result)
    print(markdown(rows))
    print("\nwall time per suite (s): " + ", ".join(f"{k} {v}" for k, v in walls.items()))
    if args.out:
        doc = {
            "assumptions": {
                "peak_flops": H100_PEAK,
                "mfu": MFU,
                "micro_batch": {n: BATCH.get(n, BATCH_DEFAULT) for n in names},
            },
            "samples_per_epoch": {f"{k[0]}/{k[1]}": {"samples": v[0], "why": v[1]} for k, v in SAMPLES.items()},
            "wall_seconds": walls,
            "rows": rows,
        }
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
