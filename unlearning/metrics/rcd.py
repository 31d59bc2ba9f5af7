"""Relearning convergence delay (RCD): optimizer steps an attacker needs to refit the forget set.

An attacker fine-tunes the unlearned model and we count the steps until a convergence criterion
is met at `patience` consecutive evaluations. The same protocol, seeds and evaluation subsets are
applied to the retrain model, and `rcd = rcd_steps(model) / rcd_steps(retrain)`: 1.0 means as
hard to relearn as a model that never saw the forget set, 0 means nothing was forgotten.

The default criterion, `gap`, compares the forget loss with the loss on an equally sized control
set of retain samples. A plain forget-loss threshold rewards models that merely shrink their
weights: lower confidence raises every loss, so such a model looks slow to relearn while still
classifying the forget set perfectly. Measuring the forget-specific excess loss cancels that.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from unlearning.models import set_memory_format
from unlearning.splits import SplitData
from unlearning.training import DivergenceError, make_optimizer, predict_logits

logger = logging.getLogger(__name__)

RELEARN_SETS = ("train", "forget_plus_retain", "forget_only", "k_forget_plus_retain")
CRITERIA = ("gap", "rank", "loss", "accuracy")


class RcdError(ValueError):
    """Raised for an invalid RCD protocol or a retrain reference that cannot normalize RCD."""


@dataclass(frozen=True)
class RcdConfig:
    """The relearning protocol. Every field is logged with the run.

    Args:
        relearn_set: data the attacker trains on. "train" (the default) draws batches from the
            whole original training set, with retain and forget samples in their natural
            proportion. "forget_plus_retain" uses the forget set plus as many retain samples, and
            "forget_only" the forget set alone. "k_forget_plus_retain" uses `k` forget samples plus
            the retain set and measures convergence on the other forget samples.
        k: forget samples given to the attacker in "k_forget_plus_retain".
        optimizer: "sgd" (plain: no momentum, no weight decay) or "adam".
        lr: relearning learning rate.
        batch_size: samples per relearning step.
        seeds: relearning seeds; `rcd_steps` is the mean over them.
        criterion: the convergence test. "gap": forget loss minus control loss is back at the
            original model's level plus the tolerance. "rank": the probability that a forget
            sample has a higher loss than a control sample (the AUC of a loss-based membership
            attack) is back at the original's level plus `relative_tol` of the retrain model's
            excess. "loss": the forget loss is at most the original's plus the tolerance.
            "accuracy": the forget accuracy is at least the original's minus `accuracy_tol`.
        tol: cap on the tolerance of the loss-based criteria, in nats; the tolerance itself
            when `relative_tol` is 0.
        relative_tol: tolerance of the loss-based criteria as a fraction of the retrain model's
            excess at step 0 (its gap, or forget loss, minus the original's), capped at `tol`.
            The fraction adapts to the data set's loss scale in random forgetting, where the
            retrain model generalizes well to the forget set. The cap matters in class
            forgetting, where the retrain model never saw the forget classes and its excess is
            tens of nats.
        accuracy_tol: tolerance of the accuracy criterion, as a fraction.
        patience: consecutive evaluations at which the criterion must hold.
        max_steps: step budget; a run that has not converged by then is censored.
        dense_steps: evaluate after every step up to this step.
        eval_every: minimum interval between evaluations after `dense_steps`.
        eval_growth: after `dense_steps`, the interval also grows to `eval_growth` times the
            current step, so the resolution stays relative (5% by default) and a censored run
            costs about 80 evaluations instead of one per `eval_every` steps.
        eval_size: maximum size of the forget evaluation subset and of the control subset.
        eval_seed: seed of the evaluation subsets, shared by every model of a sweep.
        early_exit: stop relearning once `criterion` converges (default). False runs the whole
            step budget, which gives full curves and the same delays at a higher cost.
        vectorize: relearn every seed in one vectorized pass (`torch.func.vmap`) instead of one
            seed after another. Each seed keeps its own batches and optimizer state, so the delays
            match the sequential runs up to floating-point rounding. Off by default because on
            CPU the vectorized pass is slower (benchmarks/rcd_cost.py). Models with batch
            normalization or dropout always run sequentially.
    """

    relearn_set: Literal["train", "forget_plus_retain", "forget_only", "k_forget_plus_retain"] = "train"
    k: int = 10
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01
    batch_size: int = 32
    seeds: tuple[int, ...] = (0, 1, 2)
    criterion: Literal["gap", "rank", "loss", "accuracy"] = "gap"
    tol: float = 0.2
    relative_tol: float = 0.25
    accuracy_tol: float = 0.01
    patience: int = 2
    max_steps: int = 2000
    dense_steps: int = 20
    eval_every: int = 5
    eval_growth: float = 0.05
    eval_size: int = 512
    eval_seed: int = 0
    early_exit: bool = True
    # NOTE: the vectorized pass is measured only on CPU. On a GPU, where small models leave the
    # device waiting on kernel launches, it may pay; time both with benchmarks/rcd_cost.py first.
    vectorize: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(seed) for seed in self.seeds))
        problems = []
        if self.relearn_set not in RELEARN_SETS:
            problems.append(f"relearn_set must be one of {', '.join(RELEARN_SETS)}, got {self.relearn_set!r}")
        if self.criterion not in CRITERIA:
            problems.append(f"criterion must be one of {', '.join(CRITERIA)}, got {self.criterion!r}")
        if self.optimizer not in ("sgd", "adam"):
            problems.append(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if not self.seeds:
            problems.append("seeds must name at least one seed")
        for name in ("batch_size", "patience", "max_steps", "eval_every", "eval_size", "k"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if min(self.dense_steps, self.tol, self.relative_tol, self.accuracy_tol, self.eval_growth) < 0:
            problems.append("dense_steps, tol, relative_tol, accuracy_tol and eval_growth must be >= 0")
        if problems:
            raise RcdError("Invalid RCD protocol: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, object]:
        """Return the protocol as a plain dict, for logging."""
        values = asdict(self)
        values["seeds"] = list(self.seeds)
        return values

    def eval_steps(self) -> list[int]:
        """Return the steps after which the criterion is evaluated, 0 (before relearning) included."""
        steps = list(range(0, min(self.dense_steps, self.max_steps) + 1))
        while steps[-1] < self.max_steps:
            interval = max(self.eval_every, math.ceil(self.eval_growth * steps[-1]))
            steps.append(min(steps[-1] + interval, self.max_steps))
        return steps


@dataclass
class RelearningRun:
    """One relearning run: the step where each criterion converged (None if not) and the curve."""

    seed: int
    converged_step: dict[str, int | None]
    steps: list[int] = field(default_factory=list)
    forget_loss: list[float] = field(default_factory=list)
    control_loss: list[float] = field(default_factory=list)
    forget_acc: list[float] = field(default_factory=list)
    loss_rank: list[float] = field(default_factory=list)


@dataclass
class RcdMeasurement:
    """RCD of one model: the primary criterion's delay over seeds plus the other criteria where reached."""

    criterion: str
    max_steps: int
    runs: list[RelearningRun]

    def steps_for(self, criterion: str) -> tuple[float | None, bool]:
        """Return (mean steps over seeds, censored) for a criterion; censored runs count as `max_steps`.

        For a criterion other than the primary one, a run stopped early at primary convergence
        without reaching it gives None, because its delay is unknown rather than censored.
        """
        values = []
        censored = False
        for run in self.runs:
            step = run.converged_step[criterion]
            if step is None:
                if criterion != self.criterion and run.steps[-1] < self.max_steps:
                    return None, False
                censored = True
                step = self.max_steps
            values.append(step)
        return float(np.mean(values)), censored

    @property
    def steps(self) -> float:
        """Mean delay over seeds under the primary criterion."""
        return self.steps_for(self.criterion)[0]

    @property
    def censored(self) -> bool:
        """True when at least one seed never converged, so `steps` is a lower bound."""
        return self.steps_for(self.criterion)[1]

    @property
    def steps_std(self) -> float:
        """Standard deviation of the primary delay over seeds (censored runs count as `max_steps`)."""
        values = [run.converged_step[self.criterion] for run in self.runs]
        return float(np.std([self.max_steps if value is None else value for value in values]))

    def mean_curve(self) -> dict[str, list[float]]:
        """Return the relearning curve averaged over the seeds that evaluated each step."""
        by_step: dict[int, list[tuple[float, float, float, float]]] = {}
        for run in self.runs:
            for index, step in enumerate(run.steps):
                point = (run.forget_loss[index], run.control_loss[index], run.forget_acc[index], run.loss_rank[index])
                by_step.setdefault(step, []).append(point)
        steps = sorted(by_step)
        means = [np.mean(by_step[step], axis=0) for step in steps]
        return {
            "step": steps,
            "forget_loss": [float(mean[0]) for mean in means],
            "control_loss": [float(mean[1]) for mean in means],
            "gap": [float(mean[0] - mean[1]) for mean in means],
            "forget_acc": [float(mean[2]) for mean in means],
            "loss_rank": [float(mean[3]) for mean in means],
        }


class RcdProtocol:
    """A relearning protocol fixed for one split: evaluation subsets, relearning pool and thresholds.

    The levels come from the original model, the tolerances from `tol` plus `relative_tol` times
    the retrain model's initial excess, and every model of a sweep (the retrain reference included)
    is measured against the same subsets, seeds and thresholds.

    Args:
        config: the protocol settings.
        data: the split's tensors.
        original: the original model, which sets the convergence levels.
        retrain: the retrain model; required when `config.relative_tol` is positive.
    """

    def __init__(self, config: RcdConfig, data: SplitData, original: nn.Module, retrain: nn.Module | None = None):
        self.config = config
        self.data = data
        self._choose_subsets()
        self._eval_forget_x = data.x_forget[torch.from_numpy(self.eval_forget)]
        self._eval_control_x = data.x_retain[torch.from_numpy(self.eval_control)]
        self.thresholds = self._thresholds(original, retrain)

    def _choose_subsets(self) -> None:
        config = self.config
        rng = np.random.default_rng(config.eval_seed)
        num_forget = len(self.data.y_forget)
        num_retain = len(self.data.y_retain)

        forget_order = rng.permutation(num_forget)
        if config.relearn_set == "k_forget_plus_retain":
            if config.k >= num_forget:
                raise RcdError(
                    f"k={config.k} forget samples for relearning leaves none to measure convergence on; "
                    f"the forget set has {num_forget} samples."
                )
            self.relearn_forget = np.sort(forget_order[: config.k])
            held_out = forget_order[config.k :]
        else:
            self.relearn_forget = np.arange(num_forget)
            held_out = forget_order
        self.eval_forget = np.sort(held_out[: config.eval_size])

        control_count = min(len(self.eval_forget), num_retain)
        self.eval_control = np.sort(rng.choice(num_retain, size=control_count, replace=False))

        if config.relearn_set == "forget_plus_retain":
            self.relearn_retain = np.sort(rng.choice(num_retain, size=min(num_forget, num_retain), replace=False))
        elif config.relearn_set == "forget_only":
            self.relearn_retain = np.arange(0)
        else:
            self.relearn_retain = np.arange(num_retain)

    @torch.no_grad()
    def _evaluate(self, model: nn.Module) -> dict[str, float]:
        forget_logits = predict_logits(model, self._eval_forget_x)
        control_logits = predict_logits(model, self._eval_control_x)
        return self._evaluate_stacked(forget_logits.unsqueeze(0), control_logits.unsqueeze(0))[0]

    def _thresholds(self, original: nn.Module, retrain: nn.Module | None) -> dict[str, float]:
        levels = self._evaluate(original)
        gap = levels["forget_loss"] - levels["control_loss"]
        gap_tol = loss_tol = self.config.tol
        rank_tol = 0.0

        if self.config.relative_tol > 0:
            if retrain is None:
                raise RcdError("relative_tol > 0 needs the retrain model to set the tolerance; pass `retrain`.")
            retrain_levels = self._evaluate(retrain)
            gap_excess = max(0.0, retrain_levels["forget_loss"] - retrain_levels["control_loss"] - gap)
            loss_excess = max(0.0, retrain_levels["forget_loss"] - levels["forget_loss"])
            rank_excess = max(0.0, retrain_levels["loss_rank"] - levels["loss_rank"])
            gap_tol = min(self.config.tol, self.config.relative_tol * gap_excess)
            loss_tol = min(self.config.tol, self.config.relative_tol * loss_excess)
            rank_tol = self.config.relative_tol * rank_excess

        return {
            "gap": gap + gap_tol,
            "loss_rank": levels["loss_rank"] + rank_tol,
            "forget_loss": levels["forget_loss"] + loss_tol,
            "forget_acc": levels["forget_acc"] - self.config.accuracy_tol,
            "original_gap": gap,
            "original_loss_rank": levels["loss_rank"],
            "original_forget_loss": levels["forget_loss"],
            "original_forget_acc": levels["forget_acc"],
            "gap_tolerance": gap_tol,
            "rank_tolerance": rank_tol,
            "loss_tolerance": loss_tol,
        }

    def _holds(self, snapshot: dict[str, float]) -> dict[str, bool]:
        return {
            "gap": snapshot["forget_loss"] - snapshot["control_loss"] <= self.thresholds["gap"],
            "rank": snapshot["loss_rank"] <= self.thresholds["loss_rank"],
            "loss": snapshot["forget_loss"] <= self.thresholds["forget_loss"],
            "accuracy": snapshot["forget_acc"] >= self.thresholds["forget_acc"],
        }

    def _relearning_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.data
        forget = torch.from_numpy(self.relearn_forget)
        retain = torch.from_numpy(self.relearn_retain)
        x = torch.cat([data.x_forget[forget], data.x_retain[retain]])
        y = torch.cat([data.y_forget[forget], data.y_retain[retain]])
        return x, y

    def relearn(self, model: nn.Module, seed: int) -> RelearningRun:
        """Fine-tune a copy of `model` with one seed and record when each criterion converges."""
        config = self.config
        attacker = copy.deepcopy(model)
        attacker.train()
        optimizer = make_optimizer(attacker.parameters(), config.optimizer, config.lr)
        pool_x, pool_y = self._relearning_pool()
        batches = _BatchStream(len(pool_y), config.batch_size, seed)
        device = next(attacker.parameters()).device
        progress = _Convergence(seed, config)
        step = 0

        for eval_step in config.eval_steps():
            while step < eval_step:
                batch = batches.next()
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(attacker(pool_x[batch].to(device)), pool_y[batch].to(device))
                if not torch.isfinite(loss):
                    raise DivergenceError(f"Relearning loss became {loss.item()} at step {step + 1} (seed {seed}).")
                loss.backward()
                optimizer.step()
                step += 1

            snapshot = self._evaluate(attacker)
            progress.record(step, snapshot, self._holds(snapshot))
            if progress.finished:
                break
        return progress.run

    def relearn_together(self, model: nn.Module, seeds: tuple[int, ...]) -> list[RelearningRun]:
        """Fine-tune one copy of `model` per seed in a single vectorized pass; return one run per seed.

        The copies' parameters are stacked along a new first dimension and `vmap` runs the forward
        pass of every copy at once. The loss is the sum of the per-seed losses, so each slice of a
        stacked parameter receives exactly its own seed's gradient. SGD and Adam update every
        element independently, so one optimizer over the stacked parameters updates each copy as
        its own optimizer would. A seed that has converged keeps training with the others, but its
        record stops where the sequential run would have stopped.
        """
        config = self.config
        # vmap supports only the default memory format, so the copies leave channels-last.
        copies = [set_memory_format(copy.deepcopy(model), torch.contiguous_format) for _ in seeds]
        params, buffers = stack_module_state(copies)
        skeleton = copy.deepcopy(copies[0]).to("meta")

        def forward(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(skeleton, (params, buffers), (x,))

        train_forward = vmap(forward)
        eval_forward = vmap(forward, in_dims=(0, 0, None))
        optimizer = make_optimizer(params.values(), config.optimizer, config.lr)
        pool_x, pool_y = self._relearning_pool()
        streams = [_BatchStream(len(pool_y), config.batch_size, seed) for seed in seeds]
        device = next(iter(params.values())).device
        eval_forget_x = self._eval_forget_x.to(device)
        eval_control_x = self._eval_control_x.to(device)
        progress = [_Convergence(seed, config) for seed in seeds]
        step = 0

        for eval_step in config.eval_steps():
            while step < eval_step:
                batch = torch.stack([stream.next() for stream in streams])
                x = pool_x[batch].to(device)
                y = pool_y[batch].to(device)
                optimizer.zero_grad(set_to_none=True)
                logits = train_forward(params, buffers, x)
                losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(len(seeds), -1).mean(dim=1)
                for index, loss in enumerate(losses.tolist()):
                    if not progress[index].finished and not math.isfinite(loss):
                        raise DivergenceError(f"Relearning loss became {loss} at step {step + 1} (seed {seeds[index]}).")
                losses.sum().backward()
                optimizer.step()
                step += 1

            with torch.no_grad():
                forget_logits = eval_forward(params, buffers, eval_forget_x)
                control_logits = eval_forward(params, buffers, eval_control_x)
            snapshots = self._evaluate_stacked(forget_logits, control_logits)
            for index, snapshot in enumerate(snapshots):
                if not progress[index].finished:
                    progress[index].record(step, snapshot, self._holds(snapshot))
            if all(entry.finished for entry in progress):
                break
        return [entry.run for entry in progress]

    def _evaluate_stacked(self, forget_logits: torch.Tensor, control_logits: torch.Tensor) -> list[dict[str, float]]:
        """Return `_evaluate`'s snapshot for each model of a stack, from logits shaped [models, samples, classes]."""
        forget_labels = self.data.y_forget[torch.from_numpy(self.eval_forget)].to(forget_logits.device)
        control_labels = self.data.y_retain[torch.from_numpy(self.eval_control)].to(control_logits.device)
        snapshots = []
        for forget, control in zip(forget_logits, control_logits):
            forget_losses = F.cross_entropy(forget, forget_labels, reduction="none")
            control_losses = F.cross_entropy(control, control_labels, reduction="none")
            snapshots.append(
                {
                    "forget_loss": forget_losses.mean().item(),
                    "control_loss": control_losses.mean().item(),
                    "forget_acc": (forget.argmax(dim=1) == forget_labels).float().mean().item(),
                    "loss_rank": _exceedance(forget_losses.cpu().numpy(), control_losses.cpu().numpy()),
                }
            )
        return snapshots

    def measure(self, model: nn.Module) -> RcdMeasurement:
        """Relearn `model` once per seed and collect the delays; `model` itself is left unchanged."""
        seeds = self.config.seeds
        if self.config.vectorize and len(seeds) > 1 and can_vectorize(model):
            runs = self.relearn_together(model, seeds)
        else:
            runs = [self.relearn(model, seed) for seed in seeds]
        return RcdMeasurement(self.config.criterion, self.config.max_steps, runs)


def can_vectorize(model: nn.Module) -> bool:
    """Return True when `vmap` can relearn copies of `model` together.

    Batch normalization updates its running statistics in place during training, and dropout
    draws random masks, so models with either relearn one seed at a time.
    """
    stateful = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
    return not any(isinstance(module, stateful) for module in model.modules())


class _BatchStream:
    """Index batches for one relearning seed: a fresh permutation of the pool whenever a batch would not fit."""

    def __init__(self, pool_size: int, batch_size: int, seed: int):
        self.pool_size = pool_size
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(pool_size, generator=self.generator)
        self.cursor = 0

    def next(self) -> torch.Tensor:
        if self.cursor + self.batch_size > len(self.order):
            self.order = torch.randperm(self.pool_size, generator=self.generator)
            self.cursor = 0
        batch = self.order[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return batch


class _Convergence:
    """The record of one relearning run: its curve, and the step where each criterion first held `patience` times in a row."""

    def __init__(self, seed: int, config: RcdConfig):
        self.config = config
        self.run = RelearningRun(seed=seed, converged_step={name: None for name in CRITERIA})
        self.streak_start: dict[str, int | None] = {name: None for name in CRITERIA}
        self.streak_length = {name: 0 for name in CRITERIA}

    @property
    def finished(self) -> bool:
        """True once early exit applies: the primary criterion has converged."""
        return self.config.early_exit and self.run.converged_step[self.config.criterion] is not None

    def record(self, step: int, snapshot: dict[str, float], holds: dict[str, bool]) -> None:
        """Append one evaluation to the curve and update every criterion's streak."""
        run = self.run
        if not all(math.isfinite(snapshot[name]) for name in ("forget_loss", "control_loss")):
            raise DivergenceError(f"Relearning evaluation loss became NaN or infinite at step {step} (seed {run.seed}).")
        run.steps.append(step)
        run.forget_loss.append(snapshot["forget_loss"])
        run.control_loss.append(snapshot["control_loss"])
        run.forget_acc.append(snapshot["forget_acc"])
        run.loss_rank.append(snapshot["loss_rank"])

        for name, criterion_holds in holds.items():
            if run.converged_step[name] is not None:
                continue
            if not criterion_holds:
                self.streak_start[name], self.streak_length[name] = None, 0
                continue
            if self.streak_start[name] is None:
                self.streak_start[name] = step
            self.streak_length[name] += 1
            if self.streak_length[name] >= self.config.patience:
                run.converged_step[name] = self.streak_start[name]


def _exceedance(forget: np.ndarray, control: np.ndarray) -> float:
    """Return P(forget loss > control loss) + 0.5 P(equal), from ranks (the Mann-Whitney U statistic).

    Ranks ignore the scale of the losses and the few huge losses of misclassified samples, which
    dominate a mean loss over a few hundred samples.
    """
    ranks = rankdata(np.concatenate([forget, control]))
    count_forget, count_control = len(forget), len(control)
    u_statistic = ranks[:count_forget].sum() - count_forget * (count_forget + 1) / 2
    return float(u_statistic / (count_forget * count_control))


def rcd_metrics(measurement: RcdMeasurement, retrain: RcdMeasurement) -> dict[str, float]:
    """Return the RCD metrics of a model normalized by the retrain model's delays.

    Keys: `rcd_steps`, `rcd_steps_std`, `rcd` and `rcd_censored` (1.0 when at least one seed hit
    the budget, so the mean is a lower bound), plus `rcd_loss` and `rcd_accuracy` for the other
    criteria where both this model and the retrain model reached them.
    """
    retrain_steps = retrain.steps
    if retrain_steps <= 0:
        raise RcdError(
            f"The retrain model reaches the '{retrain.criterion}' criterion at step 0, so RCD cannot be normalized. "
            "Lower `rcd.tol`, lower `rcd.lr`, or choose another criterion."
        )

    metrics = {
        "rcd_steps": measurement.steps,
        "rcd_steps_std": measurement.steps_std,
        "rcd": measurement.steps / retrain_steps,
        "rcd_censored": 1.0 if measurement.censored else 0.0,
    }
    for name in CRITERIA:
        if name == measurement.criterion:
            continue
        own, _ = measurement.steps_for(name)
        reference, _ = retrain.steps_for(name)
        if own is not None and reference:
            metrics[f"rcd_{name}"] = own / reference
    return metrics
