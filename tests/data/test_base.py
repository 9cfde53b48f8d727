"""The stream load every dataset yields: camera rate and objects per frame, read from the data or declared."""

from __future__ import annotations

import numpy as np
import pytest

from ekya.data.base import StreamLoad, Window
from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError


def window(frames: list[int], seconds: float = 10.0) -> Window:
    count = len(frames)
    return Window("cam0", 0, 0.0, seconds, np.zeros((count, 3, 4, 4), np.uint8), np.zeros(count, np.int64),
                  np.array(frames, np.int64), np.array(frames, np.float64))


def test_objects_per_frame_are_read_from_the_windows_at_the_declared_camera_rate():
    source = SyntheticSource(num_streams=1, num_windows=2, crops_per_window=40, frames_per_window=8, camera_fps=25.0)
    load = source.load([source.window("cam0", 0), source.window("cam0", 1)])
    assert load == StreamLoad(25.0, 40 / 8)
    assert load.crops_per_second == pytest.approx(125.0)


def test_without_a_camera_rate_the_frames_held_set_it():
    source = SyntheticSource(num_streams=1, num_windows=1, window_seconds=10.0, camera_fps=None)
    load = source.load([window([0, 0, 1, 2, 2, 2])])
    assert load == StreamLoad(3 / 10.0, 2.0)


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), "fast", True])
def test_a_camera_rate_must_be_positive(fps):
    with pytest.raises(EkyaError, match=r"camera_fps=.*: a camera frame rate must be a number > 0 Hz"):
        SyntheticSource(camera_fps=fps)


def test_a_negative_objects_per_frame_is_refused():
    with pytest.raises(EkyaError, match="objects per frame must be >= 0"):
        StreamLoad(10.0, -1.0)


def test_a_labeling_budget_keeps_the_crops_of_frames_evenly_spread_in_time():
    labeled = window([5, 5, 1, 1, 1, 3, 0, 4, 2, 2])  # frame ids are their timestamps here
    assert labeled.sample_frames(None) is labeled
    kept = labeled.sample_frames(3)
    assert sorted(set(kept.frame_ids.tolist())) == [0, 2, 4] and len(kept) == 4
    assert len(labeled.sample_frames(6)) == 10
    with pytest.raises(EkyaError, match=r"^labeler.label_frames=7: window cam0/0 has 6 frames; valid: a whole number in 1..6"):
        labeled.sample_frames(7)
