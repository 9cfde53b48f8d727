"""Small hand-built problems for scheduler tests."""

from __future__ import annotations

import numpy as np

from ekya.scheduling import Problem, StreamProblem


def stream(name="s", serving=0.5, costs=(), accuracies=(), demand=(1.0,), factor=(1.0,), running=False):
    return StreamProblem(
        name=name,
        serving_accuracy=serving,
        retrain_names=tuple(f"c{k}" for k in range(len(costs))),
        retrain_gpu_seconds=np.array(costs, dtype=float),
        retrain_accuracy=np.array(accuracies, dtype=float),
        inference_names=tuple(f"i{k}" for k in range(len(demand))),
        inference_demand=np.array(demand, dtype=float),
        inference_factor=np.array(factor, dtype=float),
        running=running,
    )


def random_problem(rng: np.random.Generator, streams: int, configs: int, gpus: float, delta: float = 0.1, window: float = 200.0, min_accuracy: float = 0.3) -> Problem:
    """A random instance: costs 20-400 GPU-seconds, gains up to +35 points, 4 inference configs."""
    result = []
    for s in range(streams):
        serving = rng.uniform(0.4, 0.8)
        cost = rng.uniform(20, 400, configs)
        accuracy = np.clip(serving + rng.uniform(-0.05, 0.35, configs) * (cost / 400) ** 0.3, 0, 1)
        result.append(stream(f"s{s}", serving, cost, accuracy, demand=(0.2, 0.35, 0.5, 0.8), factor=(0.8, 0.9, 0.95, 1.0)))
    return Problem(tuple(result), gpus=gpus, delta=delta, window_seconds=window, min_accuracy=min_accuracy)
