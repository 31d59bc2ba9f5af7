"""GA (gradient ascent): maximize the cross-entropy of the forget set, with no retain data.

Each step minimizes the negated cross-entropy of a forget batch with SGD, after clipping the
gradient norm. The loss is unbounded, so GA eventually destroys the model: its budget (steps or
epochs times the learning rate) decides how much retain accuracy it costs. A NaN or infinite loss
or gradient norm raises `DivergenceError`.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from unlearning.methods.base import MethodParams, register_method
from unlearning.methods.common import batch_schedule, take_step
from unlearning.splits import SplitData
from unlearning.training import make_optimizer


class GradientAscentParams(MethodParams):
    """GA hyperparameters.

    Args:
        lr: SGD learning rate of the ascent (default 0.01).
        epochs: passes over the forget set (default 1). Ignored when `steps` is set.
        steps: ascent steps. When set, the run takes exactly this many, reshuffling the forget
            set after each pass, and `epochs` is ignored. Default None.
        batch_size: forget samples per step (default 32).
        grad_clip: maximum gradient norm of a step (default 5.0). 0 disables clipping.
        momentum: SGD momentum (default 0).
    """

    lr: float = Field(0.01, gt=0)
    epochs: int = Field(1, ge=0, le=10_000)
    steps: int | None = Field(None, ge=0, le=1_000_000)
    batch_size: int = Field(32, ge=1)
    grad_clip: float = Field(5.0, ge=0)
    momentum: float = Field(0.0, ge=0, lt=1)


@register_method("gradient_ascent", GradientAscentParams, "Gradient ascent on the forget-set cross-entropy (GA).", needs_retain=False)
def gradient_ascent(model: nn.Module, data: SplitData, params: GradientAscentParams, device: torch.device, seed: int) -> nn.Module:
    """Unlearn by gradient ascent on the forget set."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model.parameters(), "sgd", params.lr, params.momentum)
    model.train()

    schedule = batch_schedule(len(data.y_forget), params.batch_size, params.epochs, params.steps, generator)
    for step, (_, batch) in enumerate(schedule, start=1):
        ascent_loss = -F.cross_entropy(model(data.x_forget[batch]), data.y_forget[batch])
        take_step(model, optimizer, ascent_loss, f"GA forget loss at step {step}", params.grad_clip)

    model.zero_grad(set_to_none=True)
    return model
