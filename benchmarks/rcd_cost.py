"""RCD cost: one RCD measurement with early exit against the full step budget, and its growth with the forget set.

Usage: python benchmarks/rcd_cost.py [--dataset mnist|digits] [--fractions 0.1 0.2 0.5]
       [--vectorized-seeds 0 1 2] [--smoke]

For each forget fraction (random forgetting) the script builds or loads the references, then
times `RcdProtocol.measure` on the retrain model (the most expensive model to relearn, since it
never saw the forget set) with early exit and with `early_exit=False`, which runs every step of
the budget. With `--vectorized-seeds` it also times the listed relearning seeds one after
another against one vectorized pass (`rcd.vectorize`), both with early exit. It runs on the CPU
with one torch thread per process, like one trial.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from measure import MNIST_DIR, REPOSITORY

from unlearning.data import load_dataset
from unlearning.metrics.rcd import RcdConfig, RcdProtocol
from unlearning.models import ModelSpec
from unlearning.references import build_references
from unlearning.splits import SplitData, make_split
from unlearning.training import TrainingRecipe


def time_measurement(protocol: RcdProtocol, model) -> tuple[float, float]:
    started = time.perf_counter()
    measurement = protocol.measure(model)
    return time.perf_counter() - started, measurement.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "digits"], default="mnist")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.2, 0.5])
    parser.add_argument("--max-train-samples", type=int, default=6000, help="MNIST training images (default 6000)")
    parser.add_argument(
        "--vectorized-seeds", nargs="+", type=int, default=[], help="also time these relearning seeds sequentially and vectorized"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny settings that only check that the script works")
    parser.add_argument("--results", default=str(REPOSITORY / "benchmarks" / "results"), help="folder for the JSON (and PNG) results")
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.dataset == "mnist":
        dataset = load_dataset("mnist", str(MNIST_DIR), max_train_samples=args.max_train_samples)
    else:
        dataset = load_dataset("digits")
    recipe = TrainingRecipe(epochs=2) if args.smoke else TrainingRecipe()
    budget = 50 if args.smoke else 2000
    spec = ModelSpec("cnn", dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std)

    rows = []
    for fraction in args.fractions:
        split = make_split(dataset, "random", fraction=fraction, seed=0)
        references = build_references(dataset, split, spec, recipe, seed=0, device="cpu")
        data = SplitData.from_split(dataset, split)
        original, retrain = references.original(), references.retrain()
        row = {"dataset": args.dataset, "forget_fraction": fraction, "forget_samples": len(split.forget_idx), "max_steps": budget}
        # A short untimed run first, so that no timed run pays for PyTorch's first calls.
        RcdProtocol(RcdConfig(seeds=(0,), max_steps=20, early_exit=False), data, original, retrain).measure(retrain)
        for early_exit in (True, False):
            config = RcdConfig(seeds=(0,), max_steps=budget, early_exit=early_exit)
            protocol = RcdProtocol(config, data, original, retrain)
            seconds, steps = time_measurement(protocol, retrain)
            row["early_exit_s" if early_exit else "full_budget_s"] = seconds
            row["rcd_steps"] = steps
        row["full_over_early"] = row["full_budget_s"] / row["early_exit_s"]
        if len(args.vectorized_seeds) > 1:
            row["seeds"] = len(args.vectorized_seeds)
            for vectorize in (False, True):
                config = RcdConfig(seeds=tuple(args.vectorized_seeds), max_steps=budget, vectorize=vectorize)
                seconds, steps = time_measurement(RcdProtocol(config, data, original, retrain), retrain)
                label = "vectorized" if vectorize else "sequential"
                row[f"{label}_s"] = seconds
                row[f"{label}_rcd_steps"] = steps
            row["sequential_over_vectorized"] = row["sequential_s"] / row["vectorized_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)

    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |")
    out = Path(args.results) / f"rcd_cost_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
