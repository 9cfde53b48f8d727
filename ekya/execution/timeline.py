"""Playing one window: the scheduler decides, jobs run, completions swap models and trigger re-plans.

The scheduler sees a :class:`~ekya.scheduling.problem.Problem` built from *estimates*
(profiles); what actually happens comes from :class:`StreamOutcomes` (a profile trace
replayed by the simulator, or jobs the local executor really runs). Jobs progress and streams
serve as :mod:`ekya.scheduling.dynamics` says, the same model the schedulers estimate with.
The window timeline itself is described in docs/window_model.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Protocol

import numpy as np

from ekya.execution.placement import INFERENCE, TRAIN, Placement
from ekya.scheduling.base import Scheduler
from ekya.scheduling.dynamics import (
    completion_times,
    finished_stream,
    finishes_by,
    instantaneous_accuracy,
    running_stream,
    trained_gpu_seconds,
    training_from,
)
from ekya.scheduling.problem import Decision, Problem, StreamProblem


@dataclass(frozen=True)
class RetrainedModel:
    """What one retraining job really costs and yields.

    Attributes:
        gpu_seconds: its true cost, GPU-seconds at 100% of one GPU.
        accuracy: true accuracy on this window of the model it produces (fraction).
    """

    gpu_seconds: float
    accuracy: float


class StreamOutcomes(Protocol):
    """What really happens for one stream in a window: the executor's side of the timeline.

    Attributes:
        serving_accuracy: true accuracy of the model serving at the window start, on this window.
    """

    serving_accuracy: float

    def retrain(self, config: str) -> RetrainedModel:
        """Run the retraining job ``config`` (or look up its outcome); called when the timeline starts it."""

    def inference(self, config: str) -> tuple[float, float]:
        """The inference configuration's true GPU demand (share) and accuracy factor."""

    def cached(self, name: str) -> float:
        """True accuracy on this window of the cached model ``name`` (one the scheduler was offered)."""


@dataclass(frozen=True)
class KnownOutcomes:
    """Outcomes known before the window is played (a trace's rows, a test's table).

    Attributes:
        serving_accuracy: true accuracy of the model serving at the window start, on this window.
        retrain_gpu_seconds: true cost of each retraining configuration, GPU-seconds at 100% of one GPU.
        retrain_accuracy: true accuracy on this window of the model each configuration produces.
        inference_demand: true GPU share each inference configuration needs.
        inference_factor: true accuracy multiplier of each inference configuration.
        cached_accuracy: true accuracy on this window of each cached model offered.
    """

    serving_accuracy: float
    retrain_gpu_seconds: Mapping[str, float]
    retrain_accuracy: Mapping[str, float]
    inference_demand: Mapping[str, float]
    inference_factor: Mapping[str, float]
    cached_accuracy: Mapping[str, float] = field(default_factory=dict)

    def retrain(self, config: str) -> RetrainedModel:
        return RetrainedModel(float(self.retrain_gpu_seconds[config]), float(self.retrain_accuracy[config]))

    def inference(self, config: str) -> tuple[float, float]:
        return float(self.inference_demand[config]), float(self.inference_factor[config])

    def cached(self, name: str) -> float:
        return float(self.cached_accuracy[name])


@dataclass(frozen=True)
class StreamProfile:
    """One stream at the start of one window: what the scheduler sees, what really happens, and what it cost.

    Attributes:
        believed: the stream as the scheduler sees it (estimates).
        outcomes: what really happens (measured, possibly lazily).
        overhead_gpu_seconds: GPU-seconds spent before scheduling, by kind (``labeling``, ``profile``).
    """

    believed: StreamProblem
    outcomes: StreamOutcomes
    overhead_gpu_seconds: dict[str, float]


@dataclass(frozen=True)
class StreamSegment:
    """One stream between two re-plans: its configurations, shares and true accuracy (fraction)."""

    retrain_config: str | None
    train_share: float
    inference_config: str
    inference_share: float
    accuracy: float
    train_gpu: int | None = None
    inference_gpu: int | None = None


