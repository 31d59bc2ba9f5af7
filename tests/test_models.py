"""Model registry: shapes for every data set layout, built-in normalization, strict loading."""

from __future__ import annotations

import pytest
import torch

from unlearning.device import DeviceError, resolve_device
from unlearning.models import (
    ModelError,
    ModelSpec,
    build_model,
    load_state,
    set_memory_format,
)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet18"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_model_output_shape(name, shape):
    options = {"width": 8} if name == "resnet18" else {}
    spec = ModelSpec(name, shape, 10, (0.5,) * shape[0], (0.25,) * shape[0], options)
    model = build_model(spec).eval()

    logits = model(torch.rand(4, *shape))

    assert logits.shape == (4, 10)


@pytest.mark.parametrize("name", ["cnn", "resnet18"])
def test_conv_weights_channels_last(name):
    spec = ModelSpec(name, (1, 8, 8), 10, (0.5,), (0.25,), {"width": 8} if name == "resnet18" else {})
    model = build_model(spec)

    weights = [parameter for parameter in model.parameters() if parameter.dim() == 4]
    assert weights
    assert all(weight.is_contiguous(memory_format=torch.channels_last) for weight in weights)


def test_memory_formats_give_same_logits():
    torch.manual_seed(0)
    model = build_model(ModelSpec("cnn", (1, 28, 28), 10, (0.5,), (0.25,))).eval()
    inputs = torch.rand(16, 1, 28, 28)
    channels_last = model(inputs)

    default = set_memory_format(model, torch.contiguous_format)(inputs)

    assert next(model.parameters()).is_contiguous()
    assert torch.allclose(channels_last, default, atol=1e-5)


def test_normalization_inside_checkpoint():
    spec = ModelSpec("cnn", (1, 8, 8), 10, (0.3,), (0.2,))
    state = build_model(spec).state_dict()

    assert torch.allclose(state["0.mean"], torch.tensor(0.3).view(1, 1, 1, 1))
    assert torch.allclose(state["0.std"], torch.tensor(0.2).view(1, 1, 1, 1))


def test_resnet_width_changes_size():
    narrow = build_model(ModelSpec("resnet18", (3, 32, 32), 10, (0.5,) * 3, (0.25,) * 3, {"width": 8}))
    wide = build_model(ModelSpec("resnet18", (3, 32, 32), 10, (0.5,) * 3, (0.25,) * 3, {"width": 16}))

    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in narrow.parameters())


def test_unknown_model_rejected():
    with pytest.raises(ModelError) as error:
        build_model(ModelSpec("vit", (1, 8, 8), 10, (0.5,), (0.25,)))
    assert "Unknown model 'vit'" in str(error.value)
    assert "cnn" in str(error.value)


def test_unknown_option_rejected():
    with pytest.raises(ModelError) as error:
        build_model(ModelSpec("cnn", (1, 8, 8), 10, (0.5,), (0.25,), {"width": 3}))
    assert "width" in str(error.value)


def test_mismatched_state_rejected():
    small = build_model(ModelSpec("cnn", (1, 8, 8), 10, (0.5,), (0.25,)))
    other = build_model(ModelSpec("mlp", (1, 8, 8), 10, (0.5,), (0.25,)))

    with pytest.raises(ModelError) as error:
        load_state(small, other.state_dict(), source="checkpoint 'x.pt'")
    assert "x.pt" in str(error.value)


def test_device_auto_is_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised on machines without CUDA")
def test_device_cuda_missing_rejected():
    with pytest.raises(DeviceError) as error:
        resolve_device("cuda")
    assert "CUDA is not available" in str(error.value)


def test_device_invalid_rejected():
    with pytest.raises(DeviceError) as error:
        resolve_device("gpu0")
    assert "'gpu0'" in str(error.value)


def test_library_imports_no_orchestrator():
    """The unlearning package must work without Ray, Optuna, MLflow or the sweeps package."""
    import subprocess
    import sys

    code = (
        "import sys, unlearning.data, unlearning.evaluation, unlearning.methods, unlearning.references, unlearning.checkpoints\n"
        "print(sorted(name for name in ('ray', 'optuna', 'mlflow', 'sweeps') if name in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert output.strip() == "[]"
