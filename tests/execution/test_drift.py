"""The drift detector of the window loop, and drift-triggered retraining on the simulated executor."""

import pytest

from ekya.execution.loop import run_windows
from ekya.profiling.trace import load_trace, write_trace
from ekya.scheduling import build_scheduler
from ekya.scheduling.drift import RetrainOnDrift


@pytest.fixture
def steady_and_drifting(tmp_path):
    """Camera ``steady``'s retrained model keeps its accuracy but a point (a new one is a point better: worth retraining
    without the detector); camera ``drifting``'s loses 20 points a window."""
    rows = []
    for stream in ("steady", "drifting"):
        rows += [{"stream": stream, "window": -1, "config": "base", "gpu_seconds": 0.0, "accuracy": 0.5, "eval_window": k} for k in range(4)]
        for window in (1, 2, 3):
            rows += [{"stream": stream, "window": window, "config": "x", "gpu_seconds": 10.0, "eval_window": k,
                      "accuracy": (0.86 if k == window else 0.85) if stream == "steady" else 0.85 - 0.2 * (k - window)} for k in range(window, 4)]
    root = write_trace(tmp_path / "trace", 100.0, ["steady", "drifting"], rows,
                       [{"stream": "*", "config": "full", "demand_gpu": 0.2, "accuracy_factor": 1.0}], gpus=1.0, delta=0.1)
    return load_trace(root)


def test_a_stream_with_no_drift_is_not_retrained_when_the_detector_is_on(steady_and_drifting, simulated_run):
    results = run_windows(simulated_run(steady_and_drifting), RetrainOnDrift(build_scheduler("thief"), threshold=3.0))
    retrained = [r.outcome.retrained for r in results]
    assert retrained[1] == ["x", "x"]  # drift unknown (or the base model's fall) at first: both retrain
    assert retrained[2] == [None, "x"] and retrained[3] == [None, "x"]
    streams = results[2].record["streams"]
    assert streams["steady"]["drift_points"] == pytest.approx(1.0)
    assert streams["drifting"]["drift_points"] == pytest.approx(20.0)
    assert results[0].record["streams"]["steady"]["drift_points"] is None
    plain = run_windows(simulated_run(steady_and_drifting), build_scheduler("thief"))
    assert [r.outcome.retrained for r in plain][2] == ["x", "x"]  # without the detector both retrain every window
    assert results[2].outcome.gpu_seconds_train < plain[2].outcome.gpu_seconds_train  # the steady stream's retraining is saved
