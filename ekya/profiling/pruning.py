"""Prune the retraining-configuration space using the resource-accuracy Pareto frontier.

Profiling every configuration in every window is expensive. Ekya keeps the configurations
on or near the frontier of (GPU cost, accuracy): every few windows it drops a fixed
fraction of those farthest from it. Functions here are pure and deterministic; the caller
passes the configurations still kept and gets back the ones to keep.
"""

from __future__ import annotations

import numpy as np

from ekya.errors import EkyaError


def _as_vectors(costs: np.ndarray | list[float], accuracies: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    cost_array = np.asarray(costs, dtype=np.float64)
    accuracy_array = np.asarray(accuracies, dtype=np.float64)
    if cost_array.ndim != 1 or cost_array.shape != accuracy_array.shape:
        raise EkyaError(
            f"costs and accuracies must be 1-D of equal length, got shapes {cost_array.shape} and {accuracy_array.shape}"
        )
    if not (np.all(np.isfinite(cost_array)) and np.all(np.isfinite(accuracy_array))):
        raise EkyaError(f"costs and accuracies must be finite, got {cost_array.tolist()} and {accuracy_array.tolist()}")
    return cost_array, accuracy_array


def pareto_frontier(costs: np.ndarray | list[float], accuracies: np.ndarray | list[float]) -> np.ndarray:
    """Boolean mask of the points no other point dominates.

    Point j dominates point i when it costs no more, is no less accurate, and is strictly
    better in at least one of the two. Identical points do not dominate each other, so
    ties on the frontier are all kept.
    """
    cost, accuracy = _as_vectors(costs, accuracies)
    no_worse = (cost[None, :] <= cost[:, None]) & (accuracy[None, :] >= accuracy[:, None])
    strictly_better = (cost[None, :] < cost[:, None]) | (accuracy[None, :] > accuracy[:, None])
    return ~np.any(no_worse & strictly_better, axis=1)


def _normalised(values: np.ndarray) -> np.ndarray:
    spread = values.max() - values.min()
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def frontier_distance(costs: np.ndarray | list[float], accuracies: np.ndarray | list[float]) -> np.ndarray:
    """Euclidean distance of each point to the Pareto frontier, in normalised units.

    Cost and accuracy are each rescaled to [0, 1] by their min and max over the points;
    the frontier is the polyline through its points sorted by cost. Frontier points get 0.
    """
    cost, accuracy = _as_vectors(costs, accuracies)
    if len(cost) == 0:
        return np.zeros(0)
    points = np.column_stack([_normalised(cost), _normalised(accuracy)])
    frontier = points[pareto_frontier(cost, accuracy)]
    frontier = frontier[np.lexsort((frontier[:, 1], frontier[:, 0]))]
    starts = frontier[:-1] if len(frontier) > 1 else frontier
    ends = frontier[1:] if len(frontier) > 1 else frontier
    segment = ends - starts  # (m, 2)
    length_squared = np.sum(segment**2, axis=1)
    offset = points[:, None, :] - starts[None, :, :]  # (n, m, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        position = np.where(length_squared > 0, np.sum(offset * segment, axis=2) / length_squared, 0.0)
    nearest = starts[None, :, :] + np.clip(position, 0.0, 1.0)[:, :, None] * segment[None, :, :]
    distance = np.sqrt(np.sum((points[:, None, :] - nearest) ** 2, axis=2)).min(axis=1)
    distance[pareto_frontier(cost, accuracy)] = 0.0
    return distance


def prune_configs(
    config_names: list[str],
    costs: np.ndarray | list[float],
    accuracies: np.ndarray | list[float],
    window_index: int,
    every_windows: int = 2,
    fraction: float = 0.25,
    floor: int = 4,
) -> list[str]:
    """Names of the configurations to keep after window ``window_index``.

    Window 0 keeps all. In windows ``every_windows, 2*every_windows, ...`` the
    ``floor(fraction * n)`` configurations farthest from the Pareto frontier (see
    :func:`frontier_distance`) are dropped, except that frontier configurations are never
    dropped and no fewer than ``floor`` configurations remain. Ties in distance drop the
    later configuration first. Other windows keep all.

    Args:
        config_names: names of the configurations still kept (distinct).
        costs: estimated GPU-seconds of each configuration in this window.
        accuracies: estimated accuracy (fraction) of each configuration in this window.
        window_index: window number k (0-based).
        every_windows: prune once every this many windows (>= 1).
        fraction: share of the configurations dropped per pruning, in [0, 1).
        floor: minimum number of configurations kept (>= 1).

    Returns:
        The kept names, in the input order.
    """
    cost, accuracy = _as_vectors(costs, accuracies)
    if len(config_names) != len(cost):
        raise EkyaError(f"got {len(config_names)} config names but {len(cost)} costs/accuracies")
    if len(set(config_names)) != len(config_names):
        raise EkyaError(f"config names must be distinct, got {config_names}")
    if window_index < 0 or every_windows < 1 or floor < 1:
        raise EkyaError(
            f"need window_index >= 0, every_windows >= 1, floor >= 1; got {window_index}, {every_windows}, {floor}"
        )
    if not 0 <= fraction < 1:
        raise EkyaError(f"pruning fraction must be in [0, 1), got {fraction}")
    if window_index == 0 or window_index % every_windows != 0:
        return list(config_names)
    on_frontier = pareto_frontier(cost, accuracy)
    drop_count = min(int(np.floor(fraction * len(cost))), max(len(cost) - floor, 0), int(np.sum(~on_frontier)))
    if drop_count == 0:
        return list(config_names)
    distance = frontier_distance(cost, accuracy)
    index = np.arange(len(cost))
    farthest_first = np.lexsort((-index, -distance, on_frontier))  # dominated first, then farthest
    dropped = np.zeros(len(cost), dtype=bool)
    dropped[farthest_first[:drop_count]] = True
    return [name for name, is_dropped in zip(config_names, dropped) if not is_dropped]
