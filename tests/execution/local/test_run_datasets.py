"""One short real continuous-learning run per dataset format, on fixtures in the real on-disk layout."""

import numpy as np
import pytest
import torch

from ekya.data.cityscapes import CityscapesSource
from ekya.data.video import VideoSource
from ekya.data.waymo import WaymoSource
from ekya.inference.config import InferenceConfig
from ekya.profiling.micro_profiler import MicroProfiler
from ekya.scheduling import build_scheduler
from ekya.training.config import RetrainConfig
from tests.conftest import outcomes_of
from tests.helpers import model_settings
from tests.data.fixtures import WAYMO_LABELS, two_object_frames, write_cityscapes, write_sample_list, write_video, write_waymo_segment


def cityscapes(root):
    write_cityscapes(root, {city: two_object_frames(24) for city in ("aachen", "bochum", "hold")})
    return CityscapesSource(root, frames_per_window=8, seconds_per_frame=1.0, min_box_pixels=8, holdout_streams=["hold"], cache_dir=root / "cache")


def waymo(root):
    for index, segment in enumerate(("seg_a", "seg_b", "seg_c")):
        write_waymo_segment(root, segment, {"FRONT": two_object_frames(30, WAYMO_LABELS)}, start_micros=(1_600_000_000 + index * 100) * 1_000_000)
    return WaymoSource(root, window_seconds=1.0, min_box_pixels=8, holdout_streams=["seg_c/FRONT"], cache_dir=root / "cache")


def video(root):
    for clip in ("cam1", "cam2", "hold"):
        frames = two_object_frames(30)
        write_video(root / f"{clip}.mp4", frames)
        write_sample_list(root / f"{clip}.csv", frames)
    return VideoSource(root, window_seconds=1.0, min_box_pixels=8, holdout_streams=["hold"], cache_dir=root / "cache")


@pytest.mark.parametrize("make_source", [cityscapes, waymo, video], ids=["cityscapes", "waymo", "video"])
def test_short_local_run(tmp_path, make_source, local_run):
    torch.set_num_threads(1)
    source = make_source(tmp_path / "data")
    run = local_run(
        source,
        model_settings(hidden_size=16),
        [RetrainConfig("head", 1, 16, 1.0, 3, batch_size=8, learning_rate=0.05)],
        [InferenceConfig("full", 1.0), InferenceConfig("half", 0.5)],
        MicroProfiler(sample_fraction=0.5, profile_epochs=3),
        windows=2,
        cache_dir=tmp_path / "models",
    )
    outcomes = outcomes_of(run, build_scheduler("thief"))
    assert len(outcomes) == 2 and len(run.stream_names) == 2
    for outcome in outcomes:
        assert all(0.0 <= accuracy <= 1.0 for accuracy in outcome.accuracy)
        assert np.isfinite(outcome.estimated_mean_accuracy)
