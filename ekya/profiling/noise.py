"""Noise on profiled accuracy estimates, for the robustness-to-estimation-error sweep."""

from __future__ import annotations

import numpy as np

from ekya.errors import EkyaError


def add_estimate_noise(accuracies: np.ndarray | list[float], std_points: float, rng: np.random.Generator) -> np.ndarray:
    """Accuracies (fractions in [0, 1]) plus Gaussian noise of ``std_points`` accuracy points.

    Args:
        accuracies: estimated accuracies, fractions in [0, 1], any shape.
        std_points: standard deviation of the noise in accuracy points (0-100 scale, e.g.
            5 means 0.05); the paper's sweep uses 0-20. 0 returns an unchanged copy.
        rng: the random generator (seed it for reproducible sweeps).

    Returns:
        A new float64 array of the same shape, clipped to [0, 1].
    """
    values = np.asarray(accuracies, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
        raise EkyaError(f"accuracies must be fractions in [0, 1], got {values.tolist()}")
    if not (np.isfinite(std_points) and 0 <= std_points <= 100):
        raise EkyaError(f"noise std must be in [0, 100] accuracy points, got {std_points!r}")
    if std_points == 0:
        return values.copy()
    return np.clip(values + rng.normal(0.0, std_points / 100.0, size=values.shape), 0.0, 1.0)
