"""Run a sweep: references once, trials on Ray Tune with OptunaSearch, records in MLflow, a final report."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
import pyarrow.fs
import ray
import torch
import yaml
from optuna.trial import TrialState
from ray import tune

from sweeps.config import ConfigError, SweepConfig, dump_config
from sweeps.export import select_trial, write_unlearn_config
from sweeps.pareto import hypervolume_history, pareto_mask, reference_point
from sweeps.plugins import load_plugins
from sweeps.progress import ProgressCallback, format_duration
from sweeps.report import hypervolume_plot, pareto_plot, pareto_table, trials_frame
from sweeps.samplers import build_sampler
from sweeps.search_space import (
    check_against_method,
    load_search_space,
    to_distributions,
)
from sweeps.searcher import SweepSearch
from sweeps.setup import (
    build_split,
    cache_dir,
    load_data,
    model_spec,
    needs_gpu_task,
    prepare,
    prepare_in_task,
    training_recipe,
    trial_threads,
)
from sweeps.tracking import (
    OPTUNA_TAG,
    PARETO_TAG,
    STATUS_TAG,
    TRIAL_TAG,
    MlflowTrialCallback,
    SweepTracker,
    check_tracking_uri,
    default_tracking_uri,
    sqlite_creation_lock,
)
from sweeps.trial import TrialContext, run_trial
from unlearning.checkpoints import save_checkpoint
from unlearning.data import Dataset
from unlearning.device import resolve_device
from unlearning.methods import get_method
from unlearning.references import load_cached_references, store_references

logger = logging.getLogger(__name__)


class SweepExistsError(RuntimeError):
    """Raised when `run` targets a sweep name that already has trials or runs."""


class ClusterError(RuntimeError):
    """Raised when the Ray cluster at the configured address cannot be reached."""


class SweepStateError(RuntimeError):
    """Raised when a sweep to resume lacks the state it needs."""


@dataclass
class SweepPaths:
    """Storage locations of one sweep.

    Outputs always lie under the local storage folder. Ray Tune's experiment state and the Optuna
    study default to the same folder, and a cluster moves them to shared storage: a folder every
    node mounts or an object-store URI for Ray, a database server for Optuna.
    """

    storage: Path
    name: str
    ray_storage: str
    optuna_url: str

    @property
    def output(self) -> Path:
        return self.storage / "sweeps" / self.name

    @property
    def ray_experiment(self) -> str:
        return f"{self.ray_storage.rstrip('/')}/{self.name}"


@dataclass
class SweepResult:
    """Report of a finished sweep: tables, hypervolume, counts and output files."""

    name: str
    trials: pd.DataFrame
    pareto: pd.DataFrame
    hypervolume: float
    reference_point: list[float]
    failed: int
    wall_time_s: float
    parent_run_id: str
    best_config_path: Path | None
    files: dict[str, Path] = field(default_factory=dict)
    references: dict[str, dict[str, float]] = field(default_factory=dict)
    failure_reasons: dict[str, int] = field(default_factory=dict)


def sweep_paths(config: SweepConfig) -> SweepPaths:
    """Return the storage layout of a sweep."""
    storage = Path(config.storage).resolve()
    ray_storage = config.ray_storage or str(storage / "ray")
    if "://" not in ray_storage:
        ray_storage = str(Path(ray_storage).resolve())
    optuna_url = config.optuna_storage or f"sqlite:///{storage / 'optuna.db'}"
    return SweepPaths(storage, config.name, ray_storage, optuna_url)


def optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """Open the study database; SQLite waits up to 60 s for a lock held by another sweep."""
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with sqlite_creation_lock(url):
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def _study_exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    return any(summary.study_name == name for summary in optuna.get_all_study_summaries(storage))


def _directions(config: SweepConfig) -> tuple[list[str], list[str]]:
    return [o.metric for o in config.objectives], [o.direction for o in config.objectives]


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at HOST:PORT; `ray.init` would retry for a minute first."""
    if address == "auto" or address.startswith("ray://") or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as error:
        raise ClusterError(
            f"No Ray cluster responds at {address!r} ({error}). Check that `ray start --head` runs there and the "
            "address is HOST:PORT of its GCS (default port 6379), or omit --address to run on this machine."
        ) from error


