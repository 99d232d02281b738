"""Every registered model family (and every fusion variant) on tiny configs and a batch of the synthetic data:
forward and backward through each task head it can run, output shapes per task, no NaNs, gradients reaching every
trainable parameter; weights loading through the same code path; full-size parameter counts on the meta device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console

from harness.models import BuildContext, load_families
from harness.tasks import task_registry
from tests.conftest import TINY_BERT, TINY_VIT

# zero_init_last=False: with it, the last BN of each block starts at 0 and blocks get no gradient at step 0.
TINY_RESNET = {
    "name": "resnet18",
    "args": {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 8, "zero_init_last": False},
}
VARIANTS = {
    "timm-vit": {"type": "timm", "image_encoder": TINY_VIT},
    "timm-resnet": {"type": "timm", "image_encoder": TINY_RESNET},
    "bert": {"type": "bert", "text_encoder": TINY_BERT},
    "dual": {"type": "dual", "image_encoder": TINY_VIT, "text_encoder": TINY_BERT},
    **{
        f"xbert-{f}": {"type": "xbert", "fusion": f, "image_encoder": TINY_VIT, "text_encoder": TINY_BERT}
        for f in ("single_stream", "cross_attention", "sum", "concat", "two_token")
    },
    "xbert-resnet-cross": {
        "type": "xbert",
        "fusion": "cross_attention",
        "image_encoder": TINY_RESNET,
        "text_encoder": TINY_BERT,
        "fusion_layers": 2,
    },
}
TASKS = {
    "vqa": {"type": "vqa", "dataset": "vqa", "answer_min_count": 1, "blind_baselines": True},
    "cls": {"type": "classification", "dataset": "cls"},
    "ml": {"type": "multilabel", "dataset": "coco"},
    "ret": {"type": "retrieval", "dataset": "coco", "k_test": 4, "embed_dim": 16},
}


def _runnable(variant: str, task: str) -> bool:
    family = load_families().get(VARIANTS[variant]["type"])
    task_cls = task_registry().get(TASKS[task]["type"])
    return task_cls.pairing_problem(family.kind, family.modalities, type("T", (), TASKS[task])) is None


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, xm_cache: Path):
    """The runner's own preparation of a suite with every variant on every task it can run (synthetic data)."""
    from harness.runner import prepare
    from harness.suite import load_suite

    mp = pytest.MonkeyPatch()
    mp.setenv("XMBENCH_CACHE", str(xm_cache))
    tasks = {t: {**spec, "models": [v for v in VARIANTS if _runnable(v, t)]} for t, spec in TASKS.items()}
    suite = {
        "name": "models",
        "seeds": [0],
        "hardware": {"device": "cpu"},
        "train": {"steps": 1, "batch_size": 4},
        "image": {"size": 32},
        "text": {"tokenizer": "wordpiece", "vocab_size": 120, "max_length": 12},
        "synthetic": {"images": 40, "seed": 0, "size": 32},
        "datasets": {
            "vqa": {"kind": "vqa2", "path": "@synthetic"},
            "coco": {"kind": "coco", "path": "@synthetic"},
            "cls": {"kind": "imagefolder", "path": "@synthetic"},
        },
        "models": VARIANTS,
        "tasks": tasks,
    }
    path = tmp_path_factory.mktemp("models") / "models.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    try:
        ctx, _ = prepare(load_suite(path), path, Path("."), Console(quiet=True))
    finally:
        mp.undo()
    return ctx


def _build(prepared, variant: str):
    resolved = prepared.models[variant]
    torch.manual_seed(0)
    ctx = BuildContext(image_size=32, max_text_len=12, vocab_size=len(prepared.tokenizer), pad_token_id=0)
    return resolved.family.build(resolved.config, ctx)


def test_every_shipped_family_is_covered() -> None:
    shipped = {n for n in load_families().names() if load_families().get(n).source.startswith("baselines.")}
    assert shipped == {v["type"] for v in VARIANTS.values()}


CASES = [(v, t) for v in VARIANTS for t in TASKS if _runnable(v, t)]


