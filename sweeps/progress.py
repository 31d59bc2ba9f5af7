"""Console progress of a running sweep: trials done, failures, Pareto size, hypervolume, elapsed time."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
from ray.tune import Callback

from sweeps.pareto import hypervolume, pareto_mask

logger = logging.getLogger("sweeps.progress")


def format_duration(seconds: float) -> str:
    """Format seconds as `1h02m03s`, `2m03s` or `3.4s`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class ProgressCallback(Callback):
    """Log one progress line whenever a trial completes or fails.

    Args:
        total: the trial budget.
        metrics: objective names.
        directions: "maximize" or "minimize" per objective.
        reference: hypervolume reference point in the objectives' own directions.
        done_before: trials finished before this run started (when resuming).
        failed_before: failed trials among those.
    """

    def __init__(
        self,
        total: int,
        metrics: list[str],
        directions: list[str],
        reference: list[float],
        done_before: int = 0,
        failed_before: int = 0,
    ):
        self.total = total
        self.metrics = metrics
        self.directions = directions
        self.reference = reference
        self.values: dict[str, list[float]] = {}
        self.failed: set[str] = set()
        self.done_before = done_before
        self.failed_before = failed_before
        self.started = time.monotonic()

    def setup(self, **info: Any) -> None:
        self.started = time.monotonic()
        logger.info("Sweep started: %d trials to run.", self.total - self.done_before)

    def _report(self) -> None:
        done = self.done_before + len(self.values) + len(self.failed)
        failed = self.failed_before + len(self.failed)
        pareto_size, volume = 0, 0.0
        if self.values:
            points = np.array(list(self.values.values()))
            pareto_size = int(pareto_mask(points, self.directions).sum())
            volume = hypervolume(points, self.directions, self.reference)
        logger.info(
            "[%d/%d] trials done, %d failed, Pareto front %d, hypervolume %.4f, elapsed %s",
            done,
            self.total,
            failed,
            pareto_size,
            volume,
            format_duration(time.monotonic() - self.started),
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        values = [result.get(name) for name in self.metrics]
        if all(isinstance(value, (int, float)) and math.isfinite(value) for value in values):
            self.values[trial.trial_id] = [float(value) for value in values]
        self._report()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.failed.add(trial.trial_id)
        self._report()
