"""Tests for ekya/profiling/cost_model.py."""

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.profiling.cost_model import CostModel, ThroughputTable

MEASURED = ([0.1, 0.5, 1.0], [0.08, 0.45, 1.0])


def test_cost_model_scales_with_samples_and_epochs_plus_startup():
    model = CostModel.from_measurement(seconds_per_epoch=12.0, num_samples=300, startup_seconds=5.0)
    assert model.seconds_per_sample_epoch == pytest.approx(0.04)
    assert model.gpu_seconds(num_samples=3000, epochs=10) == pytest.approx(0.04 * 3000 * 10 + 5.0)
    assert model.gpu_seconds(num_samples=0, epochs=10) == pytest.approx(5.0)


def test_cost_model_can_scale_with_optimizer_steps():
    # 40 samples in batches of 32: 2 steps (one partial) per epoch, 0.5 s each
    model = CostModel.from_measurement(seconds_per_epoch=1.0, num_samples=40, feature_seconds=0.4, batch_size=32)
    assert model.seconds_per_step == pytest.approx(0.5) and model.seconds_per_sample_epoch == 0.0
    # 160 samples: 5 steps per epoch; the frozen-layer pass grows with samples, once
    assert model.gpu_seconds(num_samples=160, epochs=3) == pytest.approx(0.5 * 5 * 3 + 0.01 * 160)
    assert model.gpu_seconds(num_samples=33, epochs=1) == pytest.approx(0.5 * 2 + 0.01 * 33)
    with pytest.raises(EkyaError, match="batch_size"):
        CostModel.from_measurement(1.0, 40, batch_size=0)
    with pytest.raises(EkyaError, match="batch_size"):
        CostModel(0.0, seconds_per_step=0.5, batch_size=True)


@pytest.mark.parametrize(("seconds", "samples"), [(1.0, 0), (-1.0, 10), (np.inf, 10)])
def test_cost_model_rejects_bad_measurements(seconds, samples):
    with pytest.raises(EkyaError):
        CostModel.from_measurement(seconds, samples)


def test_throughput_interpolates_between_points_and_through_zero():
    table = ThroughputTable(*MEASURED)
    np.testing.assert_allclose(table.throughput(np.array([0.05, 0.1, 0.3, 0.5, 0.75, 1.0])), [0.04, 0.08, 0.265, 0.45, 0.725, 1.0])


def test_throughput_grows_linearly_above_the_last_point():
    table = ThroughputTable(*MEASURED)
    assert table.throughput(2.0) == pytest.approx(2.0)
    assert table.throughput(3.5) == pytest.approx(3.5)
    beyond_two = ThroughputTable([0.5, 1.0, 2.0], [0.4, 1.0, 1.8])
    assert beyond_two.throughput(4.0) == pytest.approx(3.6)


def test_throughput_is_monotone_over_a_fine_grid():
    table = ThroughputTable([0.1, 0.2, 0.5, 1.0, 2.0], [0.05, 0.15, 0.5, 1.0, 1.7])
    values = table.throughput(np.linspace(0.01, 4.0, 400))
    assert np.all(np.diff(values) >= 0)


def test_seconds_divides_cost_by_throughput():
    table = ThroughputTable(*MEASURED)
    assert table.seconds(90.0, 0.5) == pytest.approx(200.0)
    np.testing.assert_allclose(table.seconds(np.array([10.0, 10.0]), np.array([1.0, 2.0])), [10.0, 5.0])
    linear = ThroughputTable.linear()
    assert linear.seconds(100.0, 0.1) == pytest.approx(1000.0)
    assert linear.seconds(100.0, 2.0) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("shares", "throughputs", "message"),
    [
        ([0.5, 1.0], [0.6, 0.5], "decrease"),
        ([-0.5, 1.0], [0.4, 1.0], "> 0"),
        ([0.5, 0.5, 1.0], [0.4, 0.4, 1.0], "distinct"),
        ([0.5, 1.0], [0.4, 0.9], "1.0 at share 1.0"),
        ([], [], "non-empty"),
        ([0.5, 1.0], [0.5], "equal-length"),
    ],
)
def test_bad_tables_raise(shares, throughputs, message):
    with pytest.raises(EkyaError, match=message):
        ThroughputTable(shares, throughputs)


@pytest.mark.parametrize("share", [0.0, -0.1, np.nan])
def test_non_positive_share_raises(share):
    with pytest.raises(EkyaError, match="share"):
        ThroughputTable.linear().seconds(10.0, share)


def test_normalised_divides_by_throughput_at_one_gpu():
    table = ThroughputTable.normalised([0.5, 1.0, 2.0], [40.0, 100.0, 180.0])
    np.testing.assert_allclose(table.throughputs, [0.4, 1.0, 1.8])


def test_csv_round_trip(tmp_path):
    table = ThroughputTable(*MEASURED)
    path = tmp_path / "throughput.csv"
    table.save_csv(path)
    assert path.read_text().splitlines()[0] == "gpu_share,relative_throughput"
    loaded = ThroughputTable.load_csv(path)
    np.testing.assert_array_equal(loaded.shares, table.shares)
    np.testing.assert_array_equal(loaded.throughputs, table.throughputs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("share,throughput\n1.0,1.0\n", "header"),
        ("gpu_share,relative_throughput\n0.5,abc\n1.0,1.0\n", "line 2"),
        ("gpu_share,relative_throughput\n0.5,0.6\n1.0,0.5\n", "decrease"),
        ("", "empty"),
    ],
)
def test_bad_csv_names_the_problem(tmp_path, text, message):
    path = tmp_path / "throughput.csv"
    path.write_text(text)
    with pytest.raises(EkyaError, match=message):
        ThroughputTable.load_csv(path)


def test_missing_csv_raises(tmp_path):
    with pytest.raises(EkyaError, match="does not exist"):
        ThroughputTable.load_csv(tmp_path / "absent.csv")


def test_a_share_of_zero_has_no_throughput():
    """Streams that do not train have share 0 in the timeline's and the accuracy model's arrays."""
    table = ThroughputTable.normalised([0.5, 1.0], [60.0, 100.0])
    assert table.throughput(0.0) == 0.0
    assert table.throughput(np.array([0.0, 0.5])).tolist() == [0.0, pytest.approx(0.6)]
