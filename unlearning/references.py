"""The original model (trained on the full training set) and the retrain model (retain set only).

Both are built once per (data set, split, model, training recipe, seed) and cached under a content
hash of exactly those inputs, so every trial and every later sweep reuses them.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unlearning.checkpoints import CheckpointCache, content_key
from unlearning.data import Dataset
from unlearning.device import resolve_device
from unlearning.models import ModelSpec, build_model, load_state
from unlearning.splits import ForgetSplit
from unlearning.training import TrainingRecipe, accuracy, init_model, train_model

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """Return `$RCD_SWEEP_CACHE`, or `~/.cache/rcd-sweep/references` when it is not set."""
    configured = os.environ.get("RCD_SWEEP_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "rcd-sweep" / "references"


@dataclass(eq=False)
class References:
    """Weights of the original and retrain models, kept on the CPU so they can be shipped to workers."""

    spec: ModelSpec
    original_state: dict[str, torch.Tensor]
    retrain_state: dict[str, torch.Tensor]
    key: str
    cache_hit: bool
    info: dict[str, Any] = field(default_factory=dict)

    def original(self, device: torch.device | str = "cpu") -> nn.Module:
        """Return a fresh copy of the original model on `device`, in eval mode."""
        return self._materialize(self.original_state, device)

    def retrain(self, device: torch.device | str = "cpu") -> nn.Module:
        """Return a fresh copy of the retrain model on `device`, in eval mode."""
        return self._materialize(self.retrain_state, device)

    def _materialize(self, state: dict[str, torch.Tensor], device: torch.device | str) -> nn.Module:
        model = build_model(self.spec)
        load_state(model, state, source=f"reference cache entry {self.key[:12]}")
        return model.to(device).eval()


def reference_key(
    dataset: Dataset, split: ForgetSplit, spec: ModelSpec, recipe: TrainingRecipe, seed: int
) -> str:
    """Return the content hash that identifies a pair of reference models."""
    return content_key(
        {
            "version": CACHE_VERSION,
            "dataset": dataset.fingerprint(),
            "split": split.fingerprint(),
            "model": spec.to_dict(),
            "recipe": recipe.to_dict(),
            "seed": seed,
        }
    )


def load_cached_references(
    dataset: Dataset,
    split: ForgetSplit,
    spec: ModelSpec,
    recipe: TrainingRecipe,
    seed: int = 0,
    *,
    cache_dir: str | Path | None = None,
) -> References | None:
    """Return the cached references for these inputs, or None on a miss; nothing is trained."""
    cache = CheckpointCache(cache_dir if cache_dir is not None else default_cache_dir())
    return _load_entry(cache, reference_key(dataset, split, spec, recipe, seed), spec)


def _load_entry(cache: CheckpointCache, key: str, spec: ModelSpec) -> References | None:
    cached = cache.load(key, ("original", "retrain"))
    if cached is None:
        return None
    logger.info("Reference models found in cache entry %s.", cache.entry_dir(key))
    return References(
        spec=spec,
        original_state=cached["original"]["state_dict"],
        retrain_state=cached["retrain"]["state_dict"],
        key=key,
        cache_hit=True,
        info=cached["original"]["metadata"],
    )


def store_references(references: References, cache_dir: str | Path | None = None) -> None:
    """Write references built elsewhere (on another node, say) into a cache."""
    cache = CheckpointCache(cache_dir if cache_dir is not None else default_cache_dir())
    states = {"original": references.original_state, "retrain": references.retrain_state}
    cache.store(references.key, states, references.spec, references.info)


def build_references(
    dataset: Dataset,
    split: ForgetSplit,
    spec: ModelSpec,
    recipe: TrainingRecipe,
    seed: int = 0,
    *,
    cache_dir: str | Path | None = None,
    device: torch.device | str = "auto",
) -> References:
    """Load the original and retrain models from the cache, or train and cache them.

    Args:
        dataset: the full data set.
        split: the forget/retain split; the retrain model trains on `split.retain_idx` only.
        spec: the model architecture.
        recipe: the training recipe used for both models.
        seed: model seed, used for the initial weights and the batch order of both models.
        cache_dir: cache root; default `default_cache_dir()`. The same inputs always map to the same entry.
        device: where training runs ("auto" picks CUDA when available).
    """
    device = resolve_device(device)
    cache = CheckpointCache(cache_dir if cache_dir is not None else default_cache_dir())
    key = reference_key(dataset, split, spec, recipe, seed)

    # The key hashes the whole data set, so it is computed once and shared with the cache lookup.
    cached = _load_entry(cache, key, spec)
    if cached is not None:
        return cached

    logger.info("Training reference models (cache miss, entry %s).", cache.entry_dir(key))
    retain = torch.from_numpy(split.retain_idx)
    timings = {}

    started = time.perf_counter()
    original = init_model(spec, seed, device)
    train_model(original, dataset.x_train, dataset.y_train, recipe, seed, device)
    timings["original_train_s"] = time.perf_counter() - started

    started = time.perf_counter()
    retrain = init_model(spec, seed, device)
    train_model(retrain, dataset.x_train[retain], dataset.y_train[retain], recipe, seed, device)
    timings["retrain_train_s"] = time.perf_counter() - started

    test_x, test_y = dataset.x_test[torch.from_numpy(split.test_idx)], dataset.y_test[torch.from_numpy(split.test_idx)]
    info = {
        **timings,
        "original_test_acc": accuracy(original, test_x, test_y),
        "retrain_test_acc": accuracy(retrain, test_x, test_y),
        "dataset": dataset.name,
        "seed": seed,
        "recipe": recipe.to_dict(),
        "split": split.describe(),
    }
    logger.info(
        "Trained references in %.1f s: original test accuracy %.4f, retrain test accuracy %.4f.",
        timings["original_train_s"] + timings["retrain_train_s"],
        info["original_test_acc"],
        info["retrain_test_acc"],
    )

    states = {"original": original.state_dict(), "retrain": retrain.state_dict()}
    cache.store(key, states, spec, info)
    return References(
        spec=spec,
        original_state={name: tensor.detach().cpu().clone() for name, tensor in states["original"].items()},
        retrain_state={name: tensor.detach().cpu().clone() for name, tensor in states["retrain"].items()},
        key=key,
        cache_hit=False,
        info=info,
    )
