"""Edge-model checkpoints: weights plus the configuration that rebuilds the architecture.

A checkpoint is a ``torch.save`` of ``{"format": ..., "config": {name, num_classes,
hidden_size}, "state_dict": ...}``, read back with ``torch.load(weights_only=True)`` (no
pickled code runs). Writes go to a temporary file in the same folder and are renamed into
place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ekya.errors import EkyaError
from ekya.models.factory import EdgeModel, build_model

#: Tag stored in every checkpoint so that other ``.pt`` files are recognised as such.
CHECKPOINT_FORMAT = "ekya-edge-model/1"


def save_checkpoint(model: EdgeModel, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights and architecture to ``path`` atomically (temp file + rename)."""
    return write_checkpoint(model, path, CHECKPOINT_FORMAT)


def write_checkpoint(model: torch.nn.Module, path: str | os.PathLike, format_tag: str) -> Path:
    """Write ``{"format": format_tag, "config": model.config(), "state_dict": ...}`` (CPU tensors) to
    ``path`` atomically: a failed write leaves neither a temporary file nor a partial checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    payload = {"format": format_tag, "config": model.config(), "state_dict": state_dict}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EkyaError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise EkyaError(f"checkpoint {path}: unreadable ({type(error).__name__}: {str(error).splitlines()[0][:200]})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise EkyaError(f"checkpoint {path}: not an Ekya edge-model checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    config = payload.get("config")
    if not isinstance(config, dict) or set(config) != {"name", "num_classes", "hidden_size"}:
        raise EkyaError(f"checkpoint {path}: config must hold name, num_classes and hidden_size, got {config!r}")
    if not isinstance(payload.get("state_dict"), dict):
        raise EkyaError(f"checkpoint {path}: state_dict missing")
    return payload


def checkpoint_config(path: str | os.PathLike) -> dict[str, object]:
    """The architecture stored in the checkpoint at ``path`` (name, num_classes, hidden_size)."""
    return dict(_read(Path(path))["config"])


def load_checkpoint(path: str | os.PathLike, expected: dict[str, object] | None = None, device: str = "cpu") -> EdgeModel:
    """The model stored at ``path``, in eval mode on ``device``.

    Args:
        path: checkpoint written by :func:`save_checkpoint`.
        expected: if given, the architecture the caller needs (any of name, num_classes,
            hidden_size); a different stored architecture is an error.
        device: where the model goes.

    Raises:
        EkyaError: naming the file, if it is missing, corrupt, not a checkpoint, holds another
            architecture than ``expected``, or weights that do not fit its architecture.
    """
    path = Path(path)
    payload = _read(path)
    config = payload["config"]
    for key, value in (expected or {}).items():
        if config.get(key) != value:
            raise EkyaError(f"checkpoint {path}: architecture mismatch, {key} is {config.get(key)!r} but {value!r} is expected")
    model = build_model(str(config["name"]), num_classes=int(config["num_classes"]), hidden_size=int(config["hidden_size"]))
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise EkyaError(f"checkpoint {path}: weights do not fit a {config['name']} with hidden_size {config['hidden_size']} ({first_line[:300]})") from error
    return model.to(device).eval()
