"""l1-sparse: fine-tuning on the retain set with an l1 penalty on the weights that decays to zero.

The loss at step t is `CE(retain batch) + l1_coef_t * sum(|w|)`, summed over every parameter
entry (biases included; normalization buffers are not parameters). The coefficient decays
linearly over the run, `l1_coef_t = l1_coef * (1 - t / T)` for steps t = 0 .. T-1, so the
penalty first pushes the model towards a sparse solution and the last steps are almost plain
fine-tuning that restores retain accuracy. The method comes from Jia et al., "Model Sparsity Can
Simplify Machine Unlearning" (NeurIPS 2023). The coefficient decays per step rather than per
epoch, so runs budgeted in steps decay smoothly too.

The penalty is a sum, not a mean, so its gradient moves each weight by `lr * l1_coef_t` per SGD
step whatever the model's size, and one `l1_coef` range fits small and large networks alike.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from unlearning.methods.base import register_method
from unlearning.methods.finetune import (
    RetainTrainingParams,
    finetune_on_retain,
    total_steps,
)
from unlearning.splits import SplitData


class L1SparseParams(RetainTrainingParams):
    """l1-sparse hyperparameters: those of `RetainTrainingParams` plus the l1 coefficient.

    Args:
        l1_coef: l1 coefficient at the first step, decayed linearly towards 0 over the run
            (default 1e-4). With SGD it shrinks each weight by `lr * l1_coef_t` per step.
    """

    l1_coef: float = Field(1e-4, ge=0)


def l1_norm(model: nn.Module) -> torch.Tensor:
    """Return the sum of the absolute values of every parameter entry of `model`."""
    return sum(parameter.abs().sum() for parameter in model.parameters())


@register_method("l1_sparse", L1SparseParams, "Fine-tuning on the retain set with a linearly decaying l1 penalty.")
def l1_sparse(model: nn.Module, data: SplitData, params: L1SparseParams, device: torch.device, seed: int) -> nn.Module:
    """Unlearn by fine-tuning on the retain set with a decaying l1 penalty."""
    steps = total_steps(data, params)

    def decaying_l1(model: nn.Module, step: int) -> torch.Tensor:
        return params.l1_coef * (1.0 - step / steps) * l1_norm(model)

    return finetune_on_retain(model, data, params, seed, penalty=decaying_l1, name="l1-sparse")
