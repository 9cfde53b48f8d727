"""Edge models: torchvision factory, layer freezing, hidden-layer head, checkpoints.

The cached base model lives in :mod:`ekya.models.base_model` (imported on its own, since it
depends on :mod:`ekya.training`).
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

__all__ = [
    "MODEL_NAMES",
    "EdgeModel",
    "build_model",
    "checkpoint_config",
    "freeze_all_but_last",
    "images_to_tensor",
    "load_checkpoint",
    "num_layer_groups",
    "save_checkpoint",
    "with_new_head",
]
