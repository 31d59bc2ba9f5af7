"""`rcd-sweep compare`: one sweep per method with the same budget and seeds, one selected configuration each, one table.

Every method runs through `run_sweep`, so its trials, failures and records look exactly like a
sweep of its own. The comparison adds the selection of one configuration per method by a stated
rule, the table with the original and retrain models as reference rows, and an MLflow run that
links the sweeps.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import ray
import yaml
from pydantic import Field, field_validator, model_validator

from sweeps.config import ConfigError, MethodConfig, SearchSpace, Section, SweepConfig, dump_config
from sweeps.export import RULES, select_trial
from sweeps.plugins import load_plugins
from sweeps.progress import format_duration
from sweeps.report import format_table
from sweeps.runner import (
    SweepResult,
    _connect_ray,
    _validate,
    load_result,
    resume_sweep,
    run_sweep,
    sweep_state,
)
from sweeps.search_space import load_search_space
from sweeps.tracking import ROLE_TAG, SWEEP_TAG, SweepTracker, default_tracking_uri
from unlearning.methods.ieu import VARIANTS

logger = logging.getLogger(__name__)

DEFAULT_METHODS = ("ieu", "finetune", "random_label", "gradient_ascent", "scrub", "salun", "l1_sparse")
IEU_ABLATIONS = ("noise_only", "ascent_only", "ascent_noise", "ascent_decay")
TABLE_METRICS = ("ua", "retain_acc", "test_acc", "mia", "avg_gap", "rcd", "rcd_censored", "runtime_s")
REFERENCE_ROWS = ("original", "retrain")

# IEU hyperparameters that a variant without noise or without decay never reads.
_UNUSED_BY_VARIANT = {"noise_scale": 1, "weight_decay": 2}


class CompareEntry(Section):
    """One row of a comparison: a method, fixed hyperparameters and an optional search space.

    Args:
        method: registry name of the method.
        label: row name, also the suffix of the method's sweep name; default the method name, or
            `ieu-VARIANT` for an IEU ablation.
        params: fixed hyperparameters, such as `{variant: ascent_only}`.
        search_space: a search space name or inline space; default the method's own file in
            `search_spaces/`, without the IEU parameters that the variant does not use.
    """

    method: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    search_space: str | SearchSpace | None = None

    @model_validator(mode="after")
    def _default_label(self) -> "CompareEntry":
        if self.label is None:
            variant = self.params.get("variant")
            self.label = f"{self.method}-{variant}" if self.method == "ieu" and variant not in (None, "full") else self.method
        return self


class CompareConfig(SweepConfig):
    """A comparison: the shared sweep settings plus the methods to run.

    Every sweep setting (data, scenario, model, training, objectives, sampler and its seed,
    trials, concurrency, RCD protocol, export rule) applies to every method alike. `method` may
    set only the seed of the unlearning runs; each method comes from `methods`.
    """

    name: str = "compare"
    methods: list[str | CompareEntry] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1)
    ablations: bool = False
    rule: Literal["max_rcd_within_loss", "min_avg_gap", "knee"] | None = None

    @field_validator("methods")
    @classmethod
    def _entries(cls, methods: list[str | CompareEntry]) -> list[str | CompareEntry]:
        labels = [entry if isinstance(entry, str) else entry.label for entry in methods]
        if len(set(labels)) != len(labels):
            raise ValueError(f"methods name a row twice: {labels}; give repeated methods distinct labels")
        return methods

    @model_validator(mode="after")
    def _no_single_method(self) -> "CompareConfig":
        if self.method.name != MethodConfig().name or self.method.params or "search_space" in self.model_fields_set:
            raise ValueError(
                "a comparison takes its methods from 'methods', so method.name, method.params and search_space "
                "are not used; give per-method params and search spaces as entries of 'methods'"
            )
        return self

    def entries(self) -> list[CompareEntry]:
        """Return every row to run: the listed methods, then the IEU ablations when requested."""
        entries = [CompareEntry(method=entry) if isinstance(entry, str) else entry for entry in self.methods]
        entries = [entry for entry in entries if entry.method != "retrain"]
        if self.ablations:
            present = {entry.label for entry in entries}
            for variant in IEU_ABLATIONS:
                ablation = CompareEntry(method="ieu", params={"variant": variant})
                if ablation.label not in present:
                    entries.append(ablation)
        return entries

    def selection_rule(self) -> str:
        return self.rule or self.export.rule


def _space_for(entry: CompareEntry) -> str | SearchSpace:
    """Return the entry's search space.

    The default is the method's own space without the parameters that the entry fixes, and for
    an IEU variant without the parameters that the variant never reads.
    """
    if entry.search_space is not None:
        return entry.search_space
    space = load_search_space(entry.method, entry.method)
    kept = {name: parameter for name, parameter in space.parameters.items() if name not in entry.params}
    variant = entry.params.get("variant", "full")
    if entry.method == "ieu" and variant != "full":
        switches = VARIANTS[variant]
        kept = {name: parameter for name, parameter in kept.items() if switches[_UNUSED_BY_VARIANT.get(name, 0)]}
    if not kept:
        raise ConfigError(f"Every searched parameter of {entry.label!r} is fixed in its params; give it a search_space.")
    return SearchSpace(method=entry.method, parameters=kept)


def sweep_config_for(config: CompareConfig, entry: CompareEntry) -> SweepConfig:
    """Return the sweep of one comparison row: the shared settings with this method and its space."""
    values = config.model_dump(exclude={"methods", "ablations", "rule", "name", "method", "search_space"})
    values["name"] = f"{config.name}-{entry.label}"
    values["method"] = {"name": entry.method, "params": dict(entry.params), "seed": config.method.seed}
    space = _space_for(entry)
    values["search_space"] = space.model_dump() if isinstance(space, SearchSpace) else space
    values["export"] = {**values["export"], "rule": config.selection_rule()}
    return SweepConfig.model_validate(values)


@dataclass
class Comparison:
    """The comparison table and where it was written."""

    name: str
    table: pd.DataFrame
    files: dict[str, Path]
    run_id: str
    wall_time_s: float


def _row(label: str, status: str, metrics: dict[str, float] | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"method": label, "status": status}
    row.update({name: float((metrics or {}).get(name, math.nan)) for name in TABLE_METRICS})
    row.update(extra)
    return row


def _reference_rows(result: SweepResult, sweep_output: Path) -> list[dict[str, Any]]:
    """Return the original and retrain rows; retrain's runtime is the time it took to train."""
    saved = yaml.safe_load((sweep_output / "references.yaml").read_text())
    training = saved.get("training") or {}
    rows = []
    for role in REFERENCE_ROWS:
        metrics = dict(result.references.get(role) or saved[role])
        metrics["runtime_s"] = float(training.get("retrain_train_s", math.nan)) if role == "retrain" else 0.0
        rows.append(_row(role, "reference", metrics, note="the reference for every other row" if role == "retrain" else "before unlearning"))
    return rows


