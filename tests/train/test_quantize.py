"""Quantised evaluation (``models.<name>.quantize: dynamic_int8``, harness/train/quantize.py): the record of a real
run, the sizes against hand counts, which layers are quantised, the validate-time refusals, and the matched-seed
paired bootstrap of the INT8 copy against its fp32 model."""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from harness.cli import main
from harness.stats.evidence import EVIDENCE, Evidence, classification_evidence
from harness.stats.paired import compare
from harness.suite.check import check_quantize
from harness.suite.loader import load_suite
from harness.train import quantize as q
from tests.conftest import run_suite_dict

VIT = {
    "name": "vit_tiny_patch16_224",
    "args": {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0},
}
SUITE = {
    "name": "quant",
    "seeds": [0, 1],
    "hardware": {"device": "cpu", "precision": "fp32", "threads": 2},
    "train": {"steps": 3, "batch_size": 16, "lr": 1e-3},
    "image": {"size": 32},
    "synthetic": {"images": 60, "seed": 0, "size": 32},
    "datasets": {"shapes": {"kind": "imagefolder", "path": "@synthetic"}},
    "models": {"vit": {"type": "timm", "image_encoder": VIT, "quantize": "dynamic_int8"}},
    "tasks": {"cls": {"type": "classification", "dataset": "shapes", "models": ["vit"]}},
}


