"""Retrain: the exact-unlearning reference, trained from scratch on the retain set only.

The method re-initializes the received model and trains it on the retain set with the training
recipe given as its hyperparameters. With the recipe and model seed that built the reference
models (`unlearning.references.build_references`), on the same device, it returns the cached
retrain model's weights bit for bit. Both draw the initial weights from the same seed, and both
train on the same retain tensors in the same batch order.

It trains instead of loading the cached retrain model for two reasons. A method receives only a
copy of the original model and the split's tensors, not the reference cache, so loading the cached
weights would need a new argument from every caller. And `runtime_s` of the retrain row must be
the cost of retraining, because every unlearning method is compared against it, while returning
cached weights would report almost zero.

Nothing about retraining is worth searching, and a search space needs at least one parameter, so
there is no `search_spaces/retrain.yaml` and a sweep runs this method only with a space given
explicitly. Callers that need the retrain model's metrics without its runtime have them already,
in `UnlearningEvaluator.reference_evaluations["retrain"]`.

Re-initialization calls `reset_parameters()` on every module, in registration order, with torch's
generator seeded as `unlearning.training.init_model` seeds it. For the registered models, whose
modules register in construction order, this draws the same initial weights as building the model
afresh. A module with parameters but without `reset_parameters()` raises `MethodError`.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from unlearning.methods.base import MethodError, MethodParams, register_method
from unlearning.methods.common import OptimizerName
from unlearning.splits import SplitData
from unlearning.training import TrainingRecipe, train_model

_DEFAULT_RECIPE = TrainingRecipe()


class RetrainParams(MethodParams):
    """Retrain hyperparameters: the training recipe and seed of the reference models.

    The defaults are those of `TrainingRecipe`, which are also the sweep's default training
    settings. A sweep that trains its references with other settings must pass the same values here.

    Args:
        epochs: passes over the retain set (default 30).
        batch_size: samples per optimizer step (default 64).
        lr: learning rate (default 1e-3).
        optimizer: "adam" (default) or "sgd".
        momentum: SGD momentum (default 0.9). Adam ignores it.
        weight_decay: L2 penalty added by the optimizer (default 0).
        model_seed: seed of the initial weights and of the batch order, the `seed` of
            `build_references`. None (the default) uses the seed the method is run with.
    """

    epochs: int = Field(_DEFAULT_RECIPE.epochs, ge=1, le=100_000)
    batch_size: int = Field(_DEFAULT_RECIPE.batch_size, ge=1)
    lr: float = Field(_DEFAULT_RECIPE.lr, gt=0)
    optimizer: OptimizerName = _DEFAULT_RECIPE.optimizer
    momentum: float = Field(_DEFAULT_RECIPE.momentum, ge=0, lt=1)
    weight_decay: float = Field(_DEFAULT_RECIPE.weight_decay, ge=0)
    model_seed: int | None = None

    def recipe(self) -> TrainingRecipe:
        """Return the training recipe these hyperparameters describe."""
        return TrainingRecipe(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )


def reinitialize(model: nn.Module, seed: int, device: torch.device) -> nn.Module:
    """Draw fresh initial weights for `model` in place, as `init_model` does for a new model with `seed`.

    The draws happen on the CPU, where `init_model` builds models, from torch's default CPU
    generator seeded with `seed`. That generator's state is restored afterwards.
    """
    model.to("cpu")
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        for name, module in model.named_modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            elif any(True for _ in module.parameters(recurse=False)):
                raise MethodError(
                    f"Cannot re-initialize module {name!r} ({type(module).__name__}) for retraining: "
                    "it has parameters but no reset_parameters() method."
                )
    return model.to(device)


@register_method("retrain", RetrainParams, "Training from scratch on the retain set only (the exact-unlearning reference).")
def retrain(model: nn.Module, data: SplitData, params: RetrainParams, device: torch.device, seed: int) -> nn.Module:
    """Replace the model's weights by ones trained from scratch on the retain set with the recipe in `params`."""
    model_seed = seed if params.model_seed is None else params.model_seed
    reinitialize(model, model_seed, device)
    return train_model(model, data.x_retain, data.y_retain, params.recipe(), model_seed, device)
