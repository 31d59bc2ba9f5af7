"""Forgetting scenarios: which training samples to forget, which to retain, which test samples count."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from unlearning.data import Dataset

SCENARIOS = ("random", "class")


class SplitError(ValueError):
    """Raised for an unknown scenario or options that select no forget or no retain sample."""


@dataclass(frozen=True, eq=False)
class ForgetSplit:
    """Disjoint forget and retain index sets over the training set, plus the test indices used for TA.

    In the `class` scenario the forgotten classes are also left out of `test_idx`, so test accuracy
    measures the classes the model is meant to keep.
    """

    scenario: str
    seed: int
    forget_idx: np.ndarray
    retain_idx: np.ndarray
    test_idx: np.ndarray
    forgotten_classes: tuple[int, ...] = ()
    fraction: float | None = None

    def fingerprint(self) -> str:
        """Return a sha256 hex digest of the three index arrays, for cache keys."""
        digest = hashlib.sha256()
        for array in (self.forget_idx, self.retain_idx, self.test_idx):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
            digest.update(b"|")
        return digest.hexdigest()

    def describe(self) -> dict[str, object]:
        """Return the scenario settings and set sizes, for logging."""
        return {
            "scenario": self.scenario,
            "split_seed": self.seed,
            "fraction": self.fraction,
            "forgotten_classes": list(self.forgotten_classes),
            "num_forget": int(len(self.forget_idx)),
            "num_retain": int(len(self.retain_idx)),
            "num_test": int(len(self.test_idx)),
        }

    def save(self, path: str | Path) -> None:
        """Write the index arrays to an `.npz` file, so a run can be audited or reproduced."""
        np.savez(
            path,
            forget_idx=self.forget_idx,
            retain_idx=self.retain_idx,
            test_idx=self.test_idx,
            forgotten_classes=np.asarray(self.forgotten_classes, dtype=np.int64),
        )


def make_split(
    dataset: Dataset,
    scenario: str = "random",
    *,
    fraction: float = 0.1,
    classes: Sequence[int] = (),
    seed: int = 0,
) -> ForgetSplit:
    """Choose the forget set for a scenario, deterministically in `seed`.

    Args:
        dataset: the data set whose training samples are split.
        scenario: "random" puts a uniformly drawn `fraction` of the training samples in the
            forget set. "class" puts every training sample of `classes` there.
        fraction: share of the training set to forget in the random scenario, in (0, 1). Default 0.1.
        classes: the classes to forget in the class scenario.
        seed: split seed, separate from the model seed. Every integer, 0 included, is a real seed.
    """
    num_train = len(dataset.y_train)
    all_test = np.arange(len(dataset.y_test), dtype=np.int64)

    if scenario == "random":
        if not 0.0 < fraction < 1.0:
            raise SplitError(f"Forget fraction must be in (0, 1), got {fraction}.")
        num_forget = int(round(fraction * num_train))
        if num_forget == 0 or num_forget == num_train:
            raise SplitError(
                f"Forget fraction {fraction} of {num_train} training samples leaves an empty forget or retain set."
            )
        order = np.random.default_rng(seed).permutation(num_train)
        forget_idx = np.sort(order[:num_forget]).astype(np.int64)
        retain_idx = np.sort(order[num_forget:]).astype(np.int64)
        return ForgetSplit("random", seed, forget_idx, retain_idx, all_test, fraction=fraction)

    if scenario == "class":
        forgotten = tuple(sorted({int(label) for label in classes}))
        if not forgotten:
            raise SplitError("The class scenario needs at least one class to forget, for example classes: [0].")
        invalid = [label for label in forgotten if not 0 <= label < dataset.num_classes]
        if invalid:
            raise SplitError(
                f"Classes {invalid} do not exist in {dataset.name!r}, which has classes 0 to {dataset.num_classes - 1}."
            )
        labels = dataset.y_train.numpy()
        in_forget = np.isin(labels, forgotten)
        if in_forget.all():
            raise SplitError(f"Forgetting classes {list(forgotten)} leaves no training sample to retain.")
        forget_idx = np.flatnonzero(in_forget).astype(np.int64)
        retain_idx = np.flatnonzero(~in_forget).astype(np.int64)
        test_idx = np.flatnonzero(~np.isin(dataset.y_test.numpy(), forgotten)).astype(np.int64)
        return ForgetSplit("class", seed, forget_idx, retain_idx, test_idx, forgotten_classes=forgotten)

    raise SplitError(f"Unknown forgetting scenario {scenario!r}. Available scenarios: {', '.join(SCENARIOS)}.")


@dataclass(frozen=True, eq=False)
class SplitData:
    """The forget, retain and test tensors of a split, on one device."""

    x_forget: torch.Tensor
    y_forget: torch.Tensor
    x_retain: torch.Tensor
    y_retain: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @classmethod
    def from_split(cls, dataset: Dataset, split: ForgetSplit, device: torch.device | str = "cpu") -> "SplitData":
        """Index the data set by the split and move the tensors to `device`."""
        forget = torch.from_numpy(split.forget_idx)
        retain = torch.from_numpy(split.retain_idx)
        test = torch.from_numpy(split.test_idx)
        return cls(
            x_forget=dataset.x_train[forget].to(device),
            y_forget=dataset.y_train[forget].to(device),
            x_retain=dataset.x_train[retain].to(device),
            y_retain=dataset.y_train[retain].to(device),
            x_test=dataset.x_test[test].to(device),
            y_test=dataset.y_test[test].to(device),
            num_classes=dataset.num_classes,
        )
