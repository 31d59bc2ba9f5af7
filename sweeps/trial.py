"""The Ray Tune trainable: apply one configuration of the method and report every metric once."""

from __future__ import annotations

import json
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
import torch
from ray import tune

from sweeps.plugins import load_plugins
from unlearning.device import resolve_device
from unlearning.evaluation import UnlearningEvaluator
from unlearning.methods import run_method
from unlearning.training import DivergenceError

logger = logging.getLogger(__name__)

CURVE_KEY = "relearning_curve_json"
PLACEMENT_KEYS = ("device", "node_id", "gpu_ids", "references")
"""String results that record where a trial ran and which references it was measured against; MLflow records them as tags."""
TIMING_KEYS = ("started_at", "finished_at")
"""Wall-clock bounds of the trial's work in epoch seconds; they become the child run's start and end times."""


class TrialDivergedError(RuntimeError):
    """Raised by a trial whose unlearning or metrics produced NaN or infinite values."""


class TrialTimeoutError(TimeoutError):
    """Raised by a trial that ran longer than the sweep's `trial_timeout_s`."""


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
        timeout_s: wall-time limit of one trial in seconds; None means no limit.
        plugins: modules imported in the trial's process before the method is looked up.
    """

    evaluator: UnlearningEvaluator
    method: str
    fixed_params: dict[str, Any] = field(default_factory=dict)
    method_seed: int = 0
    device: str = "auto"
    threads: int = 1
    timeout_s: float | None = None
    plugins: tuple[str, ...] = ()


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
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
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
    result["references"] = evaluator.references.key
    if device.type == "cuda":
        # Peak GPU memory of one trial shows how many trials fit on a GPU (resources.gpu = 1 / count).
        result["gpu_peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def call_with_time_limit(function: Callable[[], Any], timeout_s: float | None) -> Any:
    """Return `function()`, or raise `TrialTimeoutError` once it has run for `timeout_s` seconds.

    The work runs in a daemon thread, because PyTorch operations cannot be interrupted from
    outside. After the timeout the trial raises at once; Ray then ends the trial's worker
    process, and the abandoned thread with it.
    """
    if timeout_s is None:
        return function()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # Re-raised in the calling thread below, whatever its type.
            outcome["error"] = error

    worker = threading.Thread(target=target, name="rcd-sweep-trial", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TrialTimeoutError(
            f"Trial ran longer than trial_timeout_s={timeout_s:g} s and was stopped; raise the limit or shrink the search space."
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_trial(config: dict[str, Any], context: TrialContext) -> None:
    """Ray Tune function trainable: one unlearning run, one report at the end."""
    torch.set_num_threads(max(1, context.threads))
    load_plugins(context.plugins)
    device = trial_device(context.device)
    started_at = time.time()
    result = call_with_time_limit(lambda: evaluate_configuration(context, config, device), context.timeout_s)
    result.update(placement())
    result.update(started_at=started_at, finished_at=time.time(), peak_rss_mb=peak_rss_mb())
    tune.report(result)


def peak_rss_mb() -> float:
    """Return the peak resident memory of this worker process in MiB.

    That is the trial's own peak, or an upper bound on it when Ray reuses the process for several trials.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB and macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def placement() -> dict[str, str]:
    """Return where the trial ran: the Ray node id and the GPU ids Ray assigned, as JSON."""
    if not ray.is_initialized():
        return {"node_id": "", "gpu_ids": "[]"}
    return {"node_id": ray.get_runtime_context().get_node_id(), "gpu_ids": json.dumps([str(gpu) for gpu in ray.get_gpu_ids()])}
