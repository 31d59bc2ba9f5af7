"""Pick one configuration from a sweep by a stated rule and write it as a runnable unlearning config."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError

from sweeps.config import (
    ConfigError,
    DataConfig,
    EvaluationConfig,
    MethodConfig,
    ModelConfig,
    RcdSettings,
    ResourcesConfig,
    ScenarioConfig,
    Section,
    SweepConfig,
    TrainingConfig,
    format_validation_error,
    read_yaml,
)

logger = logging.getLogger(__name__)

EXPORT_KIND = "rcd-sweep/unlearn-config"

RULES = {
    "max_rcd_within_loss": "highest rcd among feasible trials with retain_acc_loss <= the limit",
    "min_avg_gap": "lowest avg_gap among feasible trials",
    "knee": "Pareto trial closest to the ideal point after scaling each objective to [0, 1]",
}


class UnlearnConfig(Section):
    """A runnable configuration: the method with every hyperparameter, plus what defines the references."""

    kind: str = EXPORT_KIND
    sweep: str | None = None
    selection: dict[str, Any] = Field(default_factory=dict)
    method: MethodConfig
    data: DataConfig = Field(default_factory=DataConfig)
    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    rcd: RcdSettings = Field(default_factory=RcdSettings)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    device: str = "auto"
    storage: str = "mlruns"
    plugins: list[str] = Field(default_factory=list)

    def as_sweep_config(self) -> SweepConfig:
        """Return the sweep configuration that builds the same data, split, references and evaluator."""
        return SweepConfig(
            name=self.sweep or "unlearn",
            data=self.data,
            scenario=self.scenario,
            model=self.model,
            training=self.training,
            method=self.method,
            rcd=self.rcd,
            evaluation=self.evaluation,
            resources=self.resources,
            device=self.device,
            storage=self.storage,
            plugins=self.plugins,
        )


def select_trial(
    trials: pd.DataFrame, rule: str, loss_limit: float, metrics: Sequence[str], directions: Sequence[str]
) -> pd.Series:
    """Return the trial row chosen by `rule` (see `RULES`); raise ValueError when no trial qualifies."""
    feasible = trials[trials["feasible"]] if "feasible" in trials else trials
    if feasible.empty:
        raise ValueError("no feasible completed trial to choose from")

    if rule == "max_rcd_within_loss":
        for column in ("rcd", "retain_acc_loss"):
            if column not in feasible:
                raise ValueError(f"rule {rule!r} needs the metric {column!r}, which the trials do not have")
        within = feasible[feasible["retain_acc_loss"] <= loss_limit]
        if within.empty:
            raise ValueError(
                f"no trial has retain_acc_loss <= {loss_limit}; the lowest is {feasible['retain_acc_loss'].min():.4f}. "
                "Raise the limit with --limit or choose another --rule"
            )
        selected = within.sort_values(["rcd", "retain_acc_loss", "trial"], ascending=[False, True, True]).iloc[0]
        if selected["rcd"] <= 0:
            logger.warning(
                "No trial with retain_acc_loss <= %g delays relearning (the best rcd is 0), so the selected "
                "configuration forgets nothing measurable. Raise the limit with --limit or use --rule knee.",
                loss_limit,
            )
        return selected

    if rule == "min_avg_gap":
        if "avg_gap" not in feasible:
            raise ValueError("rule 'min_avg_gap' needs the metric 'avg_gap'")
        return feasible.sort_values(["avg_gap", "trial"]).iloc[0]

    if rule == "knee":
        front = feasible[feasible["pareto"]] if "pareto" in feasible else feasible
        values = front[list(metrics)].to_numpy(dtype=float)
        signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
        values = values * signs
        span = values.max(axis=0) - values.min(axis=0)
        scaled = (values - values.min(axis=0)) / np.where(span > 0, span, 1.0)
        return front.iloc[int(np.argmin(np.linalg.norm(scaled, axis=1)))]

    raise ValueError(f"unknown export rule {rule!r}; choose one of {', '.join(RULES)}")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def write_unlearn_config(path: Path, config: SweepConfig, trial: pd.Series, rule: str, loss_limit: float) -> Path:
    """Write the selected trial as a runnable `rcd-sweep unlearn` configuration."""
    params = dict(config.method.params)
    params.update({name[len("param.") :]: _plain(value) for name, value in trial.items() if name.startswith("param.") and not pd.isna(value)})
    metric_names = [name for name in trial.index if not name.startswith("param.") and name not in ("ray_trial_id", "mlflow_run_id", "feasible", "pareto", "trial")]
    exported = UnlearnConfig(
        sweep=config.name,
        selection={
            "rule": rule,
            "rule_description": RULES[rule],
            "retain_acc_loss_limit": loss_limit,
            "optuna_trial": int(trial["trial"]),
            "ray_trial_id": str(trial.get("ray_trial_id", "")),
            "mlflow_run_id": str(trial.get("mlflow_run_id", "")),
            "metrics": {name: float(_plain(trial[name])) for name in metric_names if pd.notna(trial[name])},
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        method=MethodConfig(name=config.method.name, params=params, seed=config.method.seed),
        data=config.data,
        scenario=config.scenario,
        model=config.model,
        training=config.training,
        rcd=config.rcd,
        evaluation=config.evaluation,
        resources=config.resources,
        device=config.device,
        storage=config.storage,
        plugins=config.plugins,
    )
    header = (
        f"# rcd-sweep unlearning configuration exported from sweep {config.name!r}.\n"
        f"# Rule: {RULES[rule]}.\n"
        "# Apply it with: rcd-sweep unlearn THIS_FILE --checkpoint ORIGINAL.pt --out UNLEARNED.pt\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(exported.model_dump(mode="json"), sort_keys=False))
    return path


def load_unlearn_config(path: str | Path) -> UnlearnConfig:
    """Read an exported configuration; reject sweep files and files of another kind with a clear message."""
    raw = read_yaml(path)
    if raw.get("kind") != EXPORT_KIND:
        raise ConfigError(
            f"{str(path)!r} is not an exported unlearning configuration (expected kind: {EXPORT_KIND}). "
            "Create one with `rcd-sweep export SWEEP_NAME --out FILE`."
        )
    try:
        return UnlearnConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, repr(str(path)), "unlearning configuration")) from error
