"""Baseline unlearning methods: each method's defining behaviour, determinism and search spaces."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from torch.nn import functional as F

from sweeps.search_space import load_search_space, to_distributions
from unlearning.methods import MethodError, get_method, parse_params, run_method
from unlearning.methods import random_label as random_label_module
from unlearning.methods.common import batch_schedule, count_steps
from unlearning.methods.l1_sparse import l1_norm
from unlearning.methods.random_label import random_wrong_labels
from unlearning.methods.retrain import reinitialize
from unlearning.methods.salun import saliency_mask
from unlearning.methods.scrub import teacher_student_kl
from unlearning.models import ModelSpec
from unlearning.references import build_references
from unlearning.splits import SplitData, make_split
from unlearning.training import (
    DivergenceError,
    TrainingRecipe,
    accuracy,
    init_model,
    predict_logits,
)

BASELINES = ("retrain", "finetune", "random_label", "gradient_ascent", "scrub", "salun", "l1_sparse")

SEARCHED_BASELINES = ("finetune", "random_label", "gradient_ascent", "scrub", "salun", "l1_sparse")

CHEAP_PARAMS = {
    "retrain": {"epochs": 1},
    "finetune": {"steps": 10},
    "random_label": {"steps": 10},
    "gradient_ascent": {"steps": 5, "lr": 0.02},
    "scrub": {"maximize_epochs": 1, "minimize_only_epochs": 0},
    "salun": {"steps": 10, "mask_fraction": 0.3},
    "l1_sparse": {"steps": 10, "l1_coef": 1e-3},
}
"""Small budgets that still change the weights, for the tests that only need a run."""


def states_equal(first: torch.nn.Module, second: torch.nn.Module) -> bool:
    first_state, second_state = first.state_dict(), second.state_dict()
    return first_state.keys() == second_state.keys() and all(torch.equal(first_state[name], second_state[name]) for name in first_state)


@pytest.fixture(scope="module")
def class_data(digits):
    """Digits with class 0 forgotten: the original model's forget accuracy is 1.0 and the retrain model's is 0."""
    return SplitData.from_split(digits, make_split(digits, "class", classes=(0,), seed=0))


def test_gradient_ascent_lowers_forget_accuracy(digits_references, class_data):
    original = digits_references.original()
    outcome = run_method("gradient_ascent", original, class_data, {"lr": 0.02, "steps": 40}, device="cpu")

    assert accuracy(original, class_data.x_forget, class_data.y_forget) == 1.0
    assert accuracy(outcome.model, class_data.x_forget, class_data.y_forget) < 0.5


def test_gradient_ascent_raises_forget_loss(digits_references, digits_data):
    original = digits_references.original()
    outcome = run_method("gradient_ascent", original, digits_data, {"lr": 0.02, "steps": 20}, device="cpu")

    before = F.cross_entropy(predict_logits(original, digits_data.x_forget), digits_data.y_forget)
    after = F.cross_entropy(predict_logits(outcome.model, digits_data.x_forget), digits_data.y_forget)
    assert after > 10 * before


def test_gradient_ascent_divergence_raises(digits_references, digits_data):
    with pytest.raises(DivergenceError):
        run_method("gradient_ascent", digits_references.original(), digits_data, {"lr": 1e6, "steps": 50}, device="cpu")


def test_random_label_lowers_forget_accuracy(digits_references, class_data):
    outcome = run_method("random_label", digits_references.original(), class_data, {"lr": 0.01, "steps": 30}, device="cpu")

    assert accuracy(outcome.model, class_data.x_forget, class_data.y_forget) < 0.2
    assert accuracy(outcome.model, class_data.x_retain, class_data.y_retain) > 0.9


def test_random_wrong_labels_never_true():
    labels = torch.arange(10).repeat(500)
    drawn = random_wrong_labels(labels, 10, torch.Generator().manual_seed(0))

    assert not (drawn == labels).any()
    assert drawn.min() >= 0
    assert drawn.max() <= 9
    for true_label in range(10):
        others = set(drawn[labels == true_label].tolist())
        assert others == set(range(10)) - {true_label}


def test_random_wrong_labels_need_two_classes():
    with pytest.raises(MethodError):
        random_wrong_labels(torch.zeros(4, dtype=torch.long), 1, torch.Generator().manual_seed(0))


def test_random_label_run_avoids_true_labels(monkeypatch, digits_references, digits_data):
    drawn = []

    def recording(labels, num_classes, generator):
        result = random_wrong_labels(labels, num_classes, generator)
        drawn.append((labels.clone(), result.clone()))
        return result

    monkeypatch.setattr(random_label_module, "random_wrong_labels", recording)
    samples = len(digits_data.y_forget) + len(digits_data.y_retain)
    steps_per_pass = math.ceil(samples / 64)
    run_method("random_label", digits_references.original(), digits_data, {"steps": 2 * steps_per_pass + 1}, device="cpu")

    assert len(drawn) == 3  # one draw per pass, and the last step starts a third pass
    for labels, random_labels in drawn:
        assert not (random_labels == labels).any()
    assert not torch.equal(drawn[0][1], drawn[1][1])


def test_finetune_keeps_retain_accuracy(digits_references, digits_data):
    original = digits_references.original()
    outcome = run_method("finetune", original, digits_data, {"steps": 50}, device="cpu")

    before = accuracy(original, digits_data.x_retain, digits_data.y_retain)
    after = accuracy(outcome.model, digits_data.x_retain, digits_data.y_retain)
    assert after >= before - 0.01
    assert not states_equal(outcome.model, original)


def test_saliency_mask_keeps_requested_fraction(digits_references, digits_data):
    model = digits_references.original()
    mask = saliency_mask(model, digits_data.x_forget, digits_data.y_forget, 0.3)
    named = dict(model.named_parameters())
    total = sum(parameter.numel() for parameter in named.values())

    assert mask.keys() == named.keys()
    assert all(mask[name].shape == named[name].shape and mask[name].dtype == torch.bool for name in named)
    assert sum(int(kept.sum()) for kept in mask.values()) == round(0.3 * total)


def test_saliency_mask_is_global_top_fraction(digits_references, digits_data):
    """Every kept entry has a forget-loss gradient at least as large as every dropped one, across layers."""
    model = digits_references.original()
    mask = saliency_mask(model, digits_data.x_forget, digits_data.y_forget, 0.2)

    model.eval()
    F.cross_entropy(model(digits_data.x_forget), digits_data.y_forget).backward()
    saliency = {name: parameter.grad.abs() for name, parameter in model.named_parameters()}
    kept_saliency = torch.cat([saliency[name][mask[name]] for name in mask])
    dropped_saliency = torch.cat([saliency[name][~mask[name]] for name in mask])
    # Summing per-batch gradients and one full-batch gradient differ by rounding only.
    assert kept_saliency.min() >= dropped_saliency.max() * (1 - 1e-4)
    assert len({name for name in mask if mask[name].any()}) > 1


def test_saliency_mask_leaves_model_unchanged(digits_references, digits_data):
    model = digits_references.original().train()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}

    saliency_mask(model, digits_data.x_forget, digits_data.y_forget, 0.5)

    assert model.training
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_salun_masked_weights_bit_identical(optimizer, digits_references, digits_data):
    original = digits_references.original()
    params = {"optimizer": optimizer, "lr": 0.05, "steps": 20, "momentum": 0.9, "weight_decay": 0.05, "mask_fraction": 0.3}
    mask = saliency_mask(original, digits_data.x_forget, digits_data.y_forget, params["mask_fraction"])

    outcome = run_method("salun", original, digits_data, params, device="cpu")

    unlearned = dict(outcome.model.named_parameters())
    changed = 0
    for name, parameter in original.named_parameters():
        frozen = ~mask[name]
        assert torch.equal(unlearned[name].detach()[frozen], parameter.detach()[frozen]), name
        changed += int((unlearned[name].detach() != parameter.detach()).sum())
    num_kept = sum(int(entries.sum()) for entries in mask.values())
    assert changed <= num_kept
    assert changed > 0.5 * num_kept


def test_salun_full_mask_equals_random_label(digits_references, digits_data):
    params = {"steps": 10, "lr": 0.05, "weight_decay": 0.01}
    salun = run_method("salun", digits_references.original(), digits_data, {**params, "mask_fraction": 1.0}, device="cpu")
    random_label = run_method("random_label", digits_references.original(), digits_data, params, device="cpu")

    assert states_equal(salun.model, random_label.model)


def test_salun_forgets_class(digits_references, class_data):
    outcome = run_method("salun", digits_references.original(), class_data, {"lr": 0.03, "steps": 30, "mask_fraction": 0.2}, device="cpu")

    assert accuracy(outcome.model, class_data.x_forget, class_data.y_forget) < 0.2
    assert accuracy(outcome.model, class_data.x_retain, class_data.y_retain) > 0.9


def mean_kl_to_teacher(teacher, student, x, temperature: float) -> float:
    return teacher_student_kl(predict_logits(student, x), predict_logits(teacher, x), temperature).item()


def test_scrub_moves_forget_predictions_from_teacher(digits_references, class_data):
    teacher = digits_references.original()
    params = {"lr": 0.03, "temperature": 4.0}
    with_max = run_method("scrub", teacher, class_data, {**params, "maximize_epochs": 1, "minimize_only_epochs": 0}, device="cpu")
    min_only = run_method("scrub", teacher, class_data, {**params, "maximize_epochs": 0, "minimize_only_epochs": 1}, device="cpu")

    forget_kl = mean_kl_to_teacher(teacher, with_max.model, class_data.x_forget, 4.0)
    retain_kl = mean_kl_to_teacher(teacher, with_max.model, class_data.x_retain, 4.0)
    assert forget_kl > 10 * mean_kl_to_teacher(teacher, min_only.model, class_data.x_forget, 4.0)
    assert forget_kl > 10 * retain_kl
    assert accuracy(with_max.model, class_data.x_forget, class_data.y_forget) < 0.5


def test_teacher_student_kl_zero_for_equal_logits():
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))

    assert teacher_student_kl(logits, logits, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert teacher_student_kl(logits, 2 * logits, 4.0).item() > 0


def test_l1_sparse_lowers_l1_norm(digits_references, digits_data):
    params = {"lr": 0.03, "steps": 100}
    original = digits_references.original()
    sparse = run_method("l1_sparse", original, digits_data, {**params, "l1_coef": 1e-3}, device="cpu")
    finetuned = run_method("finetune", original, digits_data, params, device="cpu")

    with torch.no_grad():
        assert l1_norm(sparse.model) < 0.9 * l1_norm(finetuned.model)
        assert l1_norm(sparse.model) < 0.9 * l1_norm(original)


def test_l1_sparse_zero_coefficient_equals_finetune(digits_references, digits_data):
    params = {"lr": 0.03, "steps": 10}
    sparse = run_method("l1_sparse", digits_references.original(), digits_data, {**params, "l1_coef": 0.0}, device="cpu")
    finetuned = run_method("finetune", digits_references.original(), digits_data, params, device="cpu")

    assert states_equal(sparse.model, finetuned.model)


def test_retrain_reproduces_reference(digits, digits_split, digits_spec, digits_data, cache_dir):
    recipe = TrainingRecipe(epochs=2)
    references = build_references(digits, digits_split, digits_spec, recipe, seed=3, cache_dir=cache_dir, device="cpu")

    outcome = run_method("retrain", references.original(), digits_data, {"epochs": 2}, seed=3, device="cpu")
    assert states_equal(outcome.model, references.retrain())

    outcome = run_method("retrain", references.original(), digits_data, {"epochs": 2, "model_seed": 3}, seed=0, device="cpu")
    assert states_equal(outcome.model, references.retrain())


def test_retrain_defaults_match_training_recipe():
    params = parse_params("retrain", {})

    assert params.recipe() == TrainingRecipe()


@pytest.mark.parametrize(
    "name, options",
    [("mlp", {}), ("cnn", {}), ("resnet18", {"width": 4})],
)
def test_reinitialize_matches_fresh_model(name, options):
    spec = ModelSpec(name, (3, 8, 8), 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), options)
    trained = init_model(spec, seed=1)
    with torch.no_grad():
        for parameter in trained.parameters():
            parameter.add_(1.0)
    for buffer_name, buffer in trained.named_buffers():
        # The input normalization ("0.mean", "0.std") is fixed by the spec, not initialized.
        if not buffer_name.startswith("0."):
            buffer.add_(1)

    reinitialize(trained, seed=7, device=torch.device("cpu"))

    assert states_equal(trained, init_model(spec, seed=7))


@pytest.mark.parametrize("name", BASELINES)
def test_same_seed_same_model(name, digits_references, digits_data):
    params = CHEAP_PARAMS[name]
    first = run_method(name, digits_references.original(), digits_data, params, seed=4, device="cpu")
    second = run_method(name, digits_references.original(), digits_data, params, seed=4, device="cpu")
    other = run_method(name, digits_references.original(), digits_data, params, seed=5, device="cpu")

    assert states_equal(first.model, second.model)
    assert not states_equal(first.model, other.model)
    assert not states_equal(first.model, digits_references.original())


@pytest.mark.parametrize("name", BASELINES)
def test_original_left_untouched(name, digits_references, digits_data):
    original = digits_references.original()
    before = {key: tensor.clone() for key, tensor in original.state_dict().items()}

    run_method(name, original, digits_data, CHEAP_PARAMS[name], device="cpu")

    assert all(torch.equal(before[key], tensor) for key, tensor in original.state_dict().items())


@pytest.mark.parametrize("name", BASELINES)
def test_unknown_params_rejected(name):
    with pytest.raises(MethodError) as error:
        parse_params(name, {"alpha": 1.0})
    assert "alpha" in str(error.value)


@pytest.mark.parametrize(
    "name, params, field",
    [
        ("salun", {"mask_fraction": 0.0}, "mask_fraction"),
        ("salun", {"mask_fraction": 1.5}, "mask_fraction"),
        ("finetune", {"optimizer": "rmsprop"}, "optimizer"),
        ("gradient_ascent", {"lr": 0.0}, "lr"),
        ("scrub", {"temperature": 0.0}, "temperature"),
        ("l1_sparse", {"l1_coef": -1.0}, "l1_coef"),
        ("retrain", {"epochs": 0}, "epochs"),
    ],
)
def test_invalid_params_rejected(name, params, field):
    with pytest.raises(MethodError) as error:
        parse_params(name, params)
    assert field in str(error.value)


def test_needs_retain_flags():
    assert not get_method("gradient_ascent").needs_retain
    assert all(get_method(name).needs_retain for name in BASELINES if name != "gradient_ascent")


@pytest.mark.parametrize("name", SEARCHED_BASELINES)
def test_search_space_samples_validate(name):
    space = load_search_space(name, name)
    distributions = to_distributions(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    for _ in range(25):
        trial = study.ask(distributions)
        parse_params(name, trial.params)
        study.tell(trial, 0.0)
    for bound in ("low", "high"):
        corner = {
            key: int(getattr(value, bound)) if value.type == "int" else getattr(value, bound)
            for key, value in space.parameters.items()
            if value.type != "categorical"
        }
        parse_params(name, corner)


def test_batch_schedule_counts_steps():
    generator = torch.Generator().manual_seed(0)
    batches = list(batch_schedule(10, 4, epochs=1, steps=7, generator=generator))

    assert len(batches) == count_steps(10, 4, epochs=1, steps=7) == 7
    assert [pass_number for pass_number, _ in batches] == [0, 0, 0, 1, 1, 1, 2]
    assert sorted(torch.cat([batch for pass_number, batch in batches if pass_number == 0]).tolist()) == list(range(10))


def test_batch_schedule_counts_epochs():
    batches = list(batch_schedule(10, 4, epochs=2, steps=None, generator=torch.Generator().manual_seed(0)))

    assert len(batches) == count_steps(10, 4, epochs=2, steps=None) == 6
    assert list(batch_schedule(10, 4, epochs=0, steps=None, generator=torch.Generator())) == []
