"""Live inference of an edge model under an inference configuration: accuracy and GPU demand.

The names below are loaded on first use (PEP 562), so that importing ``ekya.inference.config``
or ``ekya.inference.labelers`` does not import torch.
"""

from __future__ import annotations

from ekya.lazy import lazy_exports

#: Name -> the submodule that defines it.
_EXPORTS = {
    "InferenceConfig": "config",
    "load_inference_space": "config",
    "InferenceResult": "run",
    "measure_inference_space": "run",
    "run_inference": "run",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
