"""Search quality: hypervolume after N trials for TPE, NSGA-II, random search and a grid, over several seeds.

Usage: python benchmarks/search_quality.py [--dataset digits|mnist] [--samplers tpe nsga2 random grid]
       [--seeds 0 1 2] [--trials 40] [--checkpoints 10 20 40] [--merge] [--smoke]

Each sampler and seed runs one sweep of `--trials` trials over IEU's search space. The hypervolume
after N trials is read from the sweep's own history, with the default reference point (rcd 0,
retain_acc_loss 1), so every number is comparable. Each trial uses one relearning seed. The
script prints mean and standard deviation per sampler and N, reports whether each Optuna sampler
reaches random search's hypervolume at the last checkpoint within half the trials, and draws the
curves (median, mean and quartiles over seeds) to benchmarks/results/search_quality_DATASET.png.

A sampler entry may carry sampler options: `tpe:multivariate=true,constant_liar=true` runs TPE
with those options and labels its rows with the whole entry. `--merge` adds this run's samplers
to the histories already saved for the data set, replacing those with the same label, so a long
comparison can run as several shorter invocations. Give them one `--storage` folder, so that
only the first trains the references. `--merge --samplers` with no sampler runs nothing and
prints the table of the saved histories again.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from measure import DIGITS, MNIST_6K, REPOSITORY, measure_sweep  # noqa: E402

DATASETS = {"digits": DIGITS, "mnist": MNIST_6K}


def parse_sampler(entry: str) -> dict:
    """Return the sampler settings for an entry such as `tpe` or `tpe:multivariate=true,n_startup_trials=5`."""
    name, _, option_text = entry.partition(":")
    options = {}
    for assignment in filter(None, option_text.split(",")):
        key, _, value = assignment.partition("=")
        options[key] = yaml.safe_load(value)
    return {"name": name, "options": options}


def curves(dataset: str, samplers: list[str], seeds: list[int], trials: int, smoke: bool, storage: str | None) -> dict[str, np.ndarray]:
    """Return, per sampler entry, an array of hypervolume histories with one row per seed."""
    found: dict[str, list[list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="rcd-bench-") as scratch:
        storage = storage or scratch
        for sampler in samplers:
            for seed in seeds:
                settings = {
                    **DATASETS[dataset],
                    "name": f"quality-{dataset}-{re.sub(r'[^A-Za-z0-9_.-]', '-', sampler)}-{seed}",
                    "storage": storage,
                    "trials": trials,
                    "concurrency": 2,
                    "sampler": {**parse_sampler(sampler), "seed": seed},
                    "rcd": {"seeds": [0]},
                }
                if smoke:
                    settings.update(training={"epochs": 2}, rcd={"seeds": [0], "max_steps": 50})
                history = measure_sweep(settings)["hypervolume_history"]
                # A failed trial adds no point; the hypervolume stays where it was.
                padded = history + [history[-1] if history else 0.0] * (trials - len(history))
                found.setdefault(sampler, []).append(padded)
                print(json.dumps({"sampler": sampler, "seed": seed, "final": padded[-1]}), flush=True)
    return {sampler: np.array(rows) for sampler, rows in found.items()}


def summarize(results: dict[str, np.ndarray], checkpoints: list[int]) -> list[dict]:
    rows = []
    for sampler, histories in results.items():
        for n in checkpoints:
            values = histories[:, n - 1]
            rows.append({"sampler": sampler, "trials": n, "mean": float(values.mean()), "std": float(values.std()),
                         "median": float(np.median(values)), "min": float(values.min()), "max": float(values.max())})
    return rows


def goal(results: dict[str, np.ndarray], last: int) -> list[str]:
    """For each Optuna sampler, the first N at which its mean hypervolume reaches random search's at `last` trials."""
    if "random" not in results:
        return []
    target = results["random"][:, last - 1].mean()
    lines = []
    for sampler, histories in results.items():
        if sampler == "random":
            continue
        mean = histories.mean(axis=0)
        reached = np.nonzero(mean >= target)[0]
        first = int(reached[0]) + 1 if len(reached) else None
        if first is None:
            lines.append(
                f"{sampler}: stays below random search's {last}-trial mean hypervolume {target:.4f} for all {len(mean)} trials (missed)"
            )
            continue
        verdict = "met" if first <= last // 2 else "missed"
        lines.append(f"{sampler}: reaches random search's {last}-trial mean hypervolume {target:.4f} after {first} trials ({verdict})")
    return lines