def _quiet_quantize(module: nn.Module) -> nn.Module:
    """``quantize_dynamic`` as evaluate_int8 applies it, without its deprecation warnings."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8)


def _write(tmp_path: Path, suite: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("xmbench: error: ")
    return lines[0].removeprefix("xmbench: error: ")


# -- 1. a real run, end to end ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quant_runs(tmp_path_factory: pytest.TempPathFactory, xm_cache: Path) -> list[tuple[Path, dict]]:
    """The suite run once: [(run folder, metrics.json record)] per seed."""
    out = run_suite_dict(SUITE, tmp_path_factory.mktemp("quant"), xm_cache)
    folders = sorted((out / "runs" / "cls" / "vit").glob("seed*"))
    assert [f.name.split("-")[0] for f in folders] == ["seed0", "seed1"]
    return [(f, json.loads((f / "metrics.json").read_text())) for f in folders]


def test_run_records_the_int8_sizes_and_metrics(quant_runs) -> None:
    for _, rec in quant_runs:
        assert rec["status"] == "ok"
        qr = rec["quantized"]
        assert "error" not in qr, qr.get("error")
        assert (qr["method"], qr["engine"], qr["device"]) == ("dynamic_int8", torch.backends.quantized.engine, "cpu")
        assert qr["reference"] == "the run's own test evaluation (cpu, fp32)"
        assert qr["disk_ratio"] < 0.6 and qr["memory_ratio"] < 0.6
        assert qr["disk_ratio"] == round(qr["disk_bytes"]["int8"] / qr["disk_bytes"]["fp32"], 6)
        assert qr["memory_ratio"] == round(qr["memory_bytes"]["int8"] / qr["memory_bytes"]["fp32"], 6)
        # 2 blocks x (qkv, proj, fc1, fc2) + the classification head, every one of exact type nn.Linear
        assert qr["linear_layers_quantized"] == qr["linear_layers"] == 9
        assert qr["params"] == rec["cost"]["params"]
        assert 0 < qr["linear_weight_params"] < qr["linear_params"] < qr["params"]
        assert qr["linear_fraction"] == round(qr["linear_params"] / qr["params"], 6)
        for metrics in (qr["metrics"], qr["metrics_fp32"]):
            assert 0 <= metrics["top1"] <= 100
        assert qr["metrics_fp32"] == rec["metrics"]  # the reference is the run's own cpu fp32 test evaluation
        assert qr["evidence"] == {"fp32": EVIDENCE, "int8": q.EVIDENCE_INT8}
        assert any("deprecated" in w for w in qr["warnings"])  # recorded, not printed


def test_run_memory_bytes_match_a_hand_count(quant_runs) -> None:
    """The ViT has no buffers and fp32 parameters only: fp32 = 4 bytes per parameter; INT8 = 4 bytes per parameter
    outside the Linear layers, 1 per Linear weight, 16 per Linear (scale, zero point), 4 per Linear bias. The head
    (a bare nn.Linear, which the swap replaces rather than changes in place) counts as quantised."""
    for _, rec in quant_runs:
        qr = rec["quantized"]
        biases = qr["linear_params"] - qr["linear_weight_params"]
        expected_int8 = (
            4 * (qr["params"] - qr["linear_params"])
            + qr["linear_weight_params"]
            + 16 * qr["linear_layers_quantized"]
            + 4 * biases
        )
        assert qr["memory_bytes"] == {"fp32": 4 * qr["params"], "int8": expected_int8}


def test_run_writes_int8_evidence_beside_the_fp32_evidence(quant_runs) -> None:
    for folder, rec in quant_runs:
        fp32 = Evidence.load(folder / EVIDENCE)
        int8 = Evidence.load(folder / q.EVIDENCE_INT8)
        assert int8.task_type == fp32.task_type == "classification"
        n = rec["data"]["eval_examples"]
        assert len(int8.arrays["example_id"]) == len(fp32.arrays["example_id"]) == n > 0
        assert int8.same_examples(fp32)
        assert int8.recompute() == pytest.approx(rec["quantized"]["metrics"], abs=1e-9)
        assert fp32.recompute() == pytest.approx(rec["quantized"]["metrics_fp32"], abs=1e-9)
        assert not (folder / q.EVIDENCE_FP32_CPU).exists()  # the run's own evidence is the reference


def test_run_latency_at_batch_1_and_32(quant_runs) -> None:
    for _, rec in quant_runs:
        qr = rec["quantized"]
        lat = qr["latency_ms"]
        assert set(lat) == {"bs1", "bs32"}
        n_test = rec["data"]["eval_examples"]
        assert lat["bs1"]["batch"] == 1 and lat["bs32"]["batch"] == min(32, n_test)
        for row in lat.values():
            assert row["fp32"] > 0 and row["int8"] > 0
            assert row["speedup"] == pytest.approx(row["fp32"] / row["int8"], abs=1e-3)
        assert qr["latency"]["forward"] == 'head(model(batch)["pooled"])'
        assert all(q.MIN_REPEATS <= r <= q.MAX_REPEATS for r in qr["latency"]["repeats"].values())


def test_matched_seed_comparison_on_the_run_evidence(quant_runs) -> None:
    int8 = [Evidence.load(f / q.EVIDENCE_INT8) for f, _ in quant_runs]
    fp32 = [Evidence.load(f / EVIDENCE) for f, _ in quant_runs]
    c = compare(int8, fp32, "top1", matched_seeds=True, replicates=500)
    per_seed = [r["quantized"]["metrics"]["top1"] - r["quantized"]["metrics_fp32"]["top1"] for _, r in quant_runs]
    assert c.delta == pytest.approx(float(np.mean(per_seed)), abs=1e-9)
    assert (c.n_seeds_a, c.n_seeds_b) == (2, 2) and "drawn together" in c.method


# -- 2. sizes against hand counts ---------------------------------------------------------------------------------


class _Pooled(nn.Module):
    """A model in the harness's shape: ``model(batch)["pooled"]``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict) -> dict:
        return {"pooled": self.net(batch["x"])}


class _FakeTask:
    """Enough of a task for ``_measure``: records the model and head it scored."""

    type = "classification"

    def __init__(self) -> None:
        self.scored: list[tuple[nn.Module, nn.Module]] = []

    def evaluate(self, model, head, data, batcher, batch_size, autocast, split):
        assert split == "test"
        self.scored.append((model, head))
        with torch.no_grad():
            head(model({"x": data.test})["pooled"])
        return SimpleNamespace(metrics={"top1": 50.0}, evidence=None)


