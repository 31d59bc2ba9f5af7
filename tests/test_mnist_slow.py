"""RCD defaults on the real MNIST files (several minutes each; run with `pytest -m slow`)."""

from __future__ import annotations

import pytest
import torch

from unlearning.data import load_dataset
from unlearning.evaluation import scaled_copy
from unlearning.metrics.rcd import RcdConfig, RcdProtocol
from unlearning.models import ModelSpec
from unlearning.references import build_references
from unlearning.splits import SplitData, make_split
from unlearning.training import TrainingRecipe

pytestmark = pytest.mark.slow


def mnist_protocol(mnist_path, cache_dir, scenario, max_train_samples, recipe):
    torch.set_num_threads(2)
    dataset = load_dataset("mnist", mnist_path, max_train_samples=max_train_samples)
    split = make_split(dataset, scenario, fraction=0.1, classes=[3], seed=0)
    spec = ModelSpec("cnn", dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std)
    references = build_references(dataset, split, spec, recipe, seed=0, cache_dir=cache_dir, device="cpu")
    data = SplitData.from_split(dataset, split)
    protocol = RcdProtocol(RcdConfig(), data, references.original(), references.retrain())
    return protocol, references


@pytest.mark.parametrize("scenario", ["random", "class"])
def test_mnist_subset_defaults(scenario, mnist_path, cache_dir):
    protocol, references = mnist_protocol(mnist_path, cache_dir, scenario, 6000, TrainingRecipe())

    retrain = protocol.measure(references.retrain())
    original = protocol.measure(references.original())
    scaled = protocol.measure(scaled_copy(references.original(), 0.6))

    assert retrain.steps > 0
    assert retrain.censored is False
    assert original.steps == 0.0
    assert scaled.steps / retrain.steps < 0.25


def test_mnist_full_class_defaults(mnist_path, cache_dir):
    protocol, references = mnist_protocol(mnist_path, cache_dir, "class", None, TrainingRecipe(epochs=5, batch_size=128))

    retrain = protocol.measure(references.retrain())

    assert retrain.steps > 0
    assert retrain.censored is False


@pytest.mark.xfail(reason="6000 forget samples need more than the default 2000 relearning steps; see docs/rcd.md", strict=True)
def test_mnist_full_random_defaults(mnist_path, cache_dir):
    protocol, references = mnist_protocol(mnist_path, cache_dir, "random", None, TrainingRecipe(epochs=5, batch_size=128))

    retrain = protocol.measure(references.retrain())

    assert retrain.censored is False
