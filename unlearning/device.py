"""Device selection shared by every function that runs a model."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """Raised when a requested device is invalid or not present on this machine."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device request into a `torch.device`.

    Args:
        device: "auto" (or None) picks CUDA when it is available and the CPU otherwise.
            "cpu", "cuda" and "cuda:N" are taken as given, after checking that CUDA exists.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise DeviceError(
            f"Invalid device {device!r}: {error}. Use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from error

    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"Device {device!r} was requested but CUDA is not available on this machine. "
            "Use device 'auto' or 'cpu'."
        )
    return resolved