def plot(results: dict[str, np.ndarray], path: Path, title: str) -> None:
    """Draw each sampler's median (solid), mean (dashed) and interquartile range (shaded) over seeds.

    The hypervolume of one sweep jumps when it finds one of a few rare configurations, so the mean
    follows single lucky seeds. The median and quartiles show the typical sweep.
    """
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    for sampler, histories in results.items():
        steps = np.arange(1, histories.shape[1] + 1)
        low, median, high = np.percentile(histories, [25, 50, 75], axis=0)
        (line,) = axes.plot(steps, median, label=f"{sampler} ({len(histories)} seeds)")
        axes.plot(steps, histories.mean(axis=0), linestyle="--", color=line.get_color(), linewidth=1)
        axes.fill_between(steps, low, high, alpha=0.15, color=line.get_color())
    axes.set_xlabel("completed trials")
    axes.set_ylabel("hypervolume (higher is better)")
    axes.set_title(f"{title}: median (solid), mean (dashed), quartiles (shaded)", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="digits")
    parser.add_argument(
        "--samplers", nargs="*", default=["tpe", "nsga2", "random", "grid"], help="none with --merge summarizes the saved histories again"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--checkpoints", nargs="+", type=int, default=[10, 20, 40])
    parser.add_argument("--merge", action="store_true", help="add to the histories already saved for this data set")
    parser.add_argument(
        "--storage", help="sweep storage folder, kept so that later runs find the references cached (default: a temporary one)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny settings that only check that the script works")
    parser.add_argument("--results", default=str(REPOSITORY / "benchmarks" / "results"), help="folder for the JSON (and PNG) results")
    args = parser.parse_args()
    checkpoints = [n for n in args.checkpoints if n <= args.trials] or [args.trials]
    out = Path(args.results)
    saved_path = out / f"search_quality_{args.dataset}.json"

    if not args.samplers and not (args.merge and saved_path.exists()):
        parser.error(f"no sampler to run and no saved histories in {saved_path}; name at least one sampler")
    results = curves(args.dataset, args.samplers, args.seeds, args.trials, args.smoke, args.storage)
    if args.merge and saved_path.exists():
        saved = json.loads(saved_path.read_text())["histories"]
        saved_only = {label: np.array(rows) for label, rows in saved.items() if label not in results}
        lengths = {histories.shape[1] for histories in [*saved_only.values(), *results.values()]}
        if len(lengths) > 1:
            raise SystemExit(f"Invalid --merge: the histories have {sorted(lengths)} trials; run every sampler with the same --trials.")
        results = {**saved_only, **results}
    rows = summarize(results, checkpoints)
    print("| sampler | trials | mean | std | median | min | max |\n|---|---|---|---|---|---|---|")
    for values in rows:
        print(
            f"| {values['sampler']} | {values['trials']} | {values['mean']:.4f} | {values['std']:.4f} | {values['median']:.4f} "
            f"| {values['min']:.4f} | {values['max']:.4f} |"
        )
    for line in goal(results, checkpoints[-1]):
        print(line)

    plot(results, out / f"search_quality_{args.dataset}.png", f"Hypervolume by trial, IEU on {args.dataset}")
    saved_path.write_text(
        json.dumps({"rows": rows, "goal": goal(results, checkpoints[-1]), "histories": {k: v.tolist() for k, v in results.items()}}, indent=2)
    )


if __name__ == "__main__":
    main()
