"""Tests for ekya/profiling/pruning.py."""

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.profiling.pruning import frontier_distance, pareto_frontier, prune_configs


def test_pareto_frontier_marks_non_dominated_points():
    costs = [1.0, 2.0, 3.0, 2.0, 4.0]
    accuracies = [0.5, 0.7, 0.9, 0.6, 0.9]
    np.testing.assert_array_equal(pareto_frontier(costs, accuracies), [True, True, True, False, False])


def test_pareto_frontier_keeps_identical_points():
    np.testing.assert_array_equal(pareto_frontier([1.0, 1.0, 2.0], [0.8, 0.8, 0.7]), [True, True, False])


def test_frontier_distance_is_zero_on_frontier_and_grows_away_from_it():
    costs = [0.0, 10.0, 5.0, 9.0, 0.0]
    accuracies = [0.6, 1.0, 0.2, 0.0, 0.1]
    distance = frontier_distance(costs, accuracies)
    assert distance[0] == distance[1] == 0.0
    # Normalised, the frontier is the segment (0, 0.6)-(1, 1): perpendicular distance for
    # points projecting inside it, distance to the end point (0, 0.6) for the last one.
    segment_length = np.sqrt(1.0 + 0.4**2)
    np.testing.assert_allclose(distance[2:], [0.6 / segment_length, 0.96 / segment_length, 0.5])


def test_prunes_the_farthest_configurations_on_schedule():
    names = [f"config{i}" for i in range(8)]
    costs = [1.0, 2.0, 3.0, 4.0, 2.0, 3.5, 4.0, 3.0]
    accuracies = [0.5, 0.7, 0.8, 0.9, 0.69, 0.6, 0.2, 0.79]
    # 8 configs, fraction 0.25: two dropped, the farthest from the frontier (config6, config5).
    assert prune_configs(names, costs, accuracies, window_index=2) == [n for n in names if n not in ("config5", "config6")]
    for window_index in (0, 1, 3, 5):
        assert prune_configs(names, costs, accuracies, window_index) == names
    assert len(prune_configs(names, costs, accuracies, window_index=4)) == 6
    assert len(prune_configs(names, costs, accuracies, window_index=3, every_windows=3)) == 6


def test_pruning_respects_the_floor_and_the_frontier():
    names = ["a", "b", "c", "d", "e"]
    costs = [1.0, 2.0, 3.0, 3.0, 3.0]
    accuracies = [0.5, 0.9, 0.1, 0.2, 0.3]
    assert prune_configs(names, costs, accuracies, 2, fraction=0.5, floor=4) == ["a", "b", "d", "e"]
    assert prune_configs(names, costs, accuracies, 2, fraction=0.5, floor=10) == names
    on_frontier = ["a", "b", "c"]
    assert prune_configs(on_frontier, [1.0, 2.0, 3.0], [0.1, 0.2, 0.3], 2, fraction=0.9, floor=1) == on_frontier


def test_pruning_invariants_over_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(300):
        count = int(rng.integers(1, 30))
        names = [f"c{i}" for i in range(count)]
        costs = np.round(rng.uniform(1, 100, count), 0)  # rounding makes ties
        accuracies = np.round(rng.uniform(0, 1, count), 1)
        window_index, every_windows = int(rng.integers(0, 9)), int(rng.integers(1, 4))
        fraction, floor = float(rng.uniform(0, 0.99)), int(rng.integers(1, 8))
        kept = prune_configs(names, costs, accuracies, window_index, every_windows, fraction, floor)
        assert kept == prune_configs(list(names), costs.copy(), accuracies.copy(), window_index, every_windows, fraction, floor)
        on_frontier = pareto_frontier(costs, accuracies)
        assert {n for n, f in zip(names, on_frontier) if f} <= set(kept)
        assert len(kept) >= min(count, floor)
        assert kept == [n for n in names if n in kept]  # input order
        if window_index == 0 or window_index % every_windows:
            assert kept == names
        else:
            expected_drops = min(int(np.floor(fraction * count)), max(count - floor, 0), int(np.sum(~on_frontier)))
            assert count - len(kept) == expected_drops
            distance = frontier_distance(costs, accuracies)
            kept_mask = np.isin(names, kept)
            if expected_drops:
                assert distance[~kept_mask].min() >= distance[kept_mask].max()


@pytest.mark.parametrize(
    ("names", "costs", "accuracies", "kwargs"),
    [
        (["a", "a"], [1, 2], [0.1, 0.2], {}),
        (["a", "b"], [1], [0.1], {}),
        (["a", "b"], [1, 2], [0.1, 0.2], {"fraction": 1.0}),
        (["a", "b"], [1, 2], [0.1, 0.2], {"every_windows": 0}),
        (["a", "b"], [1, np.nan], [0.1, 0.2], {}),
    ],
)
def test_bad_inputs_raise(names, costs, accuracies, kwargs):
    with pytest.raises(EkyaError):
        prune_configs(names, costs, accuracies, window_index=2, **kwargs)
