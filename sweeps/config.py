"""Sweep configuration: YAML files validated by pydantic models, with command-line overrides.

Every section rejects unknown keys, and every error names the key path and the reason, before
anything starts.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unlearning.evaluation import METRIC_NAMES


OBJECTIVE_METRICS = METRIC_NAMES + ("rcd_gap", "rcd_rank", "rcd_loss", "rcd_accuracy")


class ConfigError(ValueError):
    """Raised for an invalid sweep configuration; the message names each key path and the reason."""


def _check_metric(cls, metric: str) -> str:
    if metric not in OBJECTIVE_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(OBJECTIVE_METRICS)}")
    return metric


class Section(BaseModel):
    """Base of every configuration section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class DataConfig(Section):
    """Data set name, location and size limits."""

    dataset: str = "digits"
    data_dir: str | None = None
    max_train_samples: int | None = Field(None, ge=1)
    max_test_samples: int | None = Field(None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class ScenarioConfig(Section):
    """The forgetting scenario and the split seed (separate from the model seed)."""

    kind: Literal["random", "class"] = "random"
    fraction: float = Field(0.1, gt=0, lt=1)
    classes: list[int] = Field(default_factory=list)
    seed: int = 0

    @model_validator(mode="after")
    def _classes_for_class_scenario(self) -> "ScenarioConfig":
        if self.kind == "class" and not self.classes:
            raise ValueError("the class scenario needs at least one class, for example classes: [0]")
        return self


class ModelConfig(Section):
    """The model architecture by registry name, with its options."""

    name: Literal["mlp", "cnn", "resnet18"] = "cnn"
    options: dict[str, Any] = Field(default_factory=dict)


class TrainingConfig(Section):
    """Training recipe of the original and retrain models, and the model seed."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 0


class MethodConfig(Section):
    """The unlearning method, its fixed hyperparameters, and the seed of the unlearning run."""

    name: str = "ieu"
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


class ParameterSpace(Section):
    """One searched hyperparameter: a float, int or categorical distribution."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check_range(self) -> "ParameterSpace":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
            if any(not isinstance(choice, (str, int, float, bool)) and choice is not None for choice in self.choices):
                raise ValueError("categorical choices must be strings, numbers, booleans or null")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("'low' and 'high' must be finite numbers")
        if self.low > self.high:
            raise ValueError(f"'low' ({self.low}) is greater than 'high' ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled range needs low > 0, got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("'step' cannot be combined with 'log: true'")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"'step' must be positive, got {self.step}")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int parameter needs integer 'low' and 'high'")
        return self


class SearchSpace(Section):
    """A search space file: the method it belongs to and one distribution per hyperparameter."""

    method: str
    parameters: dict[str, ParameterSpace]

    @field_validator("parameters")
    @classmethod
    def _not_empty(cls, parameters: dict[str, ParameterSpace]) -> dict[str, ParameterSpace]:
        if not parameters:
            raise ValueError("the search space has no parameters")
        return parameters


class Objective(Section):
    """One sweep objective: a metric and its direction."""

    metric: str
    direction: Literal["maximize", "minimize"]

    _known_metric = field_validator("metric")(_check_metric)


_CONSTRAINT_PATTERN = re.compile(r"^\s*([a-z_]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


class Constraint(Section):
    """A feasibility condition on a metric, such as `test_acc_loss <= 0.05`."""

    metric: str
    op: Literal["<=", ">="]
    value: float

    @model_validator(mode="before")
    @classmethod
    def _parse_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _CONSTRAINT_PATTERN.match(value)
            if not match:
                raise ValueError(f"cannot parse constraint {value!r}; write it as 'METRIC <= NUMBER' or 'METRIC >= NUMBER'")
            return {"metric": match.group(1), "op": match.group(2), "value": float(match.group(3))}
        return value

    _known_metric = field_validator("metric")(_check_metric)

    def violation(self, metrics: dict[str, float]) -> float:
        """Return Optuna's constraint value: <= 0 when satisfied, the amount of violation otherwise."""
        observed = metrics[self.metric]
        return observed - self.value if self.op == "<=" else self.value - observed

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class SamplerConfig(Section):
    """The Optuna sampler, its seed and extra keyword arguments."""

    name: Literal["tpe", "nsga2", "random", "gp", "grid"] = "tpe"
    seed: int = 0
    options: dict[str, Any] = Field(default_factory=dict)


class ResourcesConfig(Section):
    """Resources per trial; fractional GPUs let several trials share one device."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)

    @field_validator("gpu")
    @classmethod
    def _fractional_or_whole(cls, gpu: float) -> float:
        if gpu > 1 and gpu != int(gpu):
            raise ValueError(f"more than one GPU per trial must be a whole number, got {gpu}")
        return gpu


class RcdSettings(Section):
    """The relearning protocol; see `unlearning.metrics.rcd.RcdConfig` for each field."""

    relearn_set: Literal["train", "forget_plus_retain", "forget_only", "k_forget_plus_retain"] = "train"
    k: int = Field(10, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0)
    batch_size: int = Field(32, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    criterion: Literal["gap", "rank", "loss", "accuracy"] = "gap"
    tol: float = Field(0.2, ge=0)
    relative_tol: float = Field(0.25, ge=0)
    accuracy_tol: float = Field(0.01, ge=0, le=1)
    patience: int = Field(2, ge=1)
    max_steps: int = Field(2000, ge=1)
    dense_steps: int = Field(20, ge=0)
    eval_every: int = Field(5, ge=1)
    eval_growth: float = Field(0.05, ge=0)
    eval_size: int = Field(512, ge=1)
    eval_seed: int = 0
    early_exit: bool = True
    vectorize: bool = False


class EvaluationConfig(Section):
    """Settings of the non-RCD metrics."""

    mia_max_samples: int = Field(1000, ge=10)
    mia_seed: int = 0


class ExportConfig(Section):
    """The rule that picks the exported configuration from the Pareto front."""

    rule: Literal["max_rcd_within_loss", "min_avg_gap", "knee"] = "max_rcd_within_loss"
    retain_acc_loss_limit: float = Field(0.02, ge=0)


class SweepConfig(Section):
    """A whole sweep: data, scenario, model, method, search space, objectives and execution."""

    name: str = "digits-ieu"
    data: DataConfig = Field(default_factory=DataConfig)
    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    search_space: str | SearchSpace = "ieu"
    objectives: list[Objective] = Field(
        default_factory=lambda: [
            Objective(metric="rcd", direction="maximize"),
            Objective(metric="retain_acc_loss", direction="minimize"),
        ],
        min_length=1,
    )
    constraints: list[Constraint] = Field(default_factory=list)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    trials: int = Field(30, ge=1)
    concurrency: int = Field(2, ge=1)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    rcd: RcdSettings = Field(default_factory=RcdSettings)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    device: str = "auto"
    storage: str = "mlruns"
    ray_storage: str | None = None
    optuna_storage: str | None = None
    tracking_uri: str | None = None
    address: str | None = None
    max_failures: int = Field(0, ge=0)
    trial_timeout_s: float | None = Field(None, gt=0)
    hypervolume_reference: dict[str, float] = Field(default_factory=dict)
    plugins: list[str] = Field(default_factory=list)

    @field_validator("plugins")
    @classmethod
    def _module_names(cls, plugins: list[str]) -> list[str]:
        for module in plugins:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", module):
                raise ValueError(f"{module!r} is not a Python module name such as my_package.my_method")
        return plugins

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
            raise ValueError(
                f"invalid sweep name {name!r}; use letters, digits, '.', '_' and '-' (it names folders and the MLflow experiment)"
            )
        return name

    @model_validator(mode="after")
    def _distinct_objectives(self) -> "SweepConfig":
        names = [objective.metric for objective in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives name a metric twice: {names}")
        unknown = set(self.hypervolume_reference) - set(names)
        if unknown:
            raise ValueError(f"hypervolume_reference names metrics that are not objectives: {sorted(unknown)}")
        return self


def format_validation_error(error: ValidationError, source: str, what: str = "sweep configuration") -> str:
    """Turn a pydantic error into one paragraph that names each key path and the reason."""
    problems = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-after")) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key; check its spelling against the configuration reference in the README"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        problems.append(f"{path}: {message}")
    return f"Invalid {what} in {source}: " + "; ".join(problems) + "."


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; syntax errors name the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Configuration file {str(path)!r} was not found. Pass the path of a sweep YAML file.")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"Invalid YAML in {str(path)!r}{where}: {problem}. Fix the syntax and run again.") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{str(path)!r} must contain a YAML mapping of configuration keys, not a {type(loaded).__name__}.")
    return loaded


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """Split `key.path=value` into the key path and a YAML-parsed value."""
    if "=" not in assignment:
        raise ConfigError(f"Invalid override {assignment!r}: write it as key.path=value, for example rcd.max_steps=1000.")
    key, raw = assignment.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise ConfigError(f"Invalid override {assignment!r}: the key path is empty.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"Invalid value in override {assignment!r}: {error}.") from error
    return path, value


def apply_override(raw: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `value` at the nested key `path` of a raw configuration mapping."""
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"Cannot set {'.'.join(path)}: {part!r} is a value, not a section.")
        node = child
    node[path[-1]] = value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    model: type[SweepConfig] = SweepConfig,
) -> SweepConfig:
    """Load and validate a sweep configuration.

    Args:
        path: YAML file; None uses every default (IEU on digits with a 10% random forget set).
        overrides: `key.path=value` assignments, applied after the file.
        extra: top-level values from dedicated command-line options (`--trials` and the like),
            applied last; None values are skipped.
        model: the configuration class, `SweepConfig` or a subclass such as the comparison's.
    """
    raw = read_yaml(path) if path is not None else {}
    for assignment in overrides or []:
        apply_override(raw, *parse_override(assignment))
    for key, value in (extra or {}).items():
        if value is not None:
            raw[key] = value
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        given_options = bool(overrides) or any(value is not None for value in (extra or {}).values())
        if path:
            source = repr(str(path))
        elif given_options:
            source = "the command-line options"
        else:
            source = "the defaults"
        what = "comparison configuration" if model is not SweepConfig else "sweep configuration"
        raise ConfigError(format_validation_error(error, source, what)) from error


def dump_config(config: SweepConfig) -> str:
    """Return the resolved configuration as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
