"""Accuracy, MIA, avg_gap and weight-distance metrics against the digits references."""

from __future__ import annotations

import math

import pytest
import torch

from unlearning.evaluation import METRIC_NAMES
from unlearning.metrics.mia import mia_efficacy
from unlearning.splits import SplitData


def test_reference_metrics_complete(digits_evaluator):
    for role in ("original", "retrain"):
        metrics = digits_evaluator.reference_evaluations[role].metrics
        missing = [name for name in METRIC_NAMES if name not in metrics]
        assert missing == [], role


def test_accuracies_are_fractions(digits_evaluator):
    metrics = digits_evaluator.reference_evaluations["original"].metrics

    for name in ("forget_acc", "retain_acc", "test_acc", "ua", "mia"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["ua"] == pytest.approx(1.0 - metrics["forget_acc"])


def test_original_against_itself(digits_evaluator):
    metrics = digits_evaluator.reference_evaluations["original"].metrics

    assert metrics["retain_acc_loss"] == 0.0
    assert metrics["test_acc_loss"] == 0.0
    assert metrics["weight_distance"] == 0.0


def test_retrain_has_zero_gap(digits_evaluator):
    metrics = digits_evaluator.reference_evaluations["retrain"].metrics

    assert metrics["avg_gap"] == 0.0
    assert metrics["weight_distance"] > 0.0


def test_retrain_forgets_more_than_original(digits_evaluator):
    original = digits_evaluator.reference_evaluations["original"].metrics
    retrain = digits_evaluator.reference_evaluations["retrain"].metrics

    assert retrain["ua"] > original["ua"]
    assert retrain["mia"] > original["mia"]


def test_avg_gap_definition(digits_evaluator):
    original = digits_evaluator.reference_evaluations["original"].metrics
    retrain = digits_evaluator.reference_evaluations["retrain"].metrics

    expected = sum(abs(original[name] - retrain[name]) for name in ("ua", "retain_acc", "test_acc", "mia")) / 4
    assert original["avg_gap"] == pytest.approx(expected)


def test_mia_counts_non_members(digits_data, digits_references):
    """A model that is uniform on the forget set gives the forget samples non-member confidence."""
    model = digits_references.original()
    data = digits_data
    uniform_forget = SplitData(
        x_forget=torch.zeros_like(data.x_forget),
        y_forget=data.y_forget,
        x_retain=data.x_retain,
        y_retain=data.y_retain,
        x_test=data.x_test,
        y_test=data.y_test,
        num_classes=data.num_classes,
    )

    on_members = mia_efficacy(model, SplitData(data.x_retain[:100], data.y_retain[:100], data.x_retain, data.y_retain, data.x_test, data.y_test, 10))
    on_blank = mia_efficacy(model, uniform_forget)

    assert on_members < 0.2
    assert on_blank > on_members


def test_evaluate_reports_runtime(digits_evaluator, digits_references):
    evaluation = digits_evaluator.evaluate(digits_references.original(), runtime_s=1.5)

    assert evaluation.metrics["runtime_s"] == 1.5
    assert math.isfinite(evaluation.metrics["rcd"])
