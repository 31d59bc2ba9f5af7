"""SalUn: random-label unlearning restricted to the weights most salient for the forget set.

Following Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in
Both Image Classification and Generation" (ICLR 2024), the method runs in two stages.

1. Saliency mask. The saliency of a weight is the magnitude of the gradient of the mean
   forget-set cross-entropy with respect to it, accumulated over the whole forget set. One
   global threshold over every parameter entry of the model (not one per layer) keeps the
   `mask_fraction` most salient entries trainable. Layers differ in gradient scale, and a
   global ranking lets the layers that matter most for the forget set take most of the budget.
   The number kept is `round(mask_fraction * N)` for N entries, at least 1. Ties are broken by
   position: a stable sort keeps the entry that comes first in `named_parameters()` order.
2. RL on the masked weights, exactly as the `random_label` method trains. Masked-out entries
   stay bit-identical to the original: before each optimizer step their gradients are zeroed,
   after it their values are restored from a copy of the original weights and their momentum
   and Adam moments are zeroed. Zeroing gradients alone would not be enough, because weight
   decay and momentum still move weights whose gradient is zero.

Buffers, such as batch-norm running statistics, are not weights and the mask does not cover them.
The saliency pass runs in eval mode, so it changes no buffer and uses the running statistics. The
RL stage runs in train mode like `random_label`, so batch-norm statistics are re-estimated from
the relabelled batches. With `mask_fraction` 1 the method is therefore identical to `random_label`.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from unlearning.methods.base import MethodError, register_method
from unlearning.methods.random_label import (
    RandomLabelTrainingParams,
    train_with_random_labels,
)
from unlearning.splits import SplitData
from unlearning.training import check_finite, make_optimizer

_PER_WEIGHT_STATE = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
"""Optimizer state entries of SGD and Adam that hold one value per weight."""


class SalunParams(RandomLabelTrainingParams):
    """SalUn hyperparameters: those of `RandomLabelTrainingParams` plus the mask size.

    Args:
        mask_fraction: share of all parameter entries that stays trainable, chosen by forget-set
            saliency with one global threshold (default 0.5).
    """

    mask_fraction: float = Field(0.5, gt=0, le=1)


def saliency_mask(
    model: nn.Module, x_forget: torch.Tensor, y_forget: torch.Tensor, mask_fraction: float, batch_size: int = 256
) -> dict[str, torch.Tensor]:
    """Return a boolean mask per parameter name that is True for the `mask_fraction` most salient entries.

    The model's weights, buffers and train/eval mode are left as they were.

    Raises:
        DivergenceError: if the forget loss is NaN or infinite.
    """
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)

    num_forget = len(y_forget)
    for start in range(0, num_forget, batch_size):
        x, y = x_forget[start : start + batch_size], y_forget[start : start + batch_size]
        loss = F.cross_entropy(model(x), y, reduction="sum") / num_forget
        check_finite(loss, "SalUn forget loss of the saliency pass")
        loss.backward()

    named = list(model.named_parameters())
    saliency = [
        parameter.grad.abs().flatten() if parameter.grad is not None else torch.zeros(parameter.numel(), device=parameter.device)
        for _, parameter in named
    ]
    model.zero_grad(set_to_none=True)
    model.train(was_training)

    flat = torch.cat(saliency)
    num_kept = min(flat.numel(), max(1, round(mask_fraction * flat.numel())))
    ranking = torch.sort(flat, descending=True, stable=True).indices
    keep = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[ranking[:num_kept]] = True

    masks = torch.split(keep, [parameter.numel() for _, parameter in named])
    return {name: mask.view_as(parameter) for (name, parameter), mask in zip(named, masks)}


class MaskedOptimizer:
    """An optimizer wrapper that updates only the entries where the mask is True.

    Args:
        optimizer: the wrapped optimizer, built over `model.parameters()`.
        model: the model whose parameters the mask covers.
        mask: boolean tensor per parameter name, with exactly the names of `model.named_parameters()`.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module, mask: dict[str, torch.Tensor]):
        names = [name for name, _ in model.named_parameters()]
        if set(mask) != set(names):
            missing, extra = sorted(set(names) - set(mask)), sorted(set(mask) - set(names))
            raise MethodError(f"The SalUn mask does not match the model's parameters: missing {missing}, unknown {extra}.")
        self.optimizer = optimizer
        self.entries = []
        for name, parameter in model.named_parameters():
            frozen = ~mask[name].to(parameter.device)
            if frozen.shape != parameter.shape:
                raise MethodError(f"The SalUn mask of {name!r} has shape {tuple(frozen.shape)}, expected {tuple(parameter.shape)}.")
            self.entries.append((parameter, frozen, parameter.detach().clone()))

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        """Take the wrapped step on the trainable entries and put the frozen ones back to their original values."""
        for parameter, frozen, _ in self.entries:
            if parameter.grad is not None:
                parameter.grad.masked_fill_(frozen, 0.0)

        self.optimizer.step()

        for parameter, frozen, original in self.entries:
            parameter.copy_(torch.where(frozen, original, parameter))
            state = self.optimizer.state.get(parameter, {})
            for key in _PER_WEIGHT_STATE:
                if isinstance(state.get(key), torch.Tensor):
                    state[key].masked_fill_(frozen, 0.0)


@register_method("salun", SalunParams, "Random labels on the forget set, updating only the weights most salient for it (SalUn).")
def salun(model: nn.Module, data: SplitData, params: SalunParams, device: torch.device, seed: int) -> nn.Module:
    """Unlearn with RL restricted to the weights most salient for the forget set."""
    mask = saliency_mask(model, data.x_forget, data.y_forget, params.mask_fraction, params.batch_size)
    optimizer = make_optimizer(model.parameters(), params.optimizer, params.lr, params.momentum, params.weight_decay)
    masked = MaskedOptimizer(optimizer, model, mask)
    return train_with_random_labels(model, data, params, masked, seed, name="SalUn")
