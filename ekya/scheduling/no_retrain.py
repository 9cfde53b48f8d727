"""Inference only: no stream retrains."""

from __future__ import annotations

from typing import Sequence

from ekya.scheduling.accuracy_model import StreamAccuracyModel
from ekya.scheduling.base import Scheduler, build_decision, equal_stream_shares
from ekya.scheduling.problem import Decision, Problem


def no_retrain_decision(problem: Problem, models: Sequence[StreamAccuracyModel] | None = None) -> Decision:
    """No retraining's decision: every stream's inference job gets G/N (GPU share), no training job."""
    count = len(problem.streams)
    return build_decision(problem, [equal_stream_shares(problem)] * count, [0.0] * count, [None] * count, models=models)


class NoRetrainScheduler(Scheduler):
    """No retraining: every stream's inference job gets an equal share G/N of the box."""

    name = "no_retrain"

    def schedule(self, problem: Problem) -> Decision:
        return no_retrain_decision(problem)
