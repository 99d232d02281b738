"""The training loop's pieces: val evaluation points, best-state selection and restore, the data order's state,
and checkpoint files (atomic, weights-only, pruned, fingerprint-checked)."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.models.base import XModel
from harness.suite.schema import TrainSpec
from harness.tasks.base import Batcher, Examples, TaskData
from harness.tasks.classification import ClassificationTask
from harness.train.checkpoint import Checkpoints, rng_state, set_rng_state
from harness.train.loop import DataOrder, Selection, Trainer, eval_steps


class Colour(XModel):
    kind = "image"
    modalities = frozenset({"image"})

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.feature_dim = 4

    def forward(self, batch):
        return {"pooled": self.proj(batch["image"].mean(dim=(2, 3)))}


def _data(n: int = 24) -> TaskData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    ex = Examples(images, None, None, None, torch.arange(n) % 2, list(range(n)))
    return TaskData(ex, ex, ex, {"classes": ["a", "b"]})


def test_eval_steps_every_epoch_by_default_and_always_the_last() -> None:
    # 24 examples, batch 8: 3 steps per epoch
    assert eval_steps(24, TrainSpec(epochs=3, batch_size=8)) == [3, 6, 9]
    assert eval_steps(24, TrainSpec(epochs=3, batch_size=8, eval_every_epochs=2)) == [6, 9]
    assert eval_steps(24, TrainSpec(steps=10, batch_size=8, eval_every=4)) == [4, 8, 10]
    with pytest.raises(ValueError, match="at most one of 'eval_every'"):
        TrainSpec(steps=2, eval_every=1, eval_every_epochs=1)


def test_selection_direction_min_delta_and_nan() -> None:
    up = Selection("top1", higher_is_better=True, min_delta=0.5)
    assert up.better(10.0, None) and up.better(10.6, 10.0) and not up.better(10.4, 10.0)
    assert not up.better(float("nan"), None)  # a non-finite val score is never selected
    down = Selection("loss", higher_is_better=False)
    assert down.better(1.0, 2.0) and not down.better(2.0, 2.0)  # ties keep the earlier state


def test_the_best_state_is_restored_after_training(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, data = Colour(), _data()
    task = ClassificationTask("t", None)
    head = nn.Linear(4, 2)
    scores = iter([40.0, 70.0, 60.0, 65.0])
    seen: dict[int, dict[str, torch.Tensor]] = {}

    def evaluate():
        seen[len(seen) + 1] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"top1": next(scores)}

    train = TrainSpec(steps=8, batch_size=8, lr=0.1, eval_every=2)
    batcher = Batcher((0.5,) * 3, (0.2,) * 3, torch.device("cpu"))
    trainer = Trainer(
        model, head, task, data, train, batcher, contextlib.nullcontext, None, 0, lambda row: None,
        evaluate=evaluate, selection=Selection("top1"),
    )  # fmt: skip
    stats = trainer.run()
    assert stats.best["step"] == 4 and stats.best["value"] == 70.0 and stats.val_evaluations == 4
    for k, v in model.state_dict().items():  # the weights of step 4, not of step 8
        assert torch.equal(v, seen[2][k])
    assert not torch.equal(model.state_dict()["proj.weight"], seen[4]["proj.weight"])
    assert stats.data_seconds > 0 and stats.compute_seconds > 0 and 0 < stats.data_wait_fraction < 1


def test_data_order_state_round_trip() -> None:
    a = DataOrder(10, 4, seed=3)
    for _ in range(4):  # into the second epoch
        a.next()
    state = a.state_dict()
    b = DataOrder(10, 4, seed=99)
    b.load_state_dict(state)
    for _ in range(6):
        ea, ia = a.next()
        eb, ib = b.next()
        assert ea == eb and torch.equal(ia, ib)


def test_rng_states_round_trip() -> None:
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_checkpoints_are_pruned_weights_only_and_fingerprint_checked(tmp_path: Path) -> None:
    ck = Checkpoints(tmp_path, "fp-a", keep=2)
    for step in (3, 6, 9):
        ck.save(step, {"model": {"w": torch.full((2,), float(step))}, "rng": rng_state()})
    assert [s for s, _ in ck.steps()] == [6, 9]  # keep: 2
    state, problems = ck.latest()
    assert state["step"] == 9 and torch.equal(state["model"]["w"], torch.full((2,), 9.0)) and problems == []
    # a damaged newest file is passed over, with the reason; the next one is used
    (tmp_path / "checkpoints" / "step-0000009.pt").write_bytes(b"not a checkpoint")
    state, problems = ck.latest()
    assert state["step"] == 6 and problems[0].startswith("step-0000009.pt: unreadable")
    # another run's checkpoint (other settings) is never resumed from
    state, problems = Checkpoints(tmp_path, "fp-b").latest()
    assert state is None and "made for other settings" in problems[-1]
    # a pickled object is refused by the weights-only loader
    torch.save({"fingerprint": "fp-a", "step": 12, "evil": Colour}, tmp_path / "checkpoints" / "step-0000012.pt")
    state, problems = ck.latest()
    assert state["step"] == 6 and "step-0000012.pt: unreadable (UnpicklingError" in problems[0]
    ck.finish()
    assert ck.steps() == []
