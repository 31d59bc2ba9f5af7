"""Kill a sweep's driver with SIGKILL, resume it, and find every finished trial kept and none repeated."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.cli import main
from sweeps.tracking import ROLE_TAG, TRIAL_TAG

TRIALS = 6
SWEEP = "crash"
FINISHED_BEFORE_KILL = 2


def write_config(tmp_path: Path) -> Path:
    config = {
        "name": SWEEP,
        "trials": TRIALS,
        "concurrency": 2,
        "sampler": {"name": "tpe", "seed": 1},
        "training": {"epochs": 10},
        "rcd": {"seeds": [0], "max_steps": 300},
        "search_space": {
            "method": "ieu",
            "parameters": {
                "lr": {"type": "float", "low": 0.01, "high": 0.05, "log": True},
                "ascent_steps": {"type": "int", "low": 20, "high": 120},
            },
        },
        "method": {"params": {"retain_steps": 1}},
        "storage": str(tmp_path / "mlruns"),
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def finished_children(client: MlflowClient) -> dict[str, dict[str, float]]:
    experiment = client.get_experiment_by_name(SWEEP)
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'trial'")
    return {run.data.tags[TRIAL_TAG]: dict(run.data.metrics) for run in runs}


def kill_after_finished_trials(command: list[str], log: Path, count: int, timeout_s: float = 300) -> None:
    """Start the driver, SIGKILL it once `count` trials are done, then remove the Ray processes it left."""
    with log.open("w") as stream:
        driver = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    marker = f"[{count}/{TRIALS}] trials done"
    while marker not in log.read_text():
        if driver.poll() is not None or time.monotonic() > deadline:
            driver.kill()
            pytest.fail(f"the sweep ended or stalled before {count} trials finished:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    # Ray's own processes of the killed driver share its process group; a crashed machine loses them too.
    try:
        os.killpg(driver.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def crashed_and_resumed(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("resume")
    config = write_config(tmp_path)
    storage = tmp_path / "mlruns"
    command = [sys.executable, "-m", "sweeps.cli", "run", str(config)]
    kill_after_finished_trials(command, tmp_path / "run.log", FINISHED_BEFORE_KILL)

    client = MlflowClient(tracking_uri=f"sqlite:///{storage / 'mlflow.db'}")
    before = finished_children(client)
    message = io.StringIO()
    with contextlib.redirect_stderr(message):
        refused = main(["run", str(config)])
    exit_code = main(["resume", SWEEP, "--storage", str(storage)])
    study = optuna.load_study(study_name=SWEEP, storage=f"sqlite:///{storage / 'optuna.db'}")
    return {"before": before, "after": finished_children(client), "exit_code": exit_code, "refused": (refused, message.getvalue()), "study": study, "client": client}


def test_run_on_existing_name_points_to_resume(crashed_and_resumed):
    exit_code, message = crashed_and_resumed["refused"]

    assert exit_code == 2
    assert f"rcd-sweep resume {SWEEP}" in message


def test_resume_completes_the_budget(crashed_and_resumed):
    study = crashed_and_resumed["study"]
    states = [trial.state for trial in study.get_trials()]

    assert crashed_and_resumed["exit_code"] == 0
    assert len(crashed_and_resumed["before"]) >= FINISHED_BEFORE_KILL
    assert len(states) == TRIALS
    assert states.count(TrialState.COMPLETE) == TRIALS


def test_no_duplicate_child_runs(crashed_and_resumed):
    client = crashed_and_resumed["client"]
    experiment = client.get_experiment_by_name(SWEEP)
    runs = client.search_runs([experiment.experiment_id])
    children = [run for run in runs if run.data.tags.get(ROLE_TAG) == "trial"]
    parents = [run for run in runs if run.data.tags.get(ROLE_TAG) == "parent"]

    assert len(children) == TRIALS
    assert len({run.data.tags[TRIAL_TAG] for run in children}) == TRIALS
    assert len(parents) == 1
    assert parents[0].info.status == "FINISHED"
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {parents[0].info.run_id}


def test_finished_trials_unchanged(crashed_and_resumed):
    before, after = crashed_and_resumed["before"], crashed_and_resumed["after"]

    for trial_id, metrics in before.items():
        assert after[trial_id] == metrics


def test_optuna_and_mlflow_agree(crashed_and_resumed):
    study = crashed_and_resumed["study"]
    after = crashed_and_resumed["after"]

    for trial in study.get_trials():
        metrics = after[trial.user_attrs["ray_trial_id"]]
        assert trial.values == [metrics["rcd"], metrics["retain_acc_loss"]]
