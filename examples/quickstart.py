"""Unlearn 10% of digits from a CNN with IEU and print every metric, RCD included.

Usage: python examples/quickstart.py [--dataset mnist --data-dir PATH --max-train-samples 6000] [--device auto]
"""

from __future__ import annotations

import argparse
import time

from unlearning.data import load_dataset
from unlearning.evaluation import UnlearningEvaluator
from unlearning.methods import run_method
from unlearning.metrics.rcd import RcdConfig
from unlearning.models import ModelSpec
from unlearning.references import build_references
from unlearning.splits import SplitData, make_split
from unlearning.training import TrainingRecipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="digits (default) or mnist")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX files (mnist only)")
    parser.add_argument("--max-train-samples", type=int, help="keep the first N training images (default: all)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the reference models (default 30)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size of the reference models (default 64)")
    parser.add_argument("--device", default="cpu", help="cpu (default, reproducible), cuda or auto")
    args = parser.parse_args()
    started = time.perf_counter()

    dataset = load_dataset(args.dataset, args.data_dir, max_train_samples=args.max_train_samples)
    split = make_split(dataset, "random", fraction=0.1, seed=0)
    spec = ModelSpec("cnn", dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std)
    references = build_references(dataset, split, spec, TrainingRecipe(epochs=args.epochs, batch_size=args.batch_size), seed=0, device=args.device)
    data = SplitData.from_split(dataset, split, args.device)
    evaluator = UnlearningEvaluator(data, references, RcdConfig())

    params = {"ascent_steps": 120, "lr": 0.025, "noise_scale": 0.0044, "weight_decay": 0.012, "retain_steps": 1}
    outcome = run_method("ieu", references.original(args.device), data, params, seed=0, device=args.device)
    unlearned = evaluator.evaluate(outcome.model, outcome.runtime_s)

    rows = {"original": evaluator.reference_evaluations["original"].metrics, "retrain": evaluator.reference_evaluations["retrain"].metrics, "ieu": unlearned.metrics}
    names = list(unlearned.metrics)
    print(f"{'metric':16s}" + "".join(f"{role:>12s}" for role in rows))
    for name in names:
        print(f"{name:16s}" + "".join(f"{rows[role].get(name, float('nan')):12.4f}" for role in rows))
    print(f"cache hit: {references.cache_hit}; total time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
