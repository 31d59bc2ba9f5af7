"""Ray Tune's OptunaSearch, adapted so that no Optuna trial is ever left RUNNING.

Ray's own `on_trial_complete` (Ray 2.60) reports the trial to Optuna as COMPLETE with whatever
values it finds. When Optuna rejects them (None or NaN values), Ray only logs a warning, and the
Optuna trial stays RUNNING forever. Here a trial that errored, or whose objectives are missing or
not finite, is reported as FAIL. The configured constraints are stored on each completed trial, so
`study.best_trials` returns the feasible Pareto front.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.utils.util import unflatten_dict

from sweeps.config import Constraint

logger = logging.getLogger(__name__)


class SweepSearch(OptunaSearch):
    """Multi-objective OptunaSearch with failure handling, constraints and Ray trial ids on Optuna trials.

    Args:
        space: Optuna distributions by parameter name.
        metric: objective metric names, in study order.
        mode: "max" or "min" per objective.
        sampler: the Optuna sampler.
        study_name: name of the persistent study.
        storage: Optuna storage (an RDB storage for a persistent study).
        constraints: feasibility conditions stored on each completed trial.
        budget: total number of trials in the study; once the study contains this many, no more
            are suggested. Tune's own count can fall short of the study's after a resume.
    """

    def __init__(
        self,
        space: dict[str, optuna.distributions.BaseDistribution],
        metric: list[str],
        mode: list[str],
        sampler: optuna.samplers.BaseSampler,
        study_name: str,
        storage: optuna.storages.BaseStorage,
        constraints: list[Constraint] | None = None,
        budget: int | None = None,
    ):
        super().__init__(space=space, metric=metric, mode=mode, sampler=sampler, study_name=study_name, storage=storage)
        self._constraints = list(constraints or [])
        self._budget = budget

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        is_new = trial_id not in self._ot_trials
        if is_new and self._adopt_orphan(trial_id):
            return unflatten_dict(self._ot_trials[trial_id].params)
        if is_new and self._budget is not None and len(self._ot_study.get_trials(deepcopy=False)) >= self._budget:
            # After a resume, trials that finished after Tune last saved its state are in the study but not in Tune.
            return Searcher.FINISHED
        params = super().suggest(trial_id)
        if is_new and trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return params

    def _adopt_orphan(self, trial_id: str) -> bool:
        """Give a new Ray trial the parameters of an Optuna trial that no Ray trial owns.

        When the driver dies between asking Optuna for a trial and saving Ray Tune's experiment
        state, the study keeps a RUNNING trial that the restored Tune run does not know. Running
        it under the next Ray trial id keeps the study's trial count equal to the budget.
        """
        owned = {trial.number for trial in self._ot_trials.values()}
        for frozen in self._ot_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.number in owned or set(frozen.params) != set(self._space):
                continue
            ot_trial = optuna.Trial(self._ot_study, frozen._trial_id)
            previous = frozen.user_attrs.get("ray_trial_id")
            ot_trial.set_user_attr("ray_trial_id", trial_id)
            self._ot_trials[trial_id] = ot_trial
            logger.info("Optuna trial %d (Ray trial %s, lost when the driver stopped) runs again as Ray trial %s.", frozen.number, previous, trial_id)
            return True
        return False

    def _is_finished(self, ot_trial: optuna.Trial) -> bool:
        return self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished()

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        if self._is_finished(ot_trial):
            # A resumed sweep can rerun a trial whose result reached Optuna after Tune last saved its state.
            self._completed_trials.add(trial_id)
            return

        values = [None if not result else result.get(name) for name in self.metric]
        usable = not error and all(isinstance(value, (int, float)) and math.isfinite(value) for value in values)
        try:
            if usable:
                for constraint in self._constraints:
                    ot_trial.set_constraint(str(constraint), constraint.violation(result))
                self._ot_study.tell(ot_trial, [float(value) for value in values], state=TrialState.COMPLETE)
            else:
                reason = (result or {}).get("error") or ("trial raised an error" if error else f"objectives {values} are not finite")
                ot_trial.set_user_attr("fail_reason", str(reason)[:1000])
                self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        except (ValueError, RuntimeError) as tell_error:
            logger.warning("Optuna rejected the result of trial %s (%s); recording it as failed.", trial_id, tell_error)
            self._ot_study.tell(ot_trial, state=TrialState.FAIL, skip_if_finished=True)
        self._completed_trials.add(trial_id)
