"""Search spaces: YAML files in `search_spaces/`, or inline mappings, turned into Optuna distributions."""

from __future__ import annotations

from pathlib import Path

import optuna
from pydantic import ValidationError

from sweeps.config import (
    ConfigError,
    ParameterSpace,
    SearchSpace,
    format_validation_error,
    read_yaml,
)
from unlearning.methods import get_method

SEARCH_SPACE_DIR = Path(__file__).resolve().parents[1] / "search_spaces"


def search_space_path(name: str) -> Path:
    """Return the file for a search space name: `./search_spaces/NAME.yaml` first, then the bundled one."""
    candidates = [Path.cwd() / "search_spaces" / f"{name}.yaml", SEARCH_SPACE_DIR / f"{name}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    available = sorted(path.stem for path in SEARCH_SPACE_DIR.glob("*.yaml"))
    raise ConfigError(
        f"Search space {name!r} was not found in ./search_spaces or {SEARCH_SPACE_DIR}. "
        f"Available search spaces: {', '.join(available) or 'none'}; or give the space inline under search_space."
    )


def load_search_space(space: str | SearchSpace, method: str) -> SearchSpace:
    """Resolve a search space name or inline space and check it against the method's hyperparameters."""
    if isinstance(space, str):
        path = Path(space) if space.endswith((".yaml", ".yml")) else search_space_path(space)
        try:
            space = SearchSpace.model_validate(read_yaml(path))
        except ValidationError as error:
            raise ConfigError(format_validation_error(error, repr(str(path)), "search space")) from error

    if space.method != method:
        raise ConfigError(
            f"The search space is for method {space.method!r} but the sweep runs {method!r}. "
            f"Use the search space of {method!r} or change method.name."
        )
    known = set(get_method(method).params_type.model_fields)
    unknown = sorted(set(space.parameters) - known)
    if unknown:
        raise ConfigError(
            f"Search space parameters {unknown} are not hyperparameters of {method!r}; valid names are {sorted(known)}."
        )
    return space


def to_distribution(parameter: ParameterSpace) -> optuna.distributions.BaseDistribution:
    """Convert one parameter range to the matching Optuna distribution."""
    if parameter.type == "categorical":
        return optuna.distributions.CategoricalDistribution(parameter.choices)
    if parameter.type == "int":
        step = int(parameter.step) if parameter.step is not None else 1
        return optuna.distributions.IntDistribution(int(parameter.low), int(parameter.high), log=parameter.log, step=step)
    return optuna.distributions.FloatDistribution(parameter.low, parameter.high, log=parameter.log, step=parameter.step)


def to_distributions(space: SearchSpace) -> dict[str, optuna.distributions.BaseDistribution]:
    """Convert a whole search space, keeping the file's parameter order."""
    return {name: to_distribution(parameter) for name, parameter in space.parameters.items()}


def _corner_points(space: dict[str, optuna.distributions.BaseDistribution]) -> list[dict[str, object]]:
    """Return the lower corner, the upper corner and each categorical choice of a space."""
    def bound(distribution, upper: bool):
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            return distribution.choices[-1 if upper else 0]
        return distribution.high if upper else distribution.low

    lower = {name: bound(distribution, False) for name, distribution in space.items()}
    points = [lower, {name: bound(distribution, True) for name, distribution in space.items()}]
    for name, distribution in space.items():
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            points.extend({**lower, name: choice} for choice in distribution.choices)
    return points


def check_against_method(space: dict[str, optuna.distributions.BaseDistribution], method: str, fixed: dict[str, object]) -> None:
    """Raise `ConfigError` when a corner of the space, with the fixed hyperparameters, is invalid for the method.

    Checking the corners catches ranges that leave the method's bounds (a log range starting at a
    value the method rejects, say) before any trial runs.
    """
    entry = get_method(method)
    for point in _corner_points(space):
        try:
            entry.params_type(**{**fixed, **point})
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc'])}={item.get('input')!r}: {item['msg']}" for item in error.errors()
            )
            raise ConfigError(
                f"The search space and method.params give method {method!r} invalid hyperparameters: {problems}. "
                "Narrow the range in the search space or fix method.params."
            ) from error