@dataclass(frozen=True)
class Segment:
    """An interval [start, end) seconds of the window with constant shares."""

    start: float
    end: float
    streams: tuple[StreamSegment, ...]


@dataclass
class WindowOutcome:
    """The result of playing one window.

    Attributes:
        accuracy: per stream, true time-averaged accuracy over [0, T].
        estimated_accuracy: per stream, the first decision's estimate over [0, T].
        segments: the timeline.
        retrained: per stream, the configuration whose model finished this window, or None.
        adopted: per stream, the cached model it switched to at the window start, or None.
        finish_seconds: per stream, when that model started serving (None if not retrained).
        gpu_seconds_train: GPU share x seconds given to training jobs while they could progress.
        gpu_seconds_inference: GPU share x seconds given to inference jobs.
        schedule_seconds: wall seconds of the window's first scheduler call.
        schedule_seconds_total: wall seconds of all scheduler calls of the window.
        decisions: number of scheduler calls.
        placed: whether decisions were placed on physical GPUs (``executor.placement=per_gpu``).
        placement_repairs: jobs whose share the placement changed, summed over the window's decisions.
    """

    accuracy: list[float]
    estimated_accuracy: list[float]
    segments: list[Segment] = field(default_factory=list)
    retrained: list[str | None] = field(default_factory=list)
    adopted: list[str | None] = field(default_factory=list)
    finish_seconds: list[float | None] = field(default_factory=list)
    gpu_seconds_train: float = 0.0
    gpu_seconds_inference: float = 0.0
    schedule_seconds: float = 0.0
    schedule_seconds_total: float = 0.0
    decisions: int = 0
    placed: bool = False
    placement_repairs: int = 0

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracy)) if self.accuracy else 0.0

    @property
    def estimated_mean_accuracy(self) -> float:
        return float(np.mean(self.estimated_accuracy)) if self.estimated_accuracy else 0.0


def _check_decision(problem: Problem, decision: Decision, scheduler: Scheduler) -> None:
    if len(decision.streams) != len(problem.streams):
        raise RuntimeError(f"scheduler {scheduler.name} returned {len(decision.streams)} decisions for {len(problem.streams)} streams")
    if decision.total_share > problem.gpus + 1e-6:
        raise RuntimeError(f"scheduler {scheduler.name} allocated {decision.total_share:.4f} GPUs of {problem.gpus}")
    for stream, choice in zip(problem.streams, decision.streams):
        if choice.train_share < -1e-12 or choice.inference_share < -1e-12:
            raise RuntimeError(f"scheduler {scheduler.name} gave stream {stream.name} a negative share")


