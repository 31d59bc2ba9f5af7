"""Random search over a method's hyperparameters, to choose the ranges of its search space.

Usage: python benchmarks/method_ranges.py METHOD [--configs 20] [--seed 0] [--scenario random]
       [--dataset digits] [--data-dir PATH] [--max-train-samples N] [--slowest]

METHOD is ieu or one of the baselines finetune, random_label, gradient_ascent, scrub, salun and
l1_sparse. Each
configuration is drawn from ranges wider than the search space (log-uniform for rates, steps and
coefficients), applied to the cached original model and scored with one relearning seed. The
output is one line per configuration, sorted by rcd, with the unlearning time and the evaluation
time of that configuration.

With --slowest, the script instead times the most expensive point of `search_spaces/METHOD.yaml`,
where every step and epoch count is at its upper bound and the other hyperparameters keep their
defaults. It runs that point three times and prints the shortest unlearning time, because other
processes on the machine can only make a run slower.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from sweeps.search_space import load_search_space
from unlearning.data import load_dataset
from unlearning.evaluation import UnlearningEvaluator
from unlearning.methods import run_method
from unlearning.metrics.rcd import RcdConfig
from unlearning.models import ModelSpec
from unlearning.references import build_references
from unlearning.splits import SplitData, make_split
from unlearning.training import DivergenceError, TrainingRecipe

LOG_RANGES = {
    "ieu": {"ascent_steps": (1, 200), "lr": (1e-3, 0.3), "noise_scale": (1e-3, 0.3), "weight_decay": (1e-3, 30.0)},
    "finetune": {"lr": (1e-3, 0.3), "steps": (10, 1000)},
    "random_label": {"lr": (1e-3, 0.3), "steps": (10, 1000)},
    "gradient_ascent": {"lr": (1e-3, 1.0), "steps": (1, 300)},
    "scrub": {"lr": (1e-3, 0.3), "temperature": (1.0, 8.0), "kl_weight": (0.01, 10.0)},
    "salun": {"lr": (1e-3, 0.3), "steps": (10, 1000), "mask_fraction": (0.02, 1.0)},
    "l1_sparse": {"lr": (1e-3, 0.3), "steps": (10, 1000), "l1_coef": (1e-6, 1e-1)},
}
"""Per method, the hyperparameters drawn log-uniformly and their (low, high) bounds."""

INT_RANGES = {"ieu": {"retain_steps": (0, 2)}, "scrub": {"maximize_epochs": (0, 5), "minimize_only_epochs": (0, 5)}}
"""Per method, the hyperparameters drawn uniformly from the integers in [low, high]."""

INTEGER_NAMES = {"steps", "ascent_steps"}

BUDGET_NAMES = ("steps", "epochs", "maximize_epochs", "minimize_only_epochs", "ascent_steps", "retain_steps")
"""Hyperparameters whose upper bound is the most expensive value."""


def draw(method: str, rng: np.random.Generator) -> dict[str, float | int]:
    """Draw one configuration of `method` from its wide ranges."""
    params: dict[str, float | int] = {}
    for name, (low, high) in LOG_RANGES[method].items():
        value = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        params[name] = round(value) if name in INTEGER_NAMES else value
    for name, (low, high) in INT_RANGES.get(method, {}).items():
        params[name] = int(rng.integers(low, high + 1))
    return params


def slowest_configuration(method: str) -> dict[str, int]:
    """Return the search space's step and epoch counts of `method`, each at its upper bound."""
    space = load_search_space(method, method)
    return {name: int(parameter.high) for name, parameter in space.parameters.items() if name in BUDGET_NAMES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=sorted(LOG_RANGES))
    parser.add_argument("--configs", type=int, default=20, help="configurations to draw (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    parser.add_argument("--scenario", choices=("random", "class"), default="random", help="forgetting scenario: random forgets 10%% of the training set, class forgets class 0")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir")
    parser.add_argument("--max-train-samples", type=int, help="use only the first N training samples")
    parser.add_argument("--slowest", action="store_true", help="time the most expensive point of the method's search space")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, as a sweep trial at concurrency 2)")
    parser.add_argument("--epochs", type=int, default=TrainingRecipe().epochs, help="reference training epochs (default 30)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    options = {"max_train_samples": args.max_train_samples} if args.max_train_samples else {}
    dataset = load_dataset(args.dataset, args.data_dir, **options)
    split = make_split(dataset, args.scenario, fraction=0.1, classes=(0,), seed=0)
    spec = ModelSpec("cnn", dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std)
    references = build_references(dataset, split, spec, TrainingRecipe(epochs=args.epochs), seed=0, device="cpu")
    data = SplitData.from_split(dataset, split)
    if args.slowest:
        params = slowest_configuration(args.method)
        runtimes = [run_method(args.method, references.original(), data, params, device="cpu").runtime_s for _ in range(3)]
        print(f"{args.method} {params}: shortest of 3 runs {min(runtimes):.3f} s, all {', '.join(f'{t:.3f}' for t in runtimes)}")
        return

    evaluator = UnlearningEvaluator(data, references, RcdConfig(seeds=(0,)))
    reference = evaluator.retrain_metrics
    print(f"retrain: forget_acc={reference['forget_acc']:.3f}, retain_acc={reference['retain_acc']:.3f}, test_acc={reference['test_acc']:.3f}")

    rng = np.random.default_rng(args.seed)
    rows = []
    for _ in range(args.configs):
        params = draw(args.method, rng)
        try:
            outcome = run_method(args.method, references.original(), data, params, device="cpu")
            started = time.perf_counter()
            metrics = evaluator.evaluate(outcome.model, outcome.runtime_s).metrics
            evaluation_s = time.perf_counter() - started
        except DivergenceError:
            rows.append((-math.inf, params, "diverged"))
            continue
        names = ("rcd", "rcd_censored", "forget_acc", "retain_acc_loss", "test_acc", "runtime_s")
        summary = ", ".join(f"{name}={metrics[name]:.3f}" for name in names) + f", evaluation_s={evaluation_s:.2f}"
        rows.append((metrics["rcd"], params, summary))

    for _, params, summary in sorted(rows, key=lambda row: row[0]):
        formatted = ", ".join(f"{name}={value:.4g}" for name, value in params.items())
        print(f"{formatted} -> {summary}")


if __name__ == "__main__":
    main()
