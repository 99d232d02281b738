"""harness.train.measure: training-step FLOPs against hand counts, leaving no trace, per-run peak RSS, and MFU.

FlopCounterMode counts matmuls (mm/addmm/bmm) and convolutions as 2 FLOPs per multiply-add; bias adds, sums,
softmax, norms and activations are not counted. Every expected number below is written out by hand.
"""

from __future__ import annotations

import random
import sys

import pytest
import torch
from torch import nn

from harness.results.record import Timings
from harness.train import measure
from harness.train.measure import (
    PEAK_TFLOPS,
    FlopCountError,
    mfu,
    peak_flops,
    peak_memory_mb,
    reset_peak_memory,
    rss_peak_scope,
    train_flops,
    train_flops_per_sample,
)

B = 3

# --------------------------------------------------------------------------------------------- linear layers


def test_linear_counts_forward_and_weight_gradient_only() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(8, 4).train()
    x = torch.randn(B, 8)  # data: does not require grad

    # forward  addmm(bias, x[3x8], Wᵀ[8x4])      2·B·in·out = 2·3·8·4 = 192
    # backward dW = dyᵀ[4x3] @ x[3x8]  (mm)      2·B·in·out            = 192
    #          db = dy.sum(0)                    not counted
    #          dx                                not computed: x needs no grad
    assert train_flops(lambda: layer(x).sum(), [layer]) == 192 + 192


def test_two_linear_layers_second_backward_also_computes_grad_input() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4)).train()
    x = torch.randn(B, 8)

    forward = 2 * 3 * 8 * 6 + 2 * 3 * 6 * 4  # 288 + 144 = 432
    backward = (
        2 * 3 * 6 * 4  # layer 2 dW2 = dyᵀ @ h                          144
        + 2 * 3 * 4 * 6  # layer 2 dh = dy @ W2 (h requires grad)        144
        + 2 * 3 * 8 * 6  # layer 1 dW1 = dhᵀ @ x; no dx                  288
    )  # 576
    assert train_flops(lambda: model(x).sum(), [model]) == forward + backward == 1008
    assert train_flops_per_sample(lambda: model(x).sum(), [model], batch_size=B) == 336  # 1008 / 3


# --------------------------------------------------------------------------------------------- attention layers

H, HEADS, INTER = 64, 2, 128


def bert_layer_hand_count(b: int, seq: int, h: int, inter: int) -> int:
    """One post-LN BERT layer (fed embeddings that need no grad), forward + backward."""
    forward = (
        4 * 2 * b * seq * h * h  # Q, K, V and output projections
        + 2 * b * seq * seq * h  # scores Q·Kᵀ, summed over heads (heads·L·L·d = L·L·H)
        + 2 * b * seq * seq * h  # probabilities · V
        + 2 * 2 * b * seq * h * inter  # FFN up and down
    )
    backward = (
        3 * 2 * b * seq * h * h  # Q, K, V: weight gradients only (their input is the raw input)
        + 2 * 2 * b * seq * h * h  # output projection: weight + input gradient
        + 2 * 2 * b * seq * seq * h  # scores: dQ and dK
        + 2 * 2 * b * seq * seq * h  # probabilities · V: dP and dV
        + 2 * 2 * 2 * b * seq * h * inter  # FFN: both layers' weight + input gradients (input is post-LayerNorm)
    )
    return forward + backward  # = 18·B·L·H² + 12·B·L²·H + 12·B·L·H·I


def _bert_layer(impl: str, dropout: float) -> nn.Module:
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    config = BertConfig(
        hidden_size=H,
        num_attention_heads=HEADS,
        intermediate_size=INTER,
        attention_probs_dropout_prob=dropout,
        hidden_dropout_prob=dropout,
        attn_implementation=impl,
    )
    assert config._attn_implementation == impl
    torch.manual_seed(0)
    return BertLayer(config).train()


def _loss(module: nn.Module, x: torch.Tensor):
    def loss_fn() -> torch.Tensor:
        out = module(x)
        return (out[0] if isinstance(out, tuple) else out).sum()

    return loss_fn


# sdpa with attention dropout 0 is the case FlopCounterMode alone gets wrong on CPU: the fused CPU kernel runs and
# counts 0 (with dropout > 0 torch falls back to the counted math path).
@pytest.mark.parametrize(("impl", "dropout"), [("eager", 0.1), ("sdpa", 0.0), ("sdpa", 0.1)])
def test_bert_layer_matches_hand_count_at_two_sequence_lengths(impl: str, dropout: float) -> None:
    layer = _bert_layer(impl, dropout)
    counts = {}
    for seq in (8, 16):
        x = torch.randn(B, seq, H)
        counts[seq] = train_flops(_loss(layer, x), [layer])
        assert counts[seq] == bert_layer_hand_count(B, seq, H, INTER), (impl, dropout, seq)
    assert counts[8] == 18 * 3 * 8 * 64 * 64 + 12 * 3 * 64 * 64 + 12 * 3 * 8 * 64 * 128 == 4_276_224
    # The L² (attention) term is there: doubling L doubles everything but it, which quadruples:
    # count(2L) - 2·count(L) = 12·B·H·((2L)² - 2·L²) = 24·B·H·L².
    assert counts[16] - 2 * counts[8] == 24 * 3 * 64 * 8 * 8 == 294_912


