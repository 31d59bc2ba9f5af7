"""Smoke runs of every benchmark script with tiny settings, so that none of them can rot unnoticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RCD_SWEEP_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, str(BENCHMARKS / name), "--smoke", "--results", str(tmp_path), *args]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=BENCHMARKS.parent, timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def test_orchestration_smoke(tmp_path):
    run_script("orchestration.py", tmp_path, "--datasets", "digits", "--concurrency", "2")

    (row,) = json.loads((tmp_path / "orchestration.json").read_text())
    assert row["trials"] == 2
    assert 0 < row["efficiency"] <= 1
    assert row["phase.references_s"] > 0
    assert row["trial_peak_rss_mb"] > 0
    assert len(row["trial_peak_rss_mb_by_trial"]) == 2


def test_search_quality_smoke(tmp_path):
    completed = run_script("search_quality.py", tmp_path, "--samplers", "random", "grid", "--seeds", "0", "--trials", "2", "--checkpoints", "1", "2")

    saved = json.loads((tmp_path / "search_quality_digits.json").read_text())
    assert {row["sampler"] for row in saved["rows"]} == {"random", "grid"}
    assert all(len(history[0]) == 2 for history in saved["histories"].values())
    assert (tmp_path / "search_quality_digits.png").stat().st_size > 0
    assert "grid: " in completed.stdout
    assert "random search's 2-trial mean hypervolume" in completed.stdout

    run_script("search_quality.py", tmp_path, "--samplers", "tpe:n_startup_trials=1", "--seeds", "0", "--trials", "2", "--merge")

    merged = json.loads((tmp_path / "search_quality_digits.json").read_text())
    assert set(merged["histories"]) == {"random", "grid", "tpe:n_startup_trials=1"}


def test_rcd_cost_smoke(tmp_path):
    run_script("rcd_cost.py", tmp_path, "--dataset", "digits", "--fractions", "0.1", "--vectorized-seeds", "0", "1")

    (row,) = json.loads((tmp_path / "rcd_cost_digits.json").read_text())
    assert row["forget_samples"] == 144
    assert row["full_budget_s"] > 0
    assert row["early_exit_s"] > 0
    assert row["vectorized_rcd_steps"] == row["sequential_rcd_steps"]


def test_model_speed_smoke(tmp_path):
    run_script("model_speed.py", tmp_path)

    rows = json.loads((tmp_path / "model_speed.json").read_text())
    assert {(row["dataset"], row["model"]) for row in rows} == {
        (dataset, model) for dataset in ("digits", "mnist") for model in ("cnn", "resnet18", "mlp")
    }
    assert max(row["max_logit_difference"] for row in rows) < 1e-4


@pytest.mark.parametrize("dataset", ["digits"])
def test_reference_cache_smoke(tmp_path, dataset):
    run_script("reference_cache.py", tmp_path, "--dataset", dataset)

    row = json.loads((tmp_path / f"reference_cache_{dataset}.json").read_text())
    assert row["hit_references_s"] < row["miss_references_s"]
