"""End-of-sweep report: trial tables, Pareto table and plot, hypervolume history."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # Sweeps run headless; Agg renders PNG files without a display.

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

TABLE_METRICS = ("ua", "retain_acc", "test_acc", "mia", "avg_gap", "rcd", "rcd_steps", "rcd_censored", "runtime_s")


def pareto_table(trials: pd.DataFrame, objectives: Sequence[str], params: Sequence[str]) -> pd.DataFrame:
    """Return the Pareto rows sorted by the first objective, with objectives, key metrics and parameters."""
    columns = ["trial", *objectives]
    columns += [name for name in TABLE_METRICS if name in trials.columns and name not in objectives]
    columns += [f"param.{name}" for name in params if f"param.{name}" in trials.columns]
    front = trials[trials["pareto"]].sort_values(list(objectives)[0], ascending=False)
    return front[columns].reset_index(drop=True)


def format_table(table: pd.DataFrame) -> str:
    """Render a table for the console, with four significant digits."""
    if table.empty:
        return "(no completed trial)"
    return table.to_string(index=False, float_format=lambda value: f"{value:.4g}")


def _label(metric: str, direction: str) -> str:
    arrow = "higher is better" if direction == "maximize" else "lower is better"
    return f"{metric} ({arrow})"


def pareto_plot(
    path: Path,
    trials: pd.DataFrame,
    objectives: Sequence[str],
    directions: Sequence[str],
    references: dict[str, dict[str, float]],
    title: str,
) -> Path:
    """Draw all trials, the Pareto front and the original and retrain references; write a PNG."""
    x_name, y_name = objectives[0], objectives[1] if len(objectives) > 1 else objectives[0]
    figure, axes = plt.subplots(figsize=(7, 5), dpi=120)

    feasible = trials[trials["feasible"]]
    infeasible = trials[~trials["feasible"]]
    axes.scatter(feasible[x_name], feasible[y_name], s=22, color="#9bb7d4", label="trial")
    if not infeasible.empty:
        axes.scatter(infeasible[x_name], infeasible[y_name], s=22, marker="x", color="#bbbbbb", label="infeasible trial")

    front = trials[trials["pareto"]].sort_values(x_name)
    axes.plot(front[x_name], front[y_name], "-o", color="#1f4e9c", markersize=6, label="Pareto front")

    styles = {"original": ("s", "#d62728"), "retrain": ("*", "#2ca02c")}
    for role, metrics in references.items():
        if x_name in metrics and y_name in metrics:
            marker, color = styles.get(role, ("D", "black"))
            axes.scatter([metrics[x_name]], [metrics[y_name]], s=160, marker=marker, color=color, edgecolor="black", zorder=5, label=f"{role} model")
            axes.annotate(role, (metrics[x_name], metrics[y_name]), textcoords="offset points", xytext=(8, 6))

    axes.set_xlabel(_label(x_name, directions[0]))
    axes.set_ylabel(_label(y_name, directions[1] if len(directions) > 1 else directions[0]))
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def hypervolume_plot(path: Path, history: list[float], reference: Sequence[float], title: str) -> Path:
    """Plot the hypervolume after each completed trial; write a PNG."""
    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    axes.plot(range(1, len(history) + 1), history, "-o", markersize=3)
    axes.set_xlabel("completed trials")
    axes.set_ylabel(f"hypervolume (reference point {list(reference)})")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def trials_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build the all-trials table from per-trial dicts, ordered by Optuna trial number."""
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values("trial").reset_index(drop=True)
    return frame
