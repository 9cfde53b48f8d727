"""The online correction of estimated accuracy: shrunk per-stream, per-family mean residuals."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from ekya.errors import EkyaError
from ekya.profiling.correction import SERVING_FAMILY, AccuracyCorrection, config_family


def test_no_observation_no_correction():
    correction = AccuracyCorrection(prior=1.0)
    assert correction.offset("cam0", "layers=1") == 0.0
    assert np.array_equal(correction.correct("cam0", ["layers=1", SERVING_FAMILY], [0.4, 0.9]), [0.4, 0.9])


def test_offsets_are_the_shrunk_mean_residuals():
    correction = AccuracyCorrection(prior=1.0)
    correction.observe("cam0", "layers=1", estimated=0.9, realized=0.7)   # -0.2
    correction.observe("cam0", "layers=1", estimated=0.8, realized=0.7)   # -0.1
    correction.observe("cam0", SERVING_FAMILY, estimated=0.6, realized=0.7)  # +0.1
    stream = (-0.2 - 0.1 + 0.1) / (3 + 1)
    assert correction.offset("cam0", "layers=1") == pytest.approx((-0.3 + stream) / (2 + 1))
    assert correction.offset("cam0", SERVING_FAMILY) == pytest.approx((0.1 + stream) / (1 + 1))
    assert correction.offset("cam0", "layers=all") == pytest.approx(stream)  # an unseen family takes the stream's
    assert correction.offset("cam1", "layers=1") == 0.0  # streams are corrected apart


def test_a_family_seen_often_converges_to_its_own_mean_error():
    correction = AccuracyCorrection(prior=1.0)
    for _ in range(200):
        correction.observe("cam0", "layers=2", estimated=0.9, realized=0.8)
    assert correction.offset("cam0", "layers=2") == pytest.approx(-0.1, abs=1e-3)


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=20), st.floats(0, 1))
def test_corrected_estimates_stay_accuracies(observations, estimate):
    correction = AccuracyCorrection(prior=0.5)
    for estimated, realized in observations:
        correction.observe("cam0", "layers=1", estimated, realized)
    (corrected,) = correction.correct("cam0", ["layers=1"], [estimate])
    assert 0.0 <= corrected <= 1.0


def test_state_round_trips():
    correction = AccuracyCorrection(prior=2.0)
    correction.observe("cam0", config_family("all"), 0.5, 0.6)
    restored = AccuracyCorrection()
    restored.restore(correction.state())
    assert restored.prior == 2.0 and restored.offset("cam0", "layers=all") == correction.offset("cam0", "layers=all")


@pytest.mark.parametrize("prior", [0, -1.0, float("nan"), True])
def test_a_prior_must_be_a_positive_weight(prior):
    with pytest.raises(EkyaError, match="profiler.correction_prior"):
        AccuracyCorrection(prior)
