"""Random search over IEU hyperparameters on one data set, to choose the ranges of search_spaces/ieu.yaml.

Usage: python benchmarks/ieu_ranges.py [--configs 40] [--seed 0] [--dataset digits] [--data-dir PATH]

Each configuration is drawn log-uniformly from ranges wider than the search space, applied to the
cached original model and scored with one relearning seed. The output is one line per
configuration, sorted by rcd.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from unlearning.data import load_dataset
from unlearning.evaluation import UnlearningEvaluator
from unlearning.methods import run_method
from unlearning.metrics.rcd import RcdConfig
from unlearning.models import ModelSpec
from unlearning.references import build_references
from unlearning.splits import SplitData, make_split
from unlearning.training import DivergenceError, TrainingRecipe

WIDE_RANGES = {"ascent_steps": (1, 200), "lr": (1e-3, 0.3), "noise_scale": (1e-3, 0.3), "weight_decay": (1e-3, 30.0)}


def draw(rng: np.random.Generator) -> dict[str, float | int]:
    """Draw one configuration, log-uniform in every range and retain_steps uniform in {0, 1, 2}."""
    params = {name: float(np.exp(rng.uniform(np.log(low), np.log(high)))) for name, (low, high) in WIDE_RANGES.items()}
    params["ascent_steps"] = int(params["ascent_steps"])
    params["retain_steps"] = int(rng.integers(0, 3))
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=40, help="configurations to draw (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--epochs", type=int, default=30, help="reference training epochs (default 30)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    dataset = load_dataset(args.dataset, args.data_dir)
    split = make_split(dataset, "random", fraction=0.1, seed=0)
    spec = ModelSpec("cnn", dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std)
    references = build_references(dataset, split, spec, TrainingRecipe(epochs=args.epochs), seed=0, device="cpu")
    data = SplitData.from_split(dataset, split)
    evaluator = UnlearningEvaluator(data, references, RcdConfig(seeds=(0,)))

    rng = np.random.default_rng(args.seed)
    rows = []
    for _ in range(args.configs):
        params = draw(rng)
        try:
            outcome = run_method("ieu", references.original(), data, params, device="cpu")
            metrics = evaluator.evaluate(outcome.model, outcome.runtime_s).metrics
        except DivergenceError:
            rows.append((float("-inf"), params, "diverged"))
            continue
        summary = ", ".join(f"{name}={metrics[name]:.3f}" for name in ("rcd", "rcd_censored", "forget_acc", "retain_acc_loss", "test_acc"))
        rows.append((metrics["rcd"], params, summary))

    for _, params, summary in sorted(rows, key=lambda row: row[0]):
        shown = ", ".join(f"{name}={value:.4g}" for name, value in params.items())
        print(f"{shown} -> {summary}")


if __name__ == "__main__":
    main()
