"""Accuracy-based unlearning metrics: forget, retain and test accuracy, UA, and weight distance."""

from __future__ import annotations

import math

import torch
from torch import nn

from unlearning.splits import SplitData
from unlearning.training import accuracy


def accuracies(model: nn.Module, data: SplitData) -> dict[str, float]:
    """Return `forget_acc`, `retain_acc`, `test_acc` and `ua` (1 - forget_acc), all fractions in [0, 1]."""
    forget_acc = accuracy(model, data.x_forget, data.y_forget)
    return {
        "forget_acc": forget_acc,
        "retain_acc": accuracy(model, data.x_retain, data.y_retain),
        "test_acc": accuracy(model, data.x_test, data.y_test),
        "ua": 1.0 - forget_acc,
    }


@torch.no_grad()
def weight_distance(model: nn.Module, reference_state: dict[str, torch.Tensor]) -> float:
    """Return the L2 norm of the difference between the model's parameters and the reference weights."""
    squared = 0.0
    for name, parameter in model.named_parameters():
        reference = reference_state[name].to(parameter.device, parameter.dtype)
        squared += torch.sum((parameter - reference) ** 2).item()
    return math.sqrt(squared)