def play_window(
    problem: Problem,
    scheduler: Scheduler,
    outcomes: list[StreamOutcomes],
    clock: Callable[[], float] = time.perf_counter,
    first_decision: tuple[Decision, float] | None = None,
    placement: Callable[[Decision], Placement] | None = None,
) -> WindowOutcome:
    """Run one window from ``problem.now`` (normally 0) to its end.

    Args:
        problem: the window as the scheduler sees it (estimated costs and accuracies).
        scheduler: the policy.
        outcomes: per stream, what really happens.
        clock: wall clock for the scheduler's decision time, seconds.
        first_decision: the scheduler's decision for ``problem`` and the seconds it took, when
            already made (see :func:`timed_schedule`); otherwise it is made here.
        placement: places each decision on physical GPUs before it runs (``ekya.execution.placement``);
            None: the pooled shares run as the scheduler gave them.
    """
    window = problem.window_seconds
    serving = [o.serving_accuracy for o in outcomes]
    # The job each stream has started, by stream index: its true outcome and remaining work (GPU-seconds),
    # and the total cost the scheduler believed when it started.
    started_jobs: dict[int, RetrainedModel] = {}
    true_remaining: dict[int, float] = {}
    estimated_total: dict[int, float] = {}
    integral = [0.0] * len(outcomes)
    retrained: list[str | None] = [None] * len(outcomes)
    finish_seconds: list[float | None] = [None] * len(outcomes)
    result = WindowOutcome(accuracy=[], estimated_accuracy=[], placed=placement is not None)
    gpus_of: list[tuple[int | None, int | None]] = [(None, None)] * len(outcomes)

    def placed(decision: Decision) -> Decision:
        nonlocal gpus_of
        if placement is None:
            return decision
        where = placement(decision)
        result.placement_repairs += where.repairs
        gpus_of = [(where.gpu_of(s, TRAIN), where.gpu_of(s, INFERENCE)) for s in range(len(outcomes))]
        return where.decision

    def decide(current: Problem, previous: Decision | None, finished: list[int]) -> Decision:
        started = clock()
        decision = scheduler.schedule(current) if previous is None else scheduler.reallocate(current, previous, finished)
        elapsed = clock() - started
        if previous is None:
            result.schedule_seconds = elapsed
        result.schedule_seconds_total += elapsed
        result.decisions += 1
        _check_decision(current, decision, scheduler)
        return placed(decision)

    current = problem
    if first_decision is None:
        decision = decide(current, None, [])
    else:
        decision, seconds = first_decision
        _check_decision(current, decision, scheduler)
        result.schedule_seconds = result.schedule_seconds_total = seconds
        result.decisions = 1
        decision = placed(decision)
    result.estimated_accuracy = list(decision.estimated_accuracy)
    # Cached models the first decision chose serve from its start; they are offered at the window start only.
    result.adopted = [choice.serving_model for choice in decision.streams]
    for s, (stream, name) in enumerate(zip(current.streams, result.adopted)):
        if name is not None:
            if name not in stream.cached_names:
                raise RuntimeError(f"scheduler {scheduler.name} switched stream {stream.name} to {name!r}, not one of its cached models")
            serving[s] = outcomes[s].cached(name)
    current = adopt_cached(current, result.adopted)
    while True:
        now = current.now
        speeds = problem.scaling(np.array([d.train_share for d in decision.streams]))
        training = [
            s for s, choice in enumerate(decision.streams)
            if choice.retrain_config is not None and choice.train_share > 0 and speeds[s] > 0
        ]
        finish = [np.inf] * len(outcomes)
        for s in training:
            name = decision.streams[s].retrain_config
            if s not in started_jobs:
                started_jobs[s] = outcomes[s].retrain(name)
                true_remaining[s] = started_jobs[s].gpu_seconds
                stream = current.streams[s]
                estimated_total[s] = float(stream.retrain_gpu_seconds[stream.retrain_names.index(name)])
            finish[s] = float(completion_times(current, true_remaining[s], speeds[s]))
        until = min(min(finish), window)
        stream_segments = []
        for s, choice in enumerate(decision.streams):
            demand, factor = outcomes[s].inference(choice.inference_config)
            accuracy = instantaneous_accuracy(serving[s], choice.inference_share, demand, factor)
            integral[s] += accuracy * (until - now)
            stream_segments.append(
                StreamSegment(choice.retrain_config, choice.train_share, choice.inference_config, choice.inference_share, accuracy,
                              *gpus_of[s])
            )
            result.gpu_seconds_inference += choice.inference_share * (until - now)
            if choice.retrain_config is not None and choice.train_share > 0:
                result.gpu_seconds_train += choice.train_share * max(0.0, until - training_from(current))
        result.segments.append(Segment(now, until, tuple(stream_segments)))
        finished = []
        for s in training:
            true_remaining[s] -= trained_gpu_seconds(current, float(speeds[s]), until)
            if finishes_by(finish[s], until):
                finished.append(s)
        if until >= window - 1e-9:
            break
        for s in finished:
            name = decision.streams[s].retrain_config
            serving[s] = started_jobs[s].accuracy
            retrained[s], finish_seconds[s] = name, until
            del started_jobs[s], true_remaining[s], estimated_total[s]
        current = _believed_problem(current, decision, started_jobs, true_remaining, estimated_total, finished, until)
        decision = decide(current, decision, finished)
    result.accuracy = [value / window for value in integral]
    result.retrained, result.finish_seconds = retrained, finish_seconds
    return result


