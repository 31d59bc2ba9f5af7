"""Optuna samplers by name, each safe to pickle into Ray Tune's experiment state."""

from __future__ import annotations

import threading
from typing import Any

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


def build_sampler(config: SamplerConfig, num_trials: int) -> optuna.samplers.BaseSampler:
    """Create the configured sampler, seeded, with the user's extra options.

    NSGA-II's population defaults to a quarter of the trial budget (between 4 and 50), so a short
    sweep still runs several generations.
    """
    options = dict(config.options)
    try:
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
    raise ConfigError(f"Unknown sampler {config.name!r}; choose tpe, nsga2, random or gp.")
