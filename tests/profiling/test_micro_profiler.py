"""Tests for ekya/profiling/micro_profiler.py (with a fake train_fn; no torch)."""

from dataclasses import dataclass

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.profiling.curve_fit import AccuracyCurve, extrapolate
from ekya.profiling.micro_profiler import MicroProfiler, ProfileRun, monotone_in_layers, total_profiling_gpu_seconds

WINDOW_SAMPLES = 1000
SECONDS_PER_SAMPLE_EPOCH = 0.02
STARTUP_SECONDS = 3.0


@dataclass(frozen=True)
class FakeConfig:
    name: str
    subsample: float
    epochs: int
    learning_rate: float = 0.01  # opaque to the profiler


class CurveTrainer:
    """Fake train_fn: accuracy follows ``truth`` in units of 10%-of-the-window data passes."""

    def __init__(self, truth: AccuracyCurve, num_classes: int = 6, noise_std: float = 0.0) -> None:
        self.truth, self.num_classes, self.noise_std = truth, num_classes, noise_std
        self.calls = []

    def __call__(self, config, sample_fraction, epochs, validations_per_epoch):
        self.calls.append(config.name)
        num_samples = int(round(sample_fraction * WINDOW_SAMPLES))
        progress = np.arange(1, epochs * validations_per_epoch + 1) / validations_per_epoch
        data_passes = progress * num_samples / WINDOW_SAMPLES
        accuracies = self.truth.predict(data_passes / 0.1)
        if self.noise_std:
            noise = np.random.default_rng(len(self.calls)).normal(0, self.noise_std, len(progress))
            accuracies = np.clip(accuracies + noise, 0, 1)
        seconds_per_epoch = SECONDS_PER_SAMPLE_EPOCH * num_samples
        return ProfileRun(list(accuracies), seconds_per_epoch, num_samples, self.num_classes, STARTUP_SECONDS,
                          validation_sample_epochs=list(progress))


CONFIGS = [FakeConfig("short", 0.5, 10), FakeConfig("long", 1.0, 30), FakeConfig("small", 0.2, 5), FakeConfig("zero", 0.3, 0)]


@pytest.mark.parametrize(("family", "parameters"), [("power", (0.9, 0.6, 0.7)), ("inverse", (0.85, 0.5, 2.0))])
def test_estimates_accuracy_of_a_known_curve_within_one_point(family, parameters):
    truth = AccuracyCurve(family, parameters)
    profiler = MicroProfiler(sample_fraction=0.1, profile_epochs=5, curve_family=family)
    estimates = profiler.profile(CONFIGS, CurveTrainer(truth), WINDOW_SAMPLES)
    assert [estimate.config_name for estimate in estimates] == [config.name for config in CONFIGS]
    for config, estimate in zip(CONFIGS, estimates):
        expected = truth.predict(config.epochs * config.subsample / 0.1)
        assert abs(estimate.accuracy - expected) < 0.01
        assert estimate.curve.family == family and estimate.curve.fallback is None


def test_estimate_with_noisy_points_stays_close():
    truth = AccuracyCurve("power", (0.9, 0.6, 0.7))
    estimates = MicroProfiler(profile_epochs=10).profile(CONFIGS[:2], CurveTrainer(truth, noise_std=0.002), WINDOW_SAMPLES)
    for config, estimate in zip(CONFIGS[:2], estimates):
        assert abs(estimate.accuracy - truth.predict(config.epochs * config.subsample / 0.1)) < 0.03


def test_estimates_cost_exactly():
    trainer = CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7)))
    estimates = MicroProfiler(sample_fraction=0.1, profile_epochs=5).profile(CONFIGS, trainer, WINDOW_SAMPLES)
    for config, estimate in zip(CONFIGS, estimates):
        full_samples = config.subsample * WINDOW_SAMPLES
        assert estimate.gpu_seconds == pytest.approx(SECONDS_PER_SAMPLE_EPOCH * full_samples * config.epochs + STARTUP_SECONDS)
        assert estimate.profiling_gpu_seconds == pytest.approx(SECONDS_PER_SAMPLE_EPOCH * 100 * 5 + STARTUP_SECONDS)
    assert total_profiling_gpu_seconds(estimates) == pytest.approx(len(CONFIGS) * 13.0)