def test_timm_vit_block_with_fused_attention_matches_hand_count() -> None:
    from timm.models.vision_transformer import Block

    torch.manual_seed(0)
    block = Block(H, HEADS, mlp_ratio=2.0, qkv_bias=True).train()  # attn_drop=0: the fused kernel path
    assert block.attn.fused_attn
    seq = 8
    x = torch.randn(B, seq, H)
    forward = (
        2 * B * seq * H * 3 * H  # qkv
        + 2 * 2 * B * seq * seq * H  # Q·Kᵀ and P·V
        + 2 * B * seq * H * H  # proj
        + 2 * 2 * B * seq * H * (2 * H)  # MLP fc1, fc2 (hidden 2H)
    )
    # Pre-LN: qkv's input is norm1(x), which requires grad through LayerNorm's weight, so unlike BERT every matmul
    # computes both its weight and its input gradient: backward = 2 x forward.
    backward = 2 * forward
    assert train_flops(_loss(block, x), [block]) == forward + backward == 3 * 1_622_016


# --------------------------------------------------------------------------------------------- no trace


def _bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))


def test_train_flops_leaves_no_trace() -> None:
    model = _bn_model().train()
    x = torch.randn(B, 3, 6, 6)

    def loss_fn() -> torch.Tensor:  # consumes torch's RNG (dropout, multinomial) and Python's
        random.random()
        idx = torch.multinomial(torch.ones(4), 2)
        return model(x)[:, idx.remainder(2)].sum()

    bn = model[1]
    # Sanity: a plain step does change the RNG and the BatchNorm statistics.
    rng = torch.get_rng_state()
    stats = [bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()]
    loss_fn().backward()
    assert not torch.equal(torch.get_rng_state(), rng)
    assert not torch.equal(bn.running_mean, stats[0]) and int(bn.num_batches_tracked) == int(stats[2]) + 1
    model.zero_grad(set_to_none=True)

    torch.manual_seed(1)
    random.seed(1)
    rng, py_rng = torch.get_rng_state(), random.getstate()
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    buffer_ids = {name: id(b) for name, b in model.named_buffers()}
    flops = train_flops(loss_fn, [model])
    assert flops > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert random.getstate() == py_rng
    for name, b in model.named_buffers():
        assert id(b) == buffer_ids[name]
        assert b.dtype == buffers[name].dtype and torch.equal(b, buffers[name]), name
    assert all(p.grad is None for p in model.parameters())
    assert model.training and bn.training  # modes untouched

    # Existing gradients are neither read nor accumulated into: the very same tensors, same values.
    grads = {name: torch.full_like(p, 0.5) for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        p.grad = grads[name]
    assert train_flops(loss_fn, [model]) == flops
    for name, p in model.named_parameters():
        assert p.grad is grads[name] and torch.equal(p.grad, torch.full_like(p, 0.5))


def test_eval_mode_is_kept_and_counted_the_same() -> None:
    model = _bn_model().eval()
    x = torch.randn(B, 3, 6, 6)
    # conv: output 4x4 per sample, 4 out channels, 3·3·3 = 27 MACs each: forward 2·B·16·4·27 = 10368; backward
    # weight gradient the same (no grad input: x is data). Linear 64→2: forward 2·3·64·2 = 768, backward dW 768 and
    # dX 768 (its input requires grad).
    assert train_flops(lambda: model(x).sum(), [model]) == 2 * 10368 + 3 * 768
    assert not model.training


# --------------------------------------------------------------------------------------------- errors


def test_errors_raise_flop_count_error_and_still_restore_state() -> None:
    model = _bn_model().train()
    x = torch.randn(B, 3, 6, 6)

    def failing() -> torch.Tensor:
        model(x)  # updates BatchNorm stats and consumes RNG before failing
        raise ValueError("boom")

    rng = torch.get_rng_state()
    mean = model[1].running_mean.clone()
    with pytest.raises(FlopCountError, match=r"^ValueError: boom$") as info:
        train_flops(failing, [model])
    assert isinstance(info.value.__cause__, ValueError)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(model[1].running_mean, mean)
    assert all(p.grad is None for p in model.parameters())


def test_loss_without_grad_raises() -> None:
    layer = nn.Linear(8, 4).requires_grad_(False)
    x = torch.randn(B, 8)
    with pytest.raises(FlopCountError, match=r"^RuntimeError: element 0 of tensors does not require grad"):
        train_flops(lambda: layer(x).sum(), [layer])


def test_nothing_counted_raises() -> None:
    w = nn.Parameter(torch.ones(5))
    holder = nn.Module()
    holder.w = w
    with pytest.raises(FlopCountError, match="counted no FLOPs"):
        train_flops(lambda: (w * 2).sum(), [holder])
    assert w.grad is None


def test_per_sample_needs_positive_batch_size() -> None:
    layer = nn.Linear(8, 4)
    with pytest.raises(ValueError, match="batch_size"):
        train_flops_per_sample(lambda: layer(torch.randn(2, 8)).sum(), [layer], batch_size=0)


# --------------------------------------------------------------------------------------------- peak FLOP/s, MFU


def test_peak_flops_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "_tf32_matmuls", lambda: False)
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4e12, rel=1e-12)
    assert peak_flops("NVIDIA H100 80GB HBM3", "fp32") == pytest.approx(67e12, rel=1e-12)
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == pytest.approx(756e12, rel=1e-12)
    assert peak_flops("NVIDIA H200", "fp16") == pytest.approx(989.4e12, rel=1e-12)
    assert peak_flops("NVIDIA A100-SXM4-80GB", "bf16") == pytest.approx(312e12, rel=1e-12)  # not "A10"
    assert peak_flops("NVIDIA A10", "bf16") == pytest.approx(125e12, rel=1e-12)
    assert peak_flops("NVIDIA L40S", "bf16") == pytest.approx(362.05e12, rel=1e-12)  # not "L40"/"L4"
    assert peak_flops("NVIDIA L4", "fp16") == pytest.approx(121e12, rel=1e-12)
    assert peak_flops("Tesla V100-SXM2-16GB", "fp16") == pytest.approx(125e12, rel=1e-12)
    assert peak_flops("Tesla V100-SXM2-16GB", "bf16") is None  # no bf16 on Volta
    assert peak_flops("Tesla T4", "fp32") == pytest.approx(8.1e12, rel=1e-12)
    assert peak_flops("NVIDIA A10G", "bf16") is None  # known, no vendor number: not the A10's
    assert peak_flops("Intel(R) Xeon(R) CPU", "fp32") is None
    assert peak_flops(None, "fp32") is None
    assert all(set(row) <= {"fp32", "tf32", "bf16", "fp16"} for row in PEAK_TFLOPS.values())


