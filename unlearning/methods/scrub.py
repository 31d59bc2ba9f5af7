"""SCRUB: a student moves away from its teacher on the forget set and stays close on the retain set.

The teacher is a frozen copy of the original model, taken before any update and kept in eval
mode. The student is the model being unlearned. Two kinds of pass alternate, following Kurmanji
et al., "Towards Unbounded Machine Unlearning" (NeurIPS 2023):

- a max pass over the forget set takes steps that maximize `KL(teacher || student)`, the
  distillation divergence at `temperature`;
- a min pass over the retain set takes steps that minimize
  `kl_weight * KL(teacher || student) + ce_weight * CE(student, labels)`.

Each of the first `maximize_epochs` epochs runs a max pass and then a min pass, and
`minimize_only_epochs` epochs of min passes follow, so the run ends by repairing retain accuracy.
The divergence is scaled by `temperature ** 2`, as in knowledge distillation, so its gradient
keeps its size when the temperature changes. One optimizer, with a constant learning rate,
takes both kinds of step.
"""

from __future__ import annotations

import copy

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from unlearning.methods.base import MethodParams, register_method
from unlearning.methods.common import OptimizerName, Stepper, take_step
from unlearning.splits import SplitData
from unlearning.training import make_optimizer, shuffled_batches


class ScrubParams(MethodParams):
    """SCRUB hyperparameters.

    Args:
        optimizer: "sgd" (default) or "adam".
        lr: learning rate of both passes (default 0.01).
        maximize_epochs: epochs that run a max pass on the forget set before their min pass
            (`msteps` in the SCRUB code, default 2).
        minimize_only_epochs: epochs of min passes alone after those (default 1).
        temperature: softmax temperature of the distillation divergence (default 2.0).
        kl_weight: weight of the divergence to the teacher in the min pass (default 0.5).
        ce_weight: weight of the retain cross-entropy in the min pass (default 1.0).
        forget_batch_size: forget samples per max step (default 32).
        retain_batch_size: retain samples per min step (default 64).
        momentum: SGD momentum (default 0.9). Adam ignores it.
        weight_decay: L2 penalty added to the gradient by the optimizer (default 5e-4).
    """

    optimizer: OptimizerName = "sgd"
    lr: float = Field(0.01, gt=0)
    maximize_epochs: int = Field(2, ge=0, le=1000)
    minimize_only_epochs: int = Field(1, ge=0, le=1000)
    temperature: float = Field(2.0, gt=0)
    kl_weight: float = Field(0.5, ge=0)
    ce_weight: float = Field(1.0, ge=0)
    forget_batch_size: int = Field(32, ge=1)
    retain_batch_size: int = Field(64, ge=1)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)


def teacher_student_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Return `KL(teacher || student)` of the tempered softmax outputs, averaged over the batch and scaled by `temperature ** 2`."""
    student_log_probs = F.log_softmax(student_logits / temperature, dim=1)
    teacher_log_probs = F.log_softmax(teacher_logits / temperature, dim=1)
    divergence = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return divergence * temperature**2


def _max_pass(student, teacher, data: SplitData, params: ScrubParams, optimizer: Stepper, generator, epoch: int) -> None:
    for batch in shuffled_batches(len(data.y_forget), params.forget_batch_size, generator):
        x = data.x_forget[batch]
        with torch.no_grad():
            teacher_logits = teacher(x)
        loss = -teacher_student_kl(student(x), teacher_logits, params.temperature)
        take_step(student, optimizer, loss, f"SCRUB max-pass loss in epoch {epoch}")


def _min_pass(student, teacher, data: SplitData, params: ScrubParams, optimizer: Stepper, generator, epoch: int) -> None:
    for batch in shuffled_batches(len(data.y_retain), params.retain_batch_size, generator):
        x = data.x_retain[batch]
        with torch.no_grad():
            teacher_logits = teacher(x)
        student_logits = student(x)
        loss = params.kl_weight * teacher_student_kl(student_logits, teacher_logits, params.temperature)
        loss = loss + params.ce_weight * F.cross_entropy(student_logits, data.y_retain[batch])
        take_step(student, optimizer, loss, f"SCRUB min-pass loss in epoch {epoch}")


@register_method("scrub", ScrubParams, "Teacher-student unlearning: diverge from the original on forget, match it on retain (SCRUB).")
def scrub(model: nn.Module, data: SplitData, params: ScrubParams, device: torch.device, seed: int) -> nn.Module:
    """Unlearn with SCRUB's max and min passes against a frozen copy of the original model."""
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model.parameters(), params.optimizer, params.lr, params.momentum, params.weight_decay)
    model.train()

    for epoch in range(1, params.maximize_epochs + params.minimize_only_epochs + 1):
        if epoch <= params.maximize_epochs:
            _max_pass(model, teacher, data, params, optimizer, generator, epoch)
        _min_pass(model, teacher, data, params, optimizer, generator, epoch)

    model.zero_grad(set_to_none=True)
    return model
