"""Edge models: torchvision factory, layer freezing, hidden-layer head, checkpoints, predict.

The golden model that labels crops lives in :mod:`ekya.models.golden` (imported on its own).
Training models (the cached base model, the golden model) is :mod:`ekya.training`'s.
"""

from ekya.models.checkpoints import checkpoint_config, load_checkpoint, save_checkpoint
from ekya.models.factory import (
    MODEL_NAMES,
    EdgeModel,
    build_model,
    freeze_all_but_last,
    images_to_tensor,
    num_layer_groups,
    with_new_head,
)
from ekya.models.predict import evaluate, predict

__all__ = [
    "MODEL_NAMES",
    "EdgeModel",
    "build_model",
    "checkpoint_config",
    "evaluate",
    "freeze_all_but_last",
    "images_to_tensor",
    "load_checkpoint",
    "num_layer_groups",
    "predict",
    "save_checkpoint",
    "with_new_head",
]