def _linear_hand_count(modules: list[nn.Module]) -> tuple[int, int]:
    """(fp32 bytes, dynamic-INT8 bytes) of ``modules`` made of nn.Linear and parameter-free layers only."""
    fp32 = int8 = 0
    for module in modules:
        for m in module.modules():
            if type(m) is nn.Linear:
                out_f, in_f = m.out_features, m.in_features
                fp32 += 4 * (out_f * in_f + out_f)
                int8 += out_f * in_f + 16 + 4 * out_f  # int8 weight, scale + zero point, fp32 bias
    return fp32, int8


def test_measure_sizes_match_a_hand_count(tmp_path: Path) -> None:
    model = _Pooled(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)))
    head = nn.Linear(4, 2)
    n_params = 16 * 8 + 8 + 8 * 4 + 4 + 4 * 2 + 2
    assert n_params == 182
    fp32_expected, int8_expected = _linear_hand_count([model, head])
    assert (fp32_expected, int8_expected) == (4 * 182, (128 + 16 + 32) + (32 + 16 + 16) + (8 + 16 + 8))

    task = _FakeTask()
    data = SimpleNamespace(test=torch.randn(5, 16))
    batcher = lambda ex, idx, with_targets=True: {"x": ex[idx]}  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = q._measure(task, (model.eval(), head.eval()), data, batcher, 4, None, tmp_path)

    assert rec["memory_bytes"] == {"fp32": fp32_expected, "int8": int8_expected}
    assert rec["memory_ratio"] == round(int8_expected / fp32_expected, 6)
    assert (rec["params"], rec["linear_params"], rec["linear_weight_params"]) == (182, 182, 168)
    assert rec["linear_layers"] == rec["linear_layers_quantized"] == 3
    # The head is a bare nn.Linear: the quantised pair holds a new module for it, and that one is scored.
    qlinear = q._dynamic_linear()
    assert [type(h) for _, h in task.scored] == [qlinear, nn.Linear]  # INT8 copy, then the fp32 reference
    assert isinstance(task.scored[0][0].net[0], qlinear) and type(task.scored[1][0].net[0]) is nn.Linear
    assert rec["metrics"] == rec["metrics_fp32"] == {"top1": 50.0}
    assert rec["evidence"] == {"fp32": None, "int8": None}
    assert {k: v["batch"] for k, v in rec["latency_ms"].items()} == {"bs1": 1, "bs32": 5}
    # torch.save of the state dicts: the fp32 file holds at least every parameter's 4 bytes, the INT8 one the int8
    # weights; both add pickle framing (small and roughly constant), which is why tiny models barely shrink on disk.
    assert rec["disk_bytes"]["fp32"] >= 4 * 182 and rec["disk_bytes"]["int8"] >= 168
    assert rec["disk_bytes"]["fp32"] == q.disk_bytes(model, head)


def test_memory_bytes_of_a_quantized_pair_directly() -> None:
    """memory_bytes on the fp32 and the quantised ModuleDict pair, as evaluate_int8 builds it."""
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    head = nn.Linear(4, 2)
    fp32_expected, int8_expected = _linear_hand_count([model, head])
    assert q.memory_bytes(model, head) == fp32_expected == 4 * 182
    pair = _quiet_quantize(nn.ModuleDict({"model": copy.deepcopy(model), "head": copy.deepcopy(head)}))
    assert q.memory_bytes(pair["model"], pair["head"]) == int8_expected == 272
    # a bare Linear given to quantize_dynamic is not swapped (only children are): hence the pair
    assert type(_quiet_quantize(copy.deepcopy(head))) is nn.Linear