def timed_schedule(problem: Problem, scheduler: Scheduler, clock: Callable[[], float] = time.perf_counter) -> tuple[Decision, float]:
    """The scheduler's first decision for a window and its wall time in seconds."""
    started = clock()
    decision = scheduler.schedule(problem)
    return decision, clock() - started


def outcome_record(outcome: WindowOutcome, stream_names: list[str]) -> dict:
    """A JSON-able record of a played window: per stream accuracy, estimate, and the timeline."""
    return {
        "streams": {
            name: {
                "accuracy": outcome.accuracy[s],
                "estimated_accuracy": outcome.estimated_accuracy[s],
                "retrained": outcome.retrained[s],
                "adopted": outcome.adopted[s] if outcome.adopted else None,
                "finish_seconds": outcome.finish_seconds[s],
            }
            for s, name in enumerate(stream_names)
        },
        "segments": [
            {
                "start_seconds": segment.start,
                "end_seconds": segment.end,
                "streams": {
                    name: {
                        "retrain_config": part.retrain_config,
                        "train_share": part.train_share,
                        "inference_config": part.inference_config,
                        "inference_share": part.inference_share,
                        "accuracy": part.accuracy,
                        **({"train_gpu": part.train_gpu, "inference_gpu": part.inference_gpu} if outcome.placed else {}),
                    }
                    for name, part in zip(stream_names, segment.streams)
                },
            }
            for segment in outcome.segments
        ],
        "decisions": outcome.decisions,
        "schedule_seconds": outcome.schedule_seconds,
        "schedule_seconds_total": outcome.schedule_seconds_total,
        **({"placement_repairs": outcome.placement_repairs} if outcome.placed else {}),
    }


def adopt_cached(problem: Problem, adopted: list[str | None]) -> Problem:
    """``problem`` once each stream switched to its ``adopted`` cached model (None: kept its own): that model
    serves (its estimated accuracy), and no cached model is offered any more."""
    if not problem.has_cached:
        return problem
    streams = []
    for stream, name in zip(problem.streams, adopted):
        if name is not None:
            stream = replace(stream, serving_accuracy=float(stream.cached_accuracy[stream.cached_names.index(name)]))
        streams.append(stream.without_cached())
    return replace(problem, streams=tuple(streams))


def _believed_problem(
    current: Problem,
    decision: Decision,
    started_jobs: dict[int, RetrainedModel],
    true_remaining: dict[int, float],
    estimated_total: dict[int, float],
    finished: list[int],
    until: float,
) -> Problem:
    """What the scheduler knows at ``until``: finished streams serve their new model (estimated
    accuracy), part-way jobs keep their configuration with the estimated cost scaled by the
    true fraction of work left."""
    streams: list[StreamProblem] = []
    for s, (stream, choice) in enumerate(zip(current.streams, decision.streams)):
        name = choice.retrain_config
        if s in finished:
            streams.append(finished_stream(stream, stream.retrain_names.index(name)))
        elif s in started_jobs and name in stream.retrain_names:
            true_total = started_jobs[s].gpu_seconds
            left_fraction = true_remaining[s] / true_total if true_total > 0 else 0.0
            remaining = estimated_total[s] * max(left_fraction, 0.0)
            streams.append(running_stream(stream, stream.retrain_names.index(name), remaining))
        else:
            streams.append(stream)
    return replace(current, streams=tuple(streams), now=until)
