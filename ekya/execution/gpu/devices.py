"""Which CUDA devices this process sees, and the checks ``executor.device`` and ``gpus`` get."""

from __future__ import annotations

import os

import torch

from ekya.errors import EkyaError


def visible_gpus() -> int:
    """CUDA devices visible to this process (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _visible_note() -> str:
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"CUDA_VISIBLE_DEVICES={value}" if value is not None else "CUDA_VISIBLE_DEVICES unset"


def check_device(device: str) -> torch.device:
    """``device`` as a torch device, or one line naming it and what is valid here."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise EkyaError(f"executor.device={device!r}; valid: cpu, cuda, cuda:N") from None
    if parsed.type not in ("cpu", "cuda"):
        raise EkyaError(f"executor.device={device!r}; valid: cpu, cuda, cuda:N")
    if parsed.type == "cuda":
        count = visible_gpus()
        if count == 0:
            raise EkyaError(f"executor.device={device}: no CUDA device is visible (torch.cuda.is_available() is False, "
                            f"{_visible_note()}); valid here: cpu")
        if parsed.index is not None and parsed.index >= count:
            raise EkyaError(f"executor.device={device}: {count} CUDA device(s) visible ({_visible_note()}); valid: cuda, "
                            + ", ".join(f"cuda:{k}" for k in range(count)))
    return parsed


def box_gpus(requested: float | None, device: str) -> float | None:
    """G of a local run on ``device``: the config's ``gpus`` (None: the visible devices on CUDA, else None).

    Raises:
        EkyaError: more GPUs asked for than are visible.
    """
    parsed = check_device(device)
    if parsed.type != "cuda":
        return requested
    count = 1 if parsed.index is not None else visible_gpus()
    if requested is None:
        return float(count)
    if float(requested) > count + 1e-9:
        raise EkyaError(f"gpus={float(requested):g}: executor.device={device} sees {count} GPU(s) ({_visible_note()}); "
                        f"valid: a number in (0, {count}]")
    return float(requested)
