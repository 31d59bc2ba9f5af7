"""Build what every trial shares: data, split, reference models and the evaluator with its RCD references."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator

import torch

from sweeps.config import SweepConfig
from unlearning.checkpoints import content_key
from unlearning.data import Dataset, load_dataset
from unlearning.device import resolve_device
from unlearning.evaluation import ReferenceMeasurements, UnlearningEvaluator
from unlearning.metrics.rcd import RcdConfig
from unlearning.models import ModelSpec
from unlearning.references import References, build_references
from unlearning.splits import ForgetSplit, SplitData, make_split
from unlearning.training import TrainingRecipe

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block with `count` torch threads, restoring the previous count afterwards.

    The thread count changes the order of floating-point reductions on the CPU, so every process
    that must reproduce a trial's metrics bit for bit uses the trial's count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def trial_threads(config: SweepConfig) -> int:
    """Return the torch threads of one trial: its whole CPU reservation, at least one."""
    return max(1, int(config.resources.cpu))


def load_data(config: SweepConfig) -> Dataset:
    """Load the configured data set."""
    data = config.data
    return load_dataset(
        data.dataset,
        data.data_dir,
        max_train_samples=data.max_train_samples,
        max_test_samples=data.max_test_samples,
        **data.options,
    )


def build_split(config: SweepConfig, dataset: Dataset) -> ForgetSplit:
    """Make the configured forget/retain split."""
    scenario = config.scenario
    return make_split(dataset, scenario.kind, fraction=scenario.fraction, classes=scenario.classes, seed=scenario.seed)


def model_spec(config: SweepConfig, dataset: Dataset) -> ModelSpec:
    """Return the model spec for the configured architecture on this data set."""
    return ModelSpec(config.model.name, dataset.input_shape, dataset.num_classes, dataset.mean, dataset.std, dict(config.model.options))


def training_recipe(config: SweepConfig) -> TrainingRecipe:
    """Return the reference training recipe from the configuration."""
    values = config.training.model_dump()
    values.pop("seed")
    return TrainingRecipe(**values)


def rcd_config(config: SweepConfig) -> RcdConfig:
    """Return the relearning protocol from the configuration."""
    values = config.rcd.model_dump()
    values["seeds"] = tuple(values["seeds"])
    return RcdConfig(**values)


def cache_dir(config: SweepConfig) -> Path:
    """Return the reference cache under the sweep storage folder."""
    return Path(config.storage) / "references"


def prepare(
    config: SweepConfig,
    dataset: Dataset | None = None,
    references: References | None = None,
    reference_cache: Path | None = None,
) -> tuple[Dataset, ForgetSplit, References, UnlearningEvaluator]:
    """Load the data (unless given), split it, build or load the references and measure them once.

    The references train on the configured device, where "auto" picks a local GPU when there is
    one. The returned evaluator lives on the CPU, ready to be shipped to trials.

    Args:
        config: the sweep configuration.
        dataset: the loaded data set; None loads it.
        references: references loaded elsewhere; None builds or loads them here.
        reference_cache: cache folder; None uses the one under the sweep's storage folder.
    """
    dataset = dataset if dataset is not None else load_data(config)
    split = build_split(config, dataset)
    spec = model_spec(config, dataset)
    device = resolve_device(config.device)

    if references is None:
        references = build_references(
            dataset, split, spec, training_recipe(config), config.training.seed,
            cache_dir=reference_cache or cache_dir(config), device=device,
        )
    data = SplitData.from_split(dataset, split, device)
    measurements_path = (reference_cache or cache_dir(config)) / "measurements" / f"{measurement_key(config, references, device)}.json"
    measured = load_measurements(measurements_path)
    with torch_threads(trial_threads(config)) if device.type == "cpu" else contextlib.nullcontext():
        evaluator = UnlearningEvaluator(
            data,
            references,
            rcd_config(config),
            mia_max_samples=config.evaluation.mia_max_samples,
            mia_seed=config.evaluation.mia_seed,
            measured=measured,
        )
    if measured is None:
        store_measurements(measurements_path, evaluator.measurements)
    return dataset, split, references, evaluator.to("cpu")


def measurement_key(config: SweepConfig, references: References, device: torch.device) -> str:
    """Return the cache key of the reference measurements: everything their values depend on.

    The torch thread count and the device change the order of floating-point reductions, and so
    the relearning curves, which is why they are part of the key.
    """
    return content_key(
        {
            "references": references.key,
            "rcd": rcd_config(config).to_dict(),
            "evaluation": config.evaluation.model_dump(),
            "device": device.type,
            "threads": trial_threads(config),
            "torch": torch.__version__,
        }
    )


def load_measurements(path: Path) -> ReferenceMeasurements | None:
    """Return cached reference measurements, or None when there are none or the file is unreadable."""
    if not path.is_file():
        return None
    try:
        measured = ReferenceMeasurements.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("Ignoring the unreadable reference measurements %s (%s); measuring again.", path, error)
        return None
    logger.info("Reference measurements found in %s.", path)
    return measured


def store_measurements(path: Path, measured: ReferenceMeasurements) -> None:
    """Write reference measurements as JSON, atomically, so that a concurrent reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(measured.to_dict()))
    os.replace(temporary, path)


def needs_gpu_task(config: SweepConfig, cluster_gpus: float) -> bool:
    """Say whether the references should be built in a Ray task on a GPU instead of on the driver.

    That is the case when trials request GPUs, the cluster has a whole GPU, the configured device
    allows CUDA, and the driver itself has none (a CPU-only head node, say).
    """
    return config.resources.gpu > 0 and config.device != "cpu" and cluster_gpus >= 1 and not torch.cuda.is_available()


def prepare_in_task(config: SweepConfig, dataset: Dataset, references: References | None) -> tuple[ForgetSplit, References, UnlearningEvaluator]:
    """Run `prepare` inside a Ray task; its reference cache is a private folder of that node."""
    with tempfile.TemporaryDirectory(prefix="rcd-sweep-references-") as folder:
        _, split, references, evaluator = prepare(config, dataset, references, Path(folder))
    return split, references, evaluator