def _method_row(entry: CompareEntry, config: CompareConfig, result: SweepResult) -> dict[str, Any]:
    counts = {"completed": len(result.trials), "failed": result.failed}
    if result.trials.empty:
        reason = next(iter(result.failure_reasons), "no trial completed")
        return _row(entry.label, "failed", None, **counts, note=f"all {result.failed} trials failed: {reason}")
    objectives = [objective.metric for objective in config.objectives]
    directions = [objective.direction for objective in config.objectives]
    try:
        selected = select_trial(
            result.trials, config.selection_rule(), config.export.retain_acc_loss_limit, objectives, directions
        )
    except ValueError as error:
        return _row(entry.label, "no selection", None, **counts, note=str(error))
    params = {name[len("param.") :]: selected[name] for name in selected.index if name.startswith("param.") and pd.notna(selected[name])}
    note = ", ".join(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}" for name, value in params.items())
    return _row(entry.label, "selected", selected.to_dict(), trial=int(selected["trial"]), **counts, note=note)


# Settings that change where or how fast a sweep runs, but not its results.
_EXECUTION_KEYS = {"storage", "tracking_uri", "address", "ray_storage", "optuna_storage", "concurrency", "resources", "device", "max_failures", "trial_timeout_s"}


def _check_unchanged(config: SweepConfig) -> None:
    """Raise `ConfigError` when an existing sweep of this name was run with other settings."""
    saved_path = Path(config.storage).resolve() / "sweeps" / config.name / "config.yaml"
    if not saved_path.is_file():
        return
    saved = SweepConfig.model_validate(yaml.safe_load(saved_path.read_text())).model_dump(mode="json", exclude=_EXECUTION_KEYS)
    wanted = config.model_dump(mode="json", exclude=_EXECUTION_KEYS)
    changed = sorted(key for key in wanted if saved.get(key) != wanted[key])
    if changed:
        raise ConfigError(
            f"Sweep {config.name!r} already exists with different settings ({', '.join(changed)}), so its results "
            "would not belong to this comparison. Rerun every method with --fresh, or give the comparison another name."
        )


def _sweep(config: SweepConfig, fresh: bool) -> SweepResult:
    """Run a method's sweep, resume it when it was interrupted, or read it back when it is finished."""
    state = "absent" if fresh else sweep_state(config)
    if state != "absent":
        _check_unchanged(config)
    if state == "finished":
        logger.info("Sweep %r finished earlier; reading its results.", config.name)
        return load_result(config)
    if state == "interrupted":
        try:
            return resume_sweep(config)
        except RuntimeError as error:
            logger.warning("Sweep %r cannot be resumed (%s); running it again.", config.name, error)
            return run_sweep(config, fresh=True)
    return run_sweep(config, fresh=fresh)


