"""The one interface every scheduling policy implements, and plumbing they share.

A policy is pure: given a :class:`~ekya.scheduling.problem.Problem` it returns a
:class:`~ekya.scheduling.problem.Decision`, with no I/O and no clock. The same object runs in
the simulator and in the real executors.
"""

from __future__ import annotations

import abc
from dataclasses import replace
from typing import ClassVar, Sequence

import numpy as np

from ekya.scheduling.accuracy_model import StreamAccuracyModel
from ekya.scheduling.problem import Decision, Problem, StreamDecision, StreamProblem


class Scheduler(abc.ABC):
    """A scheduling policy: problem in, decision out."""

    #: Name used in ``conf/scheduler/<name>.yaml`` and in the registry.
    name: ClassVar[str]

    @abc.abstractmethod
    def schedule(self, problem: Problem) -> Decision:
        """Configurations and GPU shares for every stream from ``problem.now`` on."""

    def reallocate(self, problem: Problem, previous: Decision, finished: Sequence[int]) -> Decision:
        """Called when the training jobs of streams ``finished`` complete mid-window.

        ``problem`` describes the rest of the window after the swap. Default: plan again.
        """
        return self.schedule(problem)


def stream_models(problem: Problem) -> list[StreamAccuracyModel]:
    return [StreamAccuracyModel(stream, problem) for stream in problem.streams]


def build_decision(
    problem: Problem,
    inference_shares: Sequence[float],
    train_shares: Sequence[float],
    retrain_configs: Sequence[str | None] | None = None,
    models: Sequence[StreamAccuracyModel] | None = None,
) -> Decision:
    """A decision for the given shares: each stream's best configurations (PickConfigs), or the given ones; a stream
    with a cached model better than its serving one switches to it (:attr:`StreamProblem.start_model`).

    A training share left without a useful retraining configuration moves to the stream's
    inference job (it cannot lower accuracy there). A running job given no useful share is
    paused (it keeps its configuration with share 0).

    Args:
        problem: the window.
        inference_shares: GPU share of each stream's inference job.
        train_shares: GPU share of each stream's training job.
        retrain_configs: fixed retraining configuration per stream (None: none); when omitted, the
            best one for the shares is chosen.
        models: accuracy models of the streams, when the caller has them already.
    """
    models = list(models) if models is not None else stream_models(problem)
    decisions, estimates = [], []
    for index, (stream, model) in enumerate(zip(problem.streams, models)):
        inference_share = float(inference_shares[index])
        train_share = float(train_shares[index])
        if retrain_configs is None:
            choice = model.choose(np.array([inference_share]), np.array([train_share]))
            retrain_index = int(choice.retrain_index[0])
        else:
            name = retrain_configs[index]
            retrain_index = stream.retrain_names.index(name) if name in stream.retrain_names else -1
        if retrain_index < 0 and train_share > 0:
            inference_share, train_share = inference_share + train_share, 0.0
        accuracy, inference_index = model.estimate(inference_share, train_share, retrain_index)
        if retrain_index >= 0:
            retrain_name: str | None = stream.retrain_names[retrain_index]
        else:
            retrain_name = stream.retrain_names[0] if stream.running else None
        decisions.append(StreamDecision(retrain_name, train_share, stream.inference_names[inference_index], inference_share, stream.start_model))
        estimates.append(accuracy)
    return Decision(tuple(decisions), tuple(estimates))


def estimated_objective(problem: Problem, decision: Decision, models: Sequence[StreamAccuracyModel] | None = None) -> float:
    """What the searching schedulers maximise, for ``decision``: the mean over streams of the estimated
    accuracy over [now, T] with the decision's configurations and shares, minus the aMIN penalties.

    Equals ``decision.estimated_mean_accuracy`` when no stream falls short of aMIN (or aMIN is 0).
    """
    models = list(models) if models is not None else stream_models(problem)
    total = 0.0
    for stream, model, choice in zip(problem.streams, models, decision.streams):
        name = choice.retrain_config
        retrain_index = stream.retrain_names.index(name) if name in stream.retrain_names else -1
        accuracy, _ = model.estimate(choice.inference_share, choice.train_share, retrain_index)
        quality, _ = model.inference_quality(np.array([choice.inference_share]))
        total += accuracy - float(model.penalty(stream.start_accuracy * quality)[0])
    return total / max(len(problem.streams), 1)


def even_reallocation(problem: Problem, previous: Decision, finished: Sequence[int]) -> Decision:
    """Split the finished training jobs' shares evenly over all remaining jobs (Ekya's fair reallocation).

    Remaining jobs are every stream's inference job and every training job that still runs.
    Configurations stay as they were; inference configurations are picked again for the new shares.
    """
    inference = [d.inference_share for d in previous.streams]
    train = [d.train_share for d in previous.streams]
    configs = [d.retrain_config for d in previous.streams]
    freed = sum(train[i] for i in finished)
    for i in finished:
        train[i], configs[i] = 0.0, None
    running = [i for i, d in enumerate(previous.streams) if i not in finished and d.retrain_config is not None and train[i] > 0]
    jobs = len(inference) + len(running)
    bonus = freed / jobs if jobs else 0.0
    inference = [share + bonus for share in inference]
    for i in running:
        train[i] += bonus
    return build_decision(problem, inference, train, configs)


def restrict_retrain_configs(problem: Problem, allowed: Sequence[str]) -> Problem:
    """The problem with each pending stream's candidates limited to ``allowed`` (running jobs keep theirs)."""
    allowed_set = set(allowed)
    streams: list[StreamProblem] = []
    for stream in problem.streams:
        if stream.running:
            streams.append(stream)
            continue
        keep = [i for i, name in enumerate(stream.retrain_names) if name in allowed_set]
        streams.append(
            replace(
                stream,
                retrain_names=tuple(stream.retrain_names[i] for i in keep),
                retrain_gpu_seconds=stream.retrain_gpu_seconds[keep],
                retrain_accuracy=stream.retrain_accuracy[keep],
            )
        )
    return replace(problem, streams=tuple(streams))


def equal_stream_shares(problem: Problem) -> float:
    """Each stream's equal share of the box, G / number of streams."""
    return problem.gpus / max(len(problem.streams), 1)