def trial_runtime_env() -> dict[str, Any]:
    """Return the Ray runtime environment of the sweep's workers.

    Ray Tune runs each function trial in a new thread of a reused worker process, and glibc gives
    new threads their own malloc arenas, up to 8 per core, which keep the memory they freed. A
    reused MNIST trial process grew from 0.8 to 2.6 GB over 40 trials. With 2 arenas it levelled
    off at 1.0 to 1.4 GB (benchmarks/RESULTS.md). A value set in the driver's environment wins.
    """
    return {"env_vars": {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")}}


def _connect_ray(address: str | None) -> bool:
    """Connect to the cluster at `address`, or start a local one; return True when this call started Ray."""
    if ray.is_initialized():
        return False
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, runtime_env=trial_runtime_env())
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ClusterError(
                f"Could not connect to the Ray cluster at {address!r}: {str(error).splitlines()[0]}. "
                "Check that `ray start --head` runs there and the address is HOST:PORT of its GCS (default port 6379), "
                "or omit --address to run on this machine."
            ) from error
        return True
    ray.init(logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False, runtime_env=trial_runtime_env())
    return True


def _versions() -> dict[str, str]:
    return {
        "version.torch": torch.__version__,
        "version.ray": ray.__version__,
        "version.optuna": optuna.__version__,
        "version.mlflow": mlflow.__version__,
    }


def _ray_experiment_exists(location: str) -> bool:
    filesystem, path = pyarrow.fs.FileSystem.from_uri(location if "://" in location else Path(location).as_uri())
    return filesystem.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def _delete_ray_experiment(location: str) -> None:
    if not _ray_experiment_exists(location):
        return
    filesystem, path = pyarrow.fs.FileSystem.from_uri(location if "://" in location else Path(location).as_uri())
    filesystem.delete_dir(path)


def _clear_sweep(config: SweepConfig, paths: SweepPaths, storage: optuna.storages.BaseStorage, tracker: SweepTracker) -> None:
    """Delete a previous sweep of the same name: its study, Tune state, outputs and MLflow runs."""
    if _study_exists(storage, config.name):
        optuna.delete_study(study_name=config.name, storage=storage)
    _delete_ray_experiment(paths.ray_experiment)
    shutil.rmtree(paths.output, ignore_errors=True)
    for run in tracker.client.search_runs([tracker.experiment_id], max_results=50_000):
        tracker.client.delete_run(run.info.run_id)
    logger.info("Removed the previous sweep %r (study, Ray Tune state, outputs and MLflow runs).", config.name)


def _check_new_sweep(config: SweepConfig, paths: SweepPaths, storage: optuna.storages.BaseStorage, tracker: SweepTracker) -> None:
    exists = _study_exists(storage, config.name) or tracker.find_parent() is not None or _ray_experiment_exists(paths.ray_experiment)
    if exists:
        raise SweepExistsError(
            f"A sweep named {config.name!r} already exists in {str(paths.storage)!r}. Continue it with "
            f"`rcd-sweep resume {config.name} --storage {paths.storage}`, choose another name with --set name=NEW_NAME, "
            "or delete it and start over with --fresh."
        )


def _validate(config: SweepConfig) -> tuple[dict[str, optuna.distributions.BaseDistribution], Dataset]:
    """Check everything a user can get wrong before any store is touched; return the space and the data."""
    load_plugins(config.plugins)
    get_method(config.method.name)
    space = to_distributions(load_search_space(config.search_space, config.method.name))
    overlap = sorted(set(space) & set(config.method.params))
    if overlap:
        raise ConfigError(f"Hyperparameters {overlap} are both searched and fixed in method.params; keep only one.")
    check_against_method(space, config.method.name, config.method.params)

    resolve_device(config.device)
    dataset = load_data(config)
    build_split(config, dataset)
    return space, dataset


def _open_stores(config: SweepConfig, paths: SweepPaths) -> tuple[optuna.storages.BaseStorage, SweepTracker]:
    tracking_uri = config.tracking_uri or default_tracking_uri(paths.storage)
    check_tracking_uri(tracking_uri)
    paths.output.mkdir(parents=True, exist_ok=True)
    # A tracking server chooses the artifact location itself, and serves the artifacts to every client.
    remote = tracking_uri.startswith(("http://", "https://"))
    artifact_root = None if remote else paths.storage / "artifacts"
    return optuna_storage(paths.optuna_url), SweepTracker(tracking_uri, config.name, artifact_root)


def run_sweep(config: SweepConfig, *, fresh: bool = False) -> SweepResult:
    """Run a whole sweep and return its report.

    Args:
        config: the validated sweep configuration.
        fresh: delete an existing sweep of the same name first instead of refusing to start.
    """
    clock = PhaseClock()
    paths = sweep_paths(config)
    space, dataset = _validate(config)
    storage, tracker = _open_stores(config, paths)
    if fresh:
        _clear_sweep(config, paths, storage, tracker)
        paths.output.mkdir(parents=True, exist_ok=True)
    else:
        _check_new_sweep(config, paths, storage, tracker)
    clock.mark("validation")
    return _execute(config, paths, storage, tracker, space, dataset, clock, resume=False)


def resume_sweep(config: SweepConfig) -> SweepResult:
    """Continue an interrupted sweep from Ray Tune's experiment state, the Optuna study and the MLflow parent run.

    Finished trials keep their results and child runs. Trials that were running when the driver
    stopped run again from the start, and the sweep ends with its configured number of trials.

    Raises:
        SweepStateError: when the sweep has no parent run or no Ray Tune state to continue from.
    """
    clock = PhaseClock()
    paths = sweep_paths(config)
    space, dataset = _validate(config)
    storage, tracker = _open_stores(config, paths)
    parent = tracker.find_parent()
    if parent is None or not tune.Tuner.can_restore(str(paths.ray_experiment)):
        missing = "MLflow parent run" if parent is None else f"Ray Tune experiment state in {str(paths.ray_experiment)!r}"
        raise SweepStateError(
            f"Sweep {config.name!r} cannot be resumed: its {missing} is missing, so it stopped before its first trial "
            f"started or its files were moved. Start it again with `rcd-sweep run CONFIG --fresh --set name={config.name}`."
        )
    tracker.parent_run_id = parent
    clock.mark("validation")
    return _execute(config, paths, storage, tracker, space, dataset, clock, resume=True)


class PhaseClock:
    """Wall time of each phase of a sweep, logged on the parent run as `phase.NAME_s`.

    The phases show where a sweep's time goes besides the trials: Ray start-up, reference
    building, MLflow set-up and the final report.
    """

    def __init__(self) -> None:
        self.started = self._last = time.monotonic()
        self.phases: dict[str, float] = {}

    def mark(self, name: str) -> None:
        """Add the time since the previous mark to phase `name`."""
        now = time.monotonic()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._last
        self._last = now

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _execute(config, paths, storage, tracker, space, dataset, clock: PhaseClock, *, resume: bool) -> SweepResult:
    """Run or resume the trials on Ray, and mark the parent run with how the driver ended."""
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", CHECKPOINT_PERIOD_S)
    started_ray = _connect_ray(config.address)
    clock.mark("ray_start")
    try:
        result = _run(config, paths, storage, tracker, space, dataset, clock, resume)
    except BaseException as error:
        if tracker.parent_run_id is not None:
            tracker.finish_parent("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        if started_ray:
            ray.shutdown()
    clock.mark("ray_stop")
    tracker.log_parent_metrics({f"phase.{name}_s": seconds for name, seconds in clock.phases.items()})
    logger.info("Time by phase: %s.", ", ".join(f"{name} {format_duration(seconds)}" for name, seconds in clock.phases.items()))
    tracker.finish_parent()
    return result


def _run(
    config: SweepConfig,
    paths: SweepPaths,
    storage: optuna.storages.BaseStorage,
    tracker: SweepTracker,
    space: dict[str, optuna.distributions.BaseDistribution],
    dataset: Dataset,
    clock: PhaseClock,
    resume: bool,
) -> SweepResult:
    """Build (or load) the references, run the trials on Ray Tune and write the report."""
    logger.info("Preparing references for sweep %r.", config.name)
    dataset, split, references, evaluator = _prepare(config, dataset)
    reference_metrics = {role: dict(evaluation.metrics) for role, evaluation in evaluator.reference_evaluations.items()}
    clock.mark("references")

    if resume:
        tracker.reopen_parent()
    else:
        tracker.start_parent(config.model_dump(mode="json"), _versions())
        _log_references(tracker, paths, config, split, references, evaluator)

    context = TrialContext(
        evaluator=evaluator,
        method=config.method.name,
        fixed_params=dict(config.method.params),
        method_seed=config.method.seed,
        device=config.device,
        threads=trial_threads(config),
        timeout_s=config.trial_timeout_s,
        plugins=tuple(config.plugins),
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, context=context),
        {"cpu": config.resources.cpu, "gpu": config.resources.gpu},
    )
    if resume:
        logger.info("Resuming sweep %r from %s.", config.name, paths.ray_experiment)
        tuner = tune.Tuner.restore(str(paths.ray_experiment), trainable, resume_unfinished=True, resume_errored=False, restart_errored=False)
    else:
        tuner = _new_tuner(config, paths, storage, tracker, space, trainable)
    clock.mark("tracking_setup")
    tuner.fit()
    clock.mark("trials")
    result = finish_sweep(config, tracker, paths, storage, reference_metrics, clock.elapsed())
    clock.mark("report")
    return result


# Tune saves its experiment state at most every 10 s by default. Trials here take seconds to
# minutes, so saving every second keeps the number of trials a killed driver leaves unrecorded
# small; `rcd-sweep resume` reruns those.
CHECKPOINT_PERIOD_S = "1"


def _new_tuner(config, paths, storage, tracker, space, trainable) -> tune.Tuner:
    metrics, directions = _directions(config)
    reference, _ = reference_point(metrics, directions, np.empty((0, len(metrics))), config.hypervolume_reference)
    searcher = SweepSearch(
        space=space,
        metric=metrics,
        mode=["max" if d == "maximize" else "min" for d in directions],
        sampler=build_sampler(config.sampler, config.trials, space),
        study_name=config.name,
        storage=storage,
        constraints=config.constraints,
        budget=config.trials,
    )
    # Tune pickles these callbacks with the experiment, and `Tuner.restore` brings them back.
    callbacks = [
        MlflowTrialCallback(tracker, dict(config.method.params), config.method.name),
        ProgressCallback(config.trials, metrics, directions, reference),
    ]
    return tune.Tuner(
        trainable,
        # Reusing trial processes saves Ray's per-trial worker start, which took longer than a whole
        # digits trial in benchmarks/orchestration.py. Tune never reuses the process of a failed trial.
        # NOTE: a reused process's peak memory grows: 2.4 GB after 12 MNIST trials in a row, against
        # 1.1 GB for one trial per process. Whether it levels off over longer sweeps is not measured.
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=config.trials, max_concurrent_trials=config.concurrency, reuse_actors=True
        ),
        run_config=tune.RunConfig(
            name=config.name,
            storage_path=paths.ray_storage,
            callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            verbose=0,
        ),
    )


