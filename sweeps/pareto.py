"""Pareto front and hypervolume over the sweep's objectives.

Directions are normalized to minimization in one place (`to_minimization`), so the dominance and
volume code never branches on maximize or minimize.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Reference values, in each metric's own direction, that every useful model beats: no delay at
# all for the RCD family, and the largest possible value (1.0) for accuracy losses and gaps.
DEFAULT_REFERENCE = {
    "rcd": 0.0,
    "rcd_loss": 0.0,
    "rcd_accuracy": 0.0,
    "rcd_steps": 0.0,
    "ua": 0.0,
    "mia": 0.0,
    "forget_acc": 1.0,
    "retain_acc": 0.0,
    "test_acc": 0.0,
    "retain_acc_loss": 1.0,
    "test_acc_loss": 1.0,
    "avg_gap": 1.0,
}


def to_minimization(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Flip the sign of maximized objectives so that smaller is better in every column."""
    signs = np.array([-1.0 if direction == "maximize" else 1.0 for direction in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(directions)) * signs


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Return a boolean mask of the non-dominated rows; equal rows do not dominate each other.

    Quadratic in the number of trials, which is fine for sweeps of up to a few thousand trials.
    """
    points = to_minimization(values, directions)
    mask = np.ones(len(points), dtype=bool)
    for index, point in enumerate(points):
        others = np.delete(points, index, axis=0)
        dominated = np.all(others <= point, axis=1) & np.any(others < point, axis=1)
        mask[index] = not dominated.any()
    return mask


def _hypervolume_2d(points: np.ndarray, reference: np.ndarray) -> float:
    order = np.argsort(points[:, 0], kind="stable")
    volume = 0.0
    best_second = reference[1]
    for x, y in points[order]:
        if y < best_second:
            volume += (reference[0] - x) * (best_second - y)
            best_second = y
    return float(volume)


def _hypervolume_nd(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume by slicing along the last objective (exponential in dimensions, fine for 3-4)."""
    if points.shape[1] == 2:
        return _hypervolume_2d(points, reference)
    order = np.argsort(points[:, -1])
    volume = 0.0
    for position, index in enumerate(order):
        upper = reference[-1] if position == len(order) - 1 else points[order[position + 1], -1]
        depth = upper - points[index, -1]
        if depth > 0:
            volume += depth * _hypervolume_nd(points[order[: position + 1], :-1], reference[:-1])
    return float(volume)


def hypervolume(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> float:
    """Return the volume dominated by `values` and bounded by `reference`, both in the objectives' own directions.

    Points that do not strictly beat the reference in every objective add nothing.
    """
    points = to_minimization(values, directions)
    bound = to_minimization(np.asarray(reference, dtype=float), directions)[0]
    inside = points[np.all(points < bound, axis=1)]
    if len(inside) == 0:
        return 0.0
    front = inside[pareto_mask(inside, ["minimize"] * inside.shape[1])]
    if front.shape[1] == 1:
        return float(bound[0] - front[:, 0].min())
    return _hypervolume_nd(front, bound)


def hypervolume_history(values: np.ndarray, directions: Sequence[str], reference: Sequence[float]) -> list[float]:
    """Return the hypervolume after each trial, in the order the rows are given."""
    values = np.asarray(values, dtype=float).reshape(-1, len(directions))
    return [hypervolume(values[: count + 1], directions, reference) for count in range(len(values))]


def reference_point(
    metrics: Sequence[str], directions: Sequence[str], values: np.ndarray, overrides: dict[str, float]
) -> tuple[list[float], list[str]]:
    """Return the hypervolume reference point and, per objective, where its value came from.

    A value comes from `overrides`, else from `DEFAULT_REFERENCE`, else from the worst observed
    value (which makes hypervolumes comparable only within one sweep).
    """
    values = np.asarray(values, dtype=float).reshape(-1, len(metrics))
    point, sources = [], []
    for column, (metric, direction) in enumerate(zip(metrics, directions)):
        if metric in overrides:
            point.append(float(overrides[metric]))
            sources.append("configured")
        elif metric in DEFAULT_REFERENCE:
            point.append(DEFAULT_REFERENCE[metric])
            sources.append("default")
        else:
            observed = values[:, column]
            worst = observed.min() if direction == "maximize" else observed.max()
            point.append(float(worst) if len(observed) else 0.0)
            sources.append("worst observed")
    return point, sources
