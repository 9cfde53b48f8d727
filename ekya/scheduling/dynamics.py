"""How a problem moves forward in time under a decision (shared by the optimum and the executors).

Between two re-plans shares are constant: a training job with share r progresses at
``s(r)`` GPU-seconds per second once the window's overheads are over, and finishes when its
remaining cost reaches zero; its model then serves at once.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ekya.scheduling.problem import Decision, Problem, StreamProblem

#: GPU-seconds of remaining work below which a training job counts as finished.
FINISHED_EPSILON = 1e-9


def completion_time(problem: Problem, decision: Decision, stream_index: int, remaining_gpu_seconds: float | None = None) -> float:
    """Seconds since the window start at which the stream's training job finishes under ``decision``.

    ``inf`` when it has no job or share 0. ``remaining_gpu_seconds`` overrides the problem's
    cost (an executor passes the true cost while the problem holds the estimate).
    """
    stream = problem.streams[stream_index]
    choice = decision.streams[stream_index]
    if choice.retrain_config is None or choice.train_share <= 0 or choice.retrain_config not in stream.retrain_names:
        return np.inf
    if remaining_gpu_seconds is None:
        remaining_gpu_seconds = float(stream.retrain_gpu_seconds[stream.retrain_names.index(choice.retrain_config)])
    speed = float(problem.scaling(np.array([choice.train_share]))[0])
    if speed <= 0:
        return np.inf
    return max(problem.now, problem.training_start) + remaining_gpu_seconds / speed


def trained_gpu_seconds(problem: Problem, share: float, until: float) -> float:
    """GPU-seconds of work a training job with ``share`` does between ``problem.now`` and ``until``."""
    active = max(0.0, until - max(problem.now, problem.training_start))
    return float(problem.scaling(np.array([share]))[0]) * active


def advance(problem: Problem, decision: Decision, until: float) -> tuple[Problem | None, list[int]]:
    """The problem at time ``until`` after running ``decision`` from ``problem.now``.

    Returns the new problem (None when ``until`` is the window end) and the indices of the
    streams whose training finished exactly by ``until`` (their new model now serves).
    """
    streams: list[StreamProblem] = []
    finished: list[int] = []
    for index, (stream, choice) in enumerate(zip(problem.streams, decision.streams)):
        name = choice.retrain_config
        if name is None or name not in stream.retrain_names or choice.train_share <= 0:
            streams.append(stream)
            continue
        k = stream.retrain_names.index(name)
        remaining = float(stream.retrain_gpu_seconds[k]) - trained_gpu_seconds(problem, choice.train_share, until)
        if remaining <= FINISHED_EPSILON * max(1.0, float(stream.retrain_gpu_seconds[k])):
            finished.append(index)
            streams.append(
                replace(
                    stream,
                    serving_accuracy=float(stream.retrain_accuracy[k]),
                    retrain_names=(),
                    retrain_gpu_seconds=np.zeros(0),
                    retrain_accuracy=np.zeros(0),
                    running=False,
                )
            )
        else:
            streams.append(
                replace(
                    stream,
                    retrain_names=(name,),
                    retrain_gpu_seconds=np.array([remaining]),
                    retrain_accuracy=stream.retrain_accuracy[[k]],
                    running=True,
                )
            )
    if until >= problem.window_seconds - 1e-9:
        return None, finished
    return replace(problem, streams=tuple(streams), now=until), finished