def test_configs_with_equal_profile_keys_share_one_run():
    configs = [FakeConfig("a", 0.5, 10, 0.01), FakeConfig("b", 1.0, 20, 0.01), FakeConfig("c", 0.5, 10, 0.1)]
    trainer = CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7)))
    estimates = MicroProfiler().profile(configs, trainer, WINDOW_SAMPLES, profile_key=lambda config: config.learning_rate)
    assert trainer.calls == ["a", "c"]
    assert estimates[0].curve == estimates[1].curve
    assert [e.profiling_gpu_seconds for e in estimates] == pytest.approx([6.5, 6.5, 13.0])
    assert total_profiling_gpu_seconds(estimates) == pytest.approx(26.0)


def test_decreasing_profile_gives_a_finite_fallback_estimate():
    def declining(config, sample_fraction, epochs, validations_per_epoch):
        return ProfileRun([0.6, 0.55, 0.5, 0.5, 0.45], 1.0, 100, 3)

    (estimate,) = MicroProfiler().profile([FakeConfig("x", 1.0, 20)], declining, WINDOW_SAMPLES)
    assert estimate.curve.fallback == "not_increasing"
    assert estimate.accuracy == pytest.approx(np.mean([0.5, 0.5, 0.45]))


def test_single_class_sample_is_profiled():
    """A window of one class (a pedestrian-only camera) is profiled like any other."""
    one_class = MicroProfiler().profile(CONFIGS, CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7)), num_classes=1), WINDOW_SAMPLES)
    six = MicroProfiler().profile(CONFIGS, CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7))), WINDOW_SAMPLES)
    assert [e.accuracy for e in one_class] == [e.accuracy for e in six]


def test_empty_sample_raises():
    def empty(config, sample_fraction, epochs, validations_per_epoch):
        return ProfileRun([], 0.0, 0, 0)

    with pytest.raises(EkyaError, match="empty"):
        MicroProfiler().profile(CONFIGS, empty, WINDOW_SAMPLES)
    with pytest.raises(EkyaError, match="empty"):
        MicroProfiler(sample_fraction=0.1).profile(CONFIGS, CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7))), 4)
    with pytest.raises(EkyaError, match="empty"):
        MicroProfiler().profile(CONFIGS, CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7))), 0)


def test_split_is_deterministic_disjoint_and_checked():
    labels = np.arange(200) % 6
    profiler = MicroProfiler(sample_fraction=0.1, seed=4)
    validation, sample = profiler.split(labels, window_index=2, stream_index=1)
    assert len(validation) == 40 and len(sample) == 20 and not np.intersect1d(validation, sample).size
    again = MicroProfiler(sample_fraction=0.1, seed=4).split(labels, window_index=2, stream_index=1)
    np.testing.assert_array_equal(sample, again[1])
    assert not np.array_equal(sample, profiler.split(labels, window_index=3, stream_index=1)[1])
    # The validation set does not depend on the profiler's settings, only on seed, stream and window.
    np.testing.assert_array_equal(validation, MicroProfiler(sample_fraction=0.05, seed=4).split(labels, 2, 1)[0])
    assert not np.array_equal(validation, profiler.split(labels, 2, stream_index=0)[0])
    one_class_validation, one_class_sample = profiler.split(np.zeros(200, dtype=int), 0)  # a pedestrian-only camera
    assert len(one_class_validation) == 40 and len(one_class_sample) == 20
    with pytest.raises(EkyaError, match="empty"):
        profiler.split(np.array([], dtype=int), 0)
    with pytest.raises(EkyaError, match="too few"):
        MicroProfiler(sample_fraction=0.9).split(labels, 0)


