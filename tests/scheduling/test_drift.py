"""RetrainOnDrift: only streams that drifted may retrain, under any scheduler."""

from dataclasses import replace

import pytest

from ekya.scheduling import Problem, build_scheduler
from ekya.scheduling.drift import RetrainOnDrift, gate_retraining
from tests.scheduling.helpers import stream


def two_streams(drift_a, drift_b):
    a = replace(stream("a", 0.5, (10.0,), (0.9,), demand=(0.2,)), drift_points=drift_a)
    b = replace(stream("b", 0.5, (10.0,), (0.9,), demand=(0.2,)), drift_points=drift_b)
    return Problem((a, b), gpus=1.0, delta=0.1, window_seconds=100.0)


@pytest.mark.parametrize("name", ["thief", "fair", "optimal"])
def test_a_stream_that_has_not_drifted_is_not_retrained(name):
    problem = two_streams(drift_a=0.5, drift_b=12.0)
    decision = RetrainOnDrift(build_scheduler(name), threshold=3.0).schedule(problem)
    assert decision.streams[0].retrain_config is None and decision.streams[0].train_share == 0
    assert decision.streams[1].retrain_config == "c0" and decision.streams[1].train_share > 0
    if name != "optimal":  # (the optimum retrains one after the other, over its re-plans)
        plain = build_scheduler(name).schedule(problem)  # without the option both retrain at once
        assert all(d.retrain_config == "c0" for d in plain.streams)


def test_unknown_drift_counts_as_drift_and_running_jobs_keep_going():
    problem = two_streams(drift_a=None, drift_b=0.0)
    problem = replace(problem, streams=(problem.streams[0], replace(problem.streams[1], running=True)))
    gated = gate_retraining(problem, threshold=3.0)
    assert gated.streams[0].retrain_names == ("c0",) and gated.streams[1].retrain_names == ("c0",)
    assert gate_retraining(two_streams(2.9, 3.0), 3.0).streams[0].retrain_names == ()
    assert gate_retraining(two_streams(2.9, 3.0), 3.0).streams[1].retrain_names == ("c0",)


@pytest.mark.parametrize("threshold", [-0.1, 100.5])
def test_a_threshold_outside_0_100_points_is_refused(threshold):
    with pytest.raises(ValueError, match=r"drift.threshold must be in \[0, 100\] accuracy points"):
        RetrainOnDrift(build_scheduler("thief"), threshold)
