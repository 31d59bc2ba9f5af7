"""Two sweeps write to one store at the same time while the MLflow UI, started by `rcd-sweep ui`, reads it."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from conftest import free_port, get_json
from optuna.trial import TrialState

from sweeps.runner import optuna_storage
from sweeps.tracking import ROLE_TAG, SweepTracker

TRIALS = 3
NAMES = ("together-a", "together-b")


def sweep_file(tmp_path: Path, name: str, storage: Path) -> Path:
    config = {
        "name": name,
        "trials": TRIALS,
        "concurrency": 1,
        "sampler": {"name": "random", "seed": len(name)},
        "training": {"epochs": 5},
        "rcd": {"seeds": [0], "max_steps": 200},
        "search_space": {
            "method": "ieu",
            "parameters": {"ascent_steps": {"type": "int", "low": 5, "high": 40}},
        },
        "storage": str(storage),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("concurrent")
    storage = tmp_path / "mlruns"
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "ui", "--storage", str(storage), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=100"
    try:
        get_json(url)
        logs = {name: (tmp_path / f"{name}.log").open("w") for name in NAMES}
        drivers = {
            name: subprocess.Popen(
                [sys.executable, "-m", "sweeps.cli", "run", str(sweep_file(tmp_path, name, storage))],
                stdout=logs[name],
                stderr=subprocess.STDOUT,
            )
            for name in NAMES
        }
        # The UI responds while both drivers write to the store.
        answers = []
        while any(driver.poll() is None for driver in drivers.values()):
            answers.append(sorted(experiment["name"] for experiment in get_json(url, timeout_s=30)["experiments"]))
            time.sleep(2)
        final = sorted(experiment["name"] for experiment in get_json(url)["experiments"])
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    exit_codes = {name: driver.wait() for name, driver in drivers.items()}
    for stream in logs.values():
        stream.close()
    output = {name: (tmp_path / f"{name}.log").read_text() for name in NAMES}
    return {"storage": storage, "exit_codes": exit_codes, "answers": answers, "final": final, "output": output}


def test_both_sweeps_complete(two_sweeps):
    for name, code in two_sweeps["exit_codes"].items():
        assert code == 0, two_sweeps["output"][name][-3000:]


def test_both_sweeps_have_all_runs(two_sweeps):
    mlflow.set_tracking_uri(f"sqlite:///{two_sweeps['storage'] / 'mlflow.db'}")
    for name in NAMES:
        runs = mlflow.search_runs(experiment_names=[name])
        children = runs[runs[f"tags.{ROLE_TAG}"] == "trial"]
        assert len(children) == TRIALS
        assert set(children["status"]) == {"FINISHED"}
        assert (runs[f"tags.{ROLE_TAG}"] == "parent").sum() == 1


def test_both_studies_complete(two_sweeps):
    for name in NAMES:
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{two_sweeps['storage'] / 'optuna.db'}")
        assert [trial.state for trial in study.get_trials()] == [TrialState.COMPLETE] * TRIALS


def test_ui_responds_during_sweeps(two_sweeps):
    assert len(two_sweeps["answers"]) >= 2
    assert set(NAMES) <= set(two_sweeps["final"])


def open_new_stores(barrier, folder: Path, index: int) -> None:
    barrier.wait()
    optuna_storage(f"sqlite:///{folder / 'optuna.db'}")
    SweepTracker(f"sqlite:///{folder / 'mlflow.db'}", f"sweep-{index}")


def test_racing_sweeps_create_new_stores_once(tmp_path):
    # Without the lock, one of the four processes usually fails with "table ... already exists".
    context = multiprocessing.get_context("spawn")
    for attempt in range(2):
        folder = tmp_path / str(attempt)
        barrier = context.Barrier(4)
        processes = [context.Process(target=open_new_stores, args=(barrier, folder, index)) for index in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [process.exitcode for process in processes] == [0] * 4
        names = {experiment.name for experiment in mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()}
        assert names == {"Default"} | {f"sweep-{index}" for index in range(4)}
