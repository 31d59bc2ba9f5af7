"""`rcd-sweep compare` on digits: every method through the same sweep machinery, one table, one MLflow run."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeps.cli import main
from sweeps.compare import CompareConfig, CompareEntry, sweep_config_for
from sweeps.config import ConfigError, load_config
from sweeps.tracking import ROLE_TAG, SWEEP_TAG

NAME = "cmp"
TRIALS = 3

BROKEN = '''
"""A method that fails in every trial, for the comparison's failure row."""

from unlearning.methods import MethodParams, register_method


class BrokenParams(MethodParams):
    lr: float = 0.1


@register_method("broken", BrokenParams, "Raises in every trial.")
def broken(model, data, params, device, seed):
    raise RuntimeError("broken method always fails")
'''


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("compare")
    (tmp_path / "broken_method.py").write_text(textwrap.dedent(BROKEN))
    config = {
        "name": NAME,
        "trials": TRIALS,
        "concurrency": 2,
        "training": {"epochs": 5},
        "rcd": {"seeds": [0], "max_steps": 300},
        "plugins": ["broken_method"],
        "methods": [
            "gradient_ascent",
            {"method": "ieu", "params": {"retain_steps": 1}},
            {"method": "broken", "search_space": {"method": "broken", "parameters": {"lr": {"type": "float", "low": 0.01, "high": 1.0}}}},
        ],
        "export": {"rule": "knee"},
        "storage": str(tmp_path / "mlruns"),
    }
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(tmp_path))
        patch.syspath_prepend(str(tmp_path))
        first = main(["compare", str(path)])
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
        runs_after_first = len(client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000))
        second = main(["compare", str(path)])
    folder = tmp_path / "mlruns" / "comparisons" / NAME
    return {
        "exit_codes": (first, second),
        "table": pd.read_csv(folder / "comparison.csv"),
        "markdown": (folder / "comparison.md").read_text(),
        "client": client,
        "runs_after_first": runs_after_first,
        "config_path": path,
    }


def test_compare_exits_cleanly(comparison):
    assert comparison["exit_codes"] == (0, 0)


def test_table_rows_and_columns(comparison):
    table = comparison["table"]

    assert table["method"].tolist() == ["original", "retrain", "gradient_ascent", "ieu", "broken"]
    for column in ("ua", "retain_acc", "test_acc", "mia", "avg_gap", "rcd", "rcd_censored", "runtime_s"):
        assert column in table.columns
    assert table.set_index("method").loc["retrain", "rcd"] == 1.0
    assert table.set_index("method").loc["original", "rcd"] == 0.0


def test_selected_rows_match_their_trials(comparison):
    table = comparison["table"].set_index("method")
    client = comparison["client"]

    for label in ("gradient_ascent", "ieu"):
        assert table.loc[label, "status"] == "selected"
        experiment = client.get_experiment_by_name(f"{NAME}-{label}")
        runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'trial'")
        assert len(runs) == TRIALS
        trial = next(run for run in runs if run.data.tags.get("optuna_trial_number") == str(int(table.loc[label, "trial"])))
        assert trial.data.metrics["rcd"] == pytest.approx(table.loc[label, "rcd"])
        assert trial.data.metrics["ua"] == pytest.approx(table.loc[label, "ua"])


def test_failing_method_is_a_failed_row(comparison):
    row = comparison["table"].set_index("method").loc["broken"]

    assert row["status"] == "failed"
    assert "broken method always fails" in row["note"]
    assert row["failed"] == TRIALS


def test_comparison_run_links_sweeps(comparison):
    client = comparison["client"]
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id])
    latest = runs[0]

    assert latest.data.tags[ROLE_TAG] == "comparison"
    for label in ("gradient_ascent", "ieu", "broken"):
        parent_id = latest.data.tags[f"{SWEEP_TAG}.{label}"]
        assert client.get_run(parent_id).data.tags[ROLE_TAG] == "parent"
    assert latest.data.metrics["ieu.rcd"] == pytest.approx(comparison["table"].set_index("method").loc["ieu", "rcd"])
    assert "comparison.md" in {item.path for item in client.list_artifacts(latest.info.run_id)}


def test_second_compare_reuses_sweeps(comparison):
    client = comparison["client"]
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=1000)

    # Only the second comparison's own run is new; no method sweep ran again.
    assert len(runs) == comparison["runs_after_first"] + 1


def test_markdown_has_every_row(comparison):
    for label in ("original", "retrain", "gradient_ascent", "ieu", "broken"):
        assert f"| {label} |" in comparison["markdown"]


def test_ablations_drop_unused_parameters():
    config = CompareConfig(methods=["ieu"], ablations=True)
    entries = {entry.label: entry for entry in config.entries()}

    ascent_only = sweep_config_for(config, entries["ieu-ascent_only"])
    noise_only = sweep_config_for(config, entries["ieu-noise_only"])

    assert set(entries) == {"ieu", "ieu-noise_only", "ieu-ascent_only", "ieu-ascent_noise", "ieu-ascent_decay"}
    assert ascent_only.method.params == {"variant": "ascent_only"}
    assert "noise_scale" not in ascent_only.search_space.parameters
    assert "weight_decay" not in ascent_only.search_space.parameters
    assert "noise_scale" in noise_only.search_space.parameters
    assert ascent_only.name == "compare-ieu-ascent_only"


def test_same_budget_and_seeds_for_every_method():
    config = CompareConfig(trials=7, sampler={"name": "tpe", "seed": 5}, methods=["ieu", "finetune"])
    sweeps = [sweep_config_for(config, entry) for entry in config.entries()]

    assert {sweep.trials for sweep in sweeps} == {7}
    assert {sweep.sampler.seed for sweep in sweeps} == {5}
    assert {sweep.rcd.seeds[0] for sweep in sweeps} == {0}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"method": {"name": "salun"}}, "takes its methods from 'methods'"),
        ({"methods": ["ieu", "ieu"]}, "name a row twice"),
        ({"methods": []}, "methods"),
    ],
)
def test_bad_comparison_rejected(tmp_path, raw, message):
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(raw))

    with pytest.raises(ConfigError, match=message):
        load_config(path, model=CompareConfig)


def test_entry_labels_default_to_method_and_variant():
    assert CompareEntry(method="ieu", params={"variant": "noise_only"}).label == "ieu-noise_only"
    assert CompareEntry(method="salun").label == "salun"


def test_changed_settings_rejected(comparison):
    """A comparison with the same name but another budget does not reuse the old sweeps."""
    from sweeps.compare import run_comparison

    config = load_config(comparison["config_path"], [f"trials={TRIALS + 1}"], model=CompareConfig)

    with pytest.raises(ConfigError, match=r"already exists with different settings \(trials\)"):
        run_comparison(config)
