"""Tests for ekya/profiling/micro_profiler.py (with a fake train_fn; no torch)."""

from dataclasses import dataclass

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.profiling.curve_fit import AccuracyCurve
from ekya.profiling.micro_profiler import MicroProfiler, ProfileRun, total_profiling_gpu_seconds

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

    def __call__(self, config, sample_fraction, epochs):
        self.calls.append(config.name)
        num_samples = int(round(sample_fraction * WINDOW_SAMPLES))
        data_passes = np.arange(1, epochs + 1) * num_samples / WINDOW_SAMPLES
        accuracies = self.truth.predict(data_passes / 0.1)
        if self.noise_std:
            accuracies = np.clip(accuracies + np.random.default_rng(len(self.calls)).normal(0, self.noise_std, epochs), 0, 1)
        seconds_per_epoch = SECONDS_PER_SAMPLE_EPOCH * num_samples
        return ProfileRun(list(accuracies), seconds_per_epoch, num_samples, self.num_classes, STARTUP_SECONDS)


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
    def declining(config, sample_fraction, epochs):
        return ProfileRun([0.6, 0.55, 0.5, 0.5, 0.45], 1.0, 100, 3)

    (estimate,) = MicroProfiler().profile([FakeConfig("x", 1.0, 20)], declining, WINDOW_SAMPLES)
    assert estimate.curve.fallback == "not_increasing"
    assert estimate.accuracy == pytest.approx(np.mean([0.5, 0.5, 0.45]))


def test_single_class_sample_raises():
    trainer = CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7)), num_classes=1)
    with pytest.raises(EkyaError, match="1 class"):
        MicroProfiler().profile(CONFIGS, trainer, WINDOW_SAMPLES)


def test_empty_sample_raises():
    def empty(config, sample_fraction, epochs):
        return ProfileRun([], 0.0, 0, 0)

    with pytest.raises(EkyaError, match="empty"):
        MicroProfiler().profile(CONFIGS, empty, WINDOW_SAMPLES)
    with pytest.raises(EkyaError, match="empty"):
        MicroProfiler(sample_fraction=0.1).profile(CONFIGS, CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7))), 4)
    with pytest.raises(EkyaError, match="empty"):
        MicroProfiler().profile(CONFIGS, CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7))), 0)


def test_sample_indices_are_deterministic_and_checked():
    profiler = MicroProfiler(sample_fraction=0.1, seed=4)
    labels = np.arange(200) % 3
    indices = profiler.sample_indices(labels, window_index=2)
    assert len(indices) == 20 and len(np.unique(indices)) == 20 and np.all(np.diff(indices) > 0)
    np.testing.assert_array_equal(indices, MicroProfiler(sample_fraction=0.1, seed=4).sample_indices(labels, window_index=2))
    assert not np.array_equal(indices, profiler.sample_indices(labels, window_index=3))
    with pytest.raises(EkyaError, match="single class"):
        profiler.sample_indices(np.zeros(200, dtype=int))
    with pytest.raises(EkyaError, match="empty"):
        profiler.sample_indices(np.array([], dtype=int))


@pytest.mark.parametrize(
    "kwargs", [{"sample_fraction": 0.0}, {"sample_fraction": 1.5}, {"profile_epochs": 0}, {"curve_family": "cubic"}]
)
def test_bad_profiler_settings_raise(kwargs):
    with pytest.raises(EkyaError):
        MicroProfiler(**kwargs)


def test_bad_configs_raise():
    trainer = CurveTrainer(AccuracyCurve("power", (0.9, 0.6, 0.7)))
    with pytest.raises(EkyaError, match="distinct"):
        MicroProfiler().profile([FakeConfig("a", 0.5, 1), FakeConfig("a", 0.2, 1)], trainer, WINDOW_SAMPLES)
    with pytest.raises(EkyaError, match="subsample"):
        MicroProfiler().profile([FakeConfig("a", -0.5, 1)], trainer, WINDOW_SAMPLES)


def test_accuracies_outside_unit_interval_name_the_config():
    def percent(config, sample_fraction, epochs):
        return ProfileRun([40.0, 50.0, 60.0], 1.0, 100, 3)

    with pytest.raises(EkyaError, match="'short'.*fractions"):
        MicroProfiler().profile(CONFIGS[:1], percent, WINDOW_SAMPLES)