@pytest.mark.parametrize(("variant", "task"), CASES, ids=[f"{v}-{t}" for v, t in CASES])
def test_forward_backward_on_synthetic_batch(prepared, variant: str, task: str) -> None:
    from harness.tasks.base import Batcher

    model = _build(prepared, variant)
    task_obj, data = prepared.tasks[task], prepared.data[task]
    head = task_obj.build_head(model, data)
    batcher = Batcher(prepared.image.mean, prepared.image.std, torch.device("cpu"))
    idx = torch.arange(6)
    batch = batcher(data.train, idx, train=True)
    if task == "ret":
        img = model.encode_image(batch["image"])
        txt = model.encode_text(batch["input_ids"], batch["attention_mask"])
        assert head.embed_image(img).shape == head.embed_text(txt).shape == (6, 16)
        if model.can_fuse:
            assert head.itm(model.fuse(img, txt)).shape == (6, 2)
    else:
        out = head(model(batch)["pooled"])
        width = {
            "vqa": len(data.info.get("answers", [])),
            "cls": len(data.info.get("classes", [])),
            "ml": len(data.info.get("classes", [])),
        }[task]
        assert out.shape == (6, width) and torch.isfinite(out).all()
    loss = task_obj.loss(model, head, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    params = [(f"model.{n}", p) for n, p in model.named_parameters()] + [
        (f"head.{n}", p) for n, p in head.named_parameters()
    ]
    # Parameters a task legitimately leaves unused: the text tower of a dual encoder outside retrieval.
    unused_ok = ("model.text.",) if model.kind == "dual_encoder" and task != "ret" else ()
    missing = [
        n
        for n, p in params
        if p.requires_grad and not n.startswith(unused_ok) and (p.grad is None or not p.grad.abs().sum())
    ]
    assert missing == []


def test_full_size_parameter_counts_on_meta_device() -> None:
    """Published figures: ResNet-50 25.6 M and ViT-B/16 86.6 M (with their 1000-class heads), BERT-base 110 M (with
    its pooler). Our encoders drop the classifier / pooler; the task head replaces it."""
    families = load_families()

    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    with torch.device("meta"):
        timm_fam, bert_fam = families.get("timm"), families.get("bert")
        ctx = BuildContext(image_size=224, max_text_len=32, vocab_size=30522)
        resnet = timm_fam.build(timm_fam.config.model_validate({"image_encoder": {"name": "resnet50"}}), ctx)
        vit = timm_fam.build(timm_fam.config.model_validate({"image_encoder": {"name": "vit_base_patch16_224"}}), ctx)
        bert = bert_fam.build(bert_fam.config.model_validate({"text_encoder": {"config": {}}}), ctx)
    assert next(resnet.parameters()).is_meta
    assert count(resnet) + 2048 * 1000 + 1000 == pytest.approx(25.6e6, rel=0.005)
    assert count(vit) + 768 * 1000 + 1000 == pytest.approx(86.6e6, rel=0.005)
    assert count(bert) + 768 * 768 + 768 == pytest.approx(110e6, rel=0.01)


def test_timm_checkpoint_loads_through_the_same_path(tmp_path) -> None:
    import timm

    source = timm.create_model(TINY_VIT["name"], pretrained=False, img_size=32, **TINY_VIT["args"])
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    family = load_families().get("timm")
    spec = {"image_encoder": {**TINY_VIT, "pretrained": True, "checkpoint": str(tmp_path / "vit.pth")}}
    model = family.build(family.config.model_validate(spec), BuildContext(32, 12, 50))
    loaded = model.image.model.state_dict()
    for name, value in source.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(loaded[name], value), name


def test_bert_save_pretrained_loads_by_path(tmp_path) -> None:
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(1)
    source = BertModel(cfg, add_pooling_layer=False)
    source.save_pretrained(tmp_path / "bert")
    family = load_families().get("bert")
    spec = {"text_encoder": {"name": str(tmp_path / "bert"), "pretrained": True}}
    model = family.build(family.config.model_validate(spec), BuildContext(32, 12, 50))
    assert torch.equal(model.text.model.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)