def run_comparison(config: CompareConfig, *, fresh: bool = False) -> Comparison:
    """Run every method's sweep, select one configuration per method, and write the comparison table.

    A method whose sweep fails, or whose trials all fail, becomes a row marked failed with the
    reason; the other rows still run.

    Args:
        config: the comparison.
        fresh: delete and rerun the methods' sweeps even when they exist; otherwise a finished
            sweep is reused and an interrupted one is resumed.
    """
    started = time.monotonic()
    load_plugins(config.plugins)
    entries = config.entries()
    sweeps = {entry.label: sweep_config_for(config, entry) for entry in entries}
    for sweep_config in sweeps.values():
        _validate(sweep_config)

    rows: list[dict[str, Any]] = []
    reference_rows: list[dict[str, Any]] = []
    parents: dict[str, str] = {}
    started_ray = _connect_ray(config.address)
    try:
        for index, entry in enumerate(entries, start=1):
            sweep_config = sweeps[entry.label]
            logger.info("Comparison %r: method %d of %d, %s (sweep %r).", config.name, index, len(entries), entry.label, sweep_config.name)
            try:
                result = _sweep(sweep_config, fresh)
            except (KeyboardInterrupt, ConfigError):
                raise
            except Exception as error:  # One broken method must not cost the other rows.
                logger.exception("The sweep of %s failed.", entry.label)
                rows.append(_row(entry.label, "failed", None, note=f"sweep failed: {type(error).__name__}: {error}"))
                continue
            parents[entry.label] = result.parent_run_id
            if not reference_rows and result.references:
                reference_rows = _reference_rows(result, Path(sweep_config.storage).resolve() / "sweeps" / sweep_config.name)
            rows.append(_method_row(entry, config, result))
    finally:
        if started_ray:
            ray.shutdown()

    table = pd.DataFrame(reference_rows + rows)
    order = ["method", "status", *TABLE_METRICS, "trial", "completed", "failed", "note"]
    table = table[[column for column in order if column in table.columns]]
    wall_time_s = time.monotonic() - started
    files = _write(config, table, wall_time_s)
    run_id = _log_comparison(config, table, files, parents, sweeps, wall_time_s)
    logger.info("Comparison %r finished in %s.", config.name, format_duration(wall_time_s))
    return Comparison(config.name, table, files, run_id, wall_time_s)


def markdown_table(table: pd.DataFrame) -> str:
    """Render a table as GitHub Markdown, with four significant digits."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _write(config: CompareConfig, table: pd.DataFrame, wall_time_s: float) -> dict[str, Path]:
    folder = Path(config.storage).resolve() / "comparisons" / config.name
    folder.mkdir(parents=True, exist_ok=True)
    files = {"csv": folder / "comparison.csv", "markdown": folder / "comparison.md", "config": folder / "config.yaml"}
    table.to_csv(files["csv"], index=False)
    rule = config.selection_rule()
    header = (
        f"Comparison {config.name!r}: {config.data.dataset}, {config.scenario.kind} forgetting, {config.model.name}; "
        f"{config.trials} trials per method, sampler {config.sampler.name} (seed {config.sampler.seed}); "
        f"selection rule {rule}: {RULES[rule]}; wall time {format_duration(wall_time_s)}.\n\n"
    )
    files["markdown"].write_text(header + markdown_table(table))
    files["config"].write_text(dump_config(config))
    return files


def _log_comparison(config, table, files, parents, sweeps, wall_time_s) -> str:
    """Create the comparison's MLflow run: the table as artifacts and metrics, with links to every sweep."""
    storage = Path(config.storage).resolve()
    tracker = SweepTracker(config.tracking_uri or default_tracking_uri(storage), config.name, storage / "artifacts")
    tracker.start_parent(config.model_dump(mode="json"), {ROLE_TAG: "comparison"})
    metrics = {
        f"{row['method']}.{name}": row[name]
        for row in table.to_dict("records")
        for name in TABLE_METRICS
        if isinstance(row.get(name), float) and math.isfinite(row[name])
    }
    metrics["wall_time_s"] = wall_time_s
    tracker.log_parent_metrics(metrics)
    links = []
    for label, run_id in parents.items():
        experiment_id = tracker.client.get_run(run_id).info.experiment_id
        tracker.client.set_tag(tracker.parent_run_id, f"{SWEEP_TAG}.{label}", run_id)
        links.append(f"- [{label}](#/experiments/{experiment_id}/runs/{run_id}): sweep `{sweeps[label].name}`")
    description = f"Comparison of {len(parents)} methods.\n\n" + markdown_table(table) + "\nSweeps:\n" + "\n".join(links)
    tracker.client.set_tag(tracker.parent_run_id, "mlflow.note.content", description)
    for path in files.values():
        tracker.log_artifact(path)
    tracker.finish_parent()
    return tracker.parent_run_id


def print_comparison(comparison: Comparison) -> None:
    """Print the table and the output files."""
    print(f"\nComparison {comparison.name!r} ({format_duration(comparison.wall_time_s)}):")
    print(format_table(comparison.table))
    print(f"\nTable: {comparison.files['csv']} and {comparison.files['markdown']}")
