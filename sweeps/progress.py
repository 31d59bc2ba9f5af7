"""Console progress of a running sweep: trials done, failures, Pareto size, hypervolume, elapsed time."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
from ray.tune import Callback
from ray.tune.experiment import Trial

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

    The counts come from Tune's list of all trials, so a resumed sweep counts the trials that
    finished before the driver stopped.

    Args:
        total: the trial budget.
        metrics: objective names.
        directions: "maximize" or "minimize" per objective.
        reference: hypervolume reference point in the objectives' own directions.
    """

    def __init__(self, total: int, metrics: list[str], directions: list[str], reference: list[float]):
        self.total = total
        self.metrics = metrics
        self.directions = directions
        self.reference = reference
        self.started = time.monotonic()

    def setup(self, **info: Any) -> None:
        self.started = time.monotonic()
        logger.info("Sweep started: %d trials in the budget.", self.total)

    def _objectives(self, trial: Any) -> list[float] | None:
        result = trial.last_result or {}
        values = [result.get(name) for name in self.metrics]
        if all(isinstance(value, (int, float)) and math.isfinite(value) for value in values):
            return [float(value) for value in values]
        return None

    def _report(self, trials: list, current: Any, current_failed: bool) -> None:
        finished = {t.trial_id: t for t in trials if t.status in (Trial.TERMINATED, Trial.ERROR)}
        finished[current.trial_id] = current
        failed = {t.trial_id for t in finished.values() if t.status == Trial.ERROR}
        if current_failed:
            failed.add(current.trial_id)
        else:
            failed.discard(current.trial_id)
        points = [values for trial_id, trial in finished.items() if trial_id not in failed and (values := self._objectives(trial))]

        pareto_size, volume = 0, 0.0
        if points:
            array = np.array(points)
            pareto_size = int(pareto_mask(array, self.directions).sum())
            volume = hypervolume(array, self.directions, self.reference)
        logger.info(
            "[%d/%d] trials done, %d failed, Pareto front %d, hypervolume %.4f, elapsed %s",
            len(finished),
            self.total,
            len(failed),
            pareto_size,
            volume,
            format_duration(time.monotonic() - self.started),
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._report(trials, trial, current_failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._report(trials, trial, current_failed=True)
