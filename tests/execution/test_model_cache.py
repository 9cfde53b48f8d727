"""The model cache: eviction, candidates, scope, resuming; and the simulated executor switching to a cached model."""

import pytest

from ekya.errors import EkyaError
from ekya.execution.model_cache import CacheSettings, ModelCache, class_mix
from ekya.profiling.trace import load_trace, write_trace
from ekya.scheduling import build_scheduler
from tests.conftest import outcomes_of


def cache(**settings):
    return ModelCache(CacheSettings(**settings), ["a", "b"])


@pytest.mark.parametrize("eviction, kept", [("lru", ["cache:a/w1/x", "cache:a/w3/x"]), ("fifo", ["cache:a/w2/x", "cache:a/w3/x"])])
def test_a_full_cache_evicts_the_least_recently_used_or_the_oldest(eviction, kept):
    models = cache(size=2, eviction=eviction)
    models.add("a", 1, "x", "m1")
    models.add("a", 2, "x", "m2")
    models.use("cache:a/w1/x")  # switched to in window 2: LRU keeps it
    models.add("a", 3, "x", "m3")
    assert sorted(e.name for e in models.entries["a"]) == kept
    assert sorted(models.handles) == kept


def test_candidates_are_the_nearest_class_mixes_newest_first_and_never_the_serving_model():
    models = cache(size=5, candidates=2)
    models.add("a", 1, "x", "m1", [1.0, 0.0])
    models.add("a", 2, "x", "m2", [0.0, 1.0])
    models.add("a", 3, "x", "m3", [0.9, 0.1])
    models.add("b", 3, "x", "other", [1.0, 0.0])
    assert [e.name for e in models.candidates("a", [1.0, 0.0])] == ["cache:a/w1/x", "cache:a/w3/x"]
    assert [e.name for e in models.candidates("a", [1.0, 0.0], exclude="cache:a/w1/x")] == ["cache:a/w3/x", "cache:a/w2/x"]
    assert [e.name for e in models.candidates("a")] == ["cache:a/w3/x", "cache:a/w2/x"]  # no summary: newest first
    shared = ModelCache(CacheSettings(size=5, candidates=2, scope="all"), ["a", "b"])
    shared.add("a", 1, "x", "m1", [0.0, 1.0])
    shared.add("b", 1, "x", "other", [1.0, 0.0])
    assert [e.name for e in shared.candidates("a", [1.0, 0.0])] == ["cache:b/w1/x", "cache:a/w1/x"]


def test_a_model_that_does_not_load_is_skipped_and_counted():
    models = cache(size=3)
    models.add("a", 1, "x", "m1")
    models.add("a", 2, "x", "m2")
    restored = cache(size=3)
    restored.restore(models.state(), {"cache:a/w1/x": None, "cache:a/w2/x": "m2"})
    assert [e.name for e in restored.entries["a"]] == ["cache:a/w2/x"] and restored.skipped == 1


def test_class_mix():
    assert class_mix([2, 1, 1, 0]) == [0.5, 0.25, 0.25, 0.0]
    assert class_mix([0, 0]) == [0.0, 0.0]  # an empty window


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"size": -1}, r"cache.size must be a whole number of models >= 0 \(0: no cache\), got -1"),
        ({"size": 2.5}, "cache.size must be a whole number"),
        ({"candidates": 0}, "cache.candidates must be a whole number >= 1, got 0"),
        ({"eviction": "random"}, "unknown cache.eviction 'random'; valid: lru, fifo"),
        ({"scope": "world"}, "unknown cache.scope 'world'; valid: stream, all"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(EkyaError, match=message):
        CacheSettings(**settings)


@pytest.fixture
def returning_scene(tmp_path):
    """One camera whose scene returns: window 3 looks like window 1, so window 1's model fits it best (0.9)."""
    rows = [{"stream": "a", "window": -1, "config": "base", "gpu_seconds": 0.0, "accuracy": 0.5, "eval_window": k} for k in range(4)]
    for window, accuracy in {1: {1: 0.8, 2: 0.4, 3: 0.9}, 2: {2: 0.8, 3: 0.45}, 3: {3: 0.7}}.items():
        rows += [{"stream": "a", "window": window, "config": "x", "gpu_seconds": 20.0, "accuracy": a, "eval_window": k}
                 for k, a in accuracy.items()]
    root = write_trace(tmp_path / "trace", 100.0, ["a"], rows, [{"stream": "*", "config": "full", "demand_gpu": 0.2, "accuracy_factor": 1.0}],
                       gpus=1.0, delta=0.1)
    return load_trace(root)


def test_a_cached_model_better_than_retraining_serves_from_the_window_start(returning_scene, simulated_run):
    run = simulated_run(returning_scene, cache=CacheSettings(size=4))
    outcomes = outcomes_of(run, build_scheduler("thief"))
    last = outcomes[3]
    assert last.adopted == ["cache:a/w1/x"] and last.retrained == [None]
    assert last.segments[0].start == 0 and last.segments[0].streams[0].accuracy == pytest.approx(0.9)
    assert last.accuracy[0] == pytest.approx(0.9)
    assert run.serving["a"] == (1, "x")  # it keeps serving next window
    without = outcomes_of(simulated_run(returning_scene), build_scheduler("thief"))[3]
    assert without.adopted == [None] and without.accuracy[0] < 0.9


def test_the_simulator_has_no_cross_stream_accuracies(returning_scene, simulated_run):
    with pytest.raises(EkyaError, match="cache.scope=all needs executor=local"):
        simulated_run(returning_scene, cache=CacheSettings(size=4, scope="all"))


def test_the_cache_is_checkpointed_with_the_run(returning_scene, simulated_run, tmp_path):
    from ekya.execution.checkpoints import WindowCheckpoints
    from ekya.execution.loop import run_windows

    first = simulated_run(returning_scene, windows=3, cache=CacheSettings(size=4))
    run_windows(first, build_scheduler("thief"), checkpoints=WindowCheckpoints(tmp_path / "resume"))
    resumed = simulated_run(returning_scene, cache=CacheSettings(size=4))
    results = run_windows(resumed, build_scheduler("thief"), checkpoints=WindowCheckpoints(tmp_path / "resume"))
    assert results[3].outcome.adopted == ["cache:a/w1/x"]
