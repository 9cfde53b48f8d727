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


def finished_stream(stream: StreamProblem, retrain_index: int) -> StreamProblem:
    """The stream once its job with configuration ``retrain_index`` finished: the new model serves, no job left."""
    return replace(
        stream,
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
            streams.append(finished_stream(stream, k))
        else:
            streams.append(running_stream(stream, k, remaining))
    if until >= problem.window_seconds - 1e-9:
        return None, finished
    return replace(problem, streams=tuple(streams), now=until), finished
