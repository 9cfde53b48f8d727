"""Tests for ekya/profiling/noise.py."""

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.profiling.noise import add_estimate_noise


def test_noise_has_the_requested_std_in_points_and_stays_in_range():
    accuracies = np.full(20000, 0.5)
    noisy = add_estimate_noise(accuracies, 5.0, np.random.default_rng(0))
    assert noisy.std() == pytest.approx(0.05, rel=0.03)
    assert noisy.mean() == pytest.approx(0.5, abs=0.002)
    assert np.all(accuracies == 0.5)  # input untouched


def test_noise_is_clipped_to_unit_interval():
    noisy = add_estimate_noise(np.array([0.0, 0.02, 0.98, 1.0] * 500), 20.0, np.random.default_rng(1))
    assert noisy.min() == 0.0 and noisy.max() == 1.0


def test_zero_noise_returns_an_equal_copy_and_seed_makes_it_reproducible():
    accuracies = np.array([0.3, 0.7])
    np.testing.assert_array_equal(add_estimate_noise(accuracies, 0.0, np.random.default_rng(0)), accuracies)
    first = add_estimate_noise(accuracies, 10.0, np.random.default_rng(3))
    np.testing.assert_array_equal(first, add_estimate_noise(accuracies, 10.0, np.random.default_rng(3)))


@pytest.mark.parametrize(("accuracies", "std"), [([0.5], -1.0), ([1.5], 1.0), ([0.5], np.nan)])
def test_bad_inputs_raise(accuracies, std):
    with pytest.raises(EkyaError):
        add_estimate_noise(accuracies, std, np.random.default_rng(0))