def test_disk_ratio_of_a_model_of_big_linears_is_about_a_quarter() -> None:
    model = nn.Sequential(*[nn.Linear(256, 256) for _ in range(4)])
    head = nn.Linear(256, 10)
    pair = _quiet_quantize(nn.ModuleDict({"model": copy.deepcopy(model), "head": copy.deepcopy(head)}))
    d32, d8 = q.disk_bytes(model, head), q.disk_bytes(pair["model"], pair["head"])
    n_params = 4 * (256 * 256 + 256) + 256 * 10 + 10
    assert d32 >= 4 * n_params
    assert 0.25 <= d8 / d32 <= 0.30
    fp32_expected, int8_expected = _linear_hand_count([model, head])
    assert q.memory_bytes(pair["model"], pair["head"]) == int8_expected
    assert 0.25 <= int8_expected / fp32_expected <= 0.26


# -- 3. what gets quantised ----------------------------------------------------------------------------------------


class _WithAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2)
        self.fc = nn.Linear(8, 4)
        self.block = nn.Sequential(nn.ReLU(), nn.Linear(4, 4))


def test_quantizable_linears_skip_multihead_attention_out_proj() -> None:
    module = _WithAttention()
    assert type(module.attn.out_proj) is not nn.Linear and isinstance(module.attn.out_proj, nn.Linear)
    assert [name for name, _ in q.quantizable_linears(module)] == ["fc", "block.1"]
    # ... and exactly those are what quantize_dynamic swaps (the record's linear_layers == linear_layers_quantized)
    quantized = _quiet_quantize(copy.deepcopy(module))
    qlinear = q._dynamic_linear()
    assert [n for n, m in quantized.named_modules() if isinstance(m, qlinear)] == ["fc", "block.1"]
    assert type(quantized.attn.out_proj) is type(module.attn.out_proj)


# -- 4. models that cannot be quantised -----------------------------------------------------------------------------


class _ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)


def test_quantize_problem_names_nn_linear() -> None:
    problem = q.quantize_problem(_ConvNet())
    assert problem is not None
    assert "nn.Linear" in problem and "_ConvNet has none" in problem and "remove quantize" in problem
    assert q.quantize_problem(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 2))) is None
    assert q.quantize_problem(_WithAttention()) is None


def test_validate_refuses_quantize_on_a_headless_timm_resnet(tmp_path: Path, capsys) -> None:
    """The timm family builds its encoder with num_classes=0: a ResNet's fc is an Identity, so no nn.Linear."""
    suite = copy.deepcopy(SUITE)
    suite["models"]["vit"]["image_encoder"] = {"name": "resnet18"}
    path = _write(tmp_path, suite)
    assert main(["validate", str(path)]) == 2
    msg = _one_error_line(capsys)
    assert msg.startswith(f"{path}: models.vit.quantize: 'dynamic_int8' cannot run: ")
    assert "dynamic INT8 quantises nn.Linear layers only, and this ImageOnly has none" in msg
    # without the switch the same suite is valid
    del suite["models"]["vit"]["quantize"]
    assert main(["validate", str(_write(tmp_path, suite))]) == 0


def test_check_quantize_on_built_models(tmp_path: Path) -> None:
    from harness.errors import UserError

    path = _write(tmp_path, SUITE)
    suite = load_suite(path)
    check_quantize(suite, {"vit": nn.Sequential(nn.Linear(2, 2))}, "s.yaml")  # has a Linear: fine
    check_quantize(suite, {}, "s.yaml")  # a model that was not built is not checked
    with pytest.raises(UserError, match=r"^s\.yaml: models\.vit\.quantize: 'dynamic_int8' cannot run: .*nn\.Linear"):
        check_quantize(suite, {"vit": _ConvNet()}, "s.yaml")


# -- 5. the schema -------------------------------------------------------------------------------------------------


def test_schema_rejects_an_unknown_quantize_method(tmp_path: Path, capsys) -> None:
    suite = copy.deepcopy(SUITE)
    suite["models"]["vit"]["quantize"] = "int4"
    path = _write(tmp_path, suite)
    assert main(["validate", str(path)]) == 2
    expected = "models.vit.quantize: 'int4' is not allowed. Expected one of: 'dynamic_int8'."
    assert _one_error_line(capsys) == f"{path}: {expected}"


