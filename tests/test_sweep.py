"""A small real sweep on digits: Ray Tune trials, a persistent Optuna study and an MLflow SQLite store.

One sweep runs once per module. Its search space lets the learning rate reach 1e6, so some trials
diverge. The tests then read the three systems back and check that they agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.cli import main
from sweeps.tracking import PARETO_TAG, ROLE_TAG, STATUS_TAG, TRIAL_TAG
from unlearning.evaluation import METRIC_NAMES

TRIALS = 8
SWEEP = "test-sweep"


def sweep_file(tmp_path: Path) -> Path:
    config = {
        "name": SWEEP,
        "trials": TRIALS,
        "concurrency": 2,
        "sampler": {"name": "random", "seed": 3},
        "rcd": {"seeds": [0], "max_steps": 400},
        "search_space": {
            "method": "ieu",
            "parameters": {
                "lr": {"type": "categorical", "choices": [0.025, 1.0e6]},
                "ascent_steps": {"type": "int", "low": 20, "high": 120},
                "noise_scale": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
            },
        },
        "method": {"params": {"retain_steps": 1, "weight_decay": 0.01}},
        "storage": str(tmp_path / "mlruns"),
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    config = sweep_file(tmp_path)
    storage = tmp_path / "mlruns"
    exit_code = main(["run", str(config)])
    client = MlflowClient(tracking_uri=f"sqlite:///{storage / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(SWEEP)
    study = optuna.load_study(study_name=SWEEP, storage=f"sqlite:///{storage / 'optuna.db'}")
    return {"exit_code": exit_code, "storage": storage, "client": client, "experiment": experiment, "study": study, "tmp_path": tmp_path}


def runs(sweep) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{sweep['storage'] / 'mlflow.db'}")
    return mlflow.search_runs(experiment_ids=[sweep["experiment"].experiment_id])


def test_sweep_exits_cleanly(sweep):
    assert sweep["exit_code"] == 0


def test_one_parent_and_child_per_trial(sweep):
    frame = runs(sweep)
    parents = frame[frame[f"tags.{ROLE_TAG}"] == "parent"]
    children = frame[frame[f"tags.{ROLE_TAG}"] == "trial"]

    assert len(parents) == 1
    assert len(children) == TRIALS
    assert set(children["tags.mlflow.parentRunId"]) == {parents["run_id"].iloc[0]}
    assert children[f"tags.{TRIAL_TAG}"].is_unique


def test_some_trials_diverged(sweep):
    frame = runs(sweep)
    children = frame[frame[f"tags.{ROLE_TAG}"] == "trial"]
    failed = children[children[f"tags.{STATUS_TAG}"] == "failed"]

    assert 0 < len(failed) < TRIALS
    assert set(failed["status"]) == {"FAILED"}
    assert all("NaN or infinite" in message for message in failed["tags.error"])
    assert set(failed["params.lr"]) == {"1000000.0"}


def test_completed_children_have_all_metrics(sweep):
    frame = runs(sweep)
    completed = frame[(frame[f"tags.{ROLE_TAG}"] == "trial") & (frame[f"tags.{STATUS_TAG}"] == "completed")]

    for name in METRIC_NAMES:
        assert completed[f"metrics.{name}"].notna().all(), name
    assert (completed["status"] == "FINISHED").all()


def test_relearning_curve_history(sweep):
    frame = runs(sweep)
    completed = frame[(frame[f"tags.{ROLE_TAG}"] == "trial") & (frame[f"tags.{STATUS_TAG}"] == "completed")]
    history = sweep["client"].get_metric_history(completed["run_id"].iloc[0], "relearn_gap")

    assert len(history) >= 2
    assert history[0].step == 0
    assert [point.step for point in history] == sorted(point.step for point in history)


def test_optuna_matches_mlflow(sweep):
    frame = runs(sweep)
    children = frame[frame[f"tags.{ROLE_TAG}"] == "trial"]
    states = [trial.state for trial in sweep["study"].get_trials()]

    assert states.count(TrialState.COMPLETE) == (children[f"tags.{STATUS_TAG}"] == "completed").sum()
    assert states.count(TrialState.FAIL) == (children[f"tags.{STATUS_TAG}"] == "failed").sum()
    assert TrialState.RUNNING not in states
    assert len(states) == TRIALS


def test_pareto_front_matches_optuna(sweep):
    pareto = pd.read_csv(sweep["storage"] / "sweeps" / SWEEP / "pareto.csv")
    optuna_front = sorted(trial.number for trial in sweep["study"].best_trials)

    assert sorted(pareto["trial"].tolist()) == optuna_front

    frame = runs(sweep)
    tagged = frame[frame[f"tags.{PARETO_TAG}"] == "true"]
    assert len(tagged) == len(optuna_front)


def test_parent_artifacts(sweep):
    frame = runs(sweep)
    parent_id = frame[frame[f"tags.{ROLE_TAG}"] == "parent"]["run_id"].iloc[0]
    names = {artifact.path for artifact in sweep["client"].list_artifacts(parent_id)}

    for expected in ("pareto.csv", "pareto.png", "trials.csv", "best_config.yaml", "hypervolume.csv", "config.yaml"):
        assert expected in names


def test_parent_reference_metrics(sweep):
    frame = runs(sweep)
    parent = frame[frame[f"tags.{ROLE_TAG}"] == "parent"].iloc[0]

    assert parent["metrics.retrain.rcd"] == pytest.approx(1.0)
    assert parent["metrics.original.rcd"] == 0.0
    assert parent["metrics.original.test_acc"] >= 0.95
    assert parent["metrics.hypervolume"] >= 0.0
    assert parent["params.method.name"] == "ieu"
    assert parent["tags.version.optuna"] == optuna.__version__


def test_export_then_unlearn_reproduces(sweep, capsys):
    storage = sweep["storage"]
    exported = sweep["tmp_path"] / "best.yaml"
    assert main(["export", SWEEP, "--storage", str(storage), "--rule", "min_avg_gap", "--out", str(exported)]) == 0
    selection = yaml.safe_load(exported.read_text())["selection"]

    out = sweep["tmp_path"] / "unlearned.pt"
    original = storage / "sweeps" / SWEEP / "original.pt"
    assert main(["unlearn", str(exported), "--checkpoint", str(original), "--out", str(out)]) == 0
    reproduced = json.loads(out.with_suffix(".metrics.json").read_text())

    for name, value in selection["metrics"].items():
        if name in reproduced and name != "runtime_s":
            assert reproduced[name] == value, name
