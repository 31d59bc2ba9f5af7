"""Supervised training loops and batched inference, shared by references, methods and relearning."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from unlearning.models import ModelSpec, build_model

logger = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adam")


class TrainingError(ValueError):
    """Raised for an invalid training recipe."""


class DivergenceError(FloatingPointError):
    """Raised when a loss or a weight becomes NaN or infinite.

    The sweep orchestrator catches this type to record a trial as failed instead of reporting NaN.
    """


@dataclass(frozen=True)
class TrainingRecipe:
    """Training recipe of the original and retrain models.

    Args:
        epochs: passes over the training set.
        batch_size: samples per optimizer step.
        lr: learning rate.
        optimizer: "adam" or "sgd".
        momentum: SGD momentum (ignored by Adam).
        weight_decay: L2 penalty added by the optimizer.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f"Unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainingError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}.")
        if not self.lr > 0:
            raise TrainingError(f"Learning rate must be positive, got {self.lr}.")

    def to_dict(self) -> dict[str, object]:
        """Return the recipe as a plain dict, for cache keys and logging."""
        return asdict(self)


def make_optimizer(
    parameters, name: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Build an SGD or Adam optimizer by name."""
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    raise TrainingError(f"Unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}.")


def shuffled_batches(
    num_samples: int, batch_size: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """Yield index batches that cover `num_samples` once in a random order drawn from `generator`."""
    order = torch.randperm(num_samples, generator=generator)
    for start in range(0, num_samples, batch_size):
        yield order[start : start + batch_size]


def check_finite(value: torch.Tensor, what: str) -> None:
    """Raise `DivergenceError` if `value` contains NaN or infinity."""
    if not torch.isfinite(value).all():
        raise DivergenceError(f"{what} became NaN or infinite.")


def check_finite_weights(model: nn.Module, what: str = "model weights") -> None:
    """Raise `DivergenceError` if any parameter of `model` is NaN or infinite."""
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter).all():
            raise DivergenceError(f"Parameter {name!r} of the {what} became NaN or infinite.")


def init_model(spec: ModelSpec, seed: int, device: torch.device | str = "cpu") -> nn.Module:
    """Build a model with weights drawn from `seed`, without touching torch's global generator state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec)
    return model.to(device)


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: TrainingRecipe,
    seed: int,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Train `model` in place on (x, y) with cross-entropy and return it.

    Args:
        model: the network to train, already on `device`.
        x, y: training inputs and labels.
        recipe: optimizer, learning rate, epochs and batch size.
        seed: seed of the batch order.
        device: where the batches are moved before each step.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(
        model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay
    )
    x = x.to(device)
    y = y.to(device)

    model.train()
    for epoch in range(recipe.epochs):
        total_loss = 0.0
        for batch in shuffled_batches(len(y), recipe.batch_size, generator):
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(batch)
        mean_loss = total_loss / len(y)
        if not math.isfinite(mean_loss):
            raise DivergenceError(f"Training loss became {mean_loss} in epoch {epoch + 1}.")
        logger.debug("epoch %d/%d: loss %.4f", epoch + 1, recipe.epochs, mean_loss)
    model.eval()
    return model


EVAL_BATCH_SIZE = 256
"""Samples per forward pass in evaluation. On CPU the CNN evaluated 1024 MNIST images 1.3 to 2.1
times as fast in batches of 256 as in one batch, and digits as fast (benchmarks/model_speed.py)."""


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    """Return the model's logits for `x`, computed in eval mode and in batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = [model(x[start : start + batch_size].to(device)) for start in range(0, len(x), batch_size)]
    model.train(was_training)
    if not outputs:
        return torch.empty(0, 0, device=device)
    return torch.cat(outputs)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Return the fraction of samples in (x, y) that `model` classifies correctly (0.0 for no sample)."""
    if len(y) == 0:
        return 0.0
    predictions = predict_logits(model, x, batch_size).argmax(dim=1)
    return (predictions == y.to(predictions.device)).float().mean().item()
