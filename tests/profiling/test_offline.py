"""Offline profiling: a tiny dataset profiled into a trace that loads, resumes, is deterministic and replays."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch
import yaml

import ekya.profiling.offline as offline
from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError
from ekya.profiling.trace import load_trace
from ekya.inference.config import InferenceConfig
from ekya.profiling.offline import OfflineProfiler
from ekya.profiling.reference_costs import ReferenceCosts
from ekya.scheduling import build_scheduler
from ekya.training.config import RetrainConfig
from tests.conftest import outcomes_of
from tests.helpers import model_settings

MODEL = model_settings(name="shufflenet_v2_x0_5", hidden_size=16, base_epochs=1)
RETRAIN = [
    RetrainConfig("head", train_layers=1, hidden_size=16, subsample=0.5, epochs=1),
    RetrainConfig("wide", train_layers=1, hidden_size=32, subsample=0.5, epochs=2),
]
INFERENCE = [InferenceConfig("full", 1.0), InferenceConfig("half-low", 0.5, 16)]
RETRAIN_KEYS = ["stream", "window", "config", "eval_window"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    """Base-model checkpoints shared by the module's tests (the base model trains once)."""
    return tmp_path_factory.mktemp("models")


def tiny_source(**overrides) -> SyntheticSource:
    settings = dict(num_streams=2, num_windows=3, crops_per_window=60, frames_per_window=12,
                    holdout_streams=1, holdout_windows=1, resolution=32)
    settings.update(overrides)
    return SyntheticSource(**settings)


def profiler(output, model_cache, **overrides) -> OfflineProfiler:
    arguments = dict(source=tiny_source(), model=MODEL, retrain_configs=RETRAIN, inference_configs=INFERENCE,
                     output=output, cache_dir=model_cache, progress=False)
    arguments.update(overrides)
    return OfflineProfiler(**arguments)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory, model_cache):
    """A trace profiled once for the module: (profiler, trace folder)."""
    run = profiler(tmp_path_factory.mktemp("trace"), model_cache)
    return run, run.run()


def retrain_rows(root) -> pd.DataFrame:
    return pd.read_csv(root / "retrain.csv").sort_values(RETRAIN_KEYS).reset_index(drop=True)


def test_writes_a_trace_that_loads(profiled):
    run, root = profiled
    assert run.cells_trained == run.num_cells == 2 * 2 * 2  # streams x windows 1..2 x configs
    trace = load_trace(root)
    assert trace.streams == ["cam0", "cam1"] and trace.window_seconds == 20.0
    assert yaml.safe_load((root / "trace.yaml").read_text()).keys() == {"window_seconds", "streams"}
    rows = trace.retrain
    base = rows[rows["config"] == "base"]
    assert sorted(zip(base["stream"], base["eval_window"])) == [(s, k) for s in ("cam0", "cam1") for k in range(3)]
    assert (base["window"] == -1).all() and (base["gpu_seconds"] == 0).all()
    retrained = rows[rows["config"] != "base"]
    # retrained in window k: measured on k and every later window; windows 1..2 only (window 0 has no data before it)
    expected = sorted((s, k, c, e) for s in ("cam0", "cam1") for k in (1, 2) for c in ("head", "wide") for e in range(k, 3))
    assert sorted(zip(retrained["stream"], retrained["window"], retrained["config"], retrained["eval_window"])) == expected
    assert (retrained["gpu_seconds"] > 0).all()
    assert trace.num_windows == 3
    for stream in trace.streams:
        table = trace.inference_table(stream)
        assert set(table) == {"full", "half-low"}
        assert table["full"][1] == 1.0  # the full configuration is the reference
        assert 0 <= table["half-low"][1] <= 1
        assert all(demand > 0 for demand, _ in table.values())


def test_demand_is_camera_rate_times_sampling_rate_times_objects_per_frame_times_seconds_per_crop(profiled):
    run, root = profiled
    inference = pd.read_csv(root / "inference.csv")
    table = ReferenceCosts.shipped("cpu")
    objects_per_frame = 60 / 12  # crops / frames of every window of tiny_source
    for row in inference.itertuples():
        config = next(c for c in INFERENCE if c.name == row.config)
        seconds = table.inference_seconds(MODEL.name, config.resolution or 32)
        assert row.demand_gpu == pytest.approx(30.0 * config.sampling_rate * objects_per_frame * seconds)


def test_accuracy_factors_are_measured_on_each_streams_own_windows(profiled):
    from ekya.profiling.costs import pooled_inference_profile

    run, root = profiled
    inference = pd.read_csv(root / "inference.csv")
    configs = {config.name: config for config in INFERENCE}
    for stream in ("cam0", "cam1"):
        windows = [run.source.window(stream, k) for k in range(3)]
        expected = pooled_inference_profile(run.prepare(), windows, configs, offline.FULL_INFERENCE, "cpu")
        rows = inference[inference["stream"] == stream].set_index("config")["accuracy_factor"]
        assert rows.to_dict() == pytest.approx({name: factor for name, (_, factor) in expected.items()})


def test_the_same_settings_give_the_same_trace_costs_on_any_machine(profiled):
    """Cells cost what the shipped reference table says of their work, not what this machine's clock measured."""
    run, root = profiled
    rows = pd.read_csv(root / "retrain.csv")
    table = ReferenceCosts.shipped("cpu")
    for config in RETRAIN:
        rates = table.training_rates(MODEL.name, 32, config.train_layers)
        samples = round(config.subsample * 60)
        expected = rates.frozen * samples + rates.train * samples * config.epochs
        assert rows[rows["config"] == config.name]["gpu_seconds"].tolist() == pytest.approx([expected] * 6)


