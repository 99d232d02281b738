"""Every registered model family (and every fusion variant) on tiny configs: forward, backward, shapes, gradients."""

from __future__ import annotations

import pytest
import torch

from harness.models import BuildContext, load_families
from harness.tasks.retrieval import RetrievalHead, RetrievalTask
from tests.conftest import TINY_BERT, TINY_VIT

# zero_init_last=False: with it, the last BN of each block starts at 0 and blocks get no gradient at step 0.
TINY_RESNET = {
    "name": "resnet18",
    "args": {"layers": [1, 1, 1, 1], "channels": [8, 16, 32, 64], "stem_width": 8, "zero_init_last": False},
}
CTX = BuildContext(image_size=32, max_text_len=12, vocab_size=50, pad_token_id=0)

VARIANTS = {
    "timm-vit": {"type": "timm", "image_encoder": TINY_VIT},
    "timm-resnet": {"type": "timm", "image_encoder": TINY_RESNET},
    "bert": {"type": "bert", "text_encoder": TINY_BERT},
    **{
        f"xbert-{f}": {"type": "xbert", "fusion": f, "image_encoder": TINY_VIT, "text_encoder": TINY_BERT}
        for f in ("single_stream", "cross_attention", "sum", "concat")
    },
    "xbert-resnet-cross": {
        "type": "xbert",
        "fusion": "cross_attention",
        "image_encoder": TINY_RESNET,
        "text_encoder": TINY_BERT,
        "fusion_layers": 2,
    },
}


def _build(params: dict):
    families = load_families()
    params = dict(params)
    family = families.get(params.pop("type"))
    torch.manual_seed(0)
    return family.build(family.config.model_validate(params), CTX)


def _batch(b: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 50, (b, 12), generator=g)
    mask = torch.ones(b, 12, dtype=torch.long)
    mask[:, 9:] = 0
    ids[:, 9:] = 0
    return {"image": torch.randn(b, 3, 32, 32, generator=g), "input_ids": ids, "attention_mask": mask}


def test_every_registered_family_is_covered() -> None:
    assert set(load_families().names()) == {v["type"] for v in VARIANTS.values()}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_forward_backward_reaches_every_parameter(name: str) -> None:
    model = _build(VARIANTS[name])
    head = torch.nn.Linear(model.feature_dim, 7)
    out = model(_batch())["pooled"]
    assert out.shape == (4, model.feature_dim)
    logits = head(out)
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.arange(4)).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert missing == []


@pytest.mark.parametrize("name", [n for n in sorted(VARIANTS) if n.startswith("xbert")])
def test_two_tower_retrieval_loss(name: str) -> None:
    from harness.suite.schema import RetrievalTask as RetrievalSpec

    model = _build(VARIANTS[name])
    spec = RetrievalSpec(type="retrieval", dataset="d", models=("m",), embed_dim=16, k_test=2)
    task = RetrievalTask("ret", spec)
    head = RetrievalHead(model, 16, 0.07, True)
    batch = _batch() | {"image_row": torch.tensor([0, 0, 1, 2])}
    loss = task.loss(model, head, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert head.itm is not None and head.itm.weight.grad is not None
    assert head.temp.grad is not None
    img = model.encode_image(batch["image"])
    txt = model.encode_text(batch["input_ids"], batch["attention_mask"])
    assert img.pooled.shape == (4, model.image_dim) and txt.pooled.shape == (4, model.text_dim)
    assert model.fuse(img, txt).shape == (4, model.feature_dim)


def test_unknown_timm_weights_offline_say_what_to_fetch() -> None:
    from harness.errors import UserError

    params = {"type": "timm", "image_encoder": {"name": "resnet18", "pretrained": True}}
    with pytest.raises(UserError, match=r"pretrained weights for timm model 'resnet18' are not available offline"):
        _build(params)


def test_timm_checkpoint_loads_through_the_same_path(tmp_path) -> None:
    import timm

    source = timm.create_model(TINY_VIT["name"], pretrained=False, img_size=32, **TINY_VIT["args"])
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    spec = {"type": "timm", "image_encoder": {**TINY_VIT, "pretrained": True, "checkpoint": str(tmp_path / "vit.pth")}}
    model = _build(spec)
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
    model = _build({"type": "bert", "text_encoder": {"name": str(tmp_path / "bert"), "pretrained": True}})
    assert torch.equal(model.text.model.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)


def test_missing_bert_offline_says_what_to_fetch() -> None:
    from harness.errors import UserError

    with pytest.raises(UserError, match=r"cannot load 'bert-base-uncased' offline.*huggingface-cli download"):
        _build({"type": "bert", "text_encoder": {"name": "bert-base-uncased", "pretrained": True}})
