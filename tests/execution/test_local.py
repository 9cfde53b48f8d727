"""The local executor on a tiny built-in dataset: real training placed on the window timeline."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import ekya.execution.local as local
from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError
from ekya.execution.local.run import LocalRun, ModelSettings
from ekya.execution.runs import play_run
from ekya.execution.simulated import WindowSettings
from ekya.inference.config import InferenceConfig
from ekya.profiling.micro_profiler import MicroProfiler
from ekya.scheduling import build_scheduler
from ekya.training.config import RetrainConfig


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Generated windows, the base model and the cost calibration, shared by this module's tests."""
    return tmp_path_factory.mktemp("local-cache")


def tiny_run(cache, seed=0, gpus=1.0):
    source = SyntheticSource(num_streams=2, num_windows=3, crops_per_window=160, frames_per_window=32, holdout_streams=1,
                             holdout_windows=2, seed=seed, cache_dir=cache / "data")
    retrain_configs = [
        RetrainConfig("head", train_layers=1, hidden_size=64, subsample=1.0, epochs=3, learning_rate=0.05),
        RetrainConfig("all", train_layers="all", hidden_size=64, subsample=1.0, epochs=3, learning_rate=0.02),
    ]
    inference_configs = [InferenceConfig("full", 1.0, None), InferenceConfig("half", 0.5, None)]
    return LocalRun(
        source,
        ModelSettings("shufflenet_v2_x0_5", hidden_size=64, base_epochs=4, base_learning_rate=0.05),
        retrain_configs,
        inference_configs,
        MicroProfiler(sample_fraction=0.25, profile_epochs=3, seed=seed),
        WindowSettings(gpus=gpus, delta=0.1, min_accuracy=0.0, window_seconds=source.window_seconds),
        seed=seed,
        cache_dir=str(cache / "models"),
        progress=False,
    )


@pytest.mark.slow
def test_thief_beats_no_retraining_and_runs_are_deterministic(cache):
    thief = play_run(tiny_run(cache), build_scheduler("thief"))
    again = play_run(tiny_run(cache), build_scheduler("thief"))
    frozen = play_run(tiny_run(cache), build_scheduler("no_retrain"))
    thief_accuracy = np.mean([o.mean_accuracy for o in thief])
    frozen_accuracy = np.mean([o.mean_accuracy for o in frozen])
    assert thief_accuracy > frozen_accuracy
    assert any(config is not None for o in thief for config in o.retrained)
    # Same seed, same decisions (configurations chosen, in order) and same measured accuracies.
    assert [o.retrained for o in thief] == [o.retrained for o in again]
    assert [o.accuracy for o in thief] == [o.accuracy for o in again]


def test_windows_learn_from_the_previous_window_and_overheads_are_charged(cache):
    run = tiny_run(cache)
    assert run.window_indices == [1, 2]  # window 0 is the first labeled data
    run.prepare()
    profile = run.profile(1, "cam0")
    assert profile.believed.retrain_names == ("head", "all")
    assert np.all(profile.believed.retrain_gpu_seconds > 0)
    assert np.all((profile.believed.retrain_accuracy >= 0) & (profile.believed.retrain_accuracy <= 1))
    assert profile.overhead_gpu_seconds["profile"] > 0 and profile.overhead_gpu_seconds["labeling"] == 0
    # The outcomes train on demand: the measured cost and accuracy of a configuration.
    assert profile.outcomes.retrain_gpu_seconds["head"] > 0
    assert 0 <= profile.outcomes.retrain_accuracy["head"] <= 1
    problem = run.problem([profile.believed], overhead_gpu_seconds=12.0)
    assert problem.training_start == pytest.approx(12.0)


def test_retrained_model_serves_next_window(cache):
    run = tiny_run(cache)
    run.prepare()
    base = run.serving["cam0"]
    run.profile(1, "cam0")
    run.profile(1, "cam1")
    run.train_chosen(1, "cam0", "head")
    run.commit(1, ["head", None])
    assert run.serving["cam0"] is not base
    assert run.serving["cam1"] is base


def test_bad_settings():
    source = SyntheticSource(num_streams=1, num_windows=1, crops_per_window=40, frames_per_window=8, holdout_streams=1, holdout_windows=1)
    settings = WindowSettings(gpus=1.0, delta=0.1, min_accuracy=0.0, window_seconds=source.window_seconds)
    args = (source, ModelSettings(), [RetrainConfig("a", 1, 64, 1.0, 1)], [InferenceConfig("full", 1.0, None)], MicroProfiler(), settings)
    with pytest.raises(EkyaError, match="needs at least 2"):
        LocalRun(*args)
    with pytest.raises(EkyaError, match="unknown cost mode 'free'; valid: calibrated, measured"):
        LocalRun(*args, cost="free")
    with pytest.raises(EkyaError, match="unknown profiler 'psychic'; valid: micro, oracle"):
        LocalRun(*args, profiler_mode="psychic")
    with pytest.raises(EkyaError, match="retraining space is empty"):
        LocalRun(source, ModelSettings(), [], [InferenceConfig("full", 1.0, None)], MicroProfiler(), settings)


def test_oracle_profiler_hands_the_scheduler_the_measured_outcomes(cache):
    run = tiny_run(cache)
    run.profiler_mode = "oracle"
    run.prepare()
    profile = run.profile(1, "cam0")
    assert profile.overhead_gpu_seconds["profile"] == 0.0
    for k, name in enumerate(profile.believed.retrain_names):
        assert profile.believed.retrain_accuracy[k] == profile.outcomes.retrain_accuracy[name]
        assert profile.believed.retrain_gpu_seconds[k] == profile.outcomes.retrain_gpu_seconds[name]


def test_estimate_noise_is_seeded(cache):
    def estimates(noise):
        run = tiny_run(cache)
        run.estimate_noise_std = noise
        run.prepare()
        return run.profile(1, "cam1").believed.retrain_accuracy

    clean, noisy, again = estimates(0.0), estimates(10.0), estimates(10.0)
    assert np.array_equal(noisy, again) and not np.array_equal(clean, noisy)


def test_calibrated_validation_charges_the_frozen_layers_pass_once(cache):
    run = tiny_run(cache)
    run.prepare()
    head, every_layer = run.retrain_configs["head"], run.retrain_configs["all"]
    head_rates = run.seconds_per_sample[local._family(head)]
    assert head_rates["validation_feature"] > 0 and head_rates["validation"] > 0
    assert run.seconds_per_sample[local._family(every_layer)]["validation_feature"] == 0.0
    result = SimpleNamespace(num_samples=10, samples_processed=30, validation_accuracy=[0.5] * 4)
    _, _, validation_seconds = run._run_seconds(head, result, validation_size=20)
    assert validation_seconds == pytest.approx((head_rates["validation_feature"] + 4 * head_rates["validation"]) * 20)
    assert run._run_seconds(head, SimpleNamespace(num_samples=10, samples_processed=30, validation_accuracy=[]), 20)[2] == 0.0
