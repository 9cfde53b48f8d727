"""Which CUDA devices this process sees, and the checks ``executor.device`` and ``gpus`` get.

A device name is checked without torch; torch is imported only to count CUDA devices, for a
``cuda`` device.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from ekya.errors import EkyaError

#: The device names a run accepts (torch's spelling): cpu, cuda, cuda:N.
_DEVICE_NAME = re.compile(r"(?P<type>cpu|cuda)(?::(?P<index>0|[1-9][0-9]*))?")


class Device(NamedTuple):
    """A checked ``executor.device``: its type (``cpu`` or ``cuda``) and index (None: unspecified), as torch reads them."""

    type: str
    index: int | None


def visible_gpus() -> int:
    """CUDA devices visible to this process (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _visible_note() -> str:
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"CUDA_VISIBLE_DEVICES={value}" if value is not None else "CUDA_VISIBLE_DEVICES unset"


def check_device(device: str) -> Device:
    """``device`` parsed, or one line naming it and what is valid here."""
    match = _DEVICE_NAME.fullmatch(str(device))
    if match is None:
        raise EkyaError(f"executor.device={device!r}; valid: cpu, cuda, cuda:N")
    parsed = Device(match["type"], int(match["index"]) if match["index"] is not None else None)
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
