"""Tests for ekya/profiling/curve_fit.py."""

import numpy as np
import pytest
import scipy.optimize

from ekya.errors import EkyaError
from ekya.profiling.curve_fit import (
    DEFAULT_FAMILY,
    FAMILIES,
    TAIL_POINTS,
    AccuracyCurve,
    extrapolate,
    family_benchmark,
    fit_accuracy_curve,
)

TRUE_PARAMETERS = {"inverse": (0.9, 0.8, 2.0), "exponential": (0.85, 0.5, 0.3), "power": (0.9, 0.6, 0.7)}
EPOCHS = np.arange(1, 9, dtype=np.float64)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_recovers_known_parameters_from_noiseless_points(family):
    truth = AccuracyCurve(family, TRUE_PARAMETERS[family])
    fitted = fit_accuracy_curve(EPOCHS, truth.predict(EPOCHS), family)
    assert fitted.family == family and fitted.fallback is None
    np.testing.assert_allclose(fitted.parameters, TRUE_PARAMETERS[family], rtol=1e-6)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_recovers_curve_from_noisy_points(family):
    truth = AccuracyCurve(family, TRUE_PARAMETERS[family])
    rng = np.random.default_rng(7)
    for _ in range(10):
        noisy = np.clip(truth.predict(EPOCHS) + rng.normal(0.0, 0.005, len(EPOCHS)), 0.0, 1.0)
        fitted = fit_accuracy_curve(EPOCHS, noisy, family)
        assert fitted.fallback is None
        assert np.max(np.abs(fitted.predict(EPOCHS) - truth.predict(EPOCHS))) < 0.02
        assert abs(fitted.predict(30.0) - truth.predict(30.0)) < 0.05
        assert abs(fitted.asymptote - truth.asymptote) < 0.12


def _random_curve(rng, family):
    return AccuracyCurve(family, (rng.uniform(-0.5, 1.5), 10.0 ** rng.uniform(-3, 3), 10.0 ** rng.uniform(-3, 2)))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_extrapolation_is_monotone_and_bounded_for_random_parameters(family):
    rng = np.random.default_rng(0)
    epochs = np.concatenate([[0.0], np.geomspace(1e-3, 1e4, 200)])
    for _ in range(300):
        curve = _random_curve(rng, family)
        sample_fraction, full_fraction = rng.uniform(0.01, 1.0), rng.uniform(0.01, 2.0)
        predicted = extrapolate(curve, epochs, sample_fraction, full_fraction)
        assert np.all(np.isfinite(predicted))
        assert np.all((predicted >= 0.0) & (predicted <= 1.0))
        assert np.all(np.diff(predicted) >= 0.0)


def test_fits_of_random_points_are_finite_monotone_and_bounded():
    rng = np.random.default_rng(1)
    grid = np.linspace(0.0, 500.0, 101)
    for draw in range(30):
        accuracies = rng.uniform(0.0, 1.0, size=int(rng.integers(1, 8)))
        curve = fit_accuracy_curve(np.arange(1, len(accuracies) + 1), accuracies, sorted(FAMILIES)[draw % 3])
        predicted = curve.predict(grid)
        assert np.all(np.isfinite(curve.parameters))
        assert np.all((predicted >= 0.0) & (predicted <= 1.0)) and np.all(np.diff(predicted) >= 0.0)


def test_flat_points_use_the_flat_fallback():
    curve = fit_accuracy_curve([1, 2, 3, 4, 5], [0.6, 0.6, 0.6005, 0.6, 0.6])
    assert curve.fallback == "flat" and curve.family == "constant"
    assert curve.predict(100.0) == pytest.approx(0.6001)


def test_decreasing_points_use_the_mean_of_the_last_points():
    accuracies = [0.7, 0.65, 0.6, 0.58, 0.5]
    curve = fit_accuracy_curve([1, 2, 3, 4, 5], accuracies)
    assert curve.fallback == "not_increasing"
    assert curve.predict(0.0) == curve.predict(1e6) == pytest.approx(np.mean(accuracies[-TAIL_POINTS:]))


@pytest.mark.parametrize(
    ("epochs", "accuracies", "expected"), [([3], [0.42], 0.42), ([1, 2], [0.3, 0.5], 0.5), ([2, 1], [0.5, 0.3], 0.5)]
)
def test_too_few_points_use_the_last_value(epochs, accuracies, expected):
    curve = fit_accuracy_curve(epochs, accuracies)
    assert curve.fallback == "too_few_points"
    np.testing.assert_allclose(curve.predict(np.array([0.0, 1.0, 50.0])), expected)


def test_solver_failure_uses_the_fit_failed_fallback(monkeypatch):
    def failing_solver(*args, **kwargs):
        raise ValueError("residuals are not finite in the initial point")

    monkeypatch.setattr(scipy.optimize, "least_squares", failing_solver)
    curve = fit_accuracy_curve([1, 2, 3, 4], [0.2, 0.4, 0.5, 0.6])
    assert curve.fallback == "fit_failed"
    assert curve.predict(10.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("epochs", "accuracies"),
    [([], []), ([1, 2], [0.5]), ([1, 2, 3], [0.5, 1.2, 0.7]), ([1, 2, 3], [0.5, np.nan, 0.7]), ([-1, 2, 3], [0.1, 0.2, 0.3])],
)
def test_bad_points_raise(epochs, accuracies):
    with pytest.raises(EkyaError):
        fit_accuracy_curve(epochs, accuracies)


def test_unknown_family_names_the_valid_ones():
    with pytest.raises(EkyaError, match="power"):
        fit_accuracy_curve([1, 2, 3], [0.1, 0.2, 0.3], family="logistic")


def test_extrapolation_maps_full_training_to_equal_samples_seen():
    curve = AccuracyCurve("power", (0.9, 0.6, 0.7))
    # 10 epochs on half the data = 50 epochs on a 10% sample.
    assert extrapolate(curve, 10, sample_fraction=0.1, full_fraction=0.5) == pytest.approx(curve.predict(50.0))
    assert extrapolate(curve, 5, sample_fraction=0.1, full_fraction=0.1) == pytest.approx(curve.predict(5.0))
    with pytest.raises(EkyaError, match="sample_fraction"):
        extrapolate(curve, 10, sample_fraction=0.0, full_fraction=0.5)
    with pytest.raises(EkyaError):
        curve.predict(-1.0)


def test_default_family_has_the_lowest_extrapolation_error_on_noisy_curves():
    errors = family_benchmark(draws=30, noise_std_points=1.0, seed=0)
    assert min(errors, key=errors.get) == DEFAULT_FAMILY


def test_curve_with_wrong_parameter_count_raises():
    with pytest.raises(EkyaError, match="3 finite parameters"):
        AccuracyCurve("power", (0.9, 0.5))
