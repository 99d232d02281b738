"""Zero-shot classification: towers trained by a retrieval task of the suite, class prompts averaged over templates
as CLIP does, well above chance on synthetic data; the link to the training task is fingerprinted and reported; and
every way a suite can get it wrong is refused with one line."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image

from harness.cli import main
from harness.data.synthetic import COLOR_RGB, ensure_synthetic
from harness.errors import UserError
from harness.tasks.zero_shot import class_names

VIT = {
    "name": "vit_tiny_patch16_224",
    "args": {"patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0},
}
BERT = {"config": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}}

ZS_SUITE = {
    "name": "zs",
    "seeds": [0],
    "hardware": {"device": "cpu", "threads": 2},
    "train": {"epochs": 30, "batch_size": 128, "lr": 1e-3, "warmup_ratio": 0.1},
    "image": {"size": 32},
    "text": {"vocab_size": 200, "max_length": 32},
    "synthetic": {"images": 400, "size": 64},
    "datasets": {"pairs": {"kind": "coco", "path": "@synthetic"}, "colours": {"kind": "imagefolder", "path": ""}},
    "models": {"clip": {"type": "dual", "image_encoder": VIT, "text_encoder": BERT}},
    "tasks": {
        "ret": {"type": "retrieval", "dataset": "pairs", "models": ["clip"], "embed_dim": 64},
        "zs": {
            "type": "zero_shot",
            "dataset": "colours",
            "models": ["clip"],
            "trained_by": "ret",
            "templates": ["a picture of a large {} shape.", "there is a big {} shape in the image."],
        },
    },
}


def _colour_folder(src: Path, out: Path) -> Path:
    """An image folder of the synthetic images by the colour of their large shape, read off the pixels (the most
    frequent palette colour): classes the captions name, and the folder names the zero-shot prompts use."""
    palette = np.array(list(COLOR_RGB.values()), dtype=float)
    names = list(COLOR_RGB)
    for split in ("train", "val", "test"):
        for path in sorted((src / split).rglob("*.jpg")):
            pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float).reshape(-1, 3)
            dist = ((pixels[:, None] - palette[None]) ** 2).sum(-1)
            near = dist.argmin(1)[dist.min(1) < 40**2]
            colour = names[int(np.bincount(near, minlength=len(names)).argmax())]
            (out / split / colour).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / split / colour / path.name)
    return out


@pytest.fixture(scope="module")
def zs_run(tmp_path_factory: pytest.TempPathFactory, xm_cache: Path) -> Path:
    root = tmp_path_factory.mktemp("zs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XMBENCH_CACHE", str(xm_cache))
        data = ensure_synthetic(images=400, seed=0, size=64)
        suite = copy.deepcopy(ZS_SUITE)
        suite["datasets"]["colours"]["path"] = str(_colour_folder(data / "imagefolder", root / "colours"))
        (root / "zs.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
        assert main(["run", str(root / "zs.yaml"), "--out", str(root / "out")]) == 0
    return root


def _record(root: Path, task: str) -> dict:
    (path,) = (root / "out" / "runs" / task / "clip").glob("seed0-*/metrics.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_zero_shot_from_a_dual_tower_trained_on_captions_is_well_above_chance(zs_run: Path) -> None:
    zs, ret = _record(zs_run, "zs"), _record(zs_run, "ret")
    chance = zs["notes"]["chance_top1"]
    assert chance == pytest.approx(100 / 6, abs=1e-3)  # six colours
    assert zs["metrics"]["top1"] > 2.5 * chance, zs["metrics"]
    assert zs["timings"]["steps"] == 0 and zs["cost"]["trainable_params"] == 0  # nothing trained on the classes
    link = zs["notes"]["trained_by"]
    assert link == {"task": "ret", "run_id": "ret/clip/seed0", "fingerprint": ret["fingerprint"]}
    spec = json.loads((zs_run / "out" / zs["folder"] / "spec.json").read_text())
    assert spec["upstream"]["fingerprint"] == ret["fingerprint"]
    assert (zs_run / "out" / ret["folder"] / "model.pt").is_file()  # the retrieval run kept what it scored
    report = (zs_run / "out" / "report.md").read_text()
    assert "each model and seed scores the state that its run of task ret (image-text pairs) selected" in report
    assert "chance top-1 is 16.67%" in report


def test_class_embedding_is_the_normalised_mean_of_normalised_template_embeddings() -> None:
    """Against an independent computation with a stub text tower and head."""
    from harness.models.base import Encoded
    from harness.tasks.base import Examples
    from harness.tasks.zero_shot import ZeroShotTask

    torch.manual_seed(0)
    table = torch.randn(20, 8)

    class Tower(torch.nn.Module):
        def encode_text(self, ids, mask):
            return Encoded(tokens=None, pooled=table[ids[:, 1]], mask=mask, ids=ids)

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(8, 4)

        def embed_text(self, enc):
            return F.normalize(self.proj(enc.pooled), dim=-1)

    spec = type("Spec", (), {"templates": ("a {}", "b {}", "c {}")})()
    task = ZeroShotTask("zs", spec)
    ids = torch.tensor([[0, i] for i in range(6)])  # 2 classes x 3 templates, class-major
    ex = Examples(None, None, None, None, None, [])
    ex.extra.update(prompt_ids=ids, prompt_mask=torch.ones_like(ids))
    head = Head()
    got = task.class_embeddings(Tower(), head, ex, batch_size=4, autocast=contextlib.nullcontext)
    with torch.no_grad():
        z = head.proj(table[:6]).numpy()
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    want = z.reshape(2, 3, 4).mean(1)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.allclose(got.numpy(), want, atol=1e-6)


def test_class_names_from_folders_a_list_or_a_mapping() -> None:
    folders = ["n01", "n02"]
    assert class_names(folders, None, "tasks.zs") == ["n01", "n02"]
    assert class_names(folders, ("tench", "goldfish"), "tasks.zs") == ["tench", "goldfish"]
    assert class_names(folders, {"n02": "goldfish", "n01": "tench"}, "tasks.zs") == ["tench", "goldfish"]
    with pytest.raises(UserError, match=r"tasks\.zs\.classes: 1 names for 2 class folders"):
        class_names(folders, ("tench",), "tasks.zs")
    with pytest.raises(UserError, match=r"no name for the class folder\(s\) \['n02'\]"):
        class_names(folders, {"n01": "tench"}, "tasks.zs")


def _suite(tmp_path: Path, **tasks) -> dict:
    suite = copy.deepcopy(ZS_SUITE)
    suite["datasets"]["colours"] = {"kind": "imagefolder", "path": "@synthetic"}
    suite["models"]["vit"] = {"type": "timm", "image_encoder": VIT}
    for name, change in tasks.items():
        suite["tasks"][name].update(change)
    return suite


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": ["vit"]}, "tasks.zs.models[0]: model 'vit' cannot run this task: zero-shot classification scores "
         "images against class-name prompts, so it needs an image tower and a text tower; a image model reads only "
         "image"),
        ({"trained_by": "rett"}, "tasks.zs.trained_by: unknown task 'rett'"),
        ({"trained_by": "zs"}, "tasks.zs.trained_by: 'zs' is a zero_shot task; zero-shot towers are trained on "
         "image-text pairs, so name a retrieval task of this suite"),
        ({"templates": ["a photo"]}, "every template needs exactly one '{}' for the class name, got 'a photo'"),
        ({"templates": []}, "tasks.zs.templates"),
    ],
)  # fmt: skip
def test_zero_shot_refusals(tmp_path: Path, capsys, change: dict, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_suite(tmp_path, zs=change), sort_keys=False))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_a_model_the_training_task_does_not_train_is_refused(tmp_path: Path, capsys) -> None:
    suite = _suite(tmp_path)
    suite["models"]["clip2"] = copy.deepcopy(suite["models"]["clip"])
    suite["tasks"]["zs"]["models"] = ["clip", "clip2"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    assert "tasks.zs.models[1]: 'clip2' is not trained by tasks.ret (its models: ['clip'])" in capsys.readouterr().err


def test_fingerprints_follow_the_training_run(tmp_path: Path) -> None:
    """Adding a zero-shot task leaves the retrieval runs' fingerprints alone; changing the retrieval recipe changes
    the zero-shot run's."""
    from rich.console import Console

    from harness import runner
    from harness.suite.loader import load_suite

    def plan(suite: dict) -> dict[str, str]:
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(suite, sort_keys=False))
        p = runner.plan_suite(load_suite(path), path, tmp_path, Console(quiet=True), build=False)
        return {r.run_id: r for r in p.runs}

    with_zs = plan(_suite(tmp_path))
    without = _suite(tmp_path)
    del without["tasks"]["zs"]
    without_zs = plan(without)
    assert with_zs["ret/clip/seed0"].fingerprint == without_zs["ret/clip/seed0"].fingerprint
    assert with_zs["ret/clip/seed0"].extra == {"keep_weights": True} and without_zs["ret/clip/seed0"].extra == {}
    assert list(with_zs) == ["ret/clip/seed0", "zs/clip/seed0"]  # the training run comes first
    changed = plan(_suite(tmp_path, ret={"embed_dim": 32}))
    assert changed["zs/clip/seed0"].fingerprint != with_zs["zs/clip/seed0"].fingerprint
    assert changed["zs/clip/seed0"].upstream["fingerprint"] == changed["ret/clip/seed0"].fingerprint


def test_zero_shot_without_its_training_run_fails_with_what_to_do(tmp_path: Path, capsys) -> None:
    suite = _suite(tmp_path)
    suite["synthetic"] = {"images": 40, "size": 32}
    path = tmp_path / "zs.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--tasks", "zs"]) == 1
    (error,) = (tmp_path / "out" / "runs" / "zs" / "clip").glob("seed0-*/error.json")
    record = json.loads(error.read_text())
    assert (
        "the ret run ret/clip/seed0 that trains this model's towers has not finished with kept weights"
        in (record["error"])
    )
    assert "xmbench run SUITE --tasks ret" in record["error"]
    assert os.environ["XMBENCH_CACHE"]  # the isolated test cache