def test_split_is_uniform_unless_a_class_is_missed():
    """Where the uniform draws cover every class the split is exactly them; a rare class is swapped in otherwise."""
    profiler = MicroProfiler(sample_fraction=0.1, seed=4)
    labels = np.arange(300) % 3
    validation, sample = profiler.split(labels, window_index=2, stream_index=1)
    expected_validation = np.sort(np.random.default_rng([4, 1, 2]).choice(300, size=60, replace=False))
    rest = np.setdiff1d(np.arange(300), expected_validation)
    np.testing.assert_array_equal(validation, expected_validation)
    np.testing.assert_array_equal(sample, np.sort(np.random.default_rng([4, 2]).choice(rest, size=30, replace=False)))
    for seed in range(20):
        rare = np.zeros(200, dtype=int)
        rare[[17, 150]] = 1  # two crops of class 1, one of class 2
        rare[90] = 2
        validation, sample = MicroProfiler(sample_fraction=0.1, seed=seed).split(rare, window_index=seed)
        assert len(validation) == 40 and len(sample) == 20 and not np.intersect1d(validation, sample).size
        assert set(rare[sample]) == {0, 1, 2}  # every class is trained on
        assert 1 in rare[validation]  # and measured, where it has a crop to spare


@pytest.mark.parametrize(
    "kwargs", [{"sample_fraction": 0.0}, {"sample_fraction": 1.5}, {"profile_epochs": 0}, {"curve_family": "cubic"},
               {"validations_per_epoch": 0}, {"head_profile_epochs": 0}, {"head_profile_epochs": True},
               {"head_profile_epochs": 2.5}, {"layer_monotone": "yes"}, {"cost_scaling": "flops"},
               {"validation_size": 0}, {"validation_size": 2.5}, {"validation_size": True}, {"sample_fraction": "0.1"}]
)
def test_bad_profiler_settings_raise_naming_the_key(kwargs):
    [key] = kwargs
    with pytest.raises(EkyaError, match=rf"profiler\.{key}"):
        MicroProfiler(**kwargs)


def test_a_fixed_validation_size_is_held_out_whatever_the_window():
    labels = np.arange(3000) % 6
    profiler = MicroProfiler(sample_fraction=0.1, seed=4, validation_size=200)
    validation, sample = profiler.split(labels, window_index=2, stream_index=1)
    assert len(validation) == 200 and len(sample) == 300 and not np.intersect1d(validation, sample).size
    assert profiler.split_sizes(1000) == (200, 100)
    assert MicroProfiler(sample_fraction=0.1).split_sizes(1000) == (200, 100)  # default: 20% of the window
    with pytest.raises(EkyaError, match=r"profiler.validation_size=200 .* window 0 of 210 labeled crops; valid: validation_size <= 189"):
        profiler.split(labels[:210], 0)


def test_bad_configs_raise():
    trainer = CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7)))
    with pytest.raises(EkyaError, match="distinct"):
        MicroProfiler().profile([FakeConfig("a", 0.5, 1), FakeConfig("a", 0.2, 1)], trainer, WINDOW_SAMPLES)
    with pytest.raises(EkyaError, match="subsample"):
        MicroProfiler().profile([FakeConfig("a", -0.5, 1)], trainer, WINDOW_SAMPLES)


def test_accuracies_outside_unit_interval_name_the_config():
    def percent(config, sample_fraction, epochs, validations_per_epoch):
        return ProfileRun([40.0, 50.0, 60.0], 1.0, 100, 3)

    with pytest.raises(EkyaError, match="'short'.*fractions"):
        MicroProfiler().profile(CONFIGS[:1], percent, WINDOW_SAMPLES)