def test_second_call_resumes_every_cell(profiled, model_cache, monkeypatch):
    run, root = profiled
    before = retrain_rows(root)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(offline, "retrain", no_training)
    again = profiler(root, model_cache)
    again.run()
    assert again.cells_trained == 0
    pd.testing.assert_frame_equal(retrain_rows(root), before)


def test_stopped_run_writes_no_trace_and_resumes_the_rest(profiled, tmp_path, model_cache, monkeypatch):
    calls = {"count": 0}
    real_retrain = offline.retrain

    def stop_after_three(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] > 3:
            raise KeyboardInterrupt
        return real_retrain(*args, **kwargs)

    monkeypatch.setattr(offline, "retrain", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        profiler(tmp_path, model_cache).run()
    assert not (tmp_path / "trace.yaml").exists() and not (tmp_path / "retrain.csv").exists()
    monkeypatch.setattr(offline, "retrain", real_retrain)
    resumed = profiler(tmp_path, model_cache)
    resumed.run()
    assert resumed.cells_trained == resumed.num_cells - 3
    load_trace(tmp_path)
    # same seed, same accuracies as the uninterrupted run (costs are wall-clock measurements)
    _, root = profiled
    pd.testing.assert_frame_equal(retrain_rows(root).drop(columns="gpu_seconds"), retrain_rows(tmp_path).drop(columns="gpu_seconds"))


def test_best_model_checkpoint_is_rebuilt_deterministically(profiled, tmp_path, model_cache):
    _, root = profiled
    shutil.copytree(root / "cells", tmp_path / "cells")
    for stale in [*(tmp_path / "cells").glob("*/w1/best-*.pt"), *(tmp_path / "cells").glob("*/w2/*.json")]:
        stale.unlink()
    rebuilt = profiler(tmp_path, model_cache)
    rebuilt.run()
    assert rebuilt.cells_trained == 2 * 2  # window 2 of both streams, from a re-trained best model of window 1
    pd.testing.assert_frame_equal(retrain_rows(root).drop(columns="gpu_seconds"), retrain_rows(tmp_path).drop(columns="gpu_seconds"))


@pytest.mark.parametrize("start_from", ["base", "best"])
def test_which_model_each_window_starts_from(tmp_path, model_cache, monkeypatch, start_from):
    starts = []
    real_retrain = offline.retrain

    def recording(model, train, config, **kwargs):
        starts.append((train.index + 1, model))
        return real_retrain(model, train, config, **kwargs)

    monkeypatch.setattr(offline, "retrain", recording)
    run = profiler(tmp_path, model_cache, start_from=start_from, streams=1)
    run.run()
    base = run.prepare()
    assert [window for window, _ in starts] == [1, 1, 2, 2]
    assert all(model is base for window, model in starts if window == 1)
    later = {id(model) for window, model in starts if window == 2}
    assert (later == {id(base)}) == (start_from == "base")
    assert len(later) == 1


def test_changed_settings_do_not_reuse_cells(profiled, tmp_path, model_cache):
    _, root = profiled
    shutil.copytree(root / "cells", tmp_path / "cells")
    changed = profiler(tmp_path, model_cache, retrain_configs=RETRAIN[:1], streams=1)
    changed.run()
    assert changed.cells_trained == changed.num_cells == 2
    assert load_trace(tmp_path).streams == ["cam0"]


def test_trace_replays_with_the_thief_scheduler(profiled, simulated_run):
    _, root = profiled
    run = simulated_run(load_trace(root), gpus=1.0)
    outcomes = outcomes_of(run, build_scheduler("thief"))
    assert len(outcomes) == 3
    assert all(0 <= accuracy <= 1 for outcome in outcomes for accuracy in outcome.accuracy)
    assert all(config is None for config in outcomes[0].retrained)  # window 0: nothing to retrain on


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"windows": 1}, "needs at least 2"),
        ({"windows": 4}, "windows=4 but the dataset has 3 windows"),
        ({"streams": 3}, "streams=3 but the dataset has 2 streams"),
        ({"start_from": "previous"}, "start_from must be one of best, base"),
        ({"model": model_settings(name="vgg")}, "unknown model 'vgg'"),
        ({"model": model_settings(name="resnet18", base_epochs=0)}, "epochs must be an int >= 1"),
        ({"retrain_configs": []}, "retraining space is empty"),
        ({"seed": -1}, "seed must be an int >= 0"),
    ],
)
def test_bad_input_fails_before_writing_anything(tmp_path, model_cache, overrides, message):
    with pytest.raises(EkyaError, match=message.replace("(", r"\(")):
        profiler(tmp_path / "trace", model_cache, **overrides)
    assert not (tmp_path / "trace").exists()


def test_output_that_is_a_file_is_refused(tmp_path, model_cache):
    (tmp_path / "trace").write_text("not a folder")
    with pytest.raises(EkyaError, match="is not a folder"):
        profiler(tmp_path / "trace", model_cache)


def test_warm_up_trains_each_kind_of_configuration_once_and_leaves_the_base_model(tmp_path, model_cache, monkeypatch):
    run = profiler(tmp_path / "trace", model_cache)
    base = run.prepare()  # on the CPU: no warm-up
    before = {name: tensor.clone() for name, tensor in base.state_dict().items()}
    kinds = []
    real_retrain = offline.retrain

    def recording_retrain(model, train, config, **kwargs):
        kinds.append((config.train_layers, config.hidden_size, len(train)))
        return real_retrain(model, train, config, **kwargs)

    monkeypatch.setattr(offline, "retrain", recording_retrain)
    run._warm_up()
    assert sorted(kinds) == [(1, 16, 60), (1, 32, 60)]  # one throwaway run per (layers, head size), at most 64 crops
    assert all(torch.equal(before[name], tensor) for name, tensor in base.state_dict().items())
