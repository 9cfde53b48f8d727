"""Ekya's thief scheduler."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ekya.scheduling.accuracy_model import StreamAccuracyModel
from ekya.scheduling.base import Scheduler, build_decision, restrict_retrain_configs, stream_models
from ekya.scheduling.problem import Decision, Problem

_IMPROVEMENT = 1e-12


class ThiefScheduler(Scheduler):
    """Thief scheduler: resource stealing between jobs with PickConfigs.

    Ekya (Bhardwaj et al., NSDI'22), Algorithm 1 with Algorithm 2. Every stream has an inference
    job and, while it may still retrain this window, a training job. Starting from a fair
    allocation (G split evenly over the jobs, in quanta of Δ), every job in turn (the thief)
    takes Δ at a time from every other job (the victim) until the victim has nothing left,
    keeping any allocation whose estimated mean window accuracy is higher. The value of an
    allocation is the mean over streams of PickConfigs: per stream the inference configuration
    that makes the most of its share and the retraining configuration that maximises its
    window-averaged accuracy (:mod:`ekya.scheduling.accuracy_model`), with aMIN enforced.
    Re-invoked for the rest of the window whenever a training job finishes.

    Per stream, the value of every (inference units, training units) pair is computed once,
    a row at a time, so a steal costs two table look-ups.

    Args:
        passes: how many times to sweep all (thief, victim) pairs; the paper sweeps once.
            Further sweeps run only while the previous one improved the allocation.
        allowed_configs: restrict pending streams to these retraining configurations
            (used by the Ekya-FixedConfig ablation); None allows all.
    """

    name = "thief"

    def __init__(self, passes: int = 1, allowed_configs: Sequence[str] | None = None) -> None:
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self.passes = int(passes)
        self.allowed_configs = tuple(allowed_configs) if allowed_configs is not None else None

    def schedule(self, problem: Problem) -> Decision:
        if self.allowed_configs is not None:
            problem = restrict_retrain_configs(problem, self.allowed_configs)
        models = stream_models(problem)
        inference_units, train_units = _steal(problem, models, self.passes)
        delta = problem.delta
        return build_decision(
            problem,
            [units * delta for units in inference_units],
            [units * delta for units in train_units],
            models=models,
        )


class _ValueTable:
    """Lazily computed per-stream values V_s[inference units][training units]."""

    def __init__(self, problem: Problem, models: Sequence[StreamAccuracyModel]) -> None:
        self.units = problem.units
        self.delta = problem.delta
        self.models = models
        self.rows: list[dict[int, list[float]]] = [{} for _ in models]

    def value(self, stream: int, inference_units: int, train_units: int) -> float:
        row = self.rows[stream].get(inference_units)
        if row is None:
            train = np.arange(self.units - inference_units + 1) * self.delta
            inference = np.full(len(train), inference_units * self.delta)
            row = self.models[stream].choose(inference, train).value.tolist()
            self.rows[stream][inference_units] = row
        return row[train_units]


def _steal(problem: Problem, models: Sequence[StreamAccuracyModel], passes: int) -> tuple[list[int], list[int]]:
    """Algorithm 1 on the Δ grid; returns inference and training units per stream."""
    table = _ValueTable(problem, models)
    streams = len(problem.streams)
    # Jobs: one inference job per stream, then one training job per stream that may retrain.
    job_stream = list(range(streams)) + [s for s in range(streams) if problem.streams[s].retrain_names]
    jobs = len(job_stream)
    units = problem.units
    allocation = [units // jobs] * jobs
    for job in range(units % jobs):
        allocation[job] += 1
    train_job = {job_stream[j]: j for j in range(streams, jobs)}

    def contribution(alloc: list[int], stream: int) -> float:
        job = train_job.get(stream)
        return table.value(stream, alloc[stream], alloc[job] if job is not None else 0)

    best = allocation
    best_value = sum(contribution(best, s) for s in range(streams))
    for _ in range(passes):
        start_value = best_value
        for thief in range(jobs):
            for victim in range(jobs):
                if thief == victim:
                    continue
                affected = {job_stream[thief], job_stream[victim]}
                reference, reference_value = best, best_value
                temp = list(best)
                while True:
                    temp[victim] -= 1
                    temp[thief] += 1
                    if temp[victim] < 0:
                        break
                    value = reference_value + sum(contribution(temp, s) - contribution(reference, s) for s in affected)
                    if value > best_value + _IMPROVEMENT:
                        best, best_value = list(temp), value
                        reference, reference_value = best, value
        if best_value <= start_value + _IMPROVEMENT:
            break
    inference_units = best[:streams]
    train_units = [best[train_job[s]] if s in train_job else 0 for s in range(streams)]
    return inference_units, train_units
