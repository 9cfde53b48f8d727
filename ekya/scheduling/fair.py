"""The fair scheduler: equal shares for every job."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ekya.scheduling.accuracy_model import StreamAccuracyModel
from ekya.scheduling.base import Scheduler, build_decision, even_reallocation
from ekya.scheduling.problem import Decision, Problem


def fair_decision(problem: Problem, models: Sequence[StreamAccuracyModel] | None = None) -> Decision:
    """Fair's decision: G split evenly over every job (GPU share), each training job on its most accurate configuration."""
    jobs = len(problem.streams) + sum(1 for s in problem.streams if s.retrain_names)
    share = problem.gpus / jobs
    train = [share if s.retrain_names else 0.0 for s in problem.streams]
    configs = [s.retrain_names[int(np.argmax(s.retrain_accuracy))] if s.retrain_names else None for s in problem.streams]
    return build_decision(problem, [share] * len(problem.streams), train, configs, models=models)


class FairScheduler(Scheduler):
    """Fair: every job (inference and training) gets an equal share of G; highest-accuracy configs.

    The Ekya seed implementation's "Fair scheduler". Each stream that may retrain runs the
    retraining configuration with the highest profiled accuracy, whatever it costs. When a
    training job finishes, its share is split evenly over the remaining jobs.
    """

    name = "fair"

    def schedule(self, problem: Problem) -> Decision:
        return fair_decision(problem)

    def reallocate(self, problem: Problem, previous: Decision, finished: Sequence[int]) -> Decision:
        return even_reallocation(problem, previous, finished)