def _prepare(config: SweepConfig, dataset: Dataset):
    """Build the references once: on the driver, or in a one-GPU Ray task when only the cluster has GPUs.

    Either way the trials receive them through Ray's object store and never train them again.
    """
    if not needs_gpu_task(config, ray.cluster_resources().get("GPU", 0.0)):
        return prepare(config, dataset)
    split = build_split(config, dataset)
    spec = model_spec(config, dataset)
    cached = load_cached_references(dataset, split, spec, training_recipe(config), config.training.seed, cache_dir=cache_dir(config))
    logger.info("This driver has no GPU, so a Ray task with one GPU measures the references%s.", "" if cached else " and trains them")
    task = ray.remote(prepare_in_task).options(num_gpus=1, num_cpus=config.resources.cpu)
    split, references, evaluator = ray.get(task.remote(config, dataset, cached))
    if cached is None:
        store_references(references, cache_dir(config))
    return dataset, split, references, evaluator


def _log_references(tracker, paths, config, split, references, evaluator) -> None:
    summary = evaluator.summary()
    metrics = {}
    for role in ("original", "retrain"):
        metrics.update({f"{role}.{name}": value for name, value in summary[role].items()})
    metrics.update({f"rcd_threshold.{name}": value for name, value in summary["rcd_thresholds"].items()})
    tracker.log_parent_metrics(metrics)
    curve = evaluator.reference_evaluations["retrain"].curve
    for name in ("forget_loss", "control_loss", "gap"):
        tracker.log_metric_history(tracker.parent_run_id, f"retrain.relearn_{name}", curve[name])

    (paths.output / "config.yaml").write_text(dump_config(config))
    saved = {**summary, "cache_key": references.key, "training": json.loads(json.dumps(references.info, default=str)), "split": split.describe()}
    (paths.output / "references.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    split.save(paths.output / "split.npz")
    save_checkpoint(paths.output / "original.pt", references.original_state, references.spec, {"role": "original", "sweep": config.name})
    for name in ("config.yaml", "references.yaml", "split.npz"):
        tracker.log_artifact(paths.output / name)


def _study_rows(study: optuna.Study, metrics: list[str], run_ids: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    rows, failed = [], 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.FAIL:
            failed += 1
        if trial.state != TrialState.COMPLETE:
            continue
        ray_id = trial.user_attrs.get("ray_trial_id", "")
        row = {"trial": trial.number, "ray_trial_id": ray_id, "mlflow_run_id": run_ids.get(ray_id, "")}
        row.update(dict(zip(metrics, trial.values)))
        row["feasible"] = all(value <= 0 for value in (trial.constraints or {}).values())
        row.update({f"param.{name}": value for name, value in trial.params.items()})
        rows.append(row)
    return rows, failed


def collect_trials(config: SweepConfig, tracker: SweepTracker, study: optuna.Study):
    """Join the Optuna study with the MLflow child runs into one table with feasibility and Pareto flags.

    Returns the table, the number of failed trials, the hypervolume history and final value, the
    reference point with the source of each value, and the child runs by Ray trial id.
    """
    metrics, directions = _directions(config)
    children = {run.data.tags.get(TRIAL_TAG): run for run in tracker.child_runs()}
    run_ids = {trial_id: run.info.run_id for trial_id, run in children.items() if trial_id}
    rows, failed = _study_rows(study, metrics, run_ids)
    for row in rows:
        run = children.get(row["ray_trial_id"])
        if run is not None:
            row.update({name: value for name, value in run.data.metrics.items() if name not in row and not name.startswith("relearn_")})
    trials = trials_frame(rows)

    observed = trials[metrics].to_numpy(dtype=float) if len(trials) else np.empty((0, len(metrics)))
    reference, sources = reference_point(metrics, directions, observed, config.hypervolume_reference)
    if not len(trials):
        trials["pareto"] = pd.Series(dtype=bool)
        return trials, failed, [], 0.0, reference, sources, children

    feasible = trials["feasible"].to_numpy(dtype=bool)
    mask = np.zeros(len(trials), dtype=bool)
    if feasible.any():
        mask[feasible] = pareto_mask(observed[feasible], directions)
    trials["pareto"] = mask
    # Infeasible trials become NaN rows, which lie outside every reference box and add no volume.
    history = hypervolume_history(np.where(feasible[:, None], observed, np.nan), directions, reference)
    final_volume = history[-1] if history else 0.0
    return trials, failed, history, final_volume, reference, sources, children


def finish_sweep(
    config: SweepConfig,
    tracker: SweepTracker,
    paths: SweepPaths,
    storage: optuna.storages.BaseStorage,
    reference_metrics: dict[str, dict[str, float]],
    wall_time_s: float,
) -> SweepResult:
    """Compute the Pareto front and hypervolume, write the report files and log them to the parent run."""
    metrics, directions = _directions(config)
    study = optuna.load_study(study_name=config.name, storage=storage)
    trials, failed, history, final_volume, reference, sources, children = collect_trials(config, tracker, study)

    optuna_front = sorted(trial.number for trial in study.best_trials)
    own_front = sorted(trials.loc[trials["pareto"], "trial"].tolist()) if len(trials) else []
    if optuna_front != own_front:
        logger.warning("Pareto fronts differ: Optuna %s, own computation %s.", optuna_front, own_front)

    for trial_id, run in children.items():
        if not trial_id:
            continue
        match = trials[trials["ray_trial_id"] == trial_id] if len(trials) else trials
        tags = {PARETO_TAG: str(bool(len(match) and match["pareto"].iloc[0])).lower()}
        if len(match):
            tags[OPTUNA_TAG] = str(int(match["trial"].iloc[0]))
        tracker.set_trial_tags(run.info.run_id, tags)

    param_names = [name[len("param.") :] for name in trials.columns if name.startswith("param.")]
    front = pareto_table(trials, metrics, param_names) if len(trials) else trials
    files = _write_report(config, paths, trials, front, history, reference, sources, reference_metrics, directions)

    best_path = None
    if len(trials):
        try:
            selected = select_trial(trials, config.export.rule, config.export.retain_acc_loss_limit, metrics, directions)
            best_path = write_unlearn_config(paths.output / "best_config.yaml", config, selected, config.export.rule, config.export.retain_acc_loss_limit)
            files["best_config"] = best_path
        except ValueError as error:
            logger.warning("No configuration exported: %s", error)

    for path in files.values():
        tracker.log_artifact(path)
    tracker.log_parent_metrics(
        {"hypervolume": final_volume, "trials_completed": float(len(trials)), "trials_failed": float(failed), "pareto_size": float(len(front)), "wall_time_s": wall_time_s}
    )
    tracker.log_metric_history(tracker.parent_run_id, "hypervolume_history", history)

    logger.info(
        "Sweep %r finished in %s: %d completed, %d failed, Pareto front %d, hypervolume %.4f (reference point %s).",
        config.name, format_duration(wall_time_s), len(trials), failed, len(front), final_volume, dict(zip(metrics, reference)),
    )
    return SweepResult(
        config.name, trials, front, final_volume, reference, failed, wall_time_s, tracker.parent_run_id, best_path, files,
        reference_metrics, failure_reasons(children.values()),
    )


def failure_reasons(runs) -> dict[str, int]:
    """Count the error messages of failed child runs, most frequent first."""
    counts: dict[str, int] = {}
    for run in runs:
        if run.data.tags.get(STATUS_TAG) == "failed":
            message = run.data.tags.get("error", "unknown error")
            counts[message] = counts.get(message, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def sweep_state(config: SweepConfig) -> str:
    """Return "absent", "finished" or "interrupted" for the sweep named in `config`, without changing it."""
    paths = sweep_paths(config)
    storage, tracker = _open_stores(config, paths)
    parent = tracker.find_parent()
    if parent is None and not _study_exists(storage, config.name):
        return "absent"
    if parent is not None and tracker.client.get_run(parent).info.status == "FINISHED":
        return "finished"
    return "interrupted"


def load_result(config: SweepConfig) -> SweepResult:
    """Read the report of a finished sweep back from its Optuna study and MLflow runs, writing nothing."""
    paths = sweep_paths(config)
    storage, tracker = _open_stores(config, paths)
    tracker.parent_run_id = tracker.find_parent()
    study = optuna.load_study(study_name=config.name, storage=storage)
    trials, failed, _, final_volume, reference, _, children = collect_trials(config, tracker, study)
    metrics, directions = _directions(config)
    param_names = [name[len("param.") :] for name in trials.columns if name.startswith("param.")]
    front = pareto_table(trials, metrics, param_names) if len(trials) else trials
    saved = yaml.safe_load((paths.output / "references.yaml").read_text())
    parent = tracker.client.get_run(tracker.parent_run_id)
    wall_time_s = parent.data.metrics.get("wall_time_s", float("nan"))
    best = paths.output / "best_config.yaml"
    return SweepResult(
        config.name, trials, front, final_volume, reference, failed, wall_time_s, tracker.parent_run_id,
        best if best.is_file() else None, {}, {role: saved[role] for role in ("original", "retrain")},
        failure_reasons(children.values()),
    )


def _write_report(config, paths, trials, front, history, reference, sources, reference_metrics, directions) -> dict[str, Path]:
    metrics = [o.metric for o in config.objectives]
    files = {
        "trials": paths.output / "trials.csv",
        "pareto": paths.output / "pareto.csv",
        "hypervolume": paths.output / "hypervolume.csv",
    }
    trials.to_csv(files["trials"], index=False)
    front.to_csv(files["pareto"], index=False)
    pd.DataFrame({"completed_trials": range(1, len(history) + 1), "hypervolume": history}).to_csv(files["hypervolume"], index=False)
    (paths.output / "hypervolume_reference.yaml").write_text(
        yaml.safe_dump({name: {"value": value, "source": source} for name, value, source in zip(metrics, reference, sources)}, sort_keys=False)
    )
    files["hypervolume_reference"] = paths.output / "hypervolume_reference.yaml"
    if len(trials):
        files["pareto_plot"] = pareto_plot(paths.output / "pareto.png", trials, metrics, directions, reference_metrics, f"Sweep {config.name}: {config.method.name} on {config.data.dataset}")
        files["hypervolume_plot"] = hypervolume_plot(paths.output / "hypervolume.png", history, reference, f"Sweep {config.name}: hypervolume")
    return files
