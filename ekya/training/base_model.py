"""Training the base model every stream starts from: on hold-out cameras, cached as a checkpoint.

The edge model's settings (:class:`~ekya.training.config.ModelSettings`) are in :mod:`ekya.training.config`.

The cache key covers everything that changes the weights (model, head size, epochs, batch
size, learning rate, seed and a digest of the training crops,
:func:`ekya.data.cache.windows_digest`), so a changed dataset or setting trains a new model
and an unchanged one is loaded. Checkpoints go to ``cache_dir`` as
``base-<model>-<key>.pt`` (:func:`ekya.models.checkpoints.save_checkpoint`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ekya.data.base import Window
from ekya.data.cache import cache_key, windows_digest
from ekya.errors import EkyaError
from ekya.models.checkpoints import load_checkpoint, save_checkpoint
from ekya.models.factory import EdgeModel, build_model
from ekya.training.config import ModelSettings, RetrainConfig  # noqa: F401  (ModelSettings: re-exported, it lived here)
from ekya.training.retrain import retrain

logger = logging.getLogger(__name__)


def base_model(
    source_holdout_windows: list[Window],
    model_name: str,
    hidden_size: int,
    epochs: int,
    seed: int,
    cache_dir: str | os.PathLike,
    num_classes: int = 6,
    batch_size: int = 32,
    learning_rate: float = 0.05,
    device: str = "cpu",
    progress: bool = False,
) -> EdgeModel:
    """The base model trained from scratch on the hold-out windows, loaded from ``cache_dir`` if already trained.

    Args:
        source_holdout_windows: labeled windows of cameras not used for continuous learning.
        model_name: edge model architecture (see :data:`ekya.models.names.MODEL_NAMES`).
        hidden_size: neurons of the head's hidden layer.
        epochs: training epochs over all hold-out crops.
        seed: seeds the initial weights and the shuffling.
        cache_dir: folder of cached base-model checkpoints.
        num_classes, batch_size, learning_rate: training settings (part of the cache key).
        device: torch device to train on.
        progress: show a progress bar while training.

    Returns:
        The model in eval mode on ``device``.
    """
    if not source_holdout_windows:
        raise EkyaError("no hold-out windows to train the base model on; the dataset must provide hold-out cameras")
    config = RetrainConfig(
        name="base", train_layers="all", hidden_size=hidden_size, subsample=1.0,
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
    )
    key = cache_key({
        "model": model_name, "num_classes": num_classes, "training": config.to_dict(),
        "seed": seed, "data": windows_digest(source_holdout_windows),
    })
    path = Path(cache_dir) / f"base-{model_name}-{key}.pt"
    expected = {"name": model_name, "num_classes": num_classes, "hidden_size": hidden_size}
    if path.exists():
        try:
            return load_checkpoint(path, expected=expected, device=device)
        except EkyaError as error:
            logger.warning("discarding unusable cached base model: %s", error)
            path.unlink(missing_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        untrained = build_model(model_name, num_classes=num_classes, hidden_size=hidden_size)
    result = retrain(untrained, source_holdout_windows, config, seed=seed, device=device, progress=progress,
                     update_batch_norm=True)
    save_checkpoint(result.model, path)
    return result.model
