"""The paper's Uniform baseline, and how its fixed configuration is picked."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ekya.scheduling.accuracy_model import StreamAccuracyModel
from ekya.scheduling.base import Scheduler, build_decision, equal_stream_shares, even_reallocation
from ekya.scheduling.problem import Decision, Problem

#: Aliases of the paper's two Uniform configurations: "Config 1" (high) and "Config 2" (low).
RETRAIN_CONFIG_ALIASES = ("high", "low")

#: The inference shares the studies run Uniform with (conf/reproduce.yaml, conf/experiment/*.yaml).
UNIFORM_INFERENCE_SHARES = (0.3, 0.5, 0.9)


def split_stream_share(problem: Problem, inference_share: float) -> tuple[list[float], list[float]]:
    """Each stream's equal share G/N split into (inference, training) shares by ``inference_share``."""
    share = equal_stream_shares(problem)
    count = len(problem.streams)
    return [share * inference_share] * count, [share * (1.0 - inference_share)] * count


def check_inference_share(inference_share: float) -> float:
    if not 0 < inference_share <= 1:
        raise ValueError(f"inference_share must be in (0, 1], got {inference_share}")
    return float(inference_share)


def uniform_decision(
    problem: Problem, retrain_config: str, inference_share: float, models: Sequence[StreamAccuracyModel] | None = None
) -> Decision:
    """Uniform's decision: each stream's G/N split by ``inference_share`` (fraction in (0, 1]), training on
    ``retrain_config`` (a running job keeps its own; a stream without that configuration gives its
    training share to inference)."""
    inference, train = split_stream_share(problem, check_inference_share(inference_share))
    configs = [s.retrain_names[0] if s.running else retrain_config for s in problem.streams]
    return build_decision(problem, inference, train, configs, models=models)


class UniformScheduler(Scheduler):
    """Uniform: one fixed retraining configuration and a fixed inference/training split.

    The baseline of Ekya (NSDI'22), e.g. "Uniform (Cfg 1, 50%)". Every stream gets an equal
    share G/N of the box, of which ``inference_share`` goes to its inference job and the rest to
    its training job, which uses ``retrain_config``. Shares are these exact fractions (not
    rounded to Δ), as in the paper's Figure 4. When a training job finishes, its share is split
    evenly over the remaining jobs (the original implementation's fair reallocation).
    The inference configuration is the one that makes the most of the inference share.

    Args:
        retrain_config: name of the retraining configuration every stream uses (resolve the
            aliases ``high``/``low`` with :func:`resolve_retrain_config` first).
        inference_share: fraction of each stream's share given to inference, in (0, 1].
    """

    name = "uniform"

    def __init__(self, retrain_config: str, inference_share: float = 0.5) -> None:
        self.retrain_config = retrain_config
        self.inference_share = check_inference_share(inference_share)

    def schedule(self, problem: Problem) -> Decision:
        return uniform_decision(problem, self.retrain_config, self.inference_share)

    def reallocate(self, problem: Problem, previous: Decision, finished: Sequence[int]) -> Decision:
        return even_reallocation(problem, previous, finished)


def resolve_retrain_config(
    name: str,
    config_names: Sequence[str],
    gpu_seconds: Sequence[float],
    accuracies: Sequence[float],
    base_accuracy: float,
) -> str:
    """The configuration Uniform uses: ``name`` itself, or the alias ``high``/``low`` resolved.

    The aliases are picked from the Pareto frontier of a hold-out profile (mean cost and
    accuracy of each configuration): ``high`` ("Config 1") is the most accurate configuration;
    ``low`` ("Config 2") is the frontier configuration other than ``high`` with the largest
    accuracy gain over the base model per GPU-second.

    Raises:
        ValueError: ``name`` is neither an alias nor a configuration name (the message lists both).
    """
    names = list(config_names)
    if name not in RETRAIN_CONFIG_ALIASES:
        if name not in names:
            raise ValueError(f"unknown retraining configuration {name!r}; valid: {', '.join(RETRAIN_CONFIG_ALIASES + tuple(names))}")
        return name
    cost = np.asarray(gpu_seconds, dtype=float)
    accuracy = np.asarray(accuracies, dtype=float)
    if len(names) == 0:
        raise ValueError("no retraining configurations to pick Uniform's configuration from")
    high = int(np.lexsort((cost, -accuracy))[0])
    if name == "high" or len(names) == 1:
        return names[high]
    dominated = (cost[None, :] <= cost[:, None]) & (accuracy[None, :] >= accuracy[:, None])
    strictly = (cost[None, :] < cost[:, None]) | (accuracy[None, :] > accuracy[:, None])
    on_frontier = ~np.any(dominated & strictly, axis=1)
    candidates = [i for i in np.flatnonzero(on_frontier) if i != high] or [i for i in range(len(names)) if i != high]
    gain_per_second = [(accuracy[i] - base_accuracy) / max(cost[i], 1e-9) for i in candidates]
    return names[candidates[int(np.argmax(gain_per_second))]]
