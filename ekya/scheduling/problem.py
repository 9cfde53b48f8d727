"""Value objects the schedulers read and return: a window's :class:`Problem` and a :class:`Decision`.

Units: shares are fractions of one GPU (a share of 1.5 is one and a half GPUs); costs are
GPU-seconds at 100% of one GPU; times are seconds since the start of the window;
accuracies are fractions in [0, 1].

A problem describes the rest of a window from ``now`` on. At the start of a window
``now = 0``; when a training job finishes, the executor builds a new problem for the rest of
the window (the finished stream serves its new model and has no training job any more;
a stream whose job is part-way keeps that one configuration with its remaining cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ekya.errors import EkyaError

#: Relative training throughput s(r) as a function of the GPU share r (vectorised).
ThroughputScaling = Callable[[np.ndarray], np.ndarray]


def linear_scaling(shares: np.ndarray) -> np.ndarray:
    """Training throughput proportional to the share: s(r) = r."""
    return np.asarray(shares, dtype=float)


@dataclass(frozen=True)
class StreamProblem:
    """One stream as the scheduler sees it.

    Attributes:
        name: stream name.
        serving_accuracy: accuracy of the model serving now, on this window (belief).
        retrain_names: candidate retraining configurations still open to this stream; empty when
            its training is done this window; exactly one when its job is part-way (``running``).
        retrain_gpu_seconds: remaining cost of each candidate, GPU-seconds at 100% of one GPU.
        retrain_accuracy: accuracy of the model each candidate produces, on this window.
        inference_names: inference configurations.
        inference_demand: GPU share each inference configuration needs to process every frame.
        inference_factor: multiplier on model accuracy under each inference configuration.
        running: True when ``retrain_names[0]`` is a job already part-way (its config is fixed).
        cached_names: cached models (:mod:`ekya.execution.model_cache`) the stream may switch to at ``now``: no
            training cost, they serve from the moment they are chosen; only offered at a window's start.
        cached_accuracy: estimated accuracy on this window of each cached model.
        drift_points: how far (accuracy points, 0-100) the serving model's estimated accuracy has fallen since it
            started serving; None when unknown. Read by :class:`~ekya.scheduling.drift.RetrainOnDrift`.
    """

    name: str
    serving_accuracy: float
    retrain_names: tuple[str, ...]
    retrain_gpu_seconds: np.ndarray
    retrain_accuracy: np.ndarray
    inference_names: tuple[str, ...]
    inference_demand: np.ndarray
    inference_factor: np.ndarray
    running: bool = False
    cached_names: tuple[str, ...] = ()
    cached_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    drift_points: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cached_accuracy", np.asarray(self.cached_accuracy, dtype=float))
        if self.cached_accuracy.shape != (len(self.cached_names),):
            raise ValueError(f"stream {self.name}: cached_accuracy must have {len(self.cached_names)} entries")
        object.__setattr__(self, "retrain_gpu_seconds", np.asarray(self.retrain_gpu_seconds, dtype=float))
        object.__setattr__(self, "retrain_accuracy", np.asarray(self.retrain_accuracy, dtype=float))
        object.__setattr__(self, "inference_demand", np.asarray(self.inference_demand, dtype=float))
        object.__setattr__(self, "inference_factor", np.asarray(self.inference_factor, dtype=float))
        k = len(self.retrain_names)
        if self.retrain_gpu_seconds.shape != (k,) or self.retrain_accuracy.shape != (k,):
            raise ValueError(f"stream {self.name}: retrain arrays must have {k} entries")
        if np.any(self.retrain_gpu_seconds < 0):
            raise ValueError(f"stream {self.name}: negative retraining cost")
        n = len(self.inference_names)
        if n == 0:
            raise ValueError(f"stream {self.name}: no inference configuration")
        if self.inference_demand.shape != (n,) or self.inference_factor.shape != (n,):
            raise ValueError(f"stream {self.name}: inference arrays must have {n} entries")
        if np.any(self.inference_demand <= 0):
            raise ValueError(f"stream {self.name}: inference demand must be > 0")
        if self.running and k != 1:
            raise ValueError(f"stream {self.name}: a running job has exactly one configuration")

    @property
    def start_model(self) -> str | None:
        """The cached model to switch to at ``now``: the most accurate one if it beats the serving model, else None."""
        if not len(self.cached_names):
            return None
        best = int(np.argmax(self.cached_accuracy))
        return self.cached_names[best] if self.cached_accuracy[best] > self.serving_accuracy + 1e-12 else None

    @property
    def start_accuracy(self) -> float:
        """Estimated accuracy of the model that serves from ``now`` on: the serving one, or :attr:`start_model`.

        A cached model costs nothing and serves at once, so the best one is always worth switching to; every
        scheduler values a stream from this accuracy (so it chooses among cached models, retraining and both in one decision)."""
        if not len(self.cached_names):
            return self.serving_accuracy
        return max(self.serving_accuracy, float(np.max(self.cached_accuracy)))

    def without_cached(self) -> "StreamProblem":
        """The stream with no cached model to switch to."""
        return replace(self, cached_names=(), cached_accuracy=np.zeros(0)) if self.cached_names else self


@dataclass(frozen=True)
class Problem:
    """The rest of one retraining window, for all streams at once.

    Attributes:
        streams: the streams, in a fixed order.
        gpus: G, total GPU share of the box.
        delta: Δ, the allocation quantum in GPU share.
        window_seconds: T, window length in seconds.
        now: seconds since the window start at which this plan takes effect.
        training_start: seconds since the window start before which no training progresses
            (labeling and micro-profiling overheads, charged at the window start).
        min_accuracy: aMIN, minimum inference accuracy of every stream when attainable.
        scaling: throughput scaling s(r) of training jobs.
    """

    streams: tuple[StreamProblem, ...]
    gpus: float
    delta: float
    window_seconds: float
    now: float = 0.0
    training_start: float = 0.0
    min_accuracy: float = 0.0
    scaling: ThroughputScaling = field(default=linear_scaling, compare=False)

    def __post_init__(self) -> None:
        if not self.gpus > 0:
            raise ValueError(f"gpus must be > 0, got {self.gpus}")
        if not 0 < self.delta <= self.gpus:
            raise ValueError(f"delta must be in (0, gpus={self.gpus}], got {self.delta}")
        if not 0 <= self.now < self.window_seconds:
            raise ValueError(f"now={self.now} must lie in [0, window_seconds={self.window_seconds})")
        if not 0 <= self.training_start <= self.window_seconds:
            raise ValueError(f"training_start={self.training_start} must lie in [0, {self.window_seconds}]")

    @property
    def has_cached(self) -> bool:
        """Whether any stream has a cached model to switch to."""
        return any(stream.cached_names for stream in self.streams)

    def without_cached(self) -> "Problem":
        """The problem with no cached models (what a scheduler without the model cache sees)."""
        return replace(self, streams=tuple(stream.without_cached() for stream in self.streams)) if self.has_cached else self

    @property
    def units(self) -> int:
        """Number of Δ quanta in G (the grid the searching schedulers allocate on)."""
        return int(np.floor(self.gpus / self.delta + 1e-9))

    @property
    def remaining_seconds(self) -> float:
        return self.window_seconds - self.now


@dataclass(frozen=True)
class StreamDecision:
    """What one stream does until the next re-plan.

    Attributes:
        retrain_config: configuration of its training job, or None for no training.
        train_share: GPU share of its training job (0 pauses a running job).
        inference_config: inference configuration it runs.
        inference_share: GPU share of its inference job.
        serving_model: the cached model it switches to at ``now`` (serves from then on), or None: it keeps its model.
    """

    retrain_config: str | None
    train_share: float
    inference_config: str
    inference_share: float
    serving_model: str | None = None


@dataclass(frozen=True)
class Decision:
    """A scheduler's answer: one :class:`StreamDecision` per stream (same order as the problem).

    Attributes:
        streams: per-stream decisions.
        estimated_accuracy: per-stream estimate of the time-averaged accuracy over [now, T],
            under the scheduler's accuracy model.
    """

    streams: tuple[StreamDecision, ...]
    estimated_accuracy: tuple[float, ...]

    @property
    def total_share(self) -> float:
        return float(sum(s.train_share + s.inference_share for s in self.streams))

    @property
    def estimated_mean_accuracy(self) -> float:
        return float(np.mean(self.estimated_accuracy)) if self.estimated_accuracy else 0.0


@dataclass(frozen=True)
class WindowSettings:
    """The box and the scheduling knobs, shared by every window of a run; builds each window's :class:`Problem`.

    Attributes:
        gpus: G, GPUs of the box (GPU share).
        delta: Δ, allocation quantum in GPU share.
        min_accuracy: aMIN in [0, 1].
        window_seconds: T, seconds.
        scaling: training throughput scaling s(r).
    """

    gpus: float
    delta: float
    min_accuracy: float
    window_seconds: float
    scaling: ThroughputScaling = linear_scaling

    def __post_init__(self) -> None:
        if not self.gpus > 0:
            raise EkyaError(f"gpus must be > 0, got {self.gpus}")
        if not 0 < self.delta <= self.gpus:
            raise EkyaError(f"delta must be in (0, gpus={self.gpus}], got {self.delta}")
        if not 0 <= self.min_accuracy <= 1:
            raise EkyaError(f"min_accuracy must be in [0, 1], got {self.min_accuracy}")
        if not self.window_seconds > 0:
            raise EkyaError(f"window_seconds must be > 0, got {self.window_seconds}")

    def problem(self, streams: list[StreamProblem], overhead_gpu_seconds: float = 0.0) -> Problem:
        """The window's problem. Overheads (labeling, profiling; GPU-seconds) run on the whole box at the
        window start, so training starts after ``overhead_gpu_seconds / gpus`` seconds; they must fit in the window."""
        overhead_seconds = overhead_gpu_seconds / self.gpus
        if not 0 <= overhead_seconds < self.window_seconds:
            raise EkyaError(
                f"overheads of {overhead_gpu_seconds:.1f} GPU-seconds (labeling + profiling) take {overhead_seconds:.1f} s of "
                f"the {self.window_seconds:.1f} s window on {self.gpus:g} GPU(s), which leaves none; use a longer window "
                "(dataset.window_seconds), more GPUs (gpus), fewer retraining configurations (retrain_space), a smaller "
                "profiling sample (profiler.sample_fraction) or a smaller labeling budget (labeler.label_frames)"
            )
        return Problem(
            streams=tuple(streams),
            gpus=self.gpus,
            delta=self.delta,
            window_seconds=self.window_seconds,
            training_start=overhead_seconds,
            min_accuracy=self.min_accuracy,
            scaling=self.scaling,
        )
