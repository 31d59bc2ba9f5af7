"""RCD: the retrain reference, the original, shrunken weights, censoring and the protocol options."""

from __future__ import annotations

import pytest

from unlearning.evaluation import scaled_copy
from unlearning.metrics.rcd import (
    RcdConfig,
    RcdError,
    RcdProtocol,
    can_vectorize,
    rcd_metrics,
)
from unlearning.models import ModelSpec, build_model


def test_retrain_delay_positive_uncensored(digits_evaluator):
    retrain = digits_evaluator.retrain_rcd

    assert retrain.steps > 0
    assert retrain.censored is False
    assert digits_evaluator.reference_evaluations["retrain"].metrics["rcd"] == pytest.approx(1.0)


def test_retrain_delay_spans_ten_evaluations(digits_evaluator):
    steps = digits_evaluator.rcd_config.eval_steps()
    evaluated = [step for step in steps if step <= digits_evaluator.retrain_rcd.steps]

    assert len(evaluated) >= 10


def test_budget_covers_five_retrain_delays(digits_evaluator):
    assert digits_evaluator.rcd_config.max_steps >= 5 * digits_evaluator.retrain_rcd.steps


def test_original_scores_zero(digits_evaluator):
    metrics = digits_evaluator.reference_evaluations["original"].metrics

    assert metrics["rcd_steps"] == 0.0
    assert metrics["rcd"] == 0.0
    assert metrics["rcd_censored"] == 0.0


def test_shrunken_weights_score_low(digits_evaluator, digits_references):
    """Scaling every weight by 0.6 lowers confidence but keeps every prediction, so RCD must stay low."""
    evaluation = digits_evaluator.evaluate(scaled_copy(digits_references.original(), 0.6))

    assert evaluation.metrics["forget_acc"] > 0.95
    assert evaluation.metrics["rcd"] < 0.25


def test_small_budget_is_censored(digits_data, digits_references):
    config = RcdConfig(max_steps=5, seeds=(0,))
    protocol = RcdProtocol(config, digits_data, digits_references.original(), digits_references.retrain())

    measurement = protocol.measure(digits_references.retrain())

    assert measurement.censored is True
    assert measurement.steps == 5.0
    assert measurement.runs[0].steps[-1] == 5


def test_censored_flag_in_metrics(digits_data, digits_references, digits_evaluator):
    config = RcdConfig(max_steps=5, seeds=(0,))
    protocol = RcdProtocol(config, digits_data, digits_references.original(), digits_references.retrain())

    metrics = rcd_metrics(protocol.measure(digits_references.retrain()), digits_evaluator.retrain_rcd)

    assert metrics["rcd_censored"] == 1.0
    assert metrics["rcd_steps"] == 5.0


def test_curve_has_gap_history(digits_evaluator):
    curve = digits_evaluator.reference_evaluations["retrain"].curve

    assert curve["step"][0] == 0
    assert len(curve["step"]) == len(curve["gap"]) == len(curve["forget_loss"]) == len(curve["control_loss"])
    assert curve["gap"][0] == pytest.approx(curve["forget_loss"][0] - curve["control_loss"][0])
    assert curve["gap"][0] > curve["gap"][-1]


def test_eval_cadence_dense_then_sparse():
    steps = RcdConfig(dense_steps=3, eval_every=5, max_steps=22).eval_steps()

    assert steps == [0, 1, 2, 3, 8, 13, 18, 22]


@pytest.mark.parametrize(
    "options",
    [
        {"criterion": "loss"},
        {"criterion": "accuracy"},
        {"optimizer": "adam", "lr": 1e-3},
        {"relearn_set": "forget_plus_retain"},
        {"relearn_set": "forget_only"},
        {"relearn_set": "k_forget_plus_retain", "k": 20},
    ],
)
def test_protocol_options_measure_retrain(options, digits_data, digits_references):
    config = RcdConfig(seeds=(0,), **options)
    protocol = RcdProtocol(config, digits_data, digits_references.original(), digits_references.retrain())

    retrain = protocol.measure(digits_references.retrain())
    original = protocol.measure(digits_references.original())

    assert retrain.steps > original.steps
    assert original.steps == 0.0


def test_k_forget_excludes_relearned_samples(digits_data, digits_references):
    config = RcdConfig(relearn_set="k_forget_plus_retain", k=20, seeds=(0,))
    protocol = RcdProtocol(config, digits_data, digits_references.original(), digits_references.retrain())

    assert len(protocol.relearn_forget) == 20
    assert set(protocol.relearn_forget.tolist()).isdisjoint(protocol.eval_forget.tolist())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"criterion": "speed"}, "criterion must be one of"),
        ({"relearn_set": "test"}, "relearn_set must be one of"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"seeds": ()}, "at least one seed"),
        ({"max_steps": 0}, "max_steps must be >= 1"),
    ],
)
def test_invalid_protocol_rejected(options, message):
    with pytest.raises(RcdError) as error:
        RcdConfig(**options)
    assert message in str(error.value)


def test_full_budget_gives_same_delay(digits_data, digits_references):
    """Without early exit relearning runs every step, and the delay it reports does not change."""
    from unlearning.metrics.rcd import RcdConfig, RcdProtocol

    original = digits_references.original()
    retrain = digits_references.retrain()
    early = RcdProtocol(RcdConfig(seeds=(0,), max_steps=300), digits_data, original, retrain).measure(retrain)
    full = RcdProtocol(RcdConfig(seeds=(0,), max_steps=300, early_exit=False), digits_data, original, retrain).measure(retrain)

    assert full.steps == early.steps
    assert full.runs[0].steps[-1] == 300
    assert early.runs[0].steps[-1] < 300


def test_vectorized_seeds_match_sequential(digits_data, digits_references):
    original = digits_references.original()
    retrain = digits_references.retrain()
    settings = {"seeds": (0, 1, 2), "max_steps": 400}
    sequential = RcdProtocol(RcdConfig(**settings), digits_data, original, retrain).measure(retrain)
    vectorized = RcdProtocol(RcdConfig(vectorize=True, **settings), digits_data, original, retrain).measure(retrain)

    assert [run.converged_step for run in vectorized.runs] == [run.converged_step for run in sequential.runs]
    for together, alone in zip(vectorized.runs, sequential.runs):
        assert together.steps == alone.steps
        assert together.forget_loss == pytest.approx(alone.forget_loss, abs=1e-4)
        assert together.control_loss == pytest.approx(alone.control_loss, abs=1e-4)


def test_batch_norm_relearns_sequentially():
    resnet = build_model(ModelSpec("resnet18", (1, 8, 8), 10, (0.5,), (0.25,), {"width": 8}))
    cnn = build_model(ModelSpec("cnn", (1, 8, 8), 10, (0.5,), (0.25,)))

    assert can_vectorize(resnet) is False
    assert can_vectorize(cnn) is True
