"""Orchestration efficiency and scale: how much of a sweep's wall time the trials use, and where the rest goes.

Usage: python benchmarks/orchestration.py [--datasets digits mnist] [--concurrency 1 2] [--trials N] [--cold] [--smoke]

For each data set the script first builds the references in a fresh storage folder, then runs
one sweep per concurrency there, so every measured sweep finds its references cached, as every
sweep after a user's first one does. `--cold` skips that step, and each sweep then trains its
own references (benchmarks/reference_cache.py measures that cost on its own). Efficiency is the
sum of the trials' own run times (Ray Tune's `time_total_s`) divided by wall time times
concurrent slots. The phase columns come from the parent run's `phase.*` metrics, and the memory
columns are the peak resident memory of the driver process and of the largest trial process.
The JSON also lists each trial's process peak in trial order, which at concurrency 1 traces the
memory of the one reused trial process as it runs trial after trial.

Run it inside `unshare -n` like every command that starts Ray. Results go to the console as a
Markdown table and to benchmarks/results/orchestration.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from measure import DIGITS, MNIST_6K, REPOSITORY, measure_sweep

from sweeps.config import load_config
from sweeps.setup import prepare

DATASETS = {"digits": (DIGITS, 30), "mnist": (MNIST_6K, 12)}
"""Data set settings and the trial budget of the default digits sweep and of examples/mnist-ieu.yaml."""


def row(dataset: str, measured: dict) -> dict:
    slots = measured["concurrency"]
    busy = sum(measured["trial_time_s"])
    phases = measured["phases"]
    return {
        "dataset": dataset,
        "concurrency": slots,
        "trials": measured["completed"] + measured["failed"],
        "wall_s": measured["wall_s"],
        "trial_time_s": busy,
        "efficiency": busy / (measured["wall_s"] * slots),
        "efficiency_trials_phase": busy / (phases.get("trials_s", float("nan")) * slots),
        "trials_per_hour": 3600 * len(measured["trial_time_s"]) / measured["wall_s"],
        "driver_peak_rss_mb": measured["driver_peak_rss_mb"],
        "trial_peak_rss_mb": measured["trial_peak_rss_mb"],
        **{f"phase.{name}": seconds for name, seconds in sorted(phases.items())},
        "trial_peak_rss_mb_by_trial": measured["trial_peak_rss_mb_by_trial"],
    }


def markdown(rows: list[dict]) -> str:
    columns = [column for column, value in rows[0].items() if not isinstance(value, list)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for values in rows:
        lines.append("| " + " | ".join(f"{values[c]:.3g}" if isinstance(values[c], float) else str(values[c]) for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["digits", "mnist"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--trials", type=int, help="trials per sweep (default: 30 on digits, 12 on MNIST)")
    parser.add_argument("--cold", action="store_true", help="let every sweep train its own references")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that only check that the script works")
    parser.add_argument("--results", default=str(REPOSITORY / "benchmarks" / "results"), help="folder for the JSON (and PNG) results")
    args = parser.parse_args()

    rows = []
    for dataset in args.datasets:
        settings, trials = DATASETS[dataset]
        with tempfile.TemporaryDirectory(prefix="rcd-bench-") as storage:
            for concurrency in args.concurrency:
                sweep = {**settings, "name": f"orchestration-{dataset}-{concurrency}", "storage": storage}
                sweep.update(trials=args.trials or trials, concurrency=concurrency)
                if args.smoke:
                    sweep.update(trials=2, training={"epochs": 2}, rcd={"seeds": [0], "max_steps": 50})
                if not args.cold:
                    prepare(load_config(None, [], sweep))
                rows.append(row(dataset, measure_sweep(sweep)))
                print(json.dumps(rows[-1]), flush=True)

    print(markdown(rows))
    out = Path(args.results) / "orchestration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
