"""One evaluator per split that scores unlearned models against the original and retrain references."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from unlearning.metrics.classification import accuracies, weight_distance
from unlearning.metrics.mia import mia_efficacy
from unlearning.metrics.rcd import (
    RcdConfig,
    RcdMeasurement,
    RcdProtocol,
    RelearningRun,
    rcd_metrics,
)
from unlearning.references import References
from unlearning.splits import SplitData
from unlearning.training import DivergenceError

logger = logging.getLogger(__name__)

GAP_METRICS = ("ua", "retain_acc", "test_acc", "mia")

METRIC_NAMES = (
    "forget_acc",
    "retain_acc",
    "test_acc",
    "ua",
    "mia",
    "avg_gap",
    "retain_acc_loss",
    "test_acc_loss",
    "weight_distance",
    "runtime_s",
    "rcd_steps",
    "rcd_steps_std",
    "rcd",
    "rcd_censored",
)
"""Metrics every evaluation returns; `rcd_loss` and `rcd_accuracy` are added where reached."""


@dataclass
class Evaluation:
    """Metrics of one model and its averaged relearning curve."""

    metrics: dict[str, float]
    curve: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class ReferenceMeasurements:
    """Metrics and relearning measurements of the original and retrain models.

    Measuring them is the slow part of building an evaluator (the retrain model relearns for
    hundreds of steps per seed), so a caller may keep them and pass them to the next evaluator on
    the same references, protocol and hardware. They convert to and from plain JSON values.
    """

    original_metrics: dict[str, float]
    original_rcd: RcdMeasurement
    retrain_metrics: dict[str, float]
    retrain_rcd: RcdMeasurement

    def to_dict(self) -> dict[str, Any]:
        """Return the measurements as JSON-serializable values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ReferenceMeasurements":
        """Rebuild measurements from `to_dict` output."""
        def measurement(raw: dict[str, Any]) -> RcdMeasurement:
            return RcdMeasurement(raw["criterion"], raw["max_steps"], [RelearningRun(**run) for run in raw["runs"]])

        return cls(
            original_metrics=dict(values["original_metrics"]),
            original_rcd=measurement(values["original_rcd"]),
            retrain_metrics=dict(values["retrain_metrics"]),
            retrain_rcd=measurement(values["retrain_rcd"]),
        )