def test_one_epoch_validated_several_times_recovers_the_curve_and_charges_every_second():
    truth = AccuracyCurve("power", (0.9, 0.6, 0.7))
    trainer = CurveTrainer(truth)
    profiler = MicroProfiler(sample_fraction=0.1, profile_epochs=2, validations_per_epoch=3)
    estimates = profiler.profile(CONFIGS[:2], trainer, WINDOW_SAMPLES, profile_key=lambda config: 0)
    for estimate, config in zip(estimates, CONFIGS[:2]):
        expected = extrapolate(truth, config.epochs, 0.1, config.subsample)
        assert abs(estimate.accuracy - expected) < 0.01

    def measured(config, sample_fraction, epochs, validations_per_epoch):
        return ProfileRun([0.5, 0.6, 0.65], 2.0, 100, 3, startup_seconds=0.5, feature_seconds=1.0, validation_seconds=0.25,
                          validation_sample_epochs=[1 / 3, 2 / 3, 1.0])

    (estimate,) = MicroProfiler(profile_epochs=1, validations_per_epoch=3).profile(
        [FakeConfig("x", 0.5, 4)], measured, WINDOW_SAMPLES)
    assert estimate.profiling_gpu_seconds == pytest.approx(2.0 + 1.0 + 0.25 + 0.5)
    # Retraining 500 samples for 4 epochs: 0.02 s per sample-epoch, 0.01 s per sample once, plus startup.
    assert estimate.gpu_seconds == pytest.approx(0.02 * 500 * 4 + 0.01 * 500 + 0.5)


def test_frozen_passes_reused_from_an_earlier_run_are_not_charged_again_nor_change_the_estimate():
    def run(reused_seconds):
        def measured(config, sample_fraction, epochs, validations_per_epoch):
            return ProfileRun([0.5, 0.6, 0.65], 2.0, 100, 3, feature_seconds=1.0, validation_seconds=0.25, reused_seconds=reused_seconds)
        return MicroProfiler(profile_epochs=1).profile([FakeConfig("x", 0.5, 4)], measured, WINDOW_SAMPLES)[0]

    alone, sharing = run(0.0), run(1.1)
    assert sharing.profiling_gpu_seconds == pytest.approx(alone.profiling_gpu_seconds - 1.1)
    assert (sharing.accuracy, sharing.gpu_seconds) == (alone.accuracy, alone.gpu_seconds)  # a run alone would pay the pass
    with pytest.raises(EkyaError, match="reused_seconds 2.0 exceed"):
        run(2.0)


def test_validation_positions_must_match_the_accuracies():
    def mismatched(config, sample_fraction, epochs, validations_per_epoch):
        return ProfileRun([0.5, 0.6, 0.65], 1.0, 100, 3, validation_sample_epochs=[1.0, 2.0])

    with pytest.raises(EkyaError, match="2 validation positions for 3"):
        MicroProfiler().profile([FakeConfig("x", 0.5, 4)], mismatched, WINDOW_SAMPLES)
    with pytest.raises(EkyaError, match="validations_per_epoch"):
        MicroProfiler(validations_per_epoch=0)


@dataclass(frozen=True)
class LayeredConfig:
    name: str
    train_layers: int | str
    subsample: float
    epochs: int
    hidden_size: int = 64


class LayerTrainer:
    """Fake train_fn: accuracy grows with training progress, by ``gain[train_layers]`` per sample-epoch."""

    def __init__(self, gain: dict) -> None:
        self.gain, self.epochs = gain, {}

    def __call__(self, config, sample_fraction, epochs, validations_per_epoch):
        self.epochs[config.name] = epochs
        progress = np.arange(1, epochs + 1, dtype=float)
        accuracies = np.clip(0.5 + self.gain[config.train_layers] * np.log1p(progress), 0, 1)
        return ProfileRun(list(accuracies), 0.1 * epochs, 100, 4)


LAYERED = [LayeredConfig("head", 1, 0.5, 10), LayeredConfig("stage", 2, 0.5, 10), LayeredConfig("all", "all", 0.5, 10),
           LayeredConfig("other_head", 1, 0.5, 10, hidden_size=256)]


def test_head_only_configs_are_profiled_for_head_profile_epochs_and_charged_for_them():
    trainer = LayerTrainer({1: 0.05, 2: 0.05, "all": 0.05})
    estimates = MicroProfiler(profile_epochs=3, head_profile_epochs=12).profile(LAYERED, trainer, WINDOW_SAMPLES)
    assert trainer.epochs == {"head": 12, "stage": 3, "all": 3, "other_head": 12}
    # seconds_per_epoch = 0.1 * epochs in this fake, so a run costs 0.1 * epochs**2
    assert [e.profiling_gpu_seconds for e in estimates] == pytest.approx([14.4, 0.9, 0.9, 14.4])
    assert MicroProfiler(profile_epochs=3).epochs_for(LAYERED[0]) == 3  # null: profile_epochs


