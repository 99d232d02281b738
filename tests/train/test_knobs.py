"""The training knobs the design documents rely on, each expressed in the suite and checked here: per-branch lr
multipliers, no weight decay on norms/biases/position embeddings, progressive unfreezing, DropPath on the vision
branch, dropout on text, the contrastive temperature, the schedule, and missing pretrained weights."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from harness.models import BuildContext, load_families
from harness.suite.schema import TrainSpec
from harness.train.optim import lr_lambda, param_groups
from tests.conftest import TINY_BERT, TINY_VIT

CTX = BuildContext(image_size=32, max_text_len=12, vocab_size=50)


def _xbert(**extra):
    family = load_families().get("xbert")
    torch.manual_seed(0)
    return family.build(
        family.config.model_validate({"image_encoder": TINY_VIT, "text_encoder": TINY_BERT, **extra}), CTX
    )


def test_lr_multipliers_per_branch_and_no_decay_groups() -> None:
    model = _xbert()
    head = torch.nn.Linear(model.feature_dim, 3)
    train = TrainSpec(
        steps=1, lr=2e-5, weight_decay=0.05, lr_mult={"image": 50.0, "text": 1.0, "fusion": 5.0, "head": 10.0}
    )
    groups = param_groups(model, head, train)
    by = {(g["branch"], g["weight_decay"] > 0): g for g in groups}
    assert {g["branch"] for g in groups} == {"image", "text", "fusion", "head"}
    assert by[("image", True)]["lr"] == pytest.approx(1e-3)  # the design documents' image 1e-3 vs text 2e-5
    assert by[("text", True)]["lr"] == pytest.approx(2e-5)
    assert by[("fusion", True)]["lr"] == pytest.approx(1e-4) and by[("head", True)]["lr"] == pytest.approx(2e-4)
    no_decay = {n for g in groups if g["weight_decay"] == 0 for n in g["names"]}
    decay = {n for g in groups if g["weight_decay"] > 0 for n in g["names"]}
    assert all(
        n.endswith("bias") or "norm" in n.lower() or n in model.no_weight_decay() or n.endswith(".modality")
        for n in no_decay
    )
    assert {"image.model.cls_token", "image.model.pos_embed", "fusion.visual.pos", "head.bias"} <= no_decay
    assert "text.model.embeddings.LayerNorm.weight" in no_decay
    assert all(p.ndim >= 2 for g in groups if g["weight_decay"] > 0 for p in g["params"])
    assert "head.weight" in decay and len(no_decay | decay) == len(list(model.parameters())) + 2


def test_warmup_then_cosine_schedule() -> None:
    fn = lr_lambda(100, TrainSpec(steps=100, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1))
    assert fn(0) == pytest.approx(0.1) and fn(9) == pytest.approx(1.0)
    assert fn(10) == pytest.approx(1.0)
    assert fn(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert fn(100) == pytest.approx(0.1)
    linear = lr_lambda(10, TrainSpec(steps=10, schedule="linear"))
    assert [round(linear(s), 3) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]


def test_drop_path_and_text_dropout_reach_the_modules() -> None:
    vit = {**TINY_VIT, "args": {**TINY_VIT["args"], "depth": 2}, "drop_path": 0.2}
    bert = {**TINY_BERT, "dropout": 0.3}
    model = _xbert(image_encoder=vit, text_encoder=bert)
    # timm's stochastic depth rises linearly with depth, up to drop_path on the last block
    assert model.image.model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)
    assert model.text.model.config.hidden_dropout_prob == pytest.approx(0.3)
    assert model.text.model.config.attention_probs_dropout_prob == pytest.approx(0.3)


def test_progressive_unfreezing(tiny_suite, tmp_path: Path) -> None:
    """Encoders stay frozen for the first epoch, then train; fusion and head train from the start."""
    from rich.console import Console

    from harness.runner import prepare
    from harness.suite import load_suite
    from harness.tasks.base import Batcher
    from harness.train.loop import Trainer, plan_steps

    path = tiny_suite(
        seeds=[0], tasks={"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["xbert"]}}
    )
    ctx, _ = prepare(load_suite(path), path, tmp_path, Console(quiet=True))
    model = load_families().get("xbert").build(ctx.models["xbert"].config, BuildContext(16, 16, len(ctx.tokenizer)))
    task, data = ctx.tasks["cls"], ctx.data["cls"]
    head = task.build_head(model, data)
    train = TrainSpec(epochs=2, batch_size=8, lr=1e-2, freeze_encoders_epochs=1)
    per_epoch, _ = plan_steps(len(data.train), train)
    snap = {}

    def state():
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    start = state()

    def on_step(step: int) -> None:
        if step == per_epoch:
            snap["after_epoch_1"] = state()

    batcher = Batcher(ctx.image.mean, ctx.image.std, torch.device("cpu"))
    import contextlib

    Trainer(model, head, task, data, train, batcher, contextlib.nullcontext, None, 0, lambda r: None, on_step).run()
    end = state()
    mid = snap["after_epoch_1"]
    enc = [
        k for k in start if k.startswith(("image.", "text.")) and start[k].is_floating_point() and "running" not in k
    ]
    fusion = [k for k in start if k.startswith("fusion.")]
    assert all(torch.equal(start[k], mid[k]) for k in enc)  # frozen during epoch 1
    assert any(not torch.equal(start[k], mid[k]) for k in fusion)  # fusion trains from the start
    assert any(not torch.equal(mid[k], end[k]) for k in enc)  # released in epoch 2
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(("learn", "init"), [(True, 0.07), (False, 0.1)])
def test_contrastive_temperature(learn: bool, init: float) -> None:
    from harness.suite.schema import RetrievalTask as RetrievalSpec
    from harness.tasks.retrieval import RetrievalHead, RetrievalTask

    model = _xbert()
    head = RetrievalHead(model, 16, init, learn)
    task = RetrievalTask("ret", RetrievalSpec(type="retrieval", dataset="d", models=("m",)))
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1)
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randn(4, 3, 32, 32, generator=g),
        "input_ids": torch.randint(5, 50, (4, 12), generator=g),
        "attention_mask": torch.ones(4, 12, dtype=torch.long),
        "image_row": torch.arange(4),
    }
    assert head.temp.item() == pytest.approx(init) and head.temp.requires_grad is learn
    task.loss(model, head, batch).backward()
    opt.step()
    assert (head.temp.item() != pytest.approx(init)) is learn


def test_missing_pretrained_weights_stop_before_anything_trains(tiny_suite, tmp_path: Path, capsys) -> None:
    from harness.cli import main

    models = {
        "vit": {"type": "timm", "image_encoder": TINY_VIT},
        "r50": {"type": "timm", "image_encoder": {"name": "resnet50", "pretrained": True}},
    }
    path = tiny_suite(
        models=models, tasks={"cls": {"type": "classification", "dataset": "shapes-cls", "models": ["vit", "r50"]}}
    )
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        f"xmbench: error: {path}: models.r50.image_encoder: pretrained weights for timm model "
        "'resnet50' are not available offline. Fetch them on a connected machine: "
        "`hf download timm/resnet50.a1_in1k model.safetensors`"
    )
    assert not out.exists()  # nothing trained, nothing written
    assert main(["validate", str(path)]) == 2


@pytest.mark.parametrize(
    ("models", "text", "message"),
    [
        (
            {"b": {"type": "bert", "text_encoder": {"name": "bert-base-uncased", "pretrained": True}}},
            None,
            "models.b.text_encoder.name: 'bert-base-uncased' is not available offline (no config.json)",
        ),
        (
            {"b": {"type": "bert", "text_encoder": TINY_BERT}},
            {"tokenizer": "bert-base-uncased"},
            "text.tokenizer: tokenizer 'bert-base-uncased' is not available offline",
        ),
    ],
)
def test_missing_text_weights_and_tokenizer(tiny_suite, capsys, models, text, message) -> None:
    from harness.cli import main

    changes = {
        "models": models,
        "baseline": None,
        "tasks": {"vqa": {"type": "vqa", "dataset": "shapes-vqa", "models": ["b"]}},
    }
    if text:
        changes["text"] = text
    assert main(["validate", str(tiny_suite(**changes))]) == 2
    assert message in capsys.readouterr().err
