"""The one window loop: every step through the caller's map, the observer told of each window, models committed."""

from ekya.execution.loop import WindowResult, run_windows, serial_map, total_overheads
from ekya.execution.timeline import StreamProfile
from ekya.scheduling import build_scheduler
from tests.scheduling.helpers import stream


def test_every_step_runs_through_map_steps_in_window_order(paper_example_trace, simulated_run):
    run = simulated_run(paper_example_trace)
    steps = []

    def recording_map(step, arguments, gpu_shares=None):
        steps.append((step.__name__, len(arguments)))
        if step.__name__ == "retrain":
            assert gpu_shares == [0.75, 0.75]  # Uniform on 3 GPUs: half of each stream's 1.5 to training
        return serial_map(step, arguments)

    results = run_windows(run, build_scheduler("uniform", retrain_config="Cfg1"), map_steps=recording_map)
    assert [r.window for r in results] == [0, 1]
    per_window = [("profile", 2), ("timed_schedule", 1), ("retrain", 2), ("play", 1)]
    assert steps == [("prepare", 1), *per_window, *per_window]


def test_the_observer_hears_of_each_window_as_it_ends(paper_example_trace, simulated_run):
    seen: list[WindowResult] = []

    class Observer:
        def window_done(self, result):
            seen.append(result)

    run = simulated_run(paper_example_trace)
    results = run_windows(run, build_scheduler("optimal"), Observer())
    assert seen == results
    assert results[0].record["window"] == 0 and set(results[0].record["streams"]) == {"A", "B"}
    assert run.serving == {"A": (1, "Cfg2"), "B": (1, "Cfg2")}  # committed: window 1's models serve next


def test_overheads_are_summed_by_kind():
    profiles = [StreamProfile(stream(), None, {"labeling": 1.0, "profile": 2.0}), StreamProfile(stream(), None, {"profile": 0.5})]
    assert total_overheads(profiles) == {"labeling": 1.0, "profile": 2.5}