def test_training_more_layers_is_never_estimated_worse():
    trainer = LayerTrainer({1: 0.08, 2: 0.02, "all": 0.0})  # deeper runs barely move in a short profile
    lifted = MicroProfiler(profile_epochs=5).profile(LAYERED, trainer, WINDOW_SAMPLES)
    plain = MicroProfiler(profile_epochs=5, layer_monotone=False).profile(LAYERED, trainer, WINDOW_SAMPLES)
    assert plain[0].accuracy > plain[1].accuracy > plain[2].accuracy
    assert lifted[0].accuracy == plain[0].accuracy  # the head-only configuration is the floor
    # "stage" keeps the gain its own curve predicts past its last profiled epoch; "all" is flat
    headroom = plain[1].accuracy - plain[1].curve.predict(5.0)
    assert headroom > 0
    assert lifted[1].accuracy == pytest.approx(plain[0].accuracy + headroom)
    assert lifted[2].accuracy == pytest.approx(max(plain[0].accuracy, plain[1].accuracy))
    assert lifted[3].accuracy == plain[3].accuracy  # another head size: another group


def test_monotone_in_layers_groups_by_everything_but_name_and_layers():
    configs = [LayeredConfig("a", "all", 0.5, 10), LayeredConfig("b", 2, 0.5, 10), LayeredConfig("c", 1, 0.5, 10),
               LayeredConfig("d", 1, 0.2, 10), LayeredConfig("e", 2, 0.2, 10), FakeConfig("f", 0.5, 10)]
    lifted = monotone_in_layers(configs, [0.6, 0.9, 0.7, 0.8, 0.75, 0.1])
    assert lifted == pytest.approx([0.9, 0.9, 0.7, 0.8, 0.8, 0.1])
    # headroom is added to the shallower floor only, clipped at 0 and the result at 1
    with_headroom = monotone_in_layers(configs, [0.6, 0.9, 0.7, 0.8, 0.75, 0.1], [0.05, 0.02, 0.3, 0.0, -0.1, 0.5])
    assert with_headroom == pytest.approx([0.95, 0.9, 0.7, 0.8, 0.8, 0.1])  # b: its own 0.9 beats 0.7 + 0.02
    assert monotone_in_layers(configs[1:3], [0.99, 0.98], [0.05, 0.0]) == pytest.approx([1.0, 0.98])
    # more layers already better: nothing changes; equal layers in a group do not lift each other
    assert monotone_in_layers(LAYERED[:3], [0.6, 0.7, 0.8]) == pytest.approx([0.6, 0.7, 0.8])
    twins = [LayeredConfig("x", 2, 0.5, 10), LayeredConfig("y", 2, 0.5, 10)]
    assert monotone_in_layers(twins, [0.6, 0.7]) == pytest.approx([0.6, 0.7])


@dataclass(frozen=True)
class BatchedConfig:
    name: str
    subsample: float
    epochs: int
    batch_size: int


def test_cost_scales_by_optimizer_steps_for_configurations_with_a_batch_size():
    def run_of(config, sample_fraction, epochs, validations_per_epoch):  # 100 samples: 4 steps of 32, 2 s per epoch
        return ProfileRun([0.5, 0.6, 0.65], 2.0, 100, 3)

    config = BatchedConfig("b", subsample=0.5, epochs=10, batch_size=32)  # 500 samples: 16 steps per epoch
    (by_steps,) = MicroProfiler(profile_epochs=3).profile([config], run_of, WINDOW_SAMPLES)
    (by_samples,) = MicroProfiler(profile_epochs=3, cost_scaling="samples").profile([config], run_of, WINDOW_SAMPLES)
    assert by_steps.gpu_seconds == pytest.approx(0.5 * 16 * 10)
    assert by_samples.gpu_seconds == pytest.approx(0.02 * 500 * 10)
