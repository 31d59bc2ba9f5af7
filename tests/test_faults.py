"""Faults inside trials: exceptions, divergence and hangs are retried, then recorded as failed in Ray, Optuna and MLflow.

The faults come from a plugin module that this test writes and registers as a method, the way a
user adds a method of their own. Each trial's `behaviour` parameter decides what it does.
"""

from __future__ import annotations

import textwrap

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from ray.tune import ExperimentAnalysis

from sweeps.config import load_config
from sweeps.runner import run_sweep
from sweeps.tracking import ATTEMPTS_TAG, ROLE_TAG, STATUS_TAG, TRIAL_TAG

SWEEP = "faults"
TRIALS = 10
MAX_FAILURES = 1
TIMEOUT_S = 5

PLUGIN = '''
"""Test method whose trials succeed, fail once, raise, diverge or hang, as their parameters request."""

import time
from pathlib import Path
from typing import Literal

import torch

from unlearning.methods import MethodParams, register_method


class FaultParams(MethodParams):
    behaviour: Literal["ok", "flaky", "raise", "diverge", "hang"]
    token: float
    marker_dir: str


@register_method("fault", FaultParams, "Injects faults for tests.")
def fault(model, data, params, device, seed):
    marker = Path(params.marker_dir) / f"{params.behaviour}-{params.token}"
    attempts = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempts))
    if params.behaviour == "raise" or (params.behaviour == "flaky" and attempts == 1):
        raise RuntimeError(f"injected fault on attempt {attempts}")
    if params.behaviour == "diverge":
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    if params.behaviour == "hang":
        time.sleep(600)
    return model
'''

EXPECTED_ERRORS = {"raise": "injected fault", "diverge": "NaN or infinite", "hang": "trial_timeout_s"}


@pytest.fixture(scope="module")
def faulty_sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("faults")
    (tmp_path / "fault_methods.py").write_text(textwrap.dedent(PLUGIN))
    markers = tmp_path / "markers"
    markers.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        # Ray's workers inherit the environment of the Ray instance the sweep starts.
        patch.setenv("PYTHONPATH", str(tmp_path))
        patch.syspath_prepend(str(tmp_path))
        config = load_config(
            None,
            [],
            {
                "name": SWEEP,
                "trials": TRIALS,
                "concurrency": 2,
                "plugins": ["fault_methods"],
                "method": {"name": "fault", "params": {"marker_dir": str(markers)}},
                "search_space": {
                    "method": "fault",
                    "parameters": {
                        "behaviour": {"type": "categorical", "choices": ["ok", "flaky", "raise", "diverge", "hang"]},
                        "token": {"type": "float", "low": 0.0, "high": 1.0},
                    },
                },
                "sampler": {"name": "random", "seed": 4},
                "training": {"epochs": 5},
                "rcd": {"seeds": [0], "max_steps": 200},
                "max_failures": MAX_FAILURES,
                "trial_timeout_s": TIMEOUT_S,
                "storage": str(tmp_path / "mlruns"),
            },
        )
        result = run_sweep(config)

    storage = tmp_path / "mlruns"
    client = MlflowClient(tracking_uri=f"sqlite:///{storage / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(SWEEP)
    children = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'trial'")
    study = optuna.load_study(study_name=SWEEP, storage=f"sqlite:///{storage / 'optuna.db'}")
    analysis = ExperimentAnalysis(str(storage / "ray" / SWEEP))
    return {"result": result, "children": children, "study": study, "analysis": analysis, "markers": markers}


def behaviour_of(run) -> str:
    return run.data.params["behaviour"]


def test_every_behaviour_was_drawn(faulty_sweep):
    drawn = {behaviour_of(run) for run in faulty_sweep["children"]}

    assert drawn == {"ok", "flaky", "raise", "diverge", "hang"}


def test_mlflow_records_each_outcome(faulty_sweep):
    for run in faulty_sweep["children"]:
        behaviour = behaviour_of(run)
        if behaviour in EXPECTED_ERRORS:
            assert run.info.status == "FAILED"
            assert run.data.tags[STATUS_TAG] == "failed"
            assert EXPECTED_ERRORS[behaviour] in run.data.tags["error"]
            assert run.data.tags[ATTEMPTS_TAG] == str(MAX_FAILURES + 1)
            assert "rcd" not in run.data.metrics
        else:
            assert run.info.status == "FINISHED"
            assert run.data.tags[ATTEMPTS_TAG] == ("2" if behaviour == "flaky" else "1")
            assert run.data.metrics["rcd"] == 0.0


def test_failing_trials_ran_max_failures_plus_one_times(faulty_sweep):
    for marker in faulty_sweep["markers"].iterdir():
        behaviour = marker.name.split("-")[0]
        expected = {"ok": 1, "flaky": 2}.get(behaviour, MAX_FAILURES + 1)
        assert int(marker.read_text()) == expected, marker.name


def test_optuna_and_ray_agree_with_mlflow(faulty_sweep):
    runs = {run.data.tags[TRIAL_TAG]: run for run in faulty_sweep["children"]}
    optuna_states = {trial.user_attrs["ray_trial_id"]: trial.state for trial in faulty_sweep["study"].get_trials()}
    ray_states = {trial.trial_id: trial.status for trial in faulty_sweep["analysis"].trials}

    assert set(runs) == set(optuna_states) == set(ray_states)
    for trial_id, run in runs.items():
        failed = behaviour_of(run) in EXPECTED_ERRORS
        assert optuna_states[trial_id] == (TrialState.FAIL if failed else TrialState.COMPLETE)
        assert ray_states[trial_id] == ("ERROR" if failed else "TERMINATED")


def test_summary_counts_failures(faulty_sweep):
    failed = sum(behaviour_of(run) in EXPECTED_ERRORS for run in faulty_sweep["children"])
    result = faulty_sweep["result"]

    assert result.failed == failed
    assert len(result.trials) == TRIALS - failed
