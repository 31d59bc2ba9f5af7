"""Shared fixtures: real digits references built once per session, and the MNIST folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Telemetry off and Ray usage statistics off for every test, before any of those libraries loads.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from unlearning.data import load_dataset  # noqa: E402
from unlearning.evaluation import UnlearningEvaluator  # noqa: E402
from unlearning.metrics.rcd import RcdConfig  # noqa: E402
from unlearning.models import ModelSpec  # noqa: E402
from unlearning.references import build_references  # noqa: E402
from unlearning.splits import SplitData, make_split  # noqa: E402
from unlearning.training import TrainingRecipe  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]


def find_mnist_dir() -> Path | None:
    """Return the folder with the real MNIST IDX files: `$RCD_SWEEP_MNIST_DIR`, else `../shared/data/mnist`."""
    configured = os.environ.get("RCD_SWEEP_MNIST_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPOSITORY.parent / "shared" / "data" / "mnist")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """The MNIST folder; tests that use it are skipped where it is absent."""
    found = find_mnist_dir()
    if found is None:
        pytest.skip("MNIST IDX files not found; set RCD_SWEEP_MNIST_DIR to a folder with the four files")
    return found


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A reference cache shared by the whole session, so each reference pair is trained once."""
    return tmp_path_factory.mktemp("reference-cache")


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_split(digits):
    return make_split(digits, "random", fraction=0.1, seed=0)


@pytest.fixture(scope="session")
def digits_spec(digits):
    return ModelSpec("cnn", digits.input_shape, digits.num_classes, digits.mean, digits.std)


@pytest.fixture(scope="session")
def digits_references(digits, digits_split, digits_spec, cache_dir):
    torch.set_num_threads(2)
    return build_references(digits, digits_split, digits_spec, TrainingRecipe(), seed=0, cache_dir=cache_dir, device="cpu")


@pytest.fixture(scope="session")
def digits_data(digits, digits_split):
    return SplitData.from_split(digits, digits_split)


@pytest.fixture(scope="session")
def digits_evaluator(digits_data, digits_references):
    return UnlearningEvaluator(digits_data, digits_references, RcdConfig())


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str, timeout_s: float = 90.0) -> dict:
    """GET `url` until it returns JSON or `timeout_s` passes; servers take seconds to start."""
    import json
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
