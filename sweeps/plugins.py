"""User modules imported before a sweep, to register custom unlearning methods.

A plugin is any importable module that calls `unlearning.methods.register_method` at import time.
The driver imports it to validate the configuration, and every trial imports it again in its own
worker process, because a registry lives in one process only.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable

logger = logging.getLogger(__name__)


class PluginError(ImportError):
    """Raised when a configured plugin module cannot be imported."""


def load_plugins(modules: Iterable[str]) -> None:
    """Import each module once; errors name the module and how to make it importable."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as error:  # Any failure at import time, not only ImportError, leaves the method unregistered.
            raise PluginError(
                f"Plugin module {module!r} could not be imported ({type(error).__name__}: {error}). Install it in the "
                "environment that runs rcd-sweep, or add its folder to PYTHONPATH; on a cluster every node needs it, "
                "for example through `ray job submit --working-dir .`."
            ) from error
        logger.debug("Imported plugin %s", module)
