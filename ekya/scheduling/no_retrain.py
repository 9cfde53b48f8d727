"""Inference only: no stream retrains."""

from __future__ import annotations

from ekya.scheduling.base import Scheduler, build_decision, equal_stream_shares
from ekya.scheduling.problem import Decision, Problem


class NoRetrainScheduler(Scheduler):
    """No retraining: every stream's inference job gets an equal share G/N of the box."""

    name = "no_retrain"

    def schedule(self, problem: Problem) -> Decision:
        count = len(problem.streams)
        return build_decision(problem, [equal_stream_shares(problem)] * count, [0.0] * count, [None] * count)
