"""Unlearning methods, registered by name. Importing this package registers every built-in method."""

# Each import registers the method of the same name.
from unlearning.methods import (  # noqa: F401
    finetune,
    gradient_ascent,
    ieu,
    l1_sparse,
    random_label,
    retrain,
    salun,
    scrub,
)
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
