"""The window accuracy model, as the schedulers estimate it (vectorised over share pairs), built on
the job-progress model of :mod:`ekya.scheduling.dynamics`.

For one stream with inference share ``i`` and training share ``r`` over the rest of a window
[now, T]:

* the inference job runs the configuration λ that maximises ``factor(λ) * min(1, i / demand(λ))``
  (frames it cannot process count as misses), so the stream's accuracy is
  ``start_accuracy * quality(i)`` (the serving model's accuracy, or the best cached model's when it is
  higher: :attr:`~ekya.scheduling.problem.StreamProblem.start_accuracy`) with ``quality(i) = max_λ factor(λ) * min(1, i / demand(λ))``;
* a training job of remaining cost C GPU-seconds starts at ``training_start`` (after the
  window's overheads) and finishes after ``C / s(r)`` seconds; its model then serves at
  once and its share goes to the stream's inference job, so accuracy becomes
  ``retrained_accuracy * quality(i + r)`` (the scheduler re-plans at that moment anyway);
* the value of the shares is the time-average of that accuracy over [now, T], maximised
  over the stream's retraining configurations (or none);
* when the stream could meet aMIN with the whole box but does not with ``i``, the value is
  lowered by ``AMIN_PENALTY`` times the shortfall, so meeting aMIN comes first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ekya.scheduling.dynamics import completion_times, inference_quality
from ekya.scheduling.problem import Problem, StreamProblem

#: Weight of an aMIN shortfall against accuracy: one point below aMIN costs this many points.
AMIN_PENALTY = 10.0


@dataclass(frozen=True)
class StreamChoice:
    """The best configurations of one stream for given shares (arrays over the share pairs).

    Attributes:
        value: estimated time-averaged accuracy over [now, T] minus any aMIN penalty.
        accuracy: the same without the penalty.
        retrain_index: index into ``retrain_names`` of the best configuration, -1 for none.
        inference_index: index into ``inference_names`` of the inference configuration.
    """

    value: np.ndarray
    accuracy: np.ndarray
    retrain_index: np.ndarray
    inference_index: np.ndarray


class StreamAccuracyModel:
    """Estimated accuracy of one stream over the rest of the window as a function of its shares.

    Args:
        stream: the stream.
        problem: the window (times, G, aMIN, throughput scaling).
    """

    def __init__(self, stream: StreamProblem, problem: Problem) -> None:
        self.stream = stream
        self.problem = problem
        self.start = problem.now
        self.end = problem.window_seconds
        # Cheaper inference configurations first, so ties go to the lower demand.
        self._inference_order = np.argsort(stream.inference_demand, kind="stable")
        self._demand = stream.inference_demand[self._inference_order]
        self._factor = stream.inference_factor[self._inference_order]
        self.min_accuracy = problem.min_accuracy
        best_quality = float(self.inference_quality(np.array([problem.gpus]))[0][0])
        self.can_meet_min_accuracy = stream.start_accuracy * best_quality >= problem.min_accuracy - 1e-12

    def inference_quality(self, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``quality(i)`` and the chosen inference configuration index for each share in ``shares``."""
        shares = np.asarray(shares, dtype=float)
        processed = inference_quality(shares[:, None], self._demand[None, :], self._factor[None, :])
        best = np.argmax(processed, axis=1)
        return processed[np.arange(len(shares)), best], self._inference_order[best]

    def completion_times(self, train_shares: np.ndarray) -> np.ndarray:
        """Seconds since the window start at which each candidate job finishes, shape (shares, configs).

        ``inf`` where the share is 0.
        """
        speed = np.asarray(self.problem.scaling(np.asarray(train_shares, dtype=float)), dtype=float)
        return completion_times(self.problem, self.stream.retrain_gpu_seconds[None, :], speed[:, None])

    def choose(self, inference_shares: np.ndarray, train_shares: np.ndarray) -> StreamChoice:
        """Best configurations and their value for each pair (inference_shares[j], train_shares[j])."""
        inference_shares = np.asarray(inference_shares, dtype=float)
        train_shares = np.asarray(train_shares, dtype=float)
        span = self.end - self.start
        quality_before, inference_index = self.inference_quality(inference_shares)
        accuracy_before = self.stream.start_accuracy * quality_before
        best_accuracy = accuracy_before.copy()
        retrain_index = np.full(len(inference_shares), -1)
        if len(self.stream.retrain_names):
            done = self.completion_times(train_shares)
            quality_after, _ = self.inference_quality(inference_shares + train_shares)
            accuracy_after = self.stream.retrain_accuracy[None, :] * quality_after[:, None]
            before_span = np.minimum(done, self.end) - self.start
            after_span = np.maximum(self.end - done, 0.0)
            candidate = (accuracy_before[:, None] * before_span + accuracy_after * after_span) / span
            best = np.argmax(candidate, axis=1)
            best_value = candidate[np.arange(len(best)), best]
            better = best_value > accuracy_before + 1e-12
            best_accuracy = np.where(better, best_value, accuracy_before)
            retrain_index = np.where(better, best, -1)
        value = best_accuracy - self.penalty(accuracy_before)
        return StreamChoice(value=value, accuracy=best_accuracy, retrain_index=retrain_index, inference_index=inference_index)

    def penalty(self, serving_accuracy: np.ndarray) -> np.ndarray:
        """The aMIN penalty for serving ``serving_accuracy`` (the accuracy before any retrained model), per entry.

        ``AMIN_PENALTY`` times the shortfall below aMIN; 0 when the stream cannot meet aMIN even with the whole box.
        """
        serving_accuracy = np.asarray(serving_accuracy, dtype=float)
        if not (self.min_accuracy > 0 and self.can_meet_min_accuracy):
            return np.zeros_like(serving_accuracy)
        shortfall = np.maximum(self.min_accuracy - serving_accuracy, 0.0)
        return AMIN_PENALTY * np.where(shortfall > 1e-12, shortfall, 0.0)

    def estimate(self, inference_share: float, train_share: float, retrain_index: int) -> tuple[float, int]:
        """Estimated accuracy over [now, T] with one given configuration (-1: none), and the inference config index."""
        quality_before, inference_index = self.inference_quality(np.array([inference_share]))
        accuracy_before = self.stream.start_accuracy * float(quality_before[0])
        if retrain_index < 0 or train_share <= 0:
            return accuracy_before, int(inference_index[0])
        done = float(self.completion_times(np.array([train_share]))[0, retrain_index])
        quality_after, _ = self.inference_quality(np.array([inference_share + train_share]))
        accuracy_after = float(self.stream.retrain_accuracy[retrain_index]) * float(quality_after[0])
        before_span = min(done, self.end) - self.start
        after_span = max(self.end - done, 0.0)
        return (accuracy_before * before_span + accuracy_after * after_span) / (self.end - self.start), int(inference_index[0])
