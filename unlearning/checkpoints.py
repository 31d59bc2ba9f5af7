"""Self-describing checkpoints (model spec + weights) and a content-addressed cache for references.

Checkpoints are read with `torch.load(..., weights_only=True)`, which unpickles only tensors and
plain containers, so a crafted file cannot run code on load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unlearning.models import ModelSpec, build_model, load_state

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "rcd-sweep-checkpoint/1"


class CheckpointError(ValueError):
    """Raised for a checkpoint file that is missing, unreadable or not an rcd-sweep checkpoint."""


def _cpu_state(model_or_state: nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    return {name: tensor.detach().cpu().clone() for name, tensor in state.items()}


def save_checkpoint(
    path: str | Path,
    model_or_state: nn.Module | dict[str, torch.Tensor],
    spec: ModelSpec,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write weights, model spec and metadata to `path` atomically (write to a temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_spec": spec.to_dict(),
        "state_dict": _cpu_state(model_or_state),
        "metadata": json.loads(json.dumps(metadata or {})),
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {str(path)!r} was not found. Pass the path of a .pt file written by rcd-sweep.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated, foreign or unsafe files.
        raise CheckpointError(
            f"Checkpoint {str(path)!r} could not be read safely ({type(error).__name__}). It is truncated, "
            "not a PyTorch file, or contains objects other than tensors, which are never unpickled. "
            "Pass a checkpoint written by rcd-sweep or unlearning.checkpoints.save_checkpoint."
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"Checkpoint {str(path)!r} is not an rcd-sweep checkpoint (no format marker {CHECKPOINT_FORMAT!r}). "
            "Save models with unlearning.checkpoints.save_checkpoint or `rcd-sweep unlearn`."
        )
    return payload


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelSpec, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint and return it with its spec and metadata."""
    payload = read_checkpoint(path)
    spec = ModelSpec.from_dict(payload["model_spec"])
    model = build_model(spec)
    load_state(model, payload["state_dict"], source=f"checkpoint {str(path)!r}")
    return model.to(device).eval(), spec, payload.get("metadata", {})


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_key(parts: dict[str, Any]) -> str:
    """Return a sha256 hex key over a JSON-serializable description (key order does not matter)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class CheckpointCache:
    """A directory of checkpoints stored under content keys, each verified by a sha256 manifest.

    An entry is `ROOT/KEY/NAME.pt` plus `ROOT/KEY/manifest.json` with the digest of every file. An
    entry whose files are missing, altered or unreadable is logged, removed and treated as a miss,
    so it is rebuilt instead of used.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry_dir(self, key: str) -> Path:
        """Return the folder of one cache entry."""
        return self.root / key

    def load(self, key: str, names: tuple[str, ...]) -> dict[str, dict[str, Any]] | None:
        """Return the checkpoints `names` of entry `key`, or None on a miss or a failed verification."""
        entry = self.entry_dir(key)
        manifest_path = entry / "manifest.json"
        if not manifest_path.is_file():
            return None

        try:
            manifest = json.loads(manifest_path.read_text())
            digests = manifest["files"]
            payloads = {}
            for name in names:
                path = entry / f"{name}.pt"
                if _sha256_file(path) != digests[f"{name}.pt"]:
                    raise CheckpointError(f"{path} does not match the digest in its manifest")
                payloads[name] = read_checkpoint(path)
        except (OSError, KeyError, ValueError, CheckpointError) as error:
            logger.warning("Cache entry %s is corrupted or was modified (%s); rebuilding it.", entry, error)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return payloads

    def store(
        self,
        key: str,
        states: dict[str, dict[str, torch.Tensor]],
        spec: ModelSpec,
        metadata: dict[str, Any],
    ) -> None:
        """Write one checkpoint per name and the manifest that verifies them, then publish the entry at once.

        The entry is assembled in a private folder and renamed into place, so a second process
        that builds the same references at the same time never reads a half-written entry. The
        first rename wins and the other copy is discarded.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            digests = {}
            for name, state in states.items():
                path = save_checkpoint(staging / f"{name}.pt", state, spec, {**metadata, "role": name})
                digests[path.name] = _sha256_file(path)
            manifest = {"key": key, "files": digests, "metadata": metadata}
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
            staging.chmod(0o755)
            try:
                os.rename(staging, self.entry_dir(key))
            except OSError:
                if not (self.entry_dir(key) / "manifest.json").is_file():
                    raise
                logger.info("Cache entry %s was stored by another process first; keeping that one.", key)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