# -- 6. the matched-seed paired bootstrap ----------------------------------------------------------------------------

N = 200  # examples, one cluster each: a top1 of k correct is exactly k / 2 points


def _cls(correct: np.ndarray) -> Evidence:
    ids = np.arange(len(correct))
    return classification_evidence(ids, ids, np.zeros(len(correct)), np.where(correct, 0, 3))


def _seeds(fp32_correct: list[int], shifts: list[int]) -> tuple[list[Evidence], list[Evidence]]:
    """Per seed: the fp32 model gets its first k examples right; its INT8 copy loses the first ``shift`` of them."""
    fp32, int8 = [], []
    for k, s in zip(fp32_correct, shifts, strict=True):
        right = np.arange(N) < k
        fp32.append(_cls(right))
        int8.append(_cls(right & (np.arange(N) >= s)))
    return int8, fp32


def test_matched_seeds_delta_is_the_mean_of_the_per_seed_differences() -> None:
    correct, shifts = [40, 100, 160], [2, 4, 6]  # top1 20, 50, 80 (a large seed effect); INT8 loses 1, 2, 3 points
    int8, fp32 = _seeds(correct, shifts)
    fp32_top1 = [100 * k / N for k in correct]
    int8_top1 = [100 * (k - s) / N for k, s in zip(correct, shifts, strict=True)]
    assert fp32_top1 == [20.0, 50.0, 80.0] and int8_top1 == [19.0, 48.0, 77.0]
    diffs = [a - b for a, b in zip(int8_top1, fp32_top1, strict=True)]  # -1, -2, -3

    matched = compare(int8, fp32, "top1", matched_seeds=True, replicates=4_000)
    assert matched.delta == sum(diffs) / len(diffs) == -2.0
    assert (matched.a, matched.b) == (sum(int8_top1) / 3, sum(fp32_top1) / 3)
    assert matched.values_a == tuple(int8_top1) and matched.values_b == tuple(fp32_top1)
    assert (matched.n_seeds_a, matched.n_seeds_b, matched.n_clusters, matched.replicates) == (3, 3, N, 4_000)
    # the seed part of the SE is that of the paired differences: std(-1, -2, -3; ddof=1) / sqrt(3) = 1 / sqrt(3)
    assert matched.se_seeds == pytest.approx(1 / math.sqrt(3), rel=1e-12)
    assert "3 seeds drawn together for both" in matched.method
    lo, hi = matched.ci[0.95]
    assert lo <= -2.0 <= hi and hi < 0  # every resample loses examples: the change is negative throughout

    independent = compare(int8, fp32, "top1", replicates=4_000)
    assert independent.delta == matched.delta
    assert independent.se_seeds == pytest.approx(
        math.sqrt(np.var(int8_top1, ddof=1) / 3 + np.var(fp32_top1, ddof=1) / 3), rel=1e-12
    )
    assert "seeds resampled within each model" in independent.method
    ilo, ihi = independent.ci[0.95]
    # the seed effect (20 to 80 points) dominates when the seeds are drawn apart and cancels when drawn together
    assert hi - lo <= ihi - ilo
    assert hi - lo < 5 < 30 < ihi - ilo
    assert matched.se < independent.se


def test_matched_seeds_with_one_seed_and_mismatched_counts() -> None:
    int8, fp32 = _seeds([100, 120], [4, 4])
    one = compare(int8[:1], fp32[:1], "top1", matched_seeds=True, replicates=500)
    assert one.delta == -2.0 and one.se_seeds is None
    assert one.mcnemar is not None and (one.mcnemar.b, one.mcnemar.c) == (0, 4)
    with pytest.raises(ValueError, match="matched seeds need as many seeds on both sides, got 2 and 1"):
        compare(int8, fp32[:1], "top1", matched_seeds=True)
