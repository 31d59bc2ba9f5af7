"""MLflow records written by the driver: one parent run per sweep, one child run per trial.

Trials never talk to MLflow. A Tune callback on the driver turns each finished or failed trial into
a child run, so one process writes to the store (a SQLite file by default) and trials running on
other nodes need no access to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, ContextManager, Iterable

import cloudpickle
import filelock
import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS
from sqlalchemy.engine import make_url

from sweeps.trial import CURVE_KEY, PLACEMENT_KEYS, TIMING_KEYS

logger = logging.getLogger(__name__)

ROLE_TAG = "rcd_sweep.role"
SWEEP_TAG = "rcd_sweep.sweep"
TRIAL_TAG = "ray_trial_id"
STATUS_TAG = "rcd_sweep.status"
PARETO_TAG = "rcd_sweep.pareto"
OPTUNA_TAG = "optuna_trial_number"
ATTEMPTS_TAG = "rcd_sweep.attempts"

# MLflow accepts at most 1000 metrics, 100 params and 100 tags per log_batch call.
_BATCH_METRICS = 1000
_BATCH_PARAMS = 100


class TrackingError(RuntimeError):
    """Raised when the MLflow tracking store cannot be reached or used."""


def default_tracking_uri(storage: Path) -> str:
    """Return the SQLite store under the sweep storage folder, as an absolute URI."""
    return f"sqlite:///{(storage / 'mlflow.db').resolve()}"


def sqlite_creation_lock(url: str) -> ContextManager[object]:
    """Return a lock that serializes the creation of one SQLite database's tables across processes.

    MLflow and Optuna both create their tables on first use. Two sweeps that start together on one
    new file would both issue CREATE TABLE, and the second fails with "table already exists".
    Other databases handle concurrent creation themselves, so they get no lock.
    """
    if not url.startswith("sqlite:"):
        return contextlib.nullcontext()
    database = make_url(url).database
    if not database or database == ":memory:":
        return contextlib.nullcontext()
    path = Path(database).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(f"{path}.lock", timeout=300)


def check_tracking_uri(uri: str, timeout_s: float = 5.0) -> None:
    """Raise `TrackingError` early when a tracking URI is malformed or its server does not respond."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise TrackingError(
                f"The MLflow tracking server at {uri!r} did not answer ({reason}). Start it (for example "
                "`rcd-sweep ui --server`) or pass another --tracking-uri."
            ) from error
        return
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        return
    if uri.startswith(("postgresql", "mysql", "mssql", "databricks", "file:")):
        return
    raise TrackingError(
        f"Unsupported MLflow tracking URI {uri!r}. Use sqlite:///ABSOLUTE/PATH.db, http://HOST:PORT, or a database URL."
    )


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class SweepTracker:
    """The sweep's MLflow experiment and parent run.

    Args:
        tracking_uri: MLflow tracking URI.
        experiment_name: experiment that contains the sweep (the sweep name).
        artifact_root: artifact folder for a new experiment on a local store; None lets a server decide.
    """

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_root: Path | None = None):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        try:
            with sqlite_creation_lock(tracking_uri):
                # The client creates the store's tables as it starts, so it starts under the lock.
                self.client = MlflowClient(tracking_uri=tracking_uri)
                experiment = self.client.get_experiment_by_name(experiment_name)
                if experiment is None:
                    location = artifact_root.resolve().as_uri() if artifact_root is not None else None
                    self.experiment_id = self.client.create_experiment(experiment_name, artifact_location=location)
                else:
                    self.experiment_id = experiment.experiment_id
        except MlflowException as error:
            raise TrackingError(f"MLflow store {tracking_uri!r} could not be used: {error.message}") from error
        self.parent_run_id: str | None = None

    def find_parent(self) -> str | None:
        """Return the id of this sweep's parent run, if one exists."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{ROLE_TAG}` = 'parent'", max_results=1
        )
        return runs[0].info.run_id if runs else None

    def start_parent(self, params: dict[str, Any], tags: dict[str, str]) -> str:
        """Create the parent run with the resolved configuration as parameters."""
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.experiment_name,
            tags={ROLE_TAG: "parent", SWEEP_TAG: self.experiment_name, **tags},
        )
        self.parent_run_id = run.info.run_id
        entries = [Param(key, _param_value(value)) for key, value in flatten(params).items()]
        for chunk in _chunks(entries, _BATCH_PARAMS):
            self.client.log_batch(self.parent_run_id, params=chunk)
        return self.parent_run_id

    def log_parent_metrics(self, metrics: dict[str, float]) -> None:
        """Log finite metrics on the parent run."""
        entries = [
            Metric(key, float(value), mlflow.utils.time.get_current_time_millis(), 0)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and math.isfinite(value)
        ]
        for chunk in _chunks(entries, _BATCH_METRICS):
            self.client.log_batch(self.parent_run_id, metrics=chunk)

    def log_metric_history(self, run_id: str, key: str, values: list[float]) -> None:
        """Log a series as one metric with steps 0, 1, 2 and so on."""
        now = mlflow.utils.time.get_current_time_millis()
        entries = [Metric(key, float(value), now, step) for step, value in enumerate(values) if math.isfinite(value)]
        for chunk in _chunks(entries, _BATCH_METRICS):
            self.client.log_batch(run_id, metrics=chunk)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload one file to the parent run."""
        self.client.log_artifact(self.parent_run_id, str(path), artifact_path)

    def reopen_parent(self) -> None:
        """Mark the existing parent run as running again, for a resumed sweep."""
        self.client.update_run(self.parent_run_id, status="RUNNING")
        self.client.set_tag(self.parent_run_id, "rcd_sweep.resumed", "true")

    def finish_parent(self, status: str = "FINISHED") -> None:
        """Mark the parent run as ended."""
        self.client.set_terminated(self.parent_run_id, status=status)

    def child_runs(self) -> list[Any]:
        """Return every child run of the parent run."""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}'",
            max_results=50_000,
        )

    def log_trial(
        self, trial_id: str, params: dict[str, Any], result: dict[str, Any] | None, error: str | None, attempts: int = 1
    ) -> str:
        """Create the child run of one trial: parameters, metrics, relearning curve and status tags."""
        status = "failed" if error else "completed"
        tags = [
            RunTag(MLFLOW_PARENT_RUN_ID, self.parent_run_id),
            RunTag(MLFLOW_RUN_NAME, f"trial-{trial_id}"),
            RunTag(TRIAL_TAG, trial_id),
            RunTag(SWEEP_TAG, self.experiment_name),
            RunTag(ROLE_TAG, "trial"),
            RunTag(STATUS_TAG, status),
            RunTag(ATTEMPTS_TAG, str(attempts)),
        ]
        if error:
            tags.append(RunTag("error", error[:5000]))
        tags.extend(RunTag(f"ray.{key}", str(result[key])) for key in PLACEMENT_KEYS if result and key in result)
        # The driver logs a trial after the trial ends, so the run takes its start and end times from the trial's clock.
        start_ms = end_ms = None
        if result is not None and all(key in result for key in TIMING_KEYS):
            start_ms, end_ms = (int(result[key] * 1000) for key in TIMING_KEYS)
        run = self.client.create_run(self.experiment_id, start_time=start_ms, run_name=f"trial-{trial_id}")
        run_id = run.info.run_id
        self.client.log_batch(run_id, tags=tags, params=[Param(k, _param_value(v)) for k, v in params.items()][:_BATCH_PARAMS])

        if result is not None:
            now = mlflow.utils.time.get_current_time_millis()
            metrics = [
                Metric(key, float(value), now, 0)
                for key, value in result.items()
                if key not in AUTO_RESULT_KEYS
                and key not in TIMING_KEYS
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ]
            for chunk in _chunks(metrics, _BATCH_METRICS):
                self.client.log_batch(run_id, metrics=chunk)
            curve = json.loads(result.get(CURVE_KEY) or "{}")
            self._log_curve(run_id, curve)

        run_status = RunStatus.to_string(RunStatus.FAILED if error else RunStatus.FINISHED)
        self.client.set_terminated(run_id, status=run_status, end_time=end_ms)
        return run_id

    def _log_curve(self, run_id: str, curve: dict[str, list[float]]) -> None:
        steps = curve.get("step", [])
        now = mlflow.utils.time.get_current_time_millis()
        metrics = []
        for name in ("forget_loss", "control_loss", "gap", "forget_acc", "loss_rank"):
            for step, value in zip(steps, curve.get(name, [])):
                if math.isfinite(value):
                    metrics.append(Metric(f"relearn_{name}", float(value), now, int(step)))
        for chunk in _chunks(metrics, _BATCH_METRICS):
            self.client.log_batch(run_id, metrics=chunk)

    def set_trial_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Add or overwrite tags on a child run."""
        self.client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])


def _error_from_pickle(path: str | None) -> BaseException | None:
    if not path or not Path(path).is_file():
        return None
    try:
        with open(path, "rb") as stream:
            return cloudpickle.load(stream)
    except Exception:  # An unreadable pickle falls back to the text file; the message matters, not the type.
        return None


def trial_error_message(trial: Any) -> str:
    """Return the exception type and message that ended a Ray trial, without the traceback.

    When the callback runs, Ray has written the error only to the trial's local folder on the
    driver, not yet to the experiment storage, so the local files are read first.
    """
    error = _error_from_pickle(trial.pickled_error_file)
    if error is not None:
        cause = getattr(error, "cause", None) or error
        return f"{type(cause).__name__}: {cause}".strip()

    text = ""
    if trial.error_file and Path(trial.error_file).is_file():
        text = Path(trial.error_file).read_text(errors="replace")
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("Failure #")]
    return lines[-1] if lines else "unknown error (Ray wrote no error file)"


class MlflowTrialCallback(Callback):
    """Tune callback that writes one child run per finished or failed trial.

    Trials that already have a child run (found by their `ray_trial_id` tag) are skipped.

    Args:
        tracker: the sweep's tracker, with its parent run started.
        fixed_params: method hyperparameters that are not searched, logged with every trial.
        method: method name, logged with every trial.
    """

    def __init__(self, tracker: SweepTracker, fixed_params: dict[str, Any], method: str):
        self.tracker = tracker
        self.fixed_params = fixed_params
        self.method = method
        self.logged: dict[str, str] = {}

    def setup(self, **info: Any) -> None:
        for run in self.tracker.child_runs():
            trial_id = run.data.tags.get(TRIAL_TAG)
            if trial_id:
                self.logged[trial_id] = run.info.run_id

    def _params(self, trial: Any) -> dict[str, Any]:
        return {"method": self.method, **self.fixed_params, **trial.config}

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        logger.warning(
            "Trial %s failed on attempt %d of %d and will run again: %s",
            trial.trial_id, trial.num_failures, trial.max_failures + 1, trial_error_message(trial),
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.logged:
            return
        attempts = trial.num_failures + 1
        self.logged[trial.trial_id] = self.tracker.log_trial(trial.trial_id, self._params(trial), trial.last_result, None, attempts)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.logged:
            return
        message = trial_error_message(trial)
        attempts = trial.num_failures
        logger.error("Trial %s failed after %d attempt(s): %s", trial.trial_id, attempts, message)
        self.logged[trial.trial_id] = self.tracker.log_trial(trial.trial_id, self._params(trial), None, message, attempts)
