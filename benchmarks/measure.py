"""Run one sweep in a child process and return its timings, memory and hypervolume history as JSON.

The benchmark scripts call `measure_sweep`, which starts this file as a separate Python process, so
the driver's peak memory belongs to that sweep alone and each sweep starts Ray from scratch, as
`rcd-sweep run` does.

Usage as a script (what `measure_sweep` runs): python benchmarks/measure.py SETTINGS_JSON
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("RCD_SWEEP_MNIST_DIR", REPOSITORY.parent / "shared" / "data" / "mnist"))

DIGITS = {"data": {"dataset": "digits"}}
MNIST_6K = {"data": {"dataset": "mnist", "data_dir": str(MNIST_DIR), "max_train_samples": 6000}, "rcd": {"seeds": [0]}}
"""The data set settings of the default digits sweep and of examples/mnist-ieu.yaml."""


def measure_sweep(settings: dict[str, Any], fresh: bool = True) -> dict[str, Any]:
    """Run a sweep with `settings` (sweep configuration keys) in a child process and return its measurements."""
    command = [sys.executable, str(Path(__file__).resolve()), json.dumps({"settings": settings, "fresh": fresh})]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY)
    if completed.returncode != 0:
        raise RuntimeError(f"sweep {settings.get('name')!r} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _child(request: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    from mlflow.tracking import MlflowClient
    from ray.tune import ExperimentAnalysis

    from sweeps.config import load_config
    from sweeps.runner import run_sweep, sweep_paths
    from sweeps.tracking import default_tracking_uri

    config = load_config(None, [], request["settings"])
    started = time.monotonic()
    result = run_sweep(config, fresh=request["fresh"])
    wall_s = time.monotonic() - started

    paths = sweep_paths(config)
    frame = ExperimentAnalysis(paths.ray_experiment).dataframe()
    parent = MlflowClient(default_tracking_uri(paths.storage)).get_run(result.parent_run_id)
    history = pd.read_csv(paths.output / "hypervolume.csv")["hypervolume"].tolist()
    return {
        "name": config.name,
        "trials": config.trials,
        "concurrency": config.concurrency,
        "completed": len(result.trials),
        "failed": result.failed,
        "wall_s": wall_s,
        "trial_time_s": frame["time_total_s"].tolist(),
        "phases": {key[len("phase.") :]: value for key, value in parent.data.metrics.items() if key.startswith("phase.")},
        "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trial_peak_rss_mb": result.trials["peak_rss_mb"].max() if "peak_rss_mb" in result.trials else None,
        # In trial order. At concurrency 1 the trials share one reused process until a trial fails, so this traces its growth.
        "trial_peak_rss_mb_by_trial": result.trials.sort_values("trial")["peak_rss_mb"].tolist() if "peak_rss_mb" in result.trials else [],
        "hypervolume": result.hypervolume,
        "hypervolume_history": history,
    }


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
