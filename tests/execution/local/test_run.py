"""The local executor on a tiny built-in dataset: real training placed on the window timeline."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError
from ekya.profiling.costs import JobCosts, family
from ekya.execution.local.estimation import Estimation
from ekya.inference.config import InferenceConfig
from ekya.profiling.correction import AccuracyCorrection
from ekya.profiling.micro_profiler import MicroProfiler
from ekya.scheduling import build_scheduler
from ekya.training.config import RetrainConfig
from tests.conftest import outcomes_of
from tests.helpers import model_settings


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


@pytest.fixture
def tiny_run(cache, local_run):
    """A factory of runs on 2 cameras x 3 windows of 160 crops; keyword arguments go to ``local_run``."""

    def make(seed=0, **options):
        return _tiny_run(local_run, cache, seed, **options)

    return make


TINY_SPACE = (
    RetrainConfig("head", train_layers=1, hidden_size=64, subsample=1.0, epochs=3, learning_rate=0.05),
    RetrainConfig("all", train_layers="all", hidden_size=64, subsample=1.0, epochs=3, learning_rate=0.02),
)


def _tiny_run(local_run, folder, seed=0, retrain_configs=TINY_SPACE, **options):
    source = SyntheticSource(num_streams=2, num_windows=3, crops_per_window=160, frames_per_window=32, holdout_streams=1,
                             holdout_windows=2, seed=seed, cache_dir=folder / "data")
    retrain_configs = list(retrain_configs)
    inference_configs = [InferenceConfig("full", 1.0, None), InferenceConfig("half", 0.5, None)]
    return local_run(
        source,
        model_settings(base_epochs=4),
        retrain_configs,
        inference_configs,
        MicroProfiler(sample_fraction=0.25, profile_epochs=3, seed=seed),
        seed=seed,
        cache_dir=folder / "models",
        **options,
    )


@pytest.mark.slow
def test_thief_beats_no_retraining_and_runs_are_deterministic(tiny_run):
    thief = outcomes_of(tiny_run(), build_scheduler("thief"))
    again = outcomes_of(tiny_run(), build_scheduler("thief"))
    frozen = outcomes_of(tiny_run(), build_scheduler("no_retrain"))
    thief_accuracy = np.mean([o.mean_accuracy for o in thief])
    frozen_accuracy = np.mean([o.mean_accuracy for o in frozen])
    assert thief_accuracy > frozen_accuracy
    assert any(config is not None for o in thief for config in o.retrained)
    # Same seed, same decisions (configurations chosen, in order) and same measured accuracies.
    assert [o.retrained for o in thief] == [o.retrained for o in again]
    assert [o.accuracy for o in thief] == [o.accuracy for o in again]


def test_windows_learn_from_the_previous_window_and_overheads_are_charged(tiny_run):
    run = tiny_run()
    assert run.window_indices == [1, 2]  # window 0 is the first labeled data
    run.prepare()
    profile = run.profile(1, "cam0")
    assert profile.believed.retrain_names == ("head", "all")
    assert np.all(profile.believed.retrain_gpu_seconds > 0)
    assert np.all((profile.believed.retrain_accuracy >= 0) & (profile.believed.retrain_accuracy <= 1))
    assert profile.overhead_gpu_seconds["profile"] > 0 and profile.overhead_gpu_seconds["labeling"] == 0
    # Starting a job runs it: the measured cost and accuracy of a configuration.
    job = profile.outcomes.retrain("head")
    assert job.gpu_seconds > 0 and 0 <= job.accuracy <= 1
    demand, factor = profile.outcomes.inference("half")
    assert demand > 0 and 0 <= factor <= 1


def test_retrained_model_serves_next_window(tiny_run):
    run = tiny_run()
    run.prepare()
    base = run.serving["cam0"]
    run.profile(1, "cam0")
    run.profile(1, "cam1")
    run.retrain(1, "cam0", "head")
    run.commit(1, ["head", None])
    assert run.serving["cam0"] is not base
    assert run.serving["cam1"] is base


def test_bad_settings(tmp_path, local_run):
    source = SyntheticSource(num_streams=1, num_windows=1, crops_per_window=40, frames_per_window=8, holdout_streams=1, holdout_windows=1)
    args = (source, model_settings(), [RetrainConfig("a", 1, 64, 1.0, 1)], [InferenceConfig("full", 1.0, None)], MicroProfiler())
    with pytest.raises(EkyaError, match="needs at least 2"):
        local_run(*args, cache_dir=tmp_path)
    with pytest.raises(EkyaError, match="executor.cost='free'; valid: reference, calibrated, measured or the path"):
        JobCosts("free", "cpu")
    with pytest.raises(EkyaError, match="unknown profiler 'psychic'; valid: micro, oracle, holdout_oracle"):
        Estimation("psychic", MicroProfiler(), {}, ["cam0"])
    with pytest.raises(EkyaError, match="profiler.noise_std must be >= 0"):
        Estimation("micro", MicroProfiler(), {}, ["cam0"], noise_std=-1.0)
    with pytest.raises(EkyaError, match="retraining space is empty"):
        local_run(source, model_settings(), [], [InferenceConfig("full", 1.0, None)], MicroProfiler(), cache_dir=tmp_path)


def test_oracle_profiler_hands_the_scheduler_the_measured_outcomes(tiny_run):
    run = tiny_run(mode="oracle")
    run.prepare()
    profile = run.profile(1, "cam0")
    assert profile.overhead_gpu_seconds["profile"] == 0.0
    assert profile.believed.serving_accuracy == profile.outcomes.serving_accuracy  # on the window itself
    for k, name in enumerate(profile.believed.inference_names):
        assert profile.believed.inference_factor[k] == profile.outcomes.inference(name)[1]
    for k, name in enumerate(profile.believed.retrain_names):
        job = profile.outcomes.retrain(name)
        assert profile.believed.retrain_accuracy[k] == job.accuracy
        assert profile.believed.retrain_gpu_seconds[k] == job.gpu_seconds


def test_holdout_oracle_hands_the_scheduler_full_retraining_measured_on_window_k_minus_1s_validation_set(tiny_run):
    from ekya.models.predict import evaluate
    from ekya.training.retrain import retrain

    run = tiny_run(mode="holdout_oracle")
    run.prepare()
    profile = run.profile(1, "cam0")
    assert profile.overhead_gpu_seconds["profile"] == 0.0
    labeled = run.labeling.label(run.source.window("cam0", 0), run.source.window("cam0", 1)).training
    validation_indices, _ = run.estimation.profiler.split(labeled.labels, 1, 0)
    validation = labeled.subset(validation_indices)
    pool = labeled.subset(np.setdiff1d(np.arange(len(labeled)), validation_indices))
    serving = run.serving["cam0"]
    assert profile.believed.serving_accuracy == evaluate(serving, validation)  # as micro: on window k-1's validation set
    for k, name in enumerate(profile.believed.retrain_names):
        config = run.retrain_configs[name]
        result = retrain(serving, pool, config, seed=run._seed(1, "cam0", name))
        assert profile.believed.retrain_accuracy[k] == evaluate(result.model, validation)
        assert profile.believed.retrain_gpu_seconds[k] == pytest.approx(run.costs.training_seconds(config, result))
    with pytest.raises(EkyaError, match="profiler=holdout_oracle's estimates are exact"):
        Estimation("holdout_oracle", MicroProfiler(), {}, ["cam0"], correction=AccuracyCorrection(1.0))


def test_estimate_noise_is_seeded(tiny_run):
    def estimates(noise):
        run = tiny_run(noise_std=noise)
        run.prepare()
        return run.profile(1, "cam1").believed.retrain_accuracy

    clean, noisy, again = estimates(0.0), estimates(10.0), estimates(10.0)
    assert np.array_equal(noisy, again) and not np.array_equal(clean, noisy)


def test_calibrated_validation_charges_the_frozen_layers_pass_once(tiny_run):
    run = tiny_run()
    run.prepare()
    head, every_layer = run.retrain_configs["head"], run.retrain_configs["all"]
    head_rates = run.costs.seconds_per_sample[family(head)]
    assert head_rates["validation_feature"] > 0 and head_rates["validation"] > 0
    assert run.costs.seconds_per_sample[family(every_layer)]["validation_feature"] == 0.0
    result = SimpleNamespace(num_samples=10, samples_processed=30, validation_accuracy=[0.5] * 4)
    _, _, validation_seconds = run.costs.run_seconds(head, result, validation_size=20)
    assert validation_seconds == pytest.approx((head_rates["validation_feature"] + 4 * head_rates["validation"]) * 20)
    assert run.costs.run_seconds(head, SimpleNamespace(num_samples=10, samples_processed=30, validation_accuracy=[]), 20)[2] == 0.0


def test_profiling_runs_of_one_frozen_depth_pay_its_passes_once(tiny_run):
    head, every_layer = TINY_SPACE
    other_head = RetrainConfig("head2", train_layers=1, hidden_size=32, subsample=1.0, epochs=3, learning_rate=0.01)

    def profile_seconds(space):
        run = tiny_run(retrain_configs=space, cost="reference")  # the same rates in both runs
        run.prepare()
        return run.profile(1, "cam1").overhead_gpu_seconds["profile"], run

    one, _ = profile_seconds([head, every_layer])
    two, run = profile_seconds([head, other_head, every_layer])
    rates = run.costs.seconds_per_sample[family(other_head)]
    validation, sample = run.estimation.profiler.split_sizes(160)
    # The second head-only run trains and validates (3 epochs, one point each) at its own cost, on the first one's passes.
    second_alone = rates["train"] * sample * 3 + rates["validation"] * 3 * validation
    assert two == pytest.approx(one + second_alone)
    assert rates["feature"] > 0 and rates["validation_feature"] > 0


def test_estimates_and_costs_never_train_a_model_until_a_job_starts(tiny_run):
    run = tiny_run()
    run.prepare()
    profile = run.profile(1, "cam0")
    retraining = run._retraining[(1, "cam0")]
    assert all(retraining.result(name) is None for name in run.retrain_configs)  # micro-profiling trained no full job
    profile.outcomes.inference("half")  # measuring an inference factor trains nothing either
    assert all(retraining.result(name) is None for name in run.retrain_configs)
    run.retrain(1, "cam0", "head")
    assert retraining.result("head") is not None and retraining.result("all") is None


def test_the_labeling_budget_is_the_pool_retraining_trains_on_and_pays_for(tiny_run):
    def head_job(label_frames):
        run = tiny_run(mode="oracle", label_frames=label_frames)
        run.prepare()
        run.profile(1, "cam0")
        run.retrain(1, "cam0", "head")
        return run._retraining[(1, "cam0")].run("head")

    every_frame, eight_frames = head_job(None), head_job(8)
    crops = SyntheticSource(num_streams=2, num_windows=3, crops_per_window=160, frames_per_window=32).window("cam0", 0)
    budget = crops.sample_frames(8)
    assert every_frame.train.num_samples == 160 and eight_frames.train.num_samples == len(budget) < 160
    assert eight_frames.gpu_seconds == pytest.approx(every_frame.gpu_seconds * len(budget) / 160, rel=1e-6)


def test_a_stopped_run_resumes_with_its_retrained_models_and_ends_as_an_uninterrupted_one(tiny_run, tmp_path):
    from ekya.execution.checkpoints import WindowCheckpoints
    from ekya.execution.loop import run_windows
    from tests.execution.test_checkpoints import StopAfter, Stopped, comparable, played_windows

    uninterrupted = tiny_run()
    full = run_windows(uninterrupted, build_scheduler("uniform", retrain_config="head"))
    assert any(config is not None for config in full[0].outcome.retrained)  # window 1 retrains: its models must carry over
    checkpoints = WindowCheckpoints(tmp_path / "run")
    with pytest.raises(Stopped):
        run_windows(tiny_run(), build_scheduler("uniform", retrain_config="head"), StopAfter(1), checkpoints=checkpoints)

    resumed_run = tiny_run()
    played = played_windows(resumed_run)
    resumed = run_windows(resumed_run, build_scheduler("uniform", retrain_config="head"), checkpoints=checkpoints)
    assert played == [2]
    assert [comparable(r) for r in resumed] == [comparable(r) for r in full]
    assert [r.overheads for r in resumed] == [r.overheads for r in full]
    for stream in uninterrupted.stream_names:
        expected, restored = uninterrupted.serving[stream].state_dict(), resumed_run.serving[stream].state_dict()
        assert expected.keys() == restored.keys() and all(torch.equal(expected[key], restored[key]) for key in expected)


def test_the_state_carries_distinct_models_once_and_what_pruning_kept(tiny_run, tmp_path):
    run = tiny_run()
    run.prepare()
    run.estimation.kept_configs["cam1"] = ["head"]
    run.save_state(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model-0.pt", "state.json"]  # both streams serve the base model
    restored = tiny_run()
    restored.load_state(tmp_path)
    assert restored.serving["cam0"] is restored.serving["cam1"]
    assert restored.estimation.kept_configs == {"cam0": ["head", "all"], "cam1": ["head"]}
    assert restored.costs.state() == run.costs.state()


def test_the_audit_records_every_configurations_truth_without_changing_what_the_scheduler_sees(tiny_run):
    plain, audited = tiny_run(), tiny_run(audit=True)
    for run in (plain, audited):
        run.prepare()
    seen, audited_profile = plain.profile(1, "cam0"), audited.profile(1, "cam0")
    assert np.array_equal(seen.believed.retrain_accuracy, audited_profile.believed.retrain_accuracy)
    assert seen.believed.serving_accuracy == audited_profile.believed.serving_accuracy
    assert seen.overhead_gpu_seconds == audited_profile.overhead_gpu_seconds  # the audit is not charged
    audited.commit(1, [None, None])
    record = audited.window_record(1)["cam0"]
    for name, true_accuracy in zip(record["configs"], record["true_accuracy"]):
        assert true_accuracy == audited_profile.outcomes.retrain(name).accuracy
    assert record["serving_realized_accuracy"] == audited_profile.outcomes.serving_accuracy
    assert record["retrained"] is None
    assert audited.window_record(1) == {}  # released


def test_the_online_correction_shifts_the_next_estimates_by_what_was_reached(tiny_run):
    from ekya.profiling.correction import SERVING_FAMILY, AccuracyCorrection

    plain, corrected = tiny_run(), tiny_run(correction=AccuracyCorrection(prior=1.0))
    for run in (plain, corrected):
        run.prepare()
        run.profile(1, "cam0")
        run.profile(1, "cam1")
        run.retrain(1, "cam0", "head")
    # window 1 is not corrected yet: nothing was observed
    assert plain.estimation._records[(1, "cam0")]["estimated_accuracy"] == corrected.estimation._records[(1, "cam0")]["estimated_accuracy"]
    for run in (plain, corrected):
        run.commit(1, ["head", None])
    record = corrected.window_record(1)["cam0"]
    assert record["retrained"] == "head" and "retrained_realized_accuracy" in record
    head_residual = record["retrained_realized_accuracy"] - record["profiled_accuracy"][record["configs"].index("head")]
    serving_residual = record["serving_realized_accuracy"] - record["serving_profiled_accuracy"]
    offsets = corrected.estimation.correction
    stream_offset = (head_residual + serving_residual) / 3
    assert offsets.offset("cam0", "layers=1") == pytest.approx((head_residual + stream_offset) / 2)
    assert offsets.offset("cam0", SERVING_FAMILY) == pytest.approx((serving_residual + stream_offset) / 2)
    before, after = plain.profile(2, "cam0").believed, corrected.profile(2, "cam0").believed
    expected = np.clip(before.retrain_accuracy + [offsets.offset("cam0", f"layers={plain.retrain_configs[n].train_layers}")
                                                  for n in before.retrain_names], 0, 1)
    assert after.retrain_accuracy == pytest.approx(expected)
    assert after.serving_accuracy == pytest.approx(np.clip(before.serving_accuracy + offsets.offset("cam0", SERVING_FAMILY), 0, 1))
    state = corrected.estimation.state()
    again = tiny_run(correction=AccuracyCorrection(prior=1.0))
    again.estimation.restore(state)
    assert again.estimation.correction.offset("cam0", "layers=1") == offsets.offset("cam0", "layers=1")


def test_a_committed_window_releases_its_trained_models_but_serves_the_chosen_one(tiny_run):
    run = tiny_run(mode="oracle")
    run.prepare()
    profile = run.profile(1, "cam0")
    run.profile(1, "cam1")
    head = profile.outcomes._retraining.run("head")
    assert profile.outcomes._retraining.result("all") is not None  # the oracle trained every configuration
    run.commit(1, ["head", None])
    assert run.serving["cam0"] is head.train.model
    # What still refers to the window's profile (a task runner's results) no longer keeps its models alive.
    assert all(profile.outcomes._retraining.result(name) is None for name in run.retrain_configs)


def test_cached_models_are_offered_estimated_and_charged_and_one_that_does_not_load_is_skipped(tiny_run, tmp_path):
    from ekya.execution.model_cache import CacheSettings

    run = tiny_run(cache=CacheSettings(size=2))
    run.prepare()
    assert run.profile(1, "cam0").believed.cached_names == ()  # nothing retrained yet
    run.profile(1, "cam1")
    run.retrain(1, "cam0", "head")
    run.commit(1, ["head", None])
    assert run.serving_cached["cam0"] == "cache:cam0/w1/head"
    run.serving_cached["cam0"] = None  # as if another model served: the cached one is offered
    profile = run.profile(2, "cam0")
    assert profile.believed.cached_names == ("cache:cam0/w1/head",)
    # It is the model cam0 serves: estimated on the same validation set, measured on the same window.
    assert profile.believed.cached_accuracy[0] == profile.believed.serving_accuracy
    assert profile.outcomes.cached("cache:cam0/w1/head") == profile.outcomes.serving_accuracy
    assert profile.overhead_gpu_seconds["cache"] > 0  # evaluated on the validation set, charged at the window start
    run.serving["cam0"] = run.serving["cam1"]  # the cached model gets a checkpoint of its own
    run.save_state(tmp_path)
    files = json.loads((tmp_path / "state.json").read_text())["cache"]["files"]
    (tmp_path / files["cache:cam0/w1/head"]).write_bytes(b"not a checkpoint")
    restored = tiny_run(cache=CacheSettings(size=2))
    restored.load_state(tmp_path)  # never fatal
    assert restored.cache.skipped == 1 and restored.cache.entries["cam0"] == []


def test_the_cache_is_refused_with_concurrent_jobs(tiny_run):
    from ekya.execution.local.concurrent import ConcurrentJobs
    from ekya.execution.model_cache import CacheSettings

    with pytest.raises(EkyaError, match="cache.size > 0 needs executor.jobs=ahead"):
        tiny_run(cache=CacheSettings(size=2), jobs=ConcurrentJobs("cpu", "none", "/tmp/unused", 1))
