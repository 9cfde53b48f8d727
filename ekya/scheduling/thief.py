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
        extra_starts: also steal from two more starting allocations (every inference job at
            what its best configuration needs, or at the least share that meets aMIN, with the
            rest split over training jobs) and keep the best result; the paper starts from the
            fair allocation only.
        allowed_configs: restrict pending streams to these retraining configurations
            (used by the Ekya-FixedConfig ablation); None allows all.
    """

    name = "thief"

    def __init__(self, passes: int = 1, extra_starts: bool = True, allowed_configs: Sequence[str] | None = None) -> None:
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        self.passes = int(passes)
        self.extra_starts = bool(extra_starts)
        self.allowed_configs = tuple(allowed_configs) if allowed_configs is not None else None

    def schedule(self, problem: Problem) -> Decision:
        if self.allowed_configs is not None:
            problem = restrict_retrain_configs(problem, self.allowed_configs)
        models = stream_models(problem)
        inference_units, train_units = _allocate(problem, models, self.passes, self.extra_starts)
        delta = problem.delta
        return build_decision(
            problem,
            [units * delta for units in inference_units],
            [units * delta for units in train_units],
            models=models,
        )


class _ValueTable:
    """Lazily computed per-stream values V_s(inference units, training units), memoised.

    Missing entries are computed in one vectorised call per request.
    """

    def __init__(self, problem: Problem, models: Sequence[StreamAccuracyModel]) -> None:
        self.delta = problem.delta
        self.models = models
        self.values: list[dict[tuple[int, int], float]] = [{} for _ in models]

    def path(self, stream: int, pairs: list[tuple[int, int]]) -> list[float]:
        known = self.values[stream]
        missing = [pair for pair in pairs if pair not in known]
        if missing:
            units = np.array(missing, dtype=float) * self.delta
            computed = self.models[stream].choose(units[:, 0], units[:, 1]).value.tolist()
            known.update(zip(missing, computed))
        return [known[pair] for pair in pairs]


def _steal(problem: Problem, table: "_ValueTable", job_stream: list[int], allocation: list[int], passes: int) -> list[int]:
    """Algorithm 1 on the Δ grid from ``allocation`` (units per job); returns the final allocation.

    A thief stealing from a victim walks a path of m = 1, 2, ... quanta until the victim has
    none left and keeps the best point strictly better than where it started. For jobs of two
    different streams the value of a point is the thief stream's gain plus the victim stream's
    loss; both paths are memoised per job until that job's stream changes.
    """
    allocation = list(allocation)
    streams = len(problem.streams)
    jobs = len(job_stream)
    train_job = {job_stream[j]: j for j in range(streams, jobs)}
    version = [0] * streams
    # job -> (stream version, value changes when the job gains (or loses) m = 0, 1, ... quanta)
    gain_paths: dict[int, tuple[int, list[float]]] = {}
    loss_paths: dict[int, tuple[int, list[float]]] = {}

    def pairs(job: int, changes: range) -> list[tuple[int, int]]:
        stream = job_stream[job]
        inference = allocation[stream]
        training = allocation[train_job[stream]] if stream in train_job else 0
        if job < streams:
            return [(inference + m, training) for m in changes]
        return [(inference, training + m) for m in changes]

    def change_path(job: int, steps: int, sign: int) -> list[float]:
        cache = gain_paths if sign > 0 else loss_paths
        stream = job_stream[job]
        cached = cache.get(job)
        if cached is None or cached[0] != version[stream] or len(cached[1]) <= steps:
            longest = max(steps, max(allocation)) if sign > 0 else allocation[job]
            values = table.path(stream, pairs(job, range(0, sign * (longest + 1), sign)))
            cached = (version[stream], [v - values[0] for v in values])
            cache[job] = cached
        return cached[1]

    for _ in range(passes):
        improved = False
        for thief in range(jobs):
            thief_stream = job_stream[thief]
            for victim in range(jobs):
                steps = allocation[victim]
                if thief == victim or steps == 0:
                    continue
                victim_stream = job_stream[victim]
                if thief_stream == victim_stream:
                    inference, training = pairs(thief, range(1))[0]
                    into_inference = 1 if thief < streams else -1
                    path = [(inference + into_inference * m, training - into_inference * m) for m in range(steps + 1)]
                    values = table.path(thief_stream, path)
                    gains = [v - values[0] for v in values]
                else:
                    thief_gain = change_path(thief, steps, +1)
                    victim_loss = change_path(victim, steps, -1)
                    gains = [thief_gain[m] + victim_loss[m] for m in range(steps + 1)]
                best_steps, best_gain = 0, _IMPROVEMENT
                for m in range(1, steps + 1):
                    if gains[m] > best_gain:
                        best_steps, best_gain = m, gains[m]
                if best_steps:
                    allocation[thief] += best_steps
                    allocation[victim] -= best_steps
                    version[thief_stream] += 1
                    version[victim_stream] += 1
                    improved = True
        if not improved:
            break
    return allocation


def _jobs(problem: Problem) -> list[int]:
    """The stream of each job: one inference job per stream, then a training job per stream that may retrain."""
    streams = len(problem.streams)
    return list(range(streams)) + [s for s in range(streams) if problem.streams[s].retrain_names]


def _fair_start(units: int, jobs: int) -> list[int]:
    """G split evenly over the jobs in quanta; the remainder to the first jobs (inference first)."""
    allocation = [units // jobs] * jobs
    for job in range(units % jobs):
        allocation[job] += 1
    return allocation


def _inference_first_start(problem: Problem, models: Sequence[StreamAccuracyModel], job_stream: list[int], minimal: bool) -> list[int]:
    """Every inference job gets what its best configuration needs (``minimal``: the least share
    that meets aMIN, at least one quantum), scaled down to fit; the rest is split evenly over
    the training jobs."""
    streams, units = len(problem.streams), problem.units
    needs = []
    for model in models:
        quality, _ = model.inference_quality(np.arange(units + 1) * problem.delta)
        if minimal:
            meets = model.stream.serving_accuracy * quality >= problem.min_accuracy - 1e-12
            needs.append(max(1, int(np.argmax(meets))) if meets.any() else units)
        else:
            needs.append(int(np.argmax(quality >= quality[-1] - 1e-12)))
    total = sum(needs)
    if total > units:
        needs = [need * units // total for need in needs]
    allocation = needs + [0] * (len(job_stream) - streams)
    left = units - sum(needs)
    trainers = len(job_stream) - streams
    for k in range(trainers):
        allocation[streams + k] = left // trainers + (1 if k < left % trainers else 0)
    return allocation


def _allocate(problem: Problem, models: Sequence[StreamAccuracyModel], passes: int, extra_starts: bool) -> tuple[list[int], list[int]]:
    """Inference and training units per stream: the best allocation the stealing reaches."""
    table = _ValueTable(problem, models)
    job_stream = _jobs(problem)
    streams = len(problem.streams)
    train_job = {job_stream[j]: j for j in range(streams, len(job_stream))}

    def split(allocation: list[int]) -> tuple[list[int], list[int]]:
        return allocation[:streams], [allocation[train_job[s]] if s in train_job else 0 for s in range(streams)]

    def value(allocation: list[int]) -> float:
        inference, training = split(allocation)
        return sum(table.path(s, [(inference[s], training[s])])[0] for s in range(streams))

    starts = [_fair_start(problem.units, len(job_stream))]
    if extra_starts and len(job_stream) > streams:
        starts += [_inference_first_start(problem, models, job_stream, minimal) for minimal in (False, True)]
    best, best_value = None, -np.inf
    for start in starts:
        allocation = _steal(problem, table, job_stream, start, passes)
        candidate = value(allocation)
        if candidate > best_value + _IMPROVEMENT:
            best, best_value = allocation, candidate
    return split(best)
