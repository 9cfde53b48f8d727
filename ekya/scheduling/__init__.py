"""Scheduling: the window accuracy model, the thief, every baseline and the exact optimum.

Pure: no I/O, no clock, no Prefect or Hydra. Every policy takes a
:class:`~ekya.scheduling.problem.Problem` and returns a :class:`~ekya.scheduling.problem.Decision`.
"""

from ekya.scheduling.base import Scheduler
from ekya.scheduling.problem import Decision, Problem, StreamDecision, StreamProblem, linear_scaling
from ekya.scheduling.registry import SCHEDULERS, build_scheduler

__all__ = [
    "SCHEDULERS",
    "Decision",
    "Problem",
    "Scheduler",
    "StreamDecision",
    "StreamProblem",
    "build_scheduler",
    "linear_scaling",
]
