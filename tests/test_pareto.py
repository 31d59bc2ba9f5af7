"""Pareto front and hypervolume against brute-force checks and Optuna's own implementation."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest

from sweeps.pareto import hypervolume, hypervolume_history, pareto_mask, reference_point

DIRECTIONS = ["maximize", "minimize"]


def brute_force_front(values: np.ndarray, directions: list[str]) -> set[int]:
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    points = values * signs
    front = set()
    for i, candidate in enumerate(points):
        dominated = any(np.all(other <= candidate) and np.any(other < candidate) for j, other in enumerate(points) if j != i)
        if not dominated:
            front.add(i)
    return front


def grid_hypervolume(values: np.ndarray, reference: list[float], resolution: int = 400) -> float:
    """Approximate the dominated area of a maximize/minimize pair by counting grid cells."""
    xs = np.linspace(reference[0], values[:, 0].max(), resolution)
    ys = np.linspace(values[:, 1].min(), reference[1], resolution)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    centers_x = (xs[:-1] + xs[1:]) / 2
    centers_y = (ys[:-1] + ys[1:]) / 2
    grid_x, grid_y = np.meshgrid(centers_x, centers_y)
    covered = np.zeros_like(grid_x, dtype=bool)
    for x, y in values:
        covered |= (grid_x <= x) & (grid_y >= y)
    return covered.sum() * cell


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_brute_force(seed):
    values = np.random.default_rng(seed).random((40, 2))
    values[5] = values[6]  # equal points are both on the front, as in Optuna

    assert set(np.flatnonzero(pareto_mask(values, DIRECTIONS))) == brute_force_front(values, DIRECTIONS)


@pytest.mark.parametrize("seed", range(3))
def test_front_matches_optuna(seed):
    values = np.random.default_rng(seed).random((30, 2))
    study = optuna.create_study(directions=DIRECTIONS)
    for row in values:
        study.add_trial(optuna.trial.create_trial(values=list(row), params={}, distributions={}))

    assert set(trial.number for trial in study.best_trials) == set(np.flatnonzero(pareto_mask(values, DIRECTIONS)))


def test_three_objective_front():
    values = np.random.default_rng(9).random((30, 3))
    directions = ["maximize", "minimize", "minimize"]

    assert set(np.flatnonzero(pareto_mask(values, directions))) == brute_force_front(values, directions)


def test_hypervolume_single_point():
    assert hypervolume(np.array([[2.0, 0.25]]), DIRECTIONS, [0.0, 1.0]) == pytest.approx(1.5)


def test_hypervolume_matches_grid():
    values = np.random.default_rng(1).random((12, 2)) * [3.0, 1.0]

    exact = hypervolume(values, DIRECTIONS, [0.0, 1.0])

    assert exact == pytest.approx(grid_hypervolume(values, [0.0, 1.0]), rel=0.02)


def test_hypervolume_three_objectives_matches_optuna():
    from optuna._hypervolume import compute_hypervolume

    values = np.random.default_rng(4).random((15, 3))
    reference = np.array([1.1, 1.1, 1.1])

    ours = hypervolume(values, ["minimize"] * 3, reference)

    assert ours == pytest.approx(compute_hypervolume(values, reference))


def test_points_outside_reference_add_nothing():
    values = np.array([[-1.0, 0.1], [1.0, 2.0]])

    assert hypervolume(values, DIRECTIONS, [0.0, 1.0]) == 0.0


def test_history_never_decreases():
    values = np.random.default_rng(2).random((20, 2))
    history = hypervolume_history(values, DIRECTIONS, [0.0, 1.0])

    assert all(later >= earlier for earlier, later in itertools.pairwise(history))
    assert history[-1] == pytest.approx(hypervolume(values, DIRECTIONS, [0.0, 1.0]))


def test_reference_point_sources():
    point, sources = reference_point(["rcd", "runtime_s"], ["maximize", "minimize"], np.array([[1.0, 3.0], [2.0, 5.0]]), {})

    assert point == [0.0, 5.0]
    assert sources == ["default", "worst observed"]
