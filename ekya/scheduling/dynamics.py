"""The one job-progress model of the window timeline, shared by the schedulers' estimate, the
exact optimum and the executors' timeline.

Between two re-plans shares are constant. A training job with GPU share r progresses at
``s(r)`` GPU-seconds per second (``Problem.scaling``) once the window's overheads are over
(``Problem.training_start``), and finishes when its remaining cost reaches zero; its model then
serves at once. An inference job with share i running a configuration of demand d and accuracy
factor f serves ``model_accuracy * f * min(1, i / d)``: frames it cannot process count as misses.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ekya.scheduling.problem import Decision, Problem, StreamProblem

#: Seconds: a job whose completion time lies within this of a re-plan finishes at that re-plan.
FINISH_TOLERANCE_SECONDS = 1e-9


def inference_quality(share: np.ndarray | float, demand: np.ndarray | float, factor: np.ndarray | float) -> np.ndarray:
    """Share of the model's accuracy an inference job keeps: ``factor * min(1, share / demand)``
    (broadcast over arrays; shares and demands in GPU share)."""
    return np.minimum(1.0, np.asarray(share, dtype=float) / demand) * factor


def instantaneous_accuracy(model_accuracy: float, share: float, demand: float, factor: float) -> float:
    """Accuracy (fraction) a stream serves at one moment: its model's accuracy times :func:`inference_quality`."""
    return model_accuracy * float(inference_quality(share, demand, factor))


def training_from(problem: Problem) -> float:
    """Seconds since the window start from which training jobs progress in ``problem``."""
    return max(problem.now, problem.training_start)


def completion_times(problem: Problem, remaining_gpu_seconds: np.ndarray | float, speed: np.ndarray | float) -> np.ndarray:
    """Seconds since the window start at which jobs with ``remaining_gpu_seconds`` of work finish at
    throughput ``speed`` (GPU-seconds per second; broadcast); ``inf`` where the speed is 0."""
    speed = np.asarray(speed, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        duration = np.where(speed > 0, np.asarray(remaining_gpu_seconds, dtype=float) / np.where(speed > 0, speed, 1.0), np.inf)
    return training_from(problem) + duration


def trained_gpu_seconds(problem: Problem, speed: float, until: float) -> float:
    """GPU-seconds of work a training job at throughput ``speed`` does between ``problem.now`` and ``until``."""
    return float(speed) * max(0.0, until - training_from(problem))


def finishes_by(completion_time: float, until: float) -> bool:
    """Whether a job completing at ``completion_time`` (seconds) has finished at the re-plan at ``until``."""
    return completion_time <= until + FINISH_TOLERANCE_SECONDS


def finished_stream(stream: StreamProblem, retrain_index: int) -> StreamProblem:
    """The stream once its job with configuration ``retrain_index`` finished: the new model serves, no job left."""
    return replace(
        stream.without_cached(),
        serving_accuracy=float(stream.retrain_accuracy[retrain_index]),
        retrain_names=(),
        retrain_gpu_seconds=np.zeros(0),
        retrain_accuracy=np.zeros(0),
        running=False,
    )


def running_stream(stream: StreamProblem, retrain_index: int, remaining_gpu_seconds: float) -> StreamProblem:
    """The stream with its job part-way: that configuration only, with ``remaining_gpu_seconds`` of work left."""
    return replace(
        stream,
        retrain_names=(stream.retrain_names[retrain_index],),
        retrain_gpu_seconds=np.array([remaining_gpu_seconds]),
        retrain_accuracy=stream.retrain_accuracy[[retrain_index]],
        running=True,
    )


def advance(problem: Problem, decision: Decision, until: float) -> tuple[Problem | None, list[int]]:
    """The problem at time ``until`` after running ``decision`` from ``problem.now``.

    Returns the new problem (None when ``until`` is the window end) and the indices of the
    streams whose training finished by ``until`` (their new model now serves).
    """
    streams: list[StreamProblem] = []
    finished: list[int] = []
    for index, (stream, choice) in enumerate(zip(problem.streams, decision.streams)):
        name = choice.retrain_config
        if name is None or name not in stream.retrain_names or choice.train_share <= 0:
            streams.append(stream)
            continue
        k = stream.retrain_names.index(name)
        speed = float(problem.scaling(np.array([choice.train_share]))[0])
        cost = float(stream.retrain_gpu_seconds[k])
        if speed > 0 and finishes_by(float(completion_times(problem, cost, speed)), until):
            finished.append(index)
            streams.append(finished_stream(stream, k))
        else:
            streams.append(running_stream(stream, k, cost - trained_gpu_seconds(problem, speed, until)))
    if until >= problem.window_seconds - FINISH_TOLERANCE_SECONDS:
        return None, finished
    return replace(problem, streams=tuple(streams), now=until), finished
