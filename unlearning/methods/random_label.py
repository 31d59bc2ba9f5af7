"""RL (random labels): train on the forget set with wrong labels, mixed with the retain set.

Each pass draws a new label for every forget sample, uniformly among the classes other than its
true one, so a forget sample is never trained towards its own label. The relabelled forget set and
the retain set are shuffled together and trained on in the same batches, so every step also
fits retain samples, in their natural proportion to the forget samples. Some reference
implementations differ on both points: they allow a random label to equal the true one, or they
train on the forget and retain sets in separate loops.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from unlearning.methods.base import MethodError, register_method
from unlearning.methods.common import (
    Stepper,
    SupervisedTrainingParams,
    batch_schedule,
    take_step,
)
from unlearning.splits import SplitData
from unlearning.training import make_optimizer


class RandomLabelTrainingParams(SupervisedTrainingParams):
    """Hyperparameters of training with random wrong labels, shared by RL and SalUn.

    The training samples of `SupervisedTrainingParams` are the relabelled forget set and the
    retain set together: each pass covers both, mixes them in every batch and draws new labels.
    """


class RandomLabelParams(RandomLabelTrainingParams):
    """RL hyperparameters: exactly those of `RandomLabelTrainingParams`."""


def random_wrong_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Return a label for each entry of `labels`, drawn uniformly from the other `num_classes - 1` classes.

    Adding an offset in [1, num_classes - 1] modulo `num_classes` never returns the true label
    and reaches each other class with equal probability.
    """
    if num_classes < 2:
        raise MethodError(f"Random wrong labels need at least 2 classes, got {num_classes}.")
    offsets = torch.randint(1, num_classes, labels.shape, generator=generator)
    return (labels + offsets.to(labels.device)) % num_classes


def train_with_random_labels(
    model: nn.Module, data: SplitData, params: RandomLabelTrainingParams, optimizer: Stepper, seed: int, name: str = "RL"
) -> nn.Module:
    """Train `model` in place on the relabelled forget set and the retain set, shuffled together."""
    generator = torch.Generator().manual_seed(seed)
    num_forget = len(data.y_forget)
    model.train()

    current_pass = -1
    schedule = batch_schedule(num_forget + len(data.y_retain), params.batch_size, params.epochs, params.steps, generator)
    for step, (pass_number, batch) in enumerate(schedule, start=1):
        if pass_number != current_pass:
            forget_labels = random_wrong_labels(data.y_forget, data.num_classes, generator)
            current_pass = pass_number

        # Indices below num_forget address the forget set, the others the retain set.
        forget_batch = batch[batch < num_forget]
        retain_batch = batch[batch >= num_forget] - num_forget
        x = torch.cat((data.x_forget[forget_batch], data.x_retain[retain_batch]))
        y = torch.cat((forget_labels[forget_batch], data.y_retain[retain_batch]))
        take_step(model, optimizer, F.cross_entropy(model(x), y), f"{name} loss at step {step}")

    model.zero_grad(set_to_none=True)
    return model


@register_method("random_label", RandomLabelParams, "Training on forget samples with random wrong labels, mixed with retain samples (RL).")
def random_label(model: nn.Module, data: SplitData, params: RandomLabelParams, device: torch.device, seed: int) -> nn.Module:
    """Unlearn with random wrong labels on the forget set, trained together with the retain set."""
    optimizer = make_optimizer(model.parameters(), params.optimizer, params.lr, params.momentum, params.weight_decay)
    return train_with_random_labels(model, data, params, optimizer, seed)
