"""Retraining one edge model with one retraining configuration, and measuring its cost.

Training the base model (:mod:`ekya.training.base_model`) and the golden model
(:mod:`ekya.training.golden`) lives here too; predicting and evaluating is :mod:`ekya.models.predict`.
The plain settings (retraining configurations, the edge model's settings) are in
:mod:`ekya.training.config`, which imports no torch.

The names below are loaded on first use (PEP 562), so that importing ``ekya.training.config``
does not import torch. ``retrain`` is not among them: it is the submodule
:mod:`ekya.training.retrain` (the function is ``ekya.training.retrain.retrain``).
"""

from __future__ import annotations

from ekya.lazy import lazy_exports

#: Name -> the submodule that defines it.
_EXPORTS = {
    "ModelSettings": "config",
    "RetrainConfig": "config",
    "load_retrain_space": "config",
    "TrainResult": "retrain",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
