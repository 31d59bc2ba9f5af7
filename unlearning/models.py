"""Model registry: `mlp`, `cnn` and a CIFAR-style `resnet18`, each with normalization built in.

Every model starts with a `Normalize` layer whose mean and standard deviation are buffers, so a
checkpoint carries its own input scaling and data loaders hand over raw [0, 1] pixels.

The convolutional models keep weights and activations in channels-last memory format. On CPU, the
small CNN trained 1.3 to 1.6 times and evaluated 2.1 to 2.6 times as fast in that format as in
the default one, mostly because of max pooling (benchmarks/model_speed.py, figures in
benchmarks/RESULTS.md). The logits agree to float rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn


class ModelError(ValueError):
    """Raised for an unknown model name, invalid model options or a checkpoint that does not fit."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model: its registry name, data shape and options."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description, used in cache keys and checkpoint metadata."""
        spec = asdict(self)
        spec["input_shape"] = list(self.input_shape)
        spec["mean"] = list(self.mean)
        spec["std"] = list(self.std)
        return spec

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "ModelSpec":
        """Rebuild a spec written by `to_dict`."""
        return cls(
            name=spec["name"],
            input_shape=tuple(spec["input_shape"]),
            num_classes=int(spec["num_classes"]),
            mean=tuple(spec["mean"]),
            std=tuple(spec["std"]),
            options=dict(spec.get("options", {})),
        )


class Normalize(nn.Module):
    """Per-channel standardization stored as buffers, so weight noise and decay never touch it."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        # A constant channel has std 0; the floor keeps its normalized value finite.
        std_floored = [max(float(value), 1e-6) for value in std]
        self.register_buffer("std", torch.tensor(std_floored, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MLP(nn.Module):
    """Fully connected network on flattened pixels."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = input_shape[0] * input_shape[1] * input_shape[2]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SmallCNN(nn.Module):
    """Two conv-ReLU-maxpool stages and a two-layer classifier; works from 8x8 inputs upwards."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
    ):
        super().__init__()
        in_channels, height, width = input_shape
        if height < 4 or width < 4:
            raise ModelError(f"Model 'cnn' needs inputs of at least 4x4 pixels, got {height}x{width}.")

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels[0], channels[1], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat = channels[1] * (height // 4) * (width // 4)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
        self.memory_format = torch.channels_last
        self.to(memory_format=self.memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.contiguous(memory_format=self.memory_format)))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm and an identity or 1x1 shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 convolution, no max-pool), as in He et al. 2016.

    Args:
        width: channels of the first stage (64 in the original network, 11.2M parameters); the
            four stages use width, 2x, 4x and 8x. Width 16 has about 0.7M parameters.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        stages = []
        in_planes = width
        for index, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if index == 0 else 2
            stages += [BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)]
            in_planes = planes
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_planes, num_classes))
        self.memory_format = torch.channels_last
        self.to(memory_format=self.memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x.contiguous(memory_format=self.memory_format))))


def _build_mlp(spec: ModelSpec) -> nn.Module:
    hidden = tuple(int(size) for size in spec.options.get("hidden", (256, 256)))
    return MLP(spec.input_shape, spec.num_classes, hidden=hidden)


def _build_cnn(spec: ModelSpec) -> nn.Module:
    channels = tuple(int(size) for size in spec.options.get("channels", (32, 64)))
    if len(channels) != 2:
        raise ModelError(f"Model 'cnn' option 'channels' needs two sizes, got {list(channels)}.")
    return SmallCNN(spec.input_shape, spec.num_classes, channels=channels, hidden=int(spec.options.get("hidden", 128)))


def _build_resnet18(spec: ModelSpec) -> nn.Module:
    return ResNet18(spec.input_shape, spec.num_classes, width=int(spec.options.get("width", 64)))


MODELS: dict[str, Callable[[ModelSpec], nn.Module]] = {
    "mlp": _build_mlp,
    "cnn": _build_cnn,
    "resnet18": _build_resnet18,
}

_KNOWN_OPTIONS = {"mlp": {"hidden"}, "cnn": {"channels", "hidden"}, "resnet18": {"width"}}


def build_model(spec: ModelSpec) -> nn.Module:
    """Build a freshly initialized model (normalization layer first) from its spec.

    Initialization draws from torch's global generator, so seed it first for a reproducible model.
    """
    if spec.name not in MODELS:
        raise ModelError(f"Unknown model {spec.name!r}. Available models: {', '.join(sorted(MODELS))}.")

    unknown = set(spec.options) - _KNOWN_OPTIONS[spec.name]
    if unknown:
        raise ModelError(
            f"Unknown option(s) {sorted(unknown)} for model {spec.name!r}; "
            f"valid options are {sorted(_KNOWN_OPTIONS[spec.name])}."
        )
    return nn.Sequential(Normalize(spec.mean, spec.std), MODELS[spec.name](spec))


def set_memory_format(model: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """Store the weights of `model`'s convolutional parts in `memory_format` and feed them inputs in it.

    Models are built in channels-last format; `torch.contiguous_format` restores PyTorch's default
    layout, for example to compare the speed of the two.
    """
    for module in model.modules():
        if isinstance(module, (SmallCNN, ResNet18)):
            module.memory_format = memory_format
            module.to(memory_format=memory_format)
    return model


def load_state(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load weights strictly, turning a mismatch into a `ModelError` that names the source."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        summary = str(error).splitlines()[0]
        raise ModelError(
            f"The weights in {source} do not match the model: {summary}. "
            "Check that the model name, its options and the data set are the ones the checkpoint was trained with."
        ) from error
