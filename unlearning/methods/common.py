"""Building blocks of the baseline methods: step budgets, batch schedules and checked optimizer steps."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Literal, Protocol

import torch
from pydantic import Field
from torch import nn

from unlearning.methods.base import MethodParams
from unlearning.training import check_finite, shuffled_batches

OptimizerName = Literal["sgd", "adam"]


class SupervisedTrainingParams(MethodParams):
    """Hyperparameters of a supervised training loop, shared by FT, l1-sparse, RL and SalUn.

    Args:
        optimizer: "sgd" (default) or "adam".
        lr: learning rate (default 0.01).
        epochs: passes over the training samples (default 2). Ignored when `steps` is set.
        steps: optimizer steps. When set, the run takes exactly this many, reshuffling the samples
            after each pass, and `epochs` is ignored. Default None.
        batch_size: samples per step (default 64).
        momentum: SGD momentum (default 0.9). Adam ignores it.
        weight_decay: L2 penalty added to the gradient by the optimizer (default 5e-4).
    """

    optimizer: OptimizerName = "sgd"
    lr: float = Field(0.01, gt=0)
    epochs: int = Field(2, ge=0, le=10_000)
    steps: int | None = Field(None, ge=0, le=1_000_000)
    batch_size: int = Field(64, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)


class Stepper(Protocol):
    """The part of `torch.optim.Optimizer` that the training loops call."""

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def step(self) -> None: ...


def count_steps(num_samples: int, batch_size: int, epochs: int, steps: int | None) -> int:
    """Return the optimizer steps of a run: `steps` when it is set, else `epochs` passes over the samples."""
    if steps is not None:
        return steps
    return epochs * -(-num_samples // batch_size)


def batch_schedule(
    num_samples: int, batch_size: int, epochs: int, steps: int | None, generator: torch.Generator
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield `(pass number, index batch)` for a run budgeted in epochs or in steps.

    Each pass covers the samples once in a new random order drawn from `generator`. With `steps`
    set, passes follow each other until exactly `steps` batches were yielded, and `epochs` is
    ignored; otherwise the schedule is `epochs` whole passes.
    """
    if num_samples == 0:
        return
    passes = itertools.count() if steps is not None else range(epochs)
    yielded = 0
    for pass_number in passes:
        for batch in shuffled_batches(num_samples, batch_size, generator):
            if steps is not None and yielded == steps:
                return
            yield pass_number, batch
            yielded += 1


def take_step(model: nn.Module, optimizer: Stepper, loss: torch.Tensor, loss_name: str, grad_clip: float = 0.0) -> None:
    """Backpropagate `loss` and take one optimizer step, clipping the gradient norm to `grad_clip` if it is positive.

    Raises:
        DivergenceError: if the loss, or the gradient norm when clipping, is NaN or infinite.
    """
    check_finite(loss, loss_name)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        check_finite(norm, f"gradient norm of the {loss_name}")
    optimizer.step()
