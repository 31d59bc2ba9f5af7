"""Every offered Optuna sampler runs under Ray Tune, and a constraint marks infeasible trials."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.config import load_config
from sweeps.runner import run_sweep

FAST = ["rcd.seeds=[0]", "rcd.max_steps=300", "search_space=ieu"]


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return tmp_path_factory.mktemp("samplers") / "mlruns"


@pytest.fixture(scope="module", autouse=True)
def shared_ray():
    """One local Ray instance for every sweep in this module; `run_sweep` leaves a running Ray as it is."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random", "gp", "grid"])
def test_sampler_runs_under_ray(sampler, storage):
    config = load_config(None, [*FAST, f"sampler.name={sampler}", f"name=sampler-{sampler}"], {"trials": 3, "storage": str(storage)})

    result = run_sweep(config)

    study = optuna.load_study(study_name=f"sampler-{sampler}", storage=f"sqlite:///{storage / 'optuna.db'}")
    states = [trial.state for trial in study.get_trials()]
    assert len(states) == 3
    assert TrialState.RUNNING not in states
    assert len(result.trials) + result.failed == 3


def test_constraint_marks_infeasible(storage):
    config = load_config(None, [*FAST, "name=constrained", "constraints=['retain_acc_loss <= -1']"], {"trials": 2, "storage": str(storage)})

    result = run_sweep(config)

    study = optuna.load_study(study_name="constrained", storage=f"sqlite:///{storage / 'optuna.db'}")
    assert study.best_trials == []
    assert not result.trials["feasible"].any()
    assert result.pareto.empty


def test_existing_sweep_name_rejected(storage):
    from sweeps.runner import SweepExistsError

    config = load_config(None, [*FAST, "name=sampler-random"], {"trials": 3, "storage": str(storage)})

    with pytest.raises(SweepExistsError) as error:
        run_sweep(config)
    assert "'sampler-random' already exists" in str(error.value)
    assert "--fresh" in str(error.value)


def test_sweep_with_only_failures_completes(storage):
    overrides = [
        "rcd.seeds=[0]",
        "name=all-diverge",
        "search_space={method: ieu, parameters: {lr: {type: categorical, choices: [1.0e6]}}}",
        "method.params={weight_decay: 1.0, ascent_steps: 20}",
    ]
    config = load_config(None, overrides, {"trials": 2, "storage": str(storage)})

    result = run_sweep(config)

    assert result.failed == 2
    assert result.trials.empty
    assert result.best_config_path is None
    assert result.hypervolume == 0.0


def test_grid_covers_budget_with_distinct_points():
    from sweeps.samplers import build_grid
    from sweeps.search_space import load_search_space, to_distributions

    space = to_distributions(load_search_space("ieu", "ieu"))
    grid = build_grid(space, 40, None)

    assert len(grid) == len(space)
    assert all(len(values) == 3 for values in grid.values())
    assert grid["lr"][0] == pytest.approx(0.001)
    assert grid["lr"][-1] == pytest.approx(0.3)
    assert grid["lr"][1] == pytest.approx((0.001 * 0.3) ** 0.5)
    assert grid["retain_steps"] == [0, 1, 2]
