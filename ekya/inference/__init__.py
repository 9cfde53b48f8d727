"""Live inference of an edge model under an inference configuration: accuracy and GPU demand.

The names below are loaded on first use (PEP 562), so that importing ``ekya.inference.config``
or ``ekya.inference.labelers`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Name -> the submodule that defines it.
_EXPORTS = {
    "InferenceConfig": "config",
    "load_inference_space": "config",
    "InferenceResult": "run",
    "measure_inference_space": "run",
    "run_inference": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
