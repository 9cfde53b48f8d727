"""Hand-computed cases of the window accuracy model (docs/window_model.md)."""

import numpy as np
import pytest

from ekya.scheduling import Problem
from ekya.scheduling.accuracy_model import AMIN_PENALTY, StreamAccuracyModel
from tests.scheduling.helpers import stream


def model(s, gpus=3.0, window=120.0, now=0.0, training_start=0.0, min_accuracy=0.0, scaling=None):
    kwargs = {} if scaling is None else {"scaling": scaling}
    problem = Problem((s,), gpus=gpus, delta=0.1, window_seconds=window, now=now, training_start=training_start, min_accuracy=min_accuracy, **kwargs)
    return StreamAccuracyModel(s, problem)


def test_under_allocated_inference_loses_the_frames_it_cannot_process():
    m = model(stream(serving=0.65))
    choice = m.choose(np.array([0.75, 1.0, 1.5]), np.array([0.0, 0.0, 0.0]))
    assert choice.accuracy == pytest.approx([0.65 * 0.75, 0.65, 0.65])
    assert list(choice.retrain_index) == [-1, -1, -1]


def test_training_swaps_the_model_at_completion_and_frees_its_share_to_inference():
    # Cfg1A of the paper: 85 GPU-seconds at 0.75 GPU -> done at 113.33 s, then 75% at full inference.
    m = model(stream(serving=0.65, costs=[85.0], accuracies=[0.75]))
    choice = m.choose(np.array([0.75]), np.array([0.75]))
    done = 85 / 0.75
    expected = (0.65 * 0.75 * done + 0.75 * 1.0 * (120 - done)) / 120
    assert choice.accuracy[0] == pytest.approx(expected)
    assert choice.retrain_index[0] == 0


def test_job_that_cannot_finish_is_not_worth_starting():
    m = model(stream(serving=0.6, costs=[200.0], accuracies=[0.9]))
    choice = m.choose(np.array([1.0]), np.array([1.0]))
    assert choice.retrain_index[0] == -1
    assert choice.accuracy[0] == pytest.approx(0.6)


def test_overheads_delay_training_but_not_inference():
    s = stream(serving=0.5, costs=[30.0], accuracies=[0.8])
    choice = model(s, training_start=30.0).choose(np.array([1.0]), np.array([1.0]))
    assert choice.accuracy[0] == pytest.approx((0.5 * 60 + 0.8 * 60) / 120)


def test_replanning_values_only_the_rest_of_the_window():
    s = stream(serving=0.5, costs=[30.0], accuracies=[0.8])
    choice = model(s, now=60.0).choose(np.array([1.0]), np.array([1.0]))
    assert choice.accuracy[0] == pytest.approx((0.5 * 30 + 0.8 * 30) / 60)


def test_best_inference_configuration_for_the_share():
    s = stream(serving=1.0, demand=(0.2, 0.5, 1.0), factor=(0.7, 0.9, 1.0))
    quality, index = model(s).inference_quality(np.array([0.1, 0.2, 0.5, 0.9, 1.0]))
    # 0.1: best is 0.7*0.5=0.35 (cheap config); 0.9: 0.9 vs 1.0*0.9 -> tie, cheaper wins.
    assert quality == pytest.approx([0.35, 0.7, 0.9, 0.9, 1.0])
    assert list(index) == [0, 0, 1, 1, 2]


def test_sublinear_scaling_slows_training():
    s = stream(serving=0.5, costs=[40.0], accuracies=[0.9])
    half_speed = model(s, scaling=lambda r: 0.5 * np.asarray(r, dtype=float))
    assert half_speed.completion_times(np.array([1.0]))[0, 0] == pytest.approx(80.0)
    assert model(s).completion_times(np.array([1.0, 0.0]))[:, 0] == pytest.approx([40.0, np.inf])


def test_min_accuracy_shortfall_is_penalised_only_when_attainable():
    s = stream(serving=0.5)
    m = model(s, min_accuracy=0.4)
    value = m.choose(np.array([0.6]), np.array([0.0])).value[0]
    assert value == pytest.approx(0.3 - AMIN_PENALTY * 0.1)
    unreachable = model(stream(serving=0.3), min_accuracy=0.4)
    assert unreachable.choose(np.array([0.5]), np.array([0.0])).value[0] == pytest.approx(0.15)


def test_estimate_matches_choose_for_the_chosen_configuration():
    m = model(stream(serving=0.65, costs=[85.0, 65.0], accuracies=[0.75, 0.70]))
    choice = m.choose(np.array([1.0]), np.array([1.0]))
    accuracy, _ = m.estimate(1.0, 1.0, int(choice.retrain_index[0]))
    assert accuracy == pytest.approx(choice.accuracy[0])
