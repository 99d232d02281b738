"""A minimal hand-written PyTorch training script: the reference ``benchmarks/test_runner_overhead.py`` times
``xmbench run`` against, whole process.

``python benchmarks/hand_loop.py SUITE.yaml OUT_DIR`` does the job of ``xmbench run SUITE.yaml --out OUT_DIR`` for a
suite of one classification task, one timm model and one seed, with val evaluation and checkpoints off, the way a
user would write it by hand: seed, ``timm.create_model`` with the suite's arguments and a linear head, fused AdamW
(no weight decay on 1-d parameters and on timm's ``no_weight_decay()`` names) with linear warmup and cosine decay, a
seeded permutation of the train split per epoch, cross-entropy, gradient clipping; then top-1 on the test split,
written to ``OUT_DIR/result.json`` with the phase times.

The data comes from ``harness.runner.prepare`` (the suite's datasets, already decoded into xmbench's image cache
under ``$XMBENCH_CACHE``), so that both sides read the same uint8 tensors and neither decodes images: what the
benchmark compares is everything else, i.e. the runner's training, evaluation and reporting against this script.
``prepare`` also checks and plans the suite and records the run environment as ``xmbench run`` does (the latter
imports transformers for its version string and asks git for the commit), so those costs are on both sides.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warmup over ``warmup`` steps, then cosine decay to 0 (the runner's ``schedule: cosine``)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def main(suite_path: Path, out: Path) -> dict:
    from rich.console import Console

    from harness.runner import prepare
    from harness.suite.loader import load_suite

    start = time.perf_counter()
    suite = load_suite(suite_path)
    ctx, plan = prepare(suite, suite_path, Path("."), Console(stderr=True, quiet=True))
    (spec,) = plan.runs
    train, data = spec.train, ctx.data[spec.task]
    enc = suite.models[spec.model].params["image_encoder"]  # the YAML mapping: name, args
    prepared = time.perf_counter()

    random.seed(spec.seed)
    np.random.seed(spec.seed)
    torch.manual_seed(spec.seed)
    model = timm.create_model(
        enc["name"], pretrained=False, num_classes=0, img_size=suite.image.size, **enc.get("args", {})
    )
    head = torch.nn.Linear(model.num_features, len(data.info["classes"]))
    skip = model.no_weight_decay()
    decay, no_decay = [], []
    for name, p in [*model.named_parameters(), *(("head." + n, p) for n, p in head.named_parameters())]:
        (decay if p.ndim >= 2 and name not in skip else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=train.lr, betas=train.betas, eps=train.eps, fused=True)
    total = train.steps
    warmup = min(round(train.warmup_ratio * total), total - 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup))
    params = decay + no_decay
    mean = torch.tensor(suite.image.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(suite.image.std).view(1, 3, 1, 1) * 255.0

    ex = data.train
    gen = torch.Generator().manual_seed(spec.seed)
    perm, cursor = torch.randperm(len(ex), generator=gen), 0
    model.train()
    head.train()
    for _ in range(total):
        if cursor >= len(ex):
            perm, cursor = torch.randperm(len(ex), generator=gen), 0
        idx = perm[cursor : cursor + train.batch_size]
        cursor += len(idx)
        x = (ex.images.index_select(0, idx).float() - mean) / std
        loss = F.cross_entropy(head(model(x)), ex.targets[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        final_loss = loss.item()
    trained = time.perf_counter()

    model.eval()
    head.eval()
    test, correct, bs = data.test, 0, train.eval_batch_size or 2 * train.batch_size
    with torch.no_grad():
        for lo in range(0, len(test), bs):
            idx = torch.arange(lo, min(len(test), lo + bs))
            x = (test.images.index_select(0, idx).float() - mean) / std
            correct += int((head(model(x)).argmax(1) == test.targets[idx]).sum())
    tested = time.perf_counter()

    result = {
        "top1": 100.0 * correct / len(test),
        "final_loss": final_loss,
        "prepare_s": round(prepared - start, 3),
        "train_s": round(trained - prepared, 3),
        "test_s": round(tested - trained, 3),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/hand_loop.py SUITE.yaml OUT_DIR")
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
