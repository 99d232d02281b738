"""A plug-in for runner tests (``--plugin tests.train.runner_models``): a model that fails on purpose, and a hook
that kills the process during training.

``saboteur`` is an image model (mean colour -> linear) whose ``fail`` parameter picks what goes wrong at its
``at_call``-th training forward pass: ``nan`` (a non-finite loss), ``raise`` (an exception in user code) or ``oom``
(torch's out-of-memory error for every batch larger than ``oom_above``). ``fail: none`` trains normally.

With ``XMBENCH_TEST_KILL_AT_STEP=K`` in the environment, the process sends itself SIGKILL in the middle of optimiser
step K (after its first micro-batch's forward pass), as a crash or a pre-empted job would.
"""

from __future__ import annotations

import os
import signal

import torch
from torch import nn

from harness.models import BuildContext, user_model
from harness.models.base import XModel


class Saboteur(XModel):
    kind = "image"
    modalities = frozenset({"image"})

    def __init__(self, fail: str, at_call: int, oom_above: int) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 8)
        self.feature_dim = 8
        self.fail, self.at_call, self.oom_above = fail, at_call, oom_above
        self.calls = 0

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = batch["image"]
        pooled = self.proj(image.mean(dim=(2, 3)))
        if not self.training:
            return {"pooled": pooled}
        self.calls += 1
        if self.fail == "oom" and image.shape[0] > self.oom_above:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (batch {image.shape[0]})")
        if self.calls >= self.at_call:
            if self.fail == "nan":
                return {"pooled": pooled * float("nan")}
            if self.fail == "raise":
                raise ValueError("boom from the user's model code")
        return {"pooled": pooled}


@user_model("saboteur", kind="image", modalities={"image"})
def saboteur(ctx: BuildContext, fail: str = "none", at_call: int = 2, oom_above: int = 1_000_000) -> Saboteur:
    return Saboteur(fail, at_call, oom_above)


def _install_kill_hook(step: int) -> None:
    from harness.train.loop import Trainer

    original = Trainer._accumulate

    def accumulate(self, i, batches):  # i is 0-based: optimiser step i + 1
        if i + 1 == step:
            first = batches[0][1][: self.stats.micro_batch]
            self.task.loss(self.model, self.head, self.batcher(self.data.train, first, train=True))
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, i, batches)

    Trainer._accumulate = accumulate


if os.environ.get("XMBENCH_TEST_KILL_AT_STEP"):
    _install_kill_hook(int(os.environ["XMBENCH_TEST_KILL_AT_STEP"]))
