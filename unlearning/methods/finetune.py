"""FT (fine-tuning): continue training the original model on the retain set only.

The forget set is never used. Forgetting comes from catastrophic forgetting while the model keeps
fitting the retain set, so FT preserves retain accuracy but often leaves random-forget samples
classified as before. The l1-sparse baseline reuses this loop with an added penalty.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from unlearning.methods.base import register_method
from unlearning.methods.common import (
    SupervisedTrainingParams,
    batch_schedule,
    count_steps,
    take_step,
)
from unlearning.splits import SplitData
from unlearning.training import make_optimizer


class RetainTrainingParams(SupervisedTrainingParams):
    """Hyperparameters of supervised training on the retain set, shared by FT and l1-sparse.

    The training samples of `SupervisedTrainingParams` are the retain set alone.
    """


class FinetuneParams(RetainTrainingParams):
    """FT hyperparameters: exactly those of `RetainTrainingParams`."""


Penalty = Callable[[nn.Module, int], torch.Tensor]
"""An extra loss term given the model and the step index, from 0 to the total step count minus one."""


def finetune_on_retain(
    model: nn.Module, data: SplitData, params: RetainTrainingParams, seed: int, penalty: Penalty | None = None, name: str = "FT"
) -> nn.Module:
    """Train `model` in place on the retain set with cross-entropy plus an optional `penalty`."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model.parameters(), params.optimizer, params.lr, params.momentum, params.weight_decay)
    model.train()

    schedule = batch_schedule(len(data.y_retain), params.batch_size, params.epochs, params.steps, generator)
    for step, (_, batch) in enumerate(schedule):
        loss = F.cross_entropy(model(data.x_retain[batch]), data.y_retain[batch])
        if penalty is not None:
            loss = loss + penalty(model, step)
        take_step(model, optimizer, loss, f"{name} retain loss at step {step + 1}")

    model.zero_grad(set_to_none=True)
    return model


def total_steps(data: SplitData, params: RetainTrainingParams) -> int:
    """Return the optimizer steps that `finetune_on_retain` takes with `params`."""
    return count_steps(len(data.y_retain), params.batch_size, params.epochs, params.steps)


@register_method("finetune", FinetuneParams, "Fine-tuning on the retain set only (FT).")
def finetune(model: nn.Module, data: SplitData, params: FinetuneParams, device: torch.device, seed: int) -> nn.Module:
    """Unlearn by fine-tuning on the retain set."""
    return finetune_on_retain(model, data, params, seed)