def test_peak_flops_fp32_uses_tf32_only_when_torch_allows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "_tf32_matmuls", lambda: True)
    assert peak_flops("NVIDIA H100 80GB HBM3", "fp32") == pytest.approx(494.7e12, rel=1e-12)
    assert peak_flops("Tesla V100-SXM2-16GB", "fp32") == pytest.approx(15.7e12, rel=1e-12)  # no TF32 on Volta
    monkeypatch.setattr(measure, "_tf32_matmuls", lambda: False)
    assert peak_flops("NVIDIA A100-SXM4-40GB", "fp32") == pytest.approx(19.5e12, rel=1e-12)


def test_peak_flops_override_and_bad_precision() -> None:
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16", override_tflops=100.0) == 100e12
    assert peak_flops(None, "fp32", override_tflops=2.5) == 2.5e12
    with pytest.raises(ValueError, match="precision"):
        peak_flops("NVIDIA H100 80GB HBM3", "int8")
    with pytest.raises(ValueError, match="override_tflops"):
        peak_flops("NVIDIA H100 80GB HBM3", "bf16", override_tflops=0.0)


def test_mfu_arithmetic() -> None:
    # 6 GFLOP per sample at 1000 samples/s = 6 TFLOP/s of a 60 TFLOP/s peak = 10%
    assert mfu(6e9, 1000.0, 60e12) == pytest.approx(0.1)
    assert mfu(6e9, 20_000.0, 60e12) == pytest.approx(2.0)  # not capped: a too-low peak shows up
    assert mfu(None, 1000.0, 60e12) is None
    assert mfu(6e9, None, 60e12) is None
    assert mfu(6e9, 1000.0, None) is None
    assert mfu(6e9, 0.0, 60e12) is None
    assert mfu(-1.0, 1000.0, 60e12) is None
    assert mfu(float("nan"), 1000.0, 60e12) is None


# --------------------------------------------------------------------------------------------- peak memory


def test_peak_memory_keys_still_build_timings() -> None:
    cpu = torch.device("cpu")
    reset_peak_memory(cpu)
    reading = peak_memory_mb(cpu)
    assert set(reading) == {"process_peak_rss_mb"}
    assert Timings(**reading).process_peak_rss_mb == reading["process_peak_rss_mb"] > 0
    assert rss_peak_scope() in ("since_reset", "process")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM / clear_refs are Linux")
def test_peak_rss_since_reset() -> None:
    cpu = torch.device("cpu")
    reset_peak_memory(cpu)
    if rss_peak_scope() != "since_reset":
        pytest.skip("the kernel refused to reset the peak RSS (/proc/self/clear_refs)")
    baseline = peak_memory_mb(cpu)["process_peak_rss_mb"]
    big = torch.ones(200 * 2**20 // 4)  # 200 MiB, every page written
    peak = peak_memory_mb(cpu)["process_peak_rss_mb"]
    del big
    assert peak - baseline >= 190, (baseline, peak)
    # The next reset forgets that peak: the window starts again from the current (smaller) RSS.
    reset_peak_memory(cpu)
    assert peak_memory_mb(cpu)["process_peak_rss_mb"] < peak - 150
