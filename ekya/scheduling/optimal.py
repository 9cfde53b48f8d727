"""The exact optimum of the scheduling decision space, for small instances."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ekya.errors import EkyaError
from ekya.scheduling.accuracy_model import AMIN_PENALTY
from ekya.scheduling.base import Scheduler, build_decision, stream_models
from ekya.scheduling.dynamics import advance, completion_times
from ekya.scheduling.problem import Decision, Problem, StreamDecision


class InstanceTooLarge(EkyaError):
    """The optimum of this instance cannot be searched within the configured budget."""


@dataclass(frozen=True)
class _Plan:
    total: float  # sum over streams of (accuracy x seconds) minus aMIN penalties, from now to T
    per_stream: tuple[float, ...]  # accuracy x seconds of each stream, from now to T
    inference_units: tuple[int, ...]
    train_units: tuple[int, ...]
    retrain_index: tuple[int, ...]


class OptimalScheduler(Scheduler):
    """Exact optimum over the same decisions the thief makes, with re-planning at each completion.

    Searches every allocation on the Δ grid (inference and training units per stream, every
    retraining configuration or none) for the rest of the window; when a training job finishes,
    it searches again from there, so the value of a decision assumes optimal re-plans. Under
    the window model (:mod:`ekya.scheduling.accuracy_model`) and exact profiles this is the best
    any scheduler can do, which measures the thief's gap. Exact pruning keeps it tractable:
    inference shares beyond what the best inference configuration needs are never searched;
    all leftover units go to training jobs (a job with more share finishes no later); a
    configuration no better than the serving model is never trained; a branch whose upper
    bound cannot beat the best plan found is cut; identical states after a completion are
    solved once.

    Args:
        max_search_size: refuse instances whose estimated number of allocations to examine
            (product over re-plan depths of the allocations at the start) exceeds this.
    """

    name = "optimal"

    def __init__(self, max_search_size: float = 5e7) -> None:
        if not max_search_size > 0:
            raise ValueError(f"max_search_size must be > 0, got {max_search_size}")
        self.max_search_size = float(max_search_size)

    def schedule(self, problem: Problem) -> Decision:
        solver = _Solver(problem)
        size = solver.search_size(problem)
        if size > self.max_search_size:
            raise InstanceTooLarge(
                f"optimal: instance too large to solve exactly ({len(problem.streams)} streams, G={problem.gpus}, "
                f"Δ={problem.delta}: about {size:.2g} allocations to examine, limit {self.max_search_size:.2g}); "
                "use fewer streams or configurations, a larger delta, or raise scheduler.max_search_size"
            )
        plan = solver.solve(problem)
        delta = problem.delta
        decision = build_decision(
            problem,
            [u * delta for u in plan.inference_units],
            [u * delta for u in plan.train_units],
            [problem.streams[s].retrain_names[k] if k >= 0 else None for s, k in enumerate(plan.retrain_index)],
        )
        span = problem.remaining_seconds
        return Decision(
            tuple(
                StreamDecision(d.retrain_config, d.train_share, d.inference_config, d.inference_share, d.serving_model)
                for d in decision.streams
            ),
            tuple(value / span for value in plan.per_stream),
        )


class _Solver:
    def __init__(self, problem: Problem) -> None:
        self.units = problem.units
        self.delta = problem.delta
        self.memo: dict[tuple, _Plan] = {}

    def _stream_options(self, problem: Problem, enforce_min_accuracy: bool) -> list[list[tuple[int, int, float]]]:
        """Per stream: (inference units, retrain index, accuracy of the serving model at that share) candidates.

        With ``enforce_min_accuracy``, inference shares below aMIN are left out for streams that
        can meet it; otherwise they are searched and penalised as in the accuracy model.
        """
        options = []
        for stream, model in zip(problem.streams, stream_models(problem)):
            shares = np.arange(self.units + 1) * self.delta
            quality, _ = model.inference_quality(shares)
            best_quality = quality[-1]
            enough = int(np.argmax(quality >= best_quality - 1e-12))
            rates = stream.start_accuracy * quality
            low = 0
            if enforce_min_accuracy and problem.min_accuracy > 0 and model.can_meet_min_accuracy:
                low = int(np.argmax(rates >= problem.min_accuracy - 1e-12))
            useful = [k for k in range(len(stream.retrain_names)) if stream.retrain_accuracy[k] > stream.start_accuracy + 1e-12]
            options.append([(units, k, float(rates[units])) for units in range(low, enough + 1) for k in [-1] + useful])
        return options

    def search_size(self, problem: Problem) -> float:
        """Allocations at the start times themselves once per possible re-plan (an upper estimate)."""
        options = self._stream_options(problem, enforce_min_accuracy=True)
        depth = sum(1 for stream_options in options if any(o[1] >= 0 for o in stream_options))
        return float(self._count(options)) ** max(1, depth)

    def _count(self, options: list[list[tuple[int, int, float]]]) -> int:
        """Number of allocations at one decision point, by dynamic programming over streams."""
        # ways[(units used by inference, training jobs)] = number of partial combinations
        ways: dict[tuple[int, int], int] = {(0, 0): 1}
        for stream_options in options:
            following: dict[tuple[int, int], int] = {}
            for (used, trainers), count in ways.items():
                for units, retrain_index, _ in stream_options:
                    key = (used + units, trainers + (retrain_index >= 0))
                    if key[0] <= self.units:
                        following[key] = following.get(key, 0) + count
            ways = following
        total = 0
        for (used, trainers), count in ways.items():
            left = self.units - used
            if trainers == 0:
                total += count
            elif left >= trainers:
                total += count * math.comb(left - 1, trainers - 1)
        return total

    def solve(self, problem: Problem) -> _Plan:
        key = self._key(problem)
        if key in self.memo:
            return self.memo[key]
        plan = self._search(problem)
        self.memo[key] = plan
        return plan

    def _key(self, problem: Problem) -> tuple:
        return (
            round(problem.now, 9),
            tuple(
                (round(s.start_accuracy, 12), s.retrain_names, tuple(np.round(s.retrain_gpu_seconds, 9)), s.running)
                for s in problem.streams
            ),
        )

    def _search(self, problem: Problem) -> _Plan:
        plan = self._search_options(problem, self._stream_options(problem, enforce_min_accuracy=True))
        if plan is None:  # aMIN cannot be met by all streams at once: trade shortfalls off
            plan = self._search_options(problem, self._stream_options(problem, enforce_min_accuracy=False))
        if plan is None:
            raise InstanceTooLarge("optimal: no feasible allocation (check gpus and delta)")
        return plan

    def _search_options(self, problem: Problem, options: list[list[tuple[int, int, float]]]) -> _Plan | None:
        count = len(problem.streams)
        best_possible = [
            max([s.start_accuracy] + list(s.retrain_accuracy)) * float(m.inference_quality(np.array([problem.gpus]))[0][0])
            for s, m in zip(problem.streams, stream_models(problem))
        ]
        best: _Plan | None = None
        for combo in itertools.product(*options):
            used = sum(o[0] for o in combo)
            if used > self.units:
                continue
            trainers = [s for s in range(count) if combo[s][1] >= 0]
            left = self.units - used
            if trainers and left < len(trainers):
                continue
            splits = _compositions(left, len(trainers)) if trainers else [()]
            rates = [o[2] for o in combo]
            for split in splits:
                train_units = [0] * count
                for s, units in zip(trainers, split):
                    train_units[s] = units
                finish = np.inf
                for s in trainers:
                    k = combo[s][1]
                    speed = float(problem.scaling(np.array([train_units[s] * self.delta]))[0])
                    finish = min(finish, float(completion_times(problem, problem.streams[s].retrain_gpu_seconds[k], speed)))
                until = min(finish, problem.window_seconds)
                interval = [rate * (until - problem.now) for rate in rates]
                interval_total = sum(interval) - self._penalty(problem, combo) * (until - problem.now)
                upper = interval_total + (problem.window_seconds - until) * sum(best_possible)
                if best is not None and upper <= best.total + 1e-12:
                    continue
                per_stream = list(interval)
                total = interval_total
                if until < problem.window_seconds:
                    decision = self._decision(problem, combo, train_units)
                    child, _ = advance(problem, decision, until)
                    if child is not None:
                        rest = self.solve(child)
                        total += rest.total
                        per_stream = [a + b for a, b in zip(per_stream, rest.per_stream)]
                if best is None or total > best.total + 1e-12:
                    best = _Plan(
                        total,
                        tuple(per_stream),
                        tuple(o[0] for o in combo),
                        tuple(train_units),
                        tuple(o[1] for o in combo),
                    )
        return best

    def _penalty(self, problem: Problem, combo) -> float:
        if problem.min_accuracy <= 0:
            return 0.0
        shortfall = sum(max(0.0, problem.min_accuracy - o[2]) for o in combo)
        return AMIN_PENALTY * shortfall

    def _decision(self, problem: Problem, combo, train_units: list[int]) -> Decision:
        streams = []
        for s, (stream, option) in enumerate(zip(problem.streams, combo)):
            name = stream.retrain_names[option[1]] if option[1] >= 0 else (stream.retrain_names[0] if stream.running else None)
            streams.append(StreamDecision(name, train_units[s] * self.delta, "", option[0] * self.delta))
        return Decision(tuple(streams), tuple(0.0 for _ in streams))


def _compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    """All ways to write ``total`` as an ordered sum of ``parts`` positive integers."""
    if parts == 1:
        return [(total,)]
    return [(first,) + rest for first in range(1, total - parts + 2) for rest in _compositions(total - first, parts - 1)]
