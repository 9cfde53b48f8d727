"""Digests that cache keys are built from."""

import numpy as np

from ekya.data.base import Window
from ekya.data.cache import windows_digest


def _window(seed: int, n: int = 12) -> Window:
    rng = np.random.default_rng(seed)
    return Window(
        stream="holdout0", index=seed, start_seconds=0.0, end_seconds=1.0,
        images=rng.integers(0, 256, size=(n, 3, 16, 16), dtype=np.uint8),
        labels=rng.integers(0, 6, size=n).astype(np.int64),
        frame_ids=np.arange(n, dtype=np.int64), timestamps=np.zeros(n),
    )


def test_digest_changes_with_any_crop_or_label():
    window = _window(0)
    changed_label = Window(**{**window.__dict__, "labels": (window.labels + 1) % 6})
    pixels = window.images.copy()
    pixels[0, 0, 0, 0] ^= 1
    changed_pixel = Window(**{**window.__dict__, "images": pixels})
    digests = {windows_digest([window]), windows_digest([changed_label]), windows_digest([changed_pixel])}
    assert len(digests) == 3
    assert windows_digest([window]) == windows_digest([_window(0)])
