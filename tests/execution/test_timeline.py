"""Playing a window: true costs decide completions, re-plans see the believed rest of the window."""

import numpy as np
import pytest

from ekya.execution.timeline import KnownOutcomes, outcome_record, play_window
from ekya.scheduling import Problem, build_scheduler
from ekya.scheduling.problem import WindowSettings
from tests.conftest import outcomes_of
from tests.scheduling.helpers import stream


def truth(serving, costs, accuracies):
    names = [f"c{k}" for k in range(len(costs))]
    return KnownOutcomes(serving, dict(zip(names, costs)), dict(zip(names, accuracies)), {"i0": 1.0}, {"i0": 1.0})


def test_true_cost_decides_when_the_model_swaps():
    believed = stream(serving=0.5, costs=[40.0], accuracies=[0.9])
    problem = Problem((believed,), gpus=2.0, delta=0.5, window_seconds=100.0)
    outcome = play_window(problem, build_scheduler("thief"), [truth(0.5, [60.0], [0.8])])
    assert outcome.retrained == ["c0"]
    assert outcome.finish_seconds[0] == pytest.approx(60.0)  # 60 true GPU-seconds at 1 GPU
    assert outcome.accuracy[0] == pytest.approx((0.5 * 60 + 0.8 * 40) / 100)
    assert outcome.estimated_accuracy[0] == pytest.approx((0.5 * 40 + 0.9 * 60) / 100)


def test_replan_sees_the_part_way_job_with_its_believed_remaining_cost():
    seen = []

    class Recorder(type(build_scheduler("thief"))):
        def reallocate(self, problem, previous, finished):
            seen.append(problem)
            return super().reallocate(problem, previous, finished)

    a = stream("a", serving=0.5, costs=[20.0], accuracies=[0.9])
    b = stream("b", serving=0.5, costs=[100.0], accuracies=[0.9])
    problem = Problem((a, b), gpus=3.0, delta=0.5, window_seconds=200.0)
    outcome = play_window(problem, Recorder(), [truth(0.5, [20.0], [0.9]), truth(0.5, [200.0], [0.9])])
    assert outcome.decisions >= 2
    replan = seen[0]
    assert replan.now == pytest.approx(outcome.finish_seconds[0])
    assert replan.streams[0].retrain_names == () and replan.streams[0].serving_accuracy == 0.9
    assert replan.streams[1].running
    # b's job: the true fraction left times its believed total of 100 GPU-seconds.
    done = outcome.finish_seconds[0] * outcome.segments[0].streams[1].train_share
    assert replan.streams[1].retrain_gpu_seconds[0] == pytest.approx(100.0 * (200.0 - done) / 200.0)


def test_gpu_seconds_and_record(paper_example_trace, simulated_run):
    run = simulated_run(paper_example_trace)
    outcomes = outcomes_of(run, build_scheduler("uniform", retrain_config="Cfg1"))
    first = outcomes[0]
    assert first.gpu_seconds_train == pytest.approx(85 + 80)  # every started job's cost at linear scaling
    record = outcome_record(first, run.stream_names)
    assert set(record["streams"]) == {"A", "B"}
    assert record["segments"][0]["streams"]["A"]["inference_share"] == pytest.approx(0.75)
    assert sum(seg["end_seconds"] - seg["start_seconds"] for seg in record["segments"]) == pytest.approx(120)


def test_throughput_scaling_shapes_completion():
    slow = WindowSettings(gpus=1.0, delta=0.5, min_accuracy=0.0, window_seconds=100.0, scaling=lambda r: np.asarray(r) ** 2)
    problem = slow.problem([stream(serving=0.5, costs=[10.0], accuracies=[0.9], demand=(0.5,))])
    uniform = build_scheduler("uniform", retrain_config="c0", inference_share=0.5)
    outcome = play_window(problem, uniform, [KnownOutcomes(0.5, {"c0": 10.0}, {"c0": 0.9}, {"i0": 0.5}, {"i0": 1.0})])
    assert outcome.finish_seconds[0] == pytest.approx(10.0 / 0.5**2)
