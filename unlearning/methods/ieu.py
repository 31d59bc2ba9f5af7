"""IEU (Influence Eliminating Unlearning): gradient ascent on the forget set, weight decay, weight noise.

Each of `ascent_steps` iterations takes a gradient-ascent step on a forget batch, with the
gradient norm clipped. It then shrinks the weights by decoupled weight decay
`w <- w * (1 - lr * weight_decay)` and adds Gaussian noise whose standard deviation is
`noise_scale` times the RMS of each parameter tensor, so the noise scales with each layer. Optional descent steps on retain batches follow
each iteration. The method follows Tran & Woo, "Efficient Unlearning through Maximizing Relearning
Convergence Delay" (arXiv 2604.09391, 2026); the exact update rules above are this library's.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from unlearning.methods.base import MethodParams, register_method
from unlearning.splits import SplitData
from unlearning.training import check_finite

VARIANTS = {
    "full": (True, True, True),
    "noise_only": (False, True, False),
    "ascent_only": (True, False, False),
    "ascent_noise": (True, True, False),
    "ascent_decay": (True, False, True),
}
"""Ablation switches: variant -> (gradient ascent, noise, weight decay)."""


class IEUParams(MethodParams):
    """IEU hyperparameters.

    Args:
        ascent_steps: iterations of ascent, decay and noise.
        lr: step size of the gradient ascent, of the decay factor and of the retain descent.
        noise_scale: noise standard deviation relative to each parameter tensor's RMS.
        weight_decay: decoupled decay coefficient; the weights shrink by `lr * weight_decay` per step.
        grad_clip: maximum gradient norm of an ascent step; 0 disables clipping.
        batch_size: forget (and retain) samples per step.
        retain_steps: descent steps on retain batches after each ascent step (default 0, no retain data).
        variant: ablation; "full" uses all three parts, the others drop some of them.
    """

    ascent_steps: int = Field(20, ge=0, le=100_000)
    lr: float = Field(0.01, gt=0)
    noise_scale: float = Field(0.01, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(5.0, ge=0)
    batch_size: int = Field(32, ge=1)
    retain_steps: int = Field(0, ge=0)
    variant: Literal["full", "noise_only", "ascent_only", "ascent_noise", "ascent_decay"] = "full"


def _sample_batch(num_samples: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(num_samples, (min(batch_size, num_samples),), generator=generator)


def _gradient_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: IEUParams, ascend: bool, what: str) -> None:
    """Take one clipped gradient step on the cross-entropy of (x, y): ascent on forget batches, descent on retain batches."""
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    check_finite(loss, what)
    loss.backward()
    if params.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
    step_size = params.lr if ascend else -params.lr
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter.add_(parameter.grad, alpha=step_size)


@torch.no_grad()
def _decay(model: nn.Module, params: IEUParams) -> None:
    factor = 1.0 - params.lr * params.weight_decay
    for parameter in model.parameters():
        parameter.mul_(factor)


@torch.no_grad()
def _add_noise(model: nn.Module, params: IEUParams, generator: torch.Generator) -> None:
    for parameter in model.parameters():
        rms = parameter.pow(2).mean().sqrt()
        noise = torch.randn(parameter.shape, generator=generator, device=parameter.device, dtype=parameter.dtype)
        parameter.add_(noise * (params.noise_scale * rms))


@register_method(
    "ieu",
    IEUParams,
    "Gradient ascent on the forget set, decoupled weight decay and RMS-relative weight noise.",
    needs_retain=False,
)
def influence_eliminating_unlearning(
    model: nn.Module, data: SplitData, params: IEUParams, device: torch.device, seed: int
) -> nn.Module:
    """Unlearn the forget set with IEU; the ablation `variant` chooses which of the three parts run."""
    use_ascent, use_noise, use_decay = VARIANTS[params.variant]
    batch_generator = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator(device=device).manual_seed(seed + 1)
    model.train()

    for step in range(1, params.ascent_steps + 1):
        if use_ascent:
            batch = _sample_batch(len(data.y_forget), params.batch_size, batch_generator)
            _gradient_step(model, data.x_forget[batch], data.y_forget[batch], params, True, f"IEU forget loss at step {step}")
        if use_decay and params.weight_decay > 0:
            _decay(model, params)
        if use_noise and params.noise_scale > 0:
            _add_noise(model, params, noise_generator)
        for _ in range(params.retain_steps):
            batch = _sample_batch(len(data.y_retain), params.batch_size, batch_generator)
            _gradient_step(model, data.x_retain[batch], data.y_retain[batch], params, False, f"IEU retain loss at step {step}")

    model.zero_grad(set_to_none=True)
    return model
