"""Reference caching: a second sweep on the same set-up (cache hit) against the first (cache miss).

Usage: python benchmarks/reference_cache.py [--dataset digits|mnist] [--trials 4] [--smoke]

Both sweeps run in one storage folder, so the second finds the original and retrain models in
`STORAGE/references` and only measures their RCD. The script prints the wall time and the
`references` phase of both sweeps and their ratios.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from measure import DIGITS, MNIST_6K, REPOSITORY, measure_sweep

DATASETS = {"digits": DIGITS, "mnist": MNIST_6K}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="digits")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="tiny settings that only check that the script works")
    parser.add_argument("--results", default=str(REPOSITORY / "benchmarks" / "results"), help="folder for the JSON (and PNG) results")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rcd-bench-") as storage:
        settings = {**DATASETS[args.dataset], "name": f"cache-{args.dataset}", "storage": storage, "trials": args.trials}
        if args.smoke:
            settings.update(trials=1, training={"epochs": 2}, rcd={"seeds": [0], "max_steps": 50})
        miss = measure_sweep(settings, fresh=True)
        hit = measure_sweep(settings, fresh=True)

    row = {
        "dataset": args.dataset,
        "trials": args.trials,
        "miss_wall_s": miss["wall_s"],
        "hit_wall_s": hit["wall_s"],
        "wall_ratio": hit["wall_s"] / miss["wall_s"],
        "miss_references_s": miss["phases"]["references_s"],
        "hit_references_s": hit["phases"]["references_s"],
        "references_ratio": hit["phases"]["references_s"] / miss["phases"]["references_s"],
    }
    print(json.dumps(row))
    out = Path(args.results) / f"reference_cache_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
