"""The Ray Tune trainable: apply one configuration of the method and report every metric once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray import tune

from unlearning.device import resolve_device
from unlearning.evaluation import UnlearningEvaluator
from unlearning.methods import run_method
from unlearning.training import DivergenceError

logger = logging.getLogger(__name__)

CURVE_KEY = "relearning_curve_json"


class TrialDivergedError(RuntimeError):
    """Raised by a trial whose unlearning or metrics produced NaN or infinite values."""


@dataclass
class TrialContext:
    """Shared state of all trials, built once by the driver and passed through Ray's object store.

    Args:
        evaluator: the split, the references and their measured RCD, on the CPU.
        method: registry name of the unlearning method.
        fixed_params: method hyperparameters that are not searched.
        method_seed: seed of the unlearning run.
        device: "auto", "cpu" or "cuda"; "auto" uses the GPU Ray assigned to the trial, if any.
        threads: torch threads per trial, matched to the trial's CPU reservation.
    """

    evaluator: UnlearningEvaluator
    method: str
    fixed_params: dict[str, Any] = field(default_factory=dict)
    method_seed: int = 0
    device: str = "auto"
    threads: int = 1


def trial_device(requested: str) -> torch.device:
    """Choose the trial's device: the GPU Ray assigned when there is one, else the CPU.

    Ray restricts CUDA_VISIBLE_DEVICES to the trial's GPUs, so "cuda" means the first assigned one.
    """
    if requested != "auto":
        return resolve_device(requested)
    assigned = ray.get_gpu_ids() if ray.is_initialized() else []
    if assigned and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def evaluate_configuration(context: TrialContext, params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Unlearn with `params` and return all metrics plus the relearning curve as JSON.

    Raises:
        TrialDivergedError: if the method or a metric produced NaN or infinite values.
    """
    evaluator = context.evaluator.to(device)
    original = evaluator.references.original(device)
    merged = {**context.fixed_params, **params}

    try:
        outcome = run_method(context.method, original, evaluator.data, merged, seed=context.method_seed, device=device)
        evaluation = evaluator.evaluate(outcome.model, outcome.runtime_s)
    except DivergenceError as error:
        raise TrialDivergedError(f"Diverged with {merged}: {error}") from error

    # `evaluate` has already raised DivergenceError for a NaN or infinite metric; runtime_s is always finite here.
    result: dict[str, Any] = dict(evaluation.metrics)
    result[CURVE_KEY] = json.dumps(evaluation.curve)
    result["device"] = str(device)
    return result


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Ray Tune function trainable: one unlearning run, one report at the end."""
    torch.set_num_threads(max(1, context.threads))
    device = trial_device(context.device)
    result = evaluate_configuration(context, config, device)
    tune.report(result)
