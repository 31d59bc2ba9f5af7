"""Optuna samplers by name, each safe to pickle into Ray Tune's experiment state."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import optuna

from sweeps.config import ConfigError, SamplerConfig


class PicklableNSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II whose thread lock is recreated after unpickling.

    Optuna's genetic-algorithm samplers keep a `threading.Lock`, which cannot be pickled, and Ray
    Tune pickles the searcher (with its sampler) when the tuner starts and at every checkpoint.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


class BudgetedGridSampler(optuna.samplers.GridSampler):
    """Grid sampler that leaves the trial budget to Ray Tune.

    Optuna's grid sampler calls `study.stop()` after the last grid point, which raises outside
    `study.optimize`, and Ray Tune's searcher tells results outside it.
    """

    def after_trial(self, study, trial, state, values) -> None:
        return None


def grid_values(distribution: optuna.distributions.BaseDistribution, points: int) -> list[Any]:
    """Return `points` evenly spaced values of a distribution (log-spaced for a log range), or its choices."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return list(distribution.choices)
    low, high = distribution.low, distribution.high
    values = np.geomspace(low, high, points) if distribution.log else np.linspace(low, high, points)
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return sorted({int(round(value)) for value in values})
    return [float(value) for value in values]


def build_grid(space: dict[str, optuna.distributions.BaseDistribution], num_trials: int, points: int | None) -> dict[str, list[Any]]:
    """Return a grid over the space with `points` values per numeric axis.

    By default each axis gets the fewest points for which the grid has at least `num_trials`
    points, so every trial runs a distinct grid point.
    """
    numeric = [d for d in space.values() if not isinstance(d, optuna.distributions.CategoricalDistribution)]
    categorical_size = math.prod(len(d.choices) for d in space.values() if d not in numeric)
    if points is None:
        points = 2
        while categorical_size * points ** len(numeric) < num_trials:
            points += 1
    return {name: grid_values(distribution, points) for name, distribution in space.items()}


def build_sampler(
    config: SamplerConfig, num_trials: int, space: dict[str, optuna.distributions.BaseDistribution] | None = None
) -> optuna.samplers.BaseSampler:
    """Create the configured sampler, seeded, with the user's extra options.

    NSGA-II's population defaults to a quarter of the trial budget (between 4 and 50), so a short
    sweep still runs several generations. The grid sampler visits the points of `build_grid` in
    a seeded random order; `options.points_per_axis` sets the grid's resolution.
    """
    options = dict(config.options)
    try:
        if config.name == "grid":
            grid = build_grid(space or {}, num_trials, options.pop("points_per_axis", None))
            return BudgetedGridSampler(grid, seed=config.seed, **options)
        if config.name == "tpe":
            return optuna.samplers.TPESampler(seed=config.seed, **options)
        if config.name == "nsga2":
            options.setdefault("population_size", max(4, min(50, num_trials // 4)))
            return PicklableNSGAIISampler(seed=config.seed, **options)
        if config.name == "random":
            return optuna.samplers.RandomSampler(seed=config.seed, **options)
        if config.name == "gp":
            return optuna.samplers.GPSampler(seed=config.seed, **options)
    except TypeError as error:
        raise ConfigError(f"Invalid option for sampler {config.name!r} in sampler.options: {error}.") from error
    raise ConfigError(f"Unknown sampler {config.name!r}; choose tpe, nsga2, random, gp or grid.")
