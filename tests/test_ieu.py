"""IEU: the method registry contract, ablations, divergence, determinism and the RCD trend."""

from __future__ import annotations

import pytest
import torch

from unlearning.methods import MethodError, get_method, run_method
from unlearning.training import DivergenceError

# Settings from the digits random search: lr 0.025 with one retain step per ascent step raises
# the forget-specific loss, and more ascent steps raise it further.
TREND_PARAMS = {"lr": 0.025, "noise_scale": 0.0044, "weight_decay": 0.012, "retain_steps": 1}


def weights_equal(first, second) -> bool:
    return all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))


def test_more_ascent_steps_raise_rcd(digits_evaluator, digits_references, digits_data):
    delays = []
    for steps in (60, 120, 180):
        outcome = run_method("ieu", digits_references.original(), digits_data, {**TREND_PARAMS, "ascent_steps": steps}, device="cpu")
        delays.append(digits_evaluator.evaluate(outcome.model, outcome.runtime_s).metrics["rcd_steps"])

    assert delays[0] < delays[1] < delays[2]
    assert delays[2] > digits_evaluator.retrain_rcd.steps


def test_original_left_untouched(digits_references, digits_data):
    original = digits_references.original()
    before = {name: tensor.clone() for name, tensor in original.state_dict().items()}

    run_method("ieu", original, digits_data, {"ascent_steps": 5}, device="cpu")

    assert all(torch.equal(before[name], tensor) for name, tensor in original.state_dict().items())


def test_same_seed_same_model(digits_references, digits_data):
    params = {"ascent_steps": 10, "noise_scale": 0.05, "weight_decay": 0.1}
    first = run_method("ieu", digits_references.original(), digits_data, params, seed=4, device="cpu")
    second = run_method("ieu", digits_references.original(), digits_data, params, seed=4, device="cpu")
    other = run_method("ieu", digits_references.original(), digits_data, params, seed=5, device="cpu")

    assert weights_equal(first.model, second.model)
    assert not weights_equal(first.model, other.model)


def test_same_seed_same_metrics(digits_evaluator, digits_references, digits_data):
    params = {**TREND_PARAMS, "ascent_steps": 60}
    runs = [run_method("ieu", digits_references.original(), digits_data, params, device="cpu") for _ in range(2)]
    metrics = [digits_evaluator.evaluate(run.model, 0.0).metrics for run in runs]

    assert metrics[0] == metrics[1]


def test_noise_only_ignores_forget_gradient(digits_references, digits_data):
    """With noise 0, the noise-only ablation must leave every weight unchanged."""
    outcome = run_method("ieu", digits_references.original(), digits_data, {"variant": "noise_only", "noise_scale": 0.0, "lr": 1.0, "weight_decay": 1.0}, device="cpu")

    assert weights_equal(outcome.model, digits_references.original())


def test_ascent_only_skips_noise_and_decay(digits_references, digits_data):
    params = {"ascent_steps": 5, "lr": 0.01, "weight_decay": 5.0, "noise_scale": 0.5}
    ascent_only = run_method("ieu", digits_references.original(), digits_data, {**params, "variant": "ascent_only"}, device="cpu")
    plain = run_method("ieu", digits_references.original(), digits_data, {**params, "noise_scale": 0.0, "weight_decay": 0.0}, device="cpu")

    assert weights_equal(ascent_only.model, plain.model)


@pytest.mark.parametrize("variant", ["full", "noise_only", "ascent_only", "ascent_noise", "ascent_decay"])
def test_every_variant_runs(variant, digits_references, digits_data):
    outcome = run_method("ieu", digits_references.original(), digits_data, {"ascent_steps": 3, "variant": variant}, device="cpu")

    assert outcome.runtime_s >= 0.0
    assert not weights_equal(outcome.model, digits_references.original()) or variant == "noise_only"


def test_decay_shrinks_weights(digits_references, digits_data):
    outcome = run_method("ieu", digits_references.original(), digits_data, {"variant": "ascent_decay", "ascent_steps": 1, "lr": 1e-8, "weight_decay": 1e7, "grad_clip": 0.0}, device="cpu")
    original_norm = sum(p.norm().item() ** 2 for p in digits_references.original().parameters())
    decayed_norm = sum(p.norm().item() ** 2 for p in outcome.model.parameters())

    assert decayed_norm == pytest.approx(0.81 * original_norm, rel=1e-3)


def test_huge_learning_rate_diverges(digits_references, digits_data):
    with pytest.raises(DivergenceError):
        run_method("ieu", digits_references.original(), digits_data, {"ascent_steps": 50, "lr": 1e6, "weight_decay": 1.0}, device="cpu")


@pytest.mark.parametrize(
    "params, field",
    [({"ascent_steps": -1}, "ascent_steps"), ({"lr": 0}, "lr"), ({"variant": "noise"}, "variant"), ({"alpha": 1}, "alpha")],
)
def test_invalid_params_rejected(params, field, digits_references, digits_data):
    with pytest.raises(MethodError) as error:
        run_method("ieu", digits_references.original(), digits_data, params, device="cpu")
    assert field in str(error.value)


def test_unknown_method_rejected():
    with pytest.raises(MethodError) as error:
        get_method("fisher")
    assert "ieu" in str(error.value)
