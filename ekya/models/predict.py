"""Run a model on crops: predicted classes and accuracy on a window.

Both the live inference of a stream (:mod:`ekya.inference.run`) and training (validation,
accuracy of a retrained model in :mod:`ekya.training` and above) use these, so they sit below
both. Crops are uint8 RGB arrays (N, 3, H, W); a model may see them at a lower ``resolution``
(side of the square image, pixels; see :func:`ekya.models.factory.images_to_tensor`).
Accuracy is a fraction in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from ekya.data.base import Window
from ekya.models.factory import EdgeModel, images_to_tensor

#: Crops per forward pass when evaluating (memory bound only, results do not depend on it).
EVAL_BATCH_SIZE = 256


def predict(model: EdgeModel, images: np.ndarray, resolution: int | None = None, device: str = "cpu") -> np.ndarray:
    """Predicted class (N,) int64 of uint8 crops (N, 3, H, W), optionally seen at ``resolution`` pixels."""
    model = model.to(device).eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(images), EVAL_BATCH_SIZE):
            batch = images_to_tensor(images[start : start + EVAL_BATCH_SIZE], resolution=resolution, device=device)
            predictions.append(model(batch).argmax(dim=1).cpu().numpy())
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def evaluate(model: EdgeModel, window: Window, resolution: int | None = None, device: str = "cpu") -> float:
    """Fraction of ``window``'s crops that ``model`` classifies correctly (every crop processed); 0 if empty."""
    if len(window) == 0:
        return 0.0
    return float(np.mean(predict(model, window.images, resolution=resolution, device=device) == window.labels))
