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

MNIST_RECIPE = TrainingRecipe(epochs=5, batch_size=128)


def mnist_protocol(mnist_path, cache_dir, scenario):
    torch.set_num_threads(2)
    dataset = load_dataset("mnist", mnist_path)
    split = make_split(dataset, scenario, fraction=0.1, classes=[3], seed=0)
    spec = ModelSpec("cnn", dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std)
    references = build_references(dataset, split, spec, MNIST_RECIPE, seed=0, cache_dir=cache_dir, device="cpu")
    data = SplitData.from_split(dataset, split)
    protocol = RcdProtocol(RcdConfig(seeds=(0, 1)), data, references.original(), references.retrain())
    return protocol, references


def test_mnist_class_defaults(mnist_path, cache_dir):
    protocol, references = mnist_protocol(mnist_path, cache_dir, "class")

    retrain = protocol.measure(references.retrain())
    original = protocol.measure(references.original())
    scaled = protocol.measure(scaled_copy(references.original(), 0.6))

    assert retrain.steps > 0
    assert retrain.censored is False
    assert original.steps == 0.0
    assert scaled.steps / retrain.steps < 0.25


@pytest.mark.xfail(reason="the default budget is too short for MNIST's 6000 forget samples; see docs/rcd.md", strict=True)
def test_mnist_random_defaults(mnist_path, cache_dir):
    protocol, references = mnist_protocol(mnist_path, cache_dir, "random")

    retrain = protocol.measure(references.retrain())

    assert retrain.censored is False
