"""Fused AdamW against torch's default (foreach) AdamW on CPU: one optimiser step and one whole training step of the
smoke suite's cross-modal BERT (image 32 px, ViT 64 wide, BERT 64 wide, batch 64), alternating, one session.

Run: ``.venv/bin/python -m pytest benchmarks/test_optimizer_step.py --benchmark-only -q -s``

Times are recorded, not asserted. One step from the same state gives the same parameters to float rounding (checked);
over many steps the two drift apart like any two float orders of summation would.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from harness.models import BuildContext, get_family

VIT = {
    "name": "vit_tiny_patch16_224",
    "args": {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0},
}
BERT = {"config": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}}


def _model(seed: int = 0):
    family = get_family("xbert")
    cfg = family.config.model_validate({"fusion": "cross_attention", "image_encoder": VIT, "text_encoder": BERT})
    torch.manual_seed(seed)
    model = family.build(cfg, BuildContext(image_size=32, max_text_len=16, vocab_size=120))
    head = torch.nn.Linear(model.feature_dim, 20)
    return model, head


def _batch():
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(64, 3, 32, 32, generator=g),
        "input_ids": torch.randint(5, 120, (64, 16), generator=g),
        "attention_mask": torch.ones(64, 16, dtype=torch.long),
        "targets": torch.randint(0, 20, (64,), generator=g),
    }


def _step_fn(fused: bool):
    model, head = _model()
    model.eval()  # no dropout: both sides see the same gradients
    params = [*model.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=fused, foreach=None if fused else True)
    batch = _batch()

    def whole() -> float:
        loss = torch.nn.functional.cross_entropy(head(model(batch)["pooled"]), batch["targets"])
        loss.backward()
        start = time.perf_counter()
        opt.step()
        opt_s = time.perf_counter() - start
        opt.zero_grad(set_to_none=False)
        return opt_s

    return whole, params


def test_fused_adamw_matches_and_is_not_slower(benchmark) -> None:
    if not benchmark.enabled:
        pytest.skip("a measurement: run with --benchmark-only")
    torch.set_num_threads(2)
    steps = {True: _step_fn(True), False: _step_fn(False)}
    for fn, _p in steps.values():  # one step each from the same initial state
        fn()
    diff = max((a - b).abs().max().item() for a, b in zip(steps[True][1], steps[False][1], strict=True))
    for _ in range(2):  # warm up both
        for fn, _p in steps.values():
            fn()
    opt_times: dict[bool, list[float]] = {True: [], False: []}
    whole_times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(40):
        for fused, (fn, _p) in steps.items():
            start = time.perf_counter()
            opt_times[fused].append(fn())
            whole_times[fused].append(time.perf_counter() - start)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    med = {k: statistics.median(v) for k, v in opt_times.items()}
    whole = {k: statistics.median(v) for k, v in whole_times.items()}
    pairs = sorted(a / b for a, b in zip(whole_times[True], whole_times[False], strict=True))
    benchmark.extra_info.update(
        optimizer_step_ms={"fused": round(med[True] * 1e3, 2), "foreach": round(med[False] * 1e3, 2)},
        train_step_ms={"fused": round(whole[True] * 1e3, 1), "foreach": round(whole[False] * 1e3, 1)},
        max_param_difference_after_one_step=diff,
    )
    print(
        f"\nAdamW step: fused {med[True] * 1e3:.2f} ms, foreach {med[False] * 1e3:.2f} ms; whole training step: fused "
        f"{whole[True] * 1e3:.1f} ms, foreach {whole[False] * 1e3:.1f} ms, fused/foreach "
        f"{statistics.median(pairs):.3f} [{pairs[len(pairs) // 10]:.3f}-{pairs[-len(pairs) // 10 - 1]:.3f}] "
        f"(10th-90th percentile); max parameter difference after one step {diff:.2e}"
    )
    assert diff < 1e-6
