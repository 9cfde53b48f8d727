"""Ablation Ekya-FixedRes: the thief's configuration choice with Uniform's resource split."""

from __future__ import annotations

from typing import Sequence

from ekya.scheduling.accuracy_model import StreamAccuracyModel
from ekya.scheduling.base import Scheduler, build_decision, even_reallocation
from ekya.scheduling.problem import Decision, Problem
from ekya.scheduling.uniform import check_inference_share, split_stream_share


def fixed_res_decision(problem: Problem, inference_share: float, models: Sequence[StreamAccuracyModel] | None = None) -> Decision:
    """Ekya-FixedRes's decision: Uniform's split of G/N by ``inference_share``, PickConfigs' configurations."""
    inference, train = split_stream_share(problem, check_inference_share(inference_share))
    return build_decision(problem, inference, train, models=models)


class FixedResScheduler(Scheduler):
    """Ekya-FixedRes (the paper's Figure 10a): Uniform's fixed shares, PickConfigs' configurations.

    Every stream gets G/N, ``inference_share`` of it for inference; the retraining and
    inference configurations are the ones PickConfigs picks for those shares. Finished jobs'
    shares are split evenly over the remaining jobs, as Uniform does.

    Args:
        inference_share: fraction of each stream's share given to inference, in (0, 1].
    """

    name = "fixed_res"

    def __init__(self, inference_share: float = 0.5) -> None:
        self.inference_share = check_inference_share(inference_share)

    def schedule(self, problem: Problem) -> Decision:
        return fixed_res_decision(problem, self.inference_share)

    def reallocate(self, problem: Problem, previous: Decision, finished: Sequence[int]) -> Decision:
        return even_reallocation(problem, previous, finished)
