"""Any camera works: a pedestrian-only stream, and classes that come and go between windows, are profiled and retrained."""

import numpy as np
import pytest
import torch

from ekya.data.video import VideoSource
from ekya.inference.config import InferenceConfig
from ekya.profiling.micro_profiler import MicroProfiler
from ekya.scheduling import build_scheduler
from ekya.training.config import RetrainConfig
from tests.conftest import outcomes_of
from tests.data.fixtures import two_object_frames, write_sample_list, write_video
from tests.helpers import model_settings


@pytest.mark.slow
def test_single_class_and_missing_class_windows_run(tmp_path, local_run):
    torch.set_num_threads(1)
    root = tmp_path / "data"
    # people: only pedestrians; mixed: cars and people, then a bus appears in its last second only.
    people = two_object_frames(40, ["person"])
    mixed = two_object_frames(30, ["car", "person"]) + two_object_frames(10, ["bus", "car"])
    for name, frames in (("people", people), ("mixed", mixed)):
        write_video(root / f"{name}.mp4", frames)
        write_sample_list(root / f"{name}.csv", frames)
    source = VideoSource(root, window_seconds=1.0, min_box_pixels=8, cache_dir=root / "cache")  # first window of each is hold-out
    assert set(source.window("people", 0).labels) == {0}
    run = local_run(
        source,
        model_settings(hidden_size=16),
        [RetrainConfig("head", 1, 16, 1.0, 3, batch_size=8, learning_rate=0.05),
         RetrainConfig("all", "all", 16, 1.0, 2, batch_size=8, learning_rate=0.01)],
        [InferenceConfig("full", 1.0)],
        MicroProfiler(sample_fraction=0.3, profile_epochs=3),
        cache_dir=tmp_path / "models",
    )
    outcomes = outcomes_of(run, build_scheduler("thief"))
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert all(0.0 <= accuracy <= 1.0 for accuracy in outcome.accuracy)
        assert np.isfinite(outcome.estimated_mean_accuracy)
    assert all(model.num_classes == 6 for model in run.serving.values())  # the full class set is kept
