"""Unlearning methods, registered by name. Importing this package registers every built-in method."""

from unlearning.methods import ieu  # noqa: F401  (registers "ieu")
from unlearning.methods.base import (
    METHODS,
    MethodEntry,
    MethodError,
    MethodParams,
    UnlearningOutcome,
    get_method,
    parse_params,
    register_method,
    run_method,
)

__all__ = [
    "METHODS",
    "MethodEntry",
    "MethodError",
    "MethodParams",
    "UnlearningOutcome",
    "get_method",
    "parse_params",
    "register_method",
    "run_method",
]
