"""The simulated executor: a trace replayed window by window, models carried over, seeded estimate noise."""

import pytest

from ekya.errors import EkyaError
from ekya.scheduling import build_scheduler
from tests.conftest import outcomes_of


def test_retrained_models_carry_over_to_the_next_window(paper_example_trace, simulated_run):
    run = simulated_run(paper_example_trace)
    outcomes_of(run, build_scheduler("optimal"))
    assert run.serving == {"A": (1, "Cfg2"), "B": (1, "Cfg2")}


def test_estimate_noise_is_seeded_and_changes_only_estimates(paper_example_trace, simulated_run):
    def estimates(seed, noise):
        run = simulated_run(paper_example_trace, noise_std=noise, seed=seed)
        return [run.profile(0, s).believed.retrain_accuracy.tolist() for s in run.stream_names]

    assert estimates(1, 5.0) == estimates(1, 5.0)
    assert estimates(1, 5.0) != estimates(2, 5.0)
    assert estimates(1, 0.0) == [[0.75, 0.70], [0.90, 0.85]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gpus": 0}, "gpus must be > 0, got 0"),
        ({"delta": 0}, r"delta must be in \(0, gpus=3.0\], got 0"),
        ({"delta": 4}, r"delta must be in \(0, gpus=3.0\], got 4"),
        ({"streams": 3}, r"streams=3 but the dataset has 2 streams \(valid: 1..2"),
        ({"windows": 0}, r"windows=0 but the dataset has 2 windows"),
        ({"min_accuracy": 1.5}, r"min_accuracy must be in \[0, 1\]"),
        ({"noise_std": -1}, "profiler.noise_std must be >= 0"),
    ],
)
def test_impossible_settings(kwargs, message, paper_example_trace, simulated_run):
    with pytest.raises(EkyaError, match=message):
        simulated_run(paper_example_trace, **kwargs)
