"""Checkpoints of finished windows: a stopped run resumes after its last one and ends as an uninterrupted run does."""

import copy
import dataclasses

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.execution.checkpoints import WindowCheckpoints, random_state, result_from_state, result_state, set_random_state
from ekya.execution.loop import run_windows
from ekya.profiling.trace import load_trace
from ekya.scheduling import build_scheduler
from ekya.scheduling.registry import SCHEDULERS
from tests.helpers import drifting_trace

#: Record keys that are wall-clock times of the scheduler (they differ between any two runs).
WALL_CLOCK = ("schedule_seconds", "schedule_seconds_total")


class Stopped(Exception):
    """Stands for the process dying right after a window finished."""


class StopAfter:
    def __init__(self, window):
        self.window = window

    def window_done(self, result):
        if result.window == self.window:
            raise Stopped


def played_windows(run):
    """Record which windows ``run`` profiles (plays), in order."""
    played = []
    profile = run.profile

    def counting(window, stream):
        if stream == run.stream_names[0]:
            played.append(window)
        return profile(window, stream)

    run.profile = counting
    return played


def comparable(result):
    """A window's record without the scheduler's wall-clock times."""
    return {key: value for key, value in result.record.items() if key not in WALL_CLOCK}


@pytest.fixture
def drifting(tmp_path, simulated_run):
    trace = load_trace(drifting_trace(tmp_path / "trace", streams=3, windows=5))
    return lambda: simulated_run(trace, noise_std=3.0, seed=1)


@pytest.mark.parametrize("stop_after", [0, 1, 3])
def test_a_stopped_run_resumes_after_its_last_window_and_ends_as_an_uninterrupted_one(tmp_path, drifting, stop_after):
    uninterrupted = drifting()
    full = run_windows(uninterrupted, build_scheduler("thief"))
    checkpoints = WindowCheckpoints(tmp_path / "resume" / "run")
    with pytest.raises(Stopped):
        run_windows(drifting(), build_scheduler("thief"), StopAfter(stop_after), checkpoints=checkpoints)
    assert checkpoints.finished_windows() == list(range(stop_after + 1))

    resumed_run = drifting()
    played = played_windows(resumed_run)
    told = []

    class Observer:
        def windows_resumed(self, results):
            told.append([r.window for r in results])

        def window_done(self, result):
            told.append(result.window)

    resumed = run_windows(resumed_run, build_scheduler("thief"), Observer(), checkpoints=checkpoints)
    assert played == list(range(stop_after + 1, 5))  # nothing finished is played again
    assert told == [list(range(stop_after + 1)), *range(stop_after + 1, 5)]
    assert [r.window for r in resumed] == [0, 1, 2, 3, 4]
    assert [comparable(r) for r in resumed] == [comparable(r) for r in full]
    assert [r.outcome.accuracy for r in resumed] == [r.outcome.accuracy for r in full]
    assert [r.overheads for r in resumed] == [r.overheads for r in full]
    assert resumed_run.serving == uninterrupted.serving
    assert any(config is not None for r in full[stop_after + 1:] for config in r.outcome.retrained)


def test_only_the_newest_checkpoint_is_kept_and_a_run_without_one_starts_at_its_first_window(tmp_path, drifting):
    checkpoints = WindowCheckpoints(tmp_path / "run")
    assert checkpoints.latest() is None and checkpoints.finished_windows() == []
    run = drifting()
    assert checkpoints.restore(run) == []
    run_windows(run, build_scheduler("fair"), checkpoints=checkpoints)
    assert [path.name for path in (tmp_path / "run").iterdir()] == ["window-4"]
    checkpoints.clear()
    assert not (tmp_path / "run").exists()


def test_a_save_that_dies_half_way_leaves_the_previous_checkpoint_whole(tmp_path, drifting):
    checkpoints = WindowCheckpoints(tmp_path / "run")
    with pytest.raises(Stopped):
        run_windows(drifting(), build_scheduler("thief"), StopAfter(1), checkpoints=checkpoints)
    (tmp_path / "run" / ".window-2.abc.tmp").mkdir()  # what a save killed with SIGKILL leaves behind
    (tmp_path / "run" / ".window-2.abc.tmp" / "state.json").write_text("{half")

    class Failing:
        def __init__(self, run):
            self.run = run

        def __getattr__(self, name):
            return getattr(self.run, name)

        def save_state(self, folder):
            (folder / "serving.json").write_text("{")
            raise OSError("disk full")

    run = drifting()
    results = checkpoints.restore(run)
    assert [r.window for r in results] == [0, 1]
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save(Failing(run), [*results, dataclasses.replace(results[-1], window=2)])
    assert checkpoints.finished_windows() == [0, 1]
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [".window-2.abc.tmp", "window-1"]
    checkpoints.save(run, results)  # the next save clears what was left behind
    assert [path.name for path in (tmp_path / "run").iterdir()] == ["window-1"]


def test_a_checkpoint_of_another_run_is_refused(tmp_path, drifting, simulated_run, paper_example_trace):
    checkpoints = WindowCheckpoints(tmp_path / "run")
    with pytest.raises(Stopped):
        run_windows(drifting(), build_scheduler("thief"), StopAfter(1), checkpoints=checkpoints)
    with pytest.raises(EkyaError, match="streams cam0, cam1, cam2, but this run has A, B"):
        checkpoints.restore(simulated_run(paper_example_trace))
    (checkpoints.latest() / "state.json").write_text("{}")
    with pytest.raises(EkyaError, match=r"not a window checkpoint .*delete"):
        checkpoints.restore(drifting())


def test_results_and_random_state_round_trip(drifting):
    (result, *_) = run_windows(drifting(), build_scheduler("thief"))
    assert result_from_state(result_state(result)) == result
    np.random.seed(5)
    saved = random_state()
    expected = np.random.random(3)
    np.random.random(10)
    set_random_state(saved)
    assert np.array_equal(np.random.random(3), expected)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_no_scheduler_carries_state_from_window_to_window(paper_example_trace, simulated_run, name):
    """Why a checkpoint holds no scheduler: every policy is the same object after a run as before it."""
    scheduler = build_scheduler(name, **({"retrain_config": "Cfg1"} if name in ("uniform", "fixed_config") else {}))
    before = copy.deepcopy(vars(scheduler))
    run_windows(simulated_run(paper_example_trace), scheduler)
    assert vars(scheduler) == before
