"""Value objects of a window: WindowSettings builds each window's Problem."""

import pytest

from ekya.errors import EkyaError
from ekya.scheduling.problem import WindowSettings
from tests.scheduling.helpers import stream


def test_overheads_longer_than_the_window():
    settings = WindowSettings(gpus=1.0, delta=0.1, min_accuracy=0.0, window_seconds=60.0)
    with pytest.raises(EkyaError, match=r"overheads of 75.0 GPU-seconds .* take 75.0 s of the 60.0 s window .*longer window \(dataset.window_seconds\)"):
        settings.problem([stream()], overhead_gpu_seconds=75.0)
    assert settings.problem([stream()], overhead_gpu_seconds=10.0).training_start == 10.0
    assert WindowSettings(gpus=2.0, delta=0.1, min_accuracy=0.0, window_seconds=60.0).problem([stream()], 10.0).training_start == 5.0
