import numpy as np
import pytest
import torch

from ekya.errors import EkyaError
from ekya.inference.config import InferenceConfig
from ekya.inference.run import measure_inference_space, processed_frame_mask, run_inference
from ekya.models.factory import build_model

from .conftest import coded_window


@pytest.mark.parametrize("frames, rate, expected", [
    (10, 1.0, [1] * 10),
    (10, 0.5, [1, 0] * 5),
    (10, 0.25, [1, 0, 0, 0, 1, 0, 0, 0, 1, 0]),
    (10, 0.3, [1, 0, 0, 0, 1, 0, 0, 1, 0, 0]),
    (3, 0.01, [1, 0, 0]),
])
def test_processed_frames_are_evenly_spread_and_start_with_the_first(frames, rate, expected):
    mask = processed_frame_mask(frames, rate)
    assert mask.astype(int).tolist() == expected
    assert mask.sum() == int(np.ceil(frames * rate - 1e-9))


def test_all_frames_processed_gives_model_accuracy(oracle):
    window = coded_window([[0, 1], [2], [3, 3]], predicted_per_frame=[[0, 1], [2], [3, 4]])
    result = run_inference(oracle, window, InferenceConfig("full", 1.0))
    assert result.accuracy == pytest.approx(4 / 5)
    assert (result.processed_frames, result.total_frames, result.processed_crops) == (3, 3, 5)


def test_skipped_frames_reuse_the_last_processed_frames_most_frequent_class(oracle):
    # rate 0.5 processes frames 0 and 2; frame 1 reuses frame 0's mode (class 1), frame 3 frame 2's (class 4)
    window = coded_window([[1, 1, 2], [1, 2], [4], [4, 5]])
    result = run_inference(oracle, window, InferenceConfig("half", 0.5))
    assert (result.processed_frames, result.processed_crops) == (2, 4)
    assert result.accuracy == pytest.approx((3 + 1 + 1 + 1) / 8)


def test_frames_are_ordered_by_time_not_by_id(oracle):
    # frame id 7 comes first in time, so it is processed and frame id 3 reuses its class
    window = coded_window([[2, 2], [5]], frame_ids=[3, 7], timestamps=[1.0, 0.0])
    result = run_inference(oracle, window, InferenceConfig("half", 0.5))
    assert result.processed_crops == 1
    assert result.accuracy == pytest.approx(1 / 3)


def test_lower_sampling_rate_processes_fewer_frames_and_needs_less_gpu():
    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x0_5", hidden_size=8)
    window = coded_window([[f % 6, (f + 1) % 6] for f in range(40)])
    configs = [InferenceConfig("c1", 1.0, 8), InferenceConfig("c2", 0.5, 4), InferenceConfig("c3", 0.25, 4)]
    results = measure_inference_space(model, window, configs)
    assert [r.config for r in results] == configs
    assert [r.processed_frames for r in results] == [40, 20, 10]
    assert [r.processed_crops for r in results] == [80, 40, 20]
    assert all(r.seconds_per_frame > 0 and r.seconds_per_crop > 0 and 0 <= r.accuracy <= 1 for r in results)


def test_empty_window_is_an_error(oracle):
    window = coded_window([[1]])
    empty = type(window)(stream="s", index=2, start_seconds=0, end_seconds=1, images=window.images[:0],
                         labels=window.labels[:0], frame_ids=window.frame_ids[:0], timestamps=window.timestamps[:0])
    with pytest.raises(EkyaError, match="s/2 has no crops"):
        run_inference(oracle, empty, InferenceConfig("x", 1.0))
