"""Edge models: torchvision factory, layer freezing, hidden-layer head, checkpoints, predict.

The golden model that labels crops lives in :mod:`ekya.models.golden` (imported on its own);
the architecture names, which need no torch, in :mod:`ekya.models.names`.
Training models (the cached base model, the golden model) is :mod:`ekya.training`'s.

The names below are loaded on first use (PEP 562), so that importing a light submodule
(``ekya.models.names``) does not import torch. ``predict`` is not among them: it is the
submodule :mod:`ekya.models.predict` (the function is ``ekya.models.predict.predict``).
"""

from __future__ import annotations

from ekya.lazy import lazy_exports

#: Name -> the submodule that defines it.
_EXPORTS = {
    "MODEL_NAMES": "names",
    "EdgeModel": "factory",
    "build_model": "factory",
    "freeze_all_but_last": "factory",
    "images_to_tensor": "factory",
    "num_layer_groups": "factory",
    "with_new_head": "factory",
    "checkpoint_config": "checkpoints",
    "load_checkpoint": "checkpoints",
    "save_checkpoint": "checkpoints",
    "evaluate": "predict",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
