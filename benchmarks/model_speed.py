"""Model speed by memory format: one training step and one evaluation pass, channels-last against PyTorch's default.

Usage: python benchmarks/model_speed.py [--repeats 30] [--smoke]

The script covers each model at the input sizes of the benchmarks (digits: 1x8x8, MNIST: 1x28x28).
It times one relearning step: forward, backward and SGD update on a batch of 32. It also times one
evaluation pass on 1024 samples, as RCD evaluates 512 forget and 512 control samples, in forward
passes of `EVAL_BATCH_SIZE` samples. Each runs in channels-last format, as `build_model` builds
the models, and in the default contiguous format, on one CPU thread like one trial. Both copies
start from the same weights, so the script also reports the largest difference between their
logits. Last, it times the channels-last evaluation in one forward pass of 1024 samples, to show
what the evaluation batch size saves.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from measure import REPOSITORY
from torch.nn import functional as F

from unlearning.models import ModelSpec, build_model, set_memory_format
from unlearning.training import EVAL_BATCH_SIZE, predict_logits

MODELS = (("cnn", {}), ("resnet18", {"width": 16}), ("mlp", {}))
SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28)}


def mean_time_ms(function, repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats * 1e3


def time_model(model: torch.nn.Module, shape: tuple[int, int, int], repeats: int, eval_batch_size: int = EVAL_BATCH_SIZE) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    batch_x = torch.rand(32, *shape, generator=generator)
    batch_y = torch.randint(0, 10, (32,), generator=generator)
    eval_x = torch.rand(1024, *shape, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch_x), batch_y).backward()
        optimizer.step()

    @torch.no_grad()
    def evaluate() -> None:
        predict_logits(model, eval_x, batch_size=eval_batch_size)

    return {"train_step_ms": mean_time_ms(train_step, repeats), "eval_1024_ms": mean_time_ms(evaluate, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed repetitions of each operation (default 30)")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that only check that the script works")
    parser.add_argument("--results", default=str(REPOSITORY / "benchmarks" / "results"), help="folder for the JSON results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    repeats = 2 if args.smoke else args.repeats

    rows = []
    for dataset, shape in SHAPES.items():
        for name, options in MODELS:
            torch.manual_seed(0)
            fast = build_model(ModelSpec(name, shape, 10, [0.5], [0.25], options))
            default = set_memory_format(copy.deepcopy(fast), torch.contiguous_format)
            probe = torch.rand(256, *shape, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                difference = (fast.eval()(probe) - default.eval()(probe)).abs().max().item()
            row = {"dataset": dataset, "model": name, "max_logit_difference": difference}
            for label, model in (("channels_last", fast), ("contiguous", default)):
                for key, value in time_model(model, shape, repeats).items():
                    row[f"{label}_{key}"] = value
            row["one_batch_eval_1024_ms"] = time_model(fast, shape, repeats, eval_batch_size=1024)["eval_1024_ms"]
            row["train_step_speedup"] = row["contiguous_train_step_ms"] / row["channels_last_train_step_ms"]
            row["eval_speedup"] = row["contiguous_eval_1024_ms"] / row["channels_last_eval_1024_ms"]
            row["eval_batch_speedup"] = row["one_batch_eval_1024_ms"] / row["channels_last_eval_1024_ms"]
            rows.append(row)
            print(
                f"{dataset:6} {name:8} train step {row['channels_last_train_step_ms']:7.2f} ms vs {row['contiguous_train_step_ms']:7.2f} ms "
                f"({row['train_step_speedup']:.2f}x), eval {row['channels_last_eval_1024_ms']:7.1f} ms vs "
                f"{row['contiguous_eval_1024_ms']:7.1f} ms ({row['eval_speedup']:.2f}x), one batch of 1024 {row['one_batch_eval_1024_ms']:7.1f} ms "
                f"({row['eval_batch_speedup']:.2f}x), max logit difference {difference:.1e}"
            )

    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / "model_speed.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
