"""Ekya's thief scheduler: the paper's Algorithm 1 and an improved variant that never loses to a baseline."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ekya.scheduling.accuracy_model import StreamAccuracyModel
from ekya.scheduling.base import Scheduler, build_decision, restrict_retrain_configs, stream_models
from ekya.scheduling.fair import fair_decision
from ekya.scheduling.fixed_res import fixed_res_decision
from ekya.scheduling.no_retrain import no_retrain_decision
from ekya.scheduling.problem import Decision, Problem
from ekya.scheduling.uniform import UNIFORM_INFERENCE_SHARES, uniform_decision

_IMPROVEMENT = 1e-12

#: ``scheduler.variant``: ``improved`` (the default) or ``paper`` (Algorithm 1 on the Δ grid from its own starts).
VARIANTS = ("improved", "paper")

#: Improved variant's quantum q = Δ / k (GPU share), k the least integer such that q is at most the smallest
#: inference demand of any stream divided by ``QUANTA_PER_DEMAND`` and at most the fair share G / jobs divided by
#: ``MIN_QUANTA_PER_JOB``; but q stays at least G / jobs / ``MAX_QUANTA_PER_JOB`` (bounds the decision time).
QUANTA_PER_DEMAND = 4
MIN_QUANTA_PER_JOB = 4
MAX_QUANTA_PER_JOB = 64

#: Shares (GPU share) are memoised on a grid of 1e-12 GPU.
_KEY_SCALE = 1e12
#: Shares (GPU share) below this count as nothing left.
_TINY_SHARE = 1e-12


class ThiefScheduler(Scheduler):
    """Thief scheduler: resource stealing between jobs with PickConfigs.

    Ekya (Bhardwaj et al., NSDI'22), Algorithm 1 with Algorithm 2. Every stream has an inference
    job and, while it may still retrain this window, a training job. From a starting allocation,
    every job in turn (the thief) takes quanta from every other job (the victim) until the victim
    has nothing left, keeping any allocation whose estimated mean window accuracy is higher. The
    value of an allocation is the mean over streams of PickConfigs: per stream the inference
    configuration that makes the most of its share and the retraining configuration that
    maximises its window-averaged accuracy (:mod:`ekya.scheduling.accuracy_model`), with aMIN
    enforced (a penalty per point of shortfall). Re-invoked for the rest of the window whenever a
    training job finishes. Shares are fractions of one GPU; costs GPU-seconds; times seconds.

    Variants (``variant``):

    * ``paper``: Algorithm 1 as the paper states it. Quanta of Δ (``Problem.delta``), starting
      from the fair allocation (G split evenly over the jobs, in quanta of Δ), plus the two
      inference-first starts of ``extra_starts``.
    * ``improved`` (default): never worse, on its own estimate, than the baselines. (a) Its quantum
      fits the problem: q = Δ / k, no coarser than a quarter of the smallest inference demand
      (e.g. 0.0156 GPU) nor a quarter of the fair share G / jobs, bounded below by
      G / jobs / 64 so the decision time stays bounded (:func:`improved_quantum`). (b) Its
      starting allocations include the exact (unrounded) allocations of No retraining, Fair,
      Uniform with every retraining configuration and every inference share of
      ``UNIFORM_INFERENCE_SHARES`` (0.3, 0.5, 0.9; so the ``high``/``low`` aliases too) and
      Ekya-FixedRes with those shares, besides the paper's starts on the q grid. All are valued
      with the same accuracy model; stealing (in quanta of q, or a victim's whole share) starts
      from the best, and the result is checked again: should it be below the best start, the
      best start is returned. Its shares are not multiples of Δ in general. (c) With cached models in
      the problem it also starts from its own allocation for the problem without them, so the model
      cache never makes its estimate worse (at the price of a second allocation).

    Per stream, values of (inference, training) share pairs are memoised, so a steal costs
    table look-ups.

    Args:
        passes: how many times to sweep all (thief, victim) pairs; the paper sweeps once.
            Further sweeps run only while the previous one improved the allocation.
        extra_starts: also consider two more starting allocations (every inference job at
            what its best configuration needs, or at the least share that meets aMIN, with the
            rest split over training jobs) and keep the best; the paper starts from the
            fair allocation only.
        allowed_configs: restrict pending streams to these retraining configurations
            (used by the Ekya-FixedConfig ablation); None allows all.
        variant: ``improved`` or ``paper`` (see above).
    """

    name = "thief"

    def __init__(
        self,
        passes: int = 1,
        extra_starts: bool = True,
        allowed_configs: Sequence[str] | None = None,
        variant: str = "improved",
    ) -> None:
        if passes < 1:
            raise ValueError(f"passes must be >= 1, got {passes}")
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        self.passes = int(passes)
        self.extra_starts = bool(extra_starts)
        self.allowed_configs = tuple(allowed_configs) if allowed_configs is not None else None
        self.variant = variant

    def schedule(self, problem: Problem) -> Decision:
        if self.allowed_configs is not None:
            problem = restrict_retrain_configs(problem, self.allowed_configs)
        models = stream_models(problem)
        if self.variant == "improved":
            extra = []
            if problem.has_cached:  # never worse than without the cache: its allocation is a start too
                plain = problem.without_cached()
                extra.append(_improved_allocate(plain, stream_models(plain), self.passes, self.extra_starts))
            inference, train = _improved_allocate(problem, models, self.passes, self.extra_starts, extra)
            return build_decision(problem, inference, train, models=models)
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
                best_steps = _best_step(gains)
                if best_steps:
                    allocation[thief] += best_steps
                    allocation[victim] -= best_steps
                    version[thief_stream] += 1
                    version[victim_stream] += 1
                    improved = True
        if not improved:
            break
    return allocation


def _best_step(gains: list[float]) -> int:
    """The first m >= 1 whose gain is the largest above ``_IMPROVEMENT`` (0: no step improves)."""
    best_step, best_gain = 0, _IMPROVEMENT
    for m in range(1, len(gains)):
        if gains[m] > best_gain:
            best_step, best_gain = m, gains[m]
    return best_step


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


def _inference_first_start(
    problem: Problem,
    models: Sequence[StreamAccuracyModel],
    job_stream: list[int],
    minimal: bool,
    units: int | None = None,
    quantum: float | None = None,
) -> list[int]:
    """Every inference job gets what its best configuration needs (``minimal``: the least share
    that meets aMIN, at least one quantum), scaled down to fit; the rest is split evenly over
    the training jobs. In ``units`` quanta of ``quantum`` (default: Δ's grid)."""
    streams = len(problem.streams)
    units = problem.units if units is None else units
    quantum = problem.delta if quantum is None else quantum
    needs = []
    for model in models:
        quality, _ = model.inference_quality(np.arange(units + 1) * quantum)
        if minimal:
            meets = model.stream.start_accuracy * quality >= problem.min_accuracy - 1e-12
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


# --- the improved variant: shares as floats (GPU share), quanta of improved_quantum(), baseline starts ---


def improved_quantum(problem: Problem) -> float:
    """The improved thief's quantum q = Δ / k (GPU share); see ``QUANTA_PER_DEMAND``.

    The Δ grid is part of the q grid, so every allocation the paper's variant can reach is one
    the improved variant can too.
    """
    jobs = len(_jobs(problem))
    fair_share = problem.gpus / max(jobs, 1)
    smallest_demand = min(float(np.min(s.inference_demand)) for s in problem.streams)
    target = min(smallest_demand / QUANTA_PER_DEMAND, fair_share / MIN_QUANTA_PER_JOB)
    finest = fair_share / MAX_QUANTA_PER_JOB
    parts = max(1, math.ceil(problem.delta / target - 1e-9))
    parts = max(1, min(parts, math.floor(problem.delta / finest + 1e-9)))
    return problem.delta / parts


class _ShareTable:
    """Per-stream values V_s(inference share, training share), memoised on a 1e-12 GPU grid.

    Missing entries of a path are computed in one vectorised call.
    """

    def __init__(self, models: Sequence[StreamAccuracyModel]) -> None:
        self.models = models
        self.values: list[dict[tuple[int, int], float]] = [{} for _ in models]

    def value(self, stream: int, inference: float, training: float) -> float:
        key = (round(inference * _KEY_SCALE), round(training * _KEY_SCALE))
        known = self.values[stream]
        found = known.get(key)
        if found is None:
            found = float(self.models[stream].choose(np.array([inference]), np.array([training])).value[0])
            known[key] = found
        return found

    def path(self, stream: int, inference: np.ndarray, training: np.ndarray) -> list[float]:
        inference = np.maximum(inference, 0.0)
        training = np.maximum(training, 0.0)
        keys = list(zip(np.rint(inference * _KEY_SCALE).astype(np.int64).tolist(), np.rint(training * _KEY_SCALE).astype(np.int64).tolist()))
        known = self.values[stream]
        missing = [j for j, key in enumerate(keys) if key not in known]
        if missing:
            computed = self.models[stream].choose(inference[missing], training[missing]).value.tolist()
            known.update(zip([keys[j] for j in missing], computed))
        return [known[key] for key in keys]


def _steal_shares(problem: Problem, table: _ShareTable, job_stream: list[int], shares: Sequence[float], quantum: float, passes: int) -> list[float]:
    """Algorithm 1 on shares from ``shares`` (GPU share per job): a thief takes m quanta of ``quantum``
    from a victim, m = 1, 2, ... while the victim has them, or the victim's whole share, and keeps
    the best point strictly better than where it started. Returns the final shares.

    As in :func:`_steal`, the thief's gains and the victim's losses are memoised per job until
    that job's stream changes.
    """
    shares = [float(x) for x in shares]
    streams = len(problem.streams)
    jobs = len(job_stream)
    train_job = {job_stream[j]: j for j in range(streams, jobs)}
    version = [0] * streams
    # job -> (stream version, gains at m = 0, 1, ... quanta, gains at other jobs' whole shares (keyed on 1e-12 GPU))
    gain_paths: dict[int, tuple[int, list[float], dict[int, float]]] = {}
    # job -> (stream version, amounts it can give (0 first), value changes when it gives them, whole quanta)
    loss_paths: dict[int, tuple[int, np.ndarray, list[float], int]] = {}

    def own(stream: int) -> tuple[float, float]:
        return shares[stream], (shares[train_job[stream]] if stream in train_job else 0.0)

    def values_along(job: int, changes: np.ndarray) -> list[float]:
        """Values of ``job``'s stream when ``job``'s share changes by each of ``changes``."""
        stream = job_stream[job]
        inference, training = own(stream)
        if job < streams:
            return table.path(stream, inference + changes, np.full(len(changes), training))
        return table.path(stream, np.full(len(changes), inference), training + changes)

    def gain_path(job: int, steps: int) -> tuple[list[float], dict[int, float]]:
        stream = job_stream[job]
        cached = gain_paths.get(job)
        if cached is None or cached[0] != version[stream] or len(cached[1]) <= steps:
            longest = max(steps, int(max(shares) / quantum + 1e-9))
            # Off-grid whole shares of the other jobs, valued in the same call.
            wholes = sorted({share for other, share in enumerate(shares) if other != job and share > _TINY_SHARE})
            values = values_along(job, np.concatenate([np.arange(longest + 1) * quantum, wholes]))
            gains = [v - values[0] for v in values]
            extra = {round(share * _KEY_SCALE): gain for share, gain in zip(wholes, gains[longest + 1 :])}
            cached = (version[stream], gains[: longest + 1], extra)
            gain_paths[job] = cached
        return cached[1], cached[2]

    def loss_path(job: int) -> tuple[np.ndarray, list[float], int]:
        stream = job_stream[job]
        cached = loss_paths.get(job)
        if cached is None or cached[0] != version[stream]:
            share = shares[job]
            whole = int(share / quantum + 1e-9)
            amounts = np.arange(whole + 1) * quantum
            if share - whole * quantum > _TINY_SHARE:
                amounts = np.append(amounts, share)
            else:
                amounts[-1] = share
            values = values_along(job, -amounts)
            cached = (version[stream], amounts, [v - values[0] for v in values], whole)
            loss_paths[job] = cached
        return cached[1], cached[2], cached[3]

    for _ in range(passes):
        improved = False
        for thief in range(jobs):
            thief_stream = job_stream[thief]
            for victim in range(jobs):
                if thief == victim or shares[victim] <= _TINY_SHARE:
                    continue
                victim_stream = job_stream[victim]
                amounts, victim_loss, whole = loss_path(victim)
                if thief_stream == victim_stream:
                    inference, training = own(thief_stream)
                    if thief < streams:
                        values = table.path(thief_stream, inference + amounts, training - amounts)
                    else:
                        values = table.path(thief_stream, inference - amounts, training + amounts)
                    gains = [v - values[0] for v in values]
                else:
                    thief_gain, whole_gain = gain_path(thief, whole)
                    gains = [thief_gain[m] + victim_loss[m] for m in range(whole + 1)]
                    if len(amounts) > whole + 1:  # the victim's whole share, off the quantum grid
                        share = float(amounts[-1])
                        gain = whole_gain.get(round(share * _KEY_SCALE))
                        if gain is None:
                            inference, training = own(thief_stream)
                            after = table.value(thief_stream, inference + share, training) if thief < streams else table.value(thief_stream, inference, training + share)
                            gain = after - table.value(thief_stream, inference, training)
                        gains.append(gain + victim_loss[-1])
                best_index = _best_step(gains)
                if best_index:
                    amount = float(amounts[best_index])
                    shares[thief] += amount
                    shares[victim] = 0.0 if best_index == len(amounts) - 1 else max(shares[victim] - amount, 0.0)
                    version[thief_stream] += 1
                    version[victim_stream] += 1
                    improved = True
        if not improved:
            break
    return shares


def _representative_configs(problem: Problem) -> list[str]:
    """One retraining configuration per distinct Uniform allocation: configurations that the same streams
    can train on give Uniform the same shares (PickConfigs then values them alike)."""
    names = list(dict.fromkeys(name for stream in problem.streams for name in stream.retrain_names))
    open_to = [set(stream.retrain_names) for stream in problem.streams]
    seen: dict[tuple[bool, ...], str] = {}
    for name in names:
        trains = tuple(stream.running or name in allowed for stream, allowed in zip(problem.streams, open_to))
        seen.setdefault(trains, name)
    return list(seen.values())


def baseline_decisions(problem: Problem, models: Sequence[StreamAccuracyModel] | None = None) -> list[Decision]:
    """The decisions of the baselines the improved thief starts from: No retraining, Fair, Uniform for every
    retraining configuration (one per distinct allocation) and share of ``UNIFORM_INFERENCE_SHARES``,
    and Ekya-FixedRes for those shares."""
    models = list(models) if models is not None else stream_models(problem)
    decisions = [no_retrain_decision(problem, models), fair_decision(problem, models)]
    for share in UNIFORM_INFERENCE_SHARES:
        decisions += [uniform_decision(problem, name, share, models) for name in _representative_configs(problem)]
        decisions.append(fixed_res_decision(problem, share, models))
    return decisions


def _improved_allocate(problem: Problem, models: Sequence[StreamAccuracyModel], passes: int, extra_starts: bool,
                       more_starts: Sequence[tuple[list[float], list[float]]] = ()) -> tuple[list[float], list[float]]:
    """Inference and training shares per stream (GPU share): the best of the starts (``more_starts`` among them,
    as inference and training shares per stream), improved by stealing."""
    table = _ShareTable(models)
    job_stream = _jobs(problem)
    streams = len(problem.streams)
    train_job = {job_stream[j]: j for j in range(streams, len(job_stream))}
    quantum = improved_quantum(problem)

    def split(shares: Sequence[float]) -> tuple[list[float], list[float]]:
        return list(shares[:streams]), [shares[train_job[s]] if s in train_job else 0.0 for s in range(streams)]

    def job_shares(inference_shares: Sequence[float], train_shares: Sequence[float]) -> list[float]:
        """Per-stream shares as shares per job (a training share of a stream with no training job goes to its inference)."""
        shares = [float(x) for x in inference_shares] + [0.0] * (len(job_stream) - streams)
        for s in range(streams):
            if s in train_job:
                shares[train_job[s]] = train_shares[s]
            else:
                shares[s] += train_shares[s]
        return shares

    starts = [job_shares([d.inference_share for d in decision.streams], [d.train_share for d in decision.streams])
              for decision in baseline_decisions(problem, models)]
    # The paper's stealing from its fair start on the Δ grid: a good coarse point to refine.
    inference_units, train_units = _allocate(problem, models, passes, extra_starts=False)
    starts.append([u * problem.delta for u in inference_units] + [train_units[job_stream[j]] * problem.delta for j in range(streams, len(job_stream))])
    if extra_starts and len(job_stream) > streams:  # the paper's inference-first starts, on the q grid
        units = int(math.floor(problem.gpus / quantum + 1e-9))
        starts += [[u * quantum for u in _inference_first_start(problem, models, job_stream, minimal, units, quantum)] for minimal in (False, True)]

    starts += [job_shares(inference_shares, train_shares) for inference_shares, train_shares in more_starts]
    start_values = _values_of(table, starts, split)
    best = int(np.argmax(start_values))
    stolen = _steal_shares(problem, table, job_stream, starts[best], quantum, passes)
    if _values_of(table, [stolen], split)[0] < start_values[best]:
        return split(starts[best])
    return split(stolen)


def _values_of(table: _ShareTable, allocations: list[list[float]], split) -> list[float]:
    """Total value (sum over streams) of each allocation (shares per job), one vectorised call per stream."""
    pairs = [split(allocation) for allocation in allocations]
    totals = np.zeros(len(allocations))
    for s in range(len(table.models)):
        inference = np.array([p[0][s] for p in pairs])
        training = np.array([p[1][s] for p in pairs])
        totals += np.array(table.path(s, inference, training))
    return totals.tolist()
