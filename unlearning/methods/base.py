"""Method registry and the contract every unlearning method follows.

A method receives a copy of the original model and the split's tensors, changes the copy in place,
and returns it. `run_method` owns the copy, the timing and the divergence check, so the methods
themselves contain only the unlearning algorithm.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from unlearning.device import resolve_device
from unlearning.splits import SplitData
from unlearning.training import check_finite_weights


class MethodError(ValueError):
    """Raised for an unknown method name or invalid hyperparameters."""


class MethodParams(BaseModel):
    """Base class of a method's hyperparameters: typed, validated, and unknown names rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ParamsT = TypeVar("ParamsT", bound=MethodParams)
MethodFunction = Callable[[nn.Module, SplitData, Any, torch.device, int], nn.Module]


@dataclass(frozen=True)
class MethodEntry(Generic[ParamsT]):
    """A registered method: its name, hyperparameter model, implementation and description."""

    name: str
    params_type: type[ParamsT]
    function: MethodFunction
    summary: str
    needs_retain: bool = True


METHODS: dict[str, MethodEntry] = {}


def register_method(name: str, params_type: type[MethodParams], summary: str, needs_retain: bool = True):
    """Register `function(model, data, params, device, seed) -> model` under `name`."""

    def decorator(function: MethodFunction) -> MethodFunction:
        if name in METHODS:
            raise MethodError(f"Method {name!r} is already registered.")
        METHODS[name] = MethodEntry(name, params_type, function, summary, needs_retain)
        return function

    return decorator


def get_method(name: str) -> MethodEntry:
    """Return the registered method `name`, or raise `MethodError` listing the available ones."""
    if name not in METHODS:
        raise MethodError(f"Unknown unlearning method {name!r}. Available methods: {', '.join(sorted(METHODS))}.")
    return METHODS[name]


def parse_params(name: str, params: MethodParams | dict[str, Any] | None) -> MethodParams:
    """Validate hyperparameters for method `name`; errors name each invalid field and the reason."""
    entry = get_method(name)
    if isinstance(params, entry.params_type):
        return params
    try:
        return entry.params_type(**(params or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or name}: {item['msg']}" for item in error.errors()
        )
        raise MethodError(f"Invalid hyperparameters for method {name!r}: {problems}.") from error


@dataclass
class UnlearningOutcome:
    """An unlearned model and the wall time of the unlearning alone, in seconds."""

    model: nn.Module
    runtime_s: float
    params: MethodParams


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_method(
    name: str,
    original: nn.Module,
    data: SplitData,
    params: MethodParams | dict[str, Any] | None = None,
    *,
    seed: int = 0,
    device: torch.device | str = "auto",
) -> UnlearningOutcome:
    """Apply method `name` to a copy of `original` and time it.

    The copy, the move to `device` and the final weight check are outside the timed region, so
    `runtime_s` covers the unlearning step alone.

    Raises:
        MethodError: for an unknown method or invalid hyperparameters.
        DivergenceError: when a loss or weight becomes NaN or infinite.
    """
    entry = get_method(name)
    parsed = parse_params(name, params)
    device = resolve_device(device)
    model = copy.deepcopy(original).to(device)

    _synchronize(device)
    started = time.perf_counter()
    model = entry.function(model, data, parsed, device, seed)
    _synchronize(device)
    runtime_s = time.perf_counter() - started

    check_finite_weights(model, f"model unlearned by {name!r}")
    return UnlearningOutcome(model=model.eval(), runtime_s=runtime_s, params=parsed)
