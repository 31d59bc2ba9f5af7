"""Unlearning metrics: accuracies and UA, MIA efficacy, weight distance and RCD."""

from unlearning.metrics.classification import accuracies, weight_distance
from unlearning.metrics.mia import mia_efficacy, true_label_confidence
from unlearning.metrics.rcd import RcdConfig, RcdError, RcdMeasurement, RcdProtocol, rcd_metrics

__all__ = [
    "RcdConfig",
    "RcdError",
    "RcdMeasurement",
    "RcdProtocol",
    "accuracies",
    "mia_efficacy",
    "rcd_metrics",
    "true_label_confidence",
    "weight_distance",
]