class UnlearningEvaluator:
    """Scores models on one split with the metrics of the unlearning literature plus RCD.

    Building the evaluator measures both references once: the original model (which also fixes the
    RCD thresholds) and the retrain model (which normalizes RCD and is the target of `avg_gap`).

    Args:
        data: the split's tensors, on the device the evaluation runs on.
        references: the original and retrain weights.
        rcd_config: the relearning protocol.
        mia_max_samples: members and non-members used to fit the MIA classifier, each.
        mia_seed: seed of the MIA subsamples.
        measured: reference measurements taken earlier with the same references, protocol, MIA
            settings and hardware; None measures the references here.
    """

    def __init__(
        self,
        data: SplitData,
        references: References,
        rcd_config: RcdConfig | None = None,
        *,
        mia_max_samples: int = 1000,
        mia_seed: int = 0,
        measured: ReferenceMeasurements | None = None,
    ):
        self.data = data
        self.references = references
        self.rcd_config = rcd_config or RcdConfig()
        self.mia_max_samples = mia_max_samples
        self.mia_seed = mia_seed
        self.device = data.x_forget.device

        original = references.original(self.device)
        retrain = references.retrain(self.device)
        self.protocol = RcdProtocol(self.rcd_config, data, original, retrain)
        if measured is None:
            measured = ReferenceMeasurements(
                original_metrics=self._base_metrics(original),
                original_rcd=self.protocol.measure(original),
                retrain_metrics=self._base_metrics(retrain),
                retrain_rcd=self.protocol.measure(retrain),
            )
        self.measurements = measured
        self.original_metrics = measured.original_metrics
        self.original_rcd = measured.original_rcd
        self.retrain_metrics = measured.retrain_metrics
        self.retrain_rcd = measured.retrain_rcd
        logger.info(
            "RCD references: retrain needs %.1f relearning steps (censored: %s), original %.1f.",
            self.retrain_rcd.steps,
            self.retrain_rcd.censored,
            self.original_rcd.steps,
        )
        if self.retrain_rcd.censored:
            logger.warning(
                "The retrain model did not relearn the forget set within rcd.max_steps=%d, so every rcd value "
                "is normalized by a lower bound. Raise rcd.max_steps or rcd.lr, or loosen rcd.relative_tol.",
                self.rcd_config.max_steps,
            )

        self.reference_evaluations = {
            "original": self._complete(original, self.original_metrics, self.original_rcd, 0.0),
            "retrain": self._complete(retrain, self.retrain_metrics, self.retrain_rcd, math.nan),
        }

    def to(self, device: torch.device | str) -> "UnlearningEvaluator":
        """Return this evaluator with its data on `device`; the reference measurements are kept, not redone."""
        device = torch.device(device)
        if device == self.device:
            return self
        moved = copy.copy(self)
        moved.data = SplitData(**{name: _move(value, device) for name, value in vars(self.data).items()})
        moved.protocol = copy.copy(self.protocol)
        moved.protocol.data = moved.data
        moved.device = device
        return moved

    def _base_metrics(self, model: nn.Module) -> dict[str, float]:
        metrics = accuracies(model, self.data)
        metrics["mia"] = mia_efficacy(model, self.data, max_samples=self.mia_max_samples, seed=self.mia_seed)
        return metrics

    def _complete(
        self, model: nn.Module, metrics: dict[str, float], measurement: RcdMeasurement, runtime_s: float
    ) -> Evaluation:
        metrics = dict(metrics)
        metrics["avg_gap"] = sum(abs(metrics[name] - self.retrain_metrics[name]) for name in GAP_METRICS) / len(GAP_METRICS)
        metrics["retain_acc_loss"] = self.original_metrics["retain_acc"] - metrics["retain_acc"]
        metrics["test_acc_loss"] = self.original_metrics["test_acc"] - metrics["test_acc"]
        metrics["weight_distance"] = weight_distance(model, self.references.original_state)
        metrics["runtime_s"] = runtime_s
        metrics.update(rcd_metrics(measurement, self.retrain_rcd))
        return Evaluation(metrics=metrics, curve=measurement.mean_curve())

    def evaluate(self, model: nn.Module, runtime_s: float = math.nan) -> Evaluation:
        """Return every metric of `model`, including its RCD against the retrain reference.

        Raises:
            DivergenceError: if a metric is NaN or infinite (the runtime may be NaN when unknown).
        """
        model = model.to(self.device).eval()
        evaluation = self._complete(model, self._base_metrics(model), self.protocol.measure(model), runtime_s)
        bad = [name for name, value in evaluation.metrics.items() if name != "runtime_s" and not math.isfinite(value)]
        if bad:
            raise DivergenceError(f"Metrics {bad} are NaN or infinite.")
        return evaluation

    def summary(self) -> dict[str, Any]:
        """Return the reference metrics and the protocol, for logging with a run."""
        return {
            "rcd_protocol": self.rcd_config.to_dict(),
            "rcd_thresholds": dict(self.protocol.thresholds),
            "original": dict(self.reference_evaluations["original"].metrics),
            "retrain": dict(self.reference_evaluations["retrain"].metrics),
        }


def _move(value: Any, device: torch.device) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def scaled_copy(model: nn.Module, factor: float) -> nn.Module:
    """Return a copy of `model` with every parameter multiplied by `factor` (a sanity check for RCD)."""
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in scaled.parameters():
            parameter.mul_(factor)
    return scaled
