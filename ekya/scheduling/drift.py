"""Drift-triggered retraining: a policy option that wraps any scheduler.

Retraining every stream in every window spends GPU time on streams whose model still fits their
data. :class:`RetrainOnDrift` hides the retraining configurations of every stream that has not
drifted, so the wrapped policy gives their share to inference and to the streams that have (after
EOMU, ACM MM'23). A stream has drifted when the estimated accuracy of its serving model has fallen
by at least ``threshold`` accuracy points since that model started serving
(:attr:`~ekya.scheduling.problem.StreamProblem.drift_points`, set by the window loop); a stream
whose drift is unknown (its first window) counts as drifted, and a job already part-way keeps going.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from ekya.scheduling.base import Scheduler
from ekya.scheduling.problem import Decision, Problem, StreamProblem


def drifted(stream: StreamProblem, threshold: float) -> bool:
    """Whether ``stream`` may retrain: its drift is unknown, at least ``threshold`` points, or its job is part-way."""
    return stream.running or stream.drift_points is None or stream.drift_points >= threshold - 1e-9


def gate_retraining(problem: Problem, threshold: float) -> Problem:
    """``problem`` with no retraining configuration for the streams that have not drifted by ``threshold`` points."""
    streams = tuple(
        stream if drifted(stream, threshold) or not stream.retrain_names
        else replace(stream, retrain_names=(), retrain_gpu_seconds=np.zeros(0), retrain_accuracy=np.zeros(0))
        for stream in problem.streams
    )
    return replace(problem, streams=streams)


class RetrainOnDrift(Scheduler):
    """``scheduler``, retraining only the streams that drifted by at least ``threshold`` accuracy points.

    Args:
        scheduler: the policy that decides on the gated problem.
        threshold: accuracy points (0-100) the serving model's estimated accuracy must have fallen by.
    """

    def __init__(self, scheduler: Scheduler, threshold: float) -> None:
        if not 0 <= threshold <= 100:
            raise ValueError(f"drift.threshold must be in [0, 100] accuracy points, got {threshold}")
        self.scheduler = scheduler
        self.threshold = float(threshold)
        self.name = scheduler.name

    def schedule(self, problem: Problem) -> Decision:
        return self.scheduler.schedule(gate_retraining(problem, self.threshold))

    def reallocate(self, problem: Problem, previous: Decision, finished: Sequence[int]) -> Decision:
        return self.scheduler.reallocate(gate_retraining(problem, self.threshold), previous, finished)
