"""The simulated executor: replays a profile trace window by window (no training).

Like the paper's trace-driven simulator: each window the scheduler sees the trace's
profiles (optionally perturbed, to study estimation error) and the timeline plays out with
the trace's true costs and accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ekya.errors import EkyaError
from ekya.execution.timeline import StreamOutcomes, StreamProfile
from ekya.execution.trace import BASE_CONFIG, Trace
from ekya.profiling.noise import add_estimate_noise
from ekya.scheduling.problem import Problem, StreamProblem, ThroughputScaling, linear_scaling
from ekya.scheduling.uniform import RETRAIN_CONFIG_ALIASES, resolve_retrain_config

#: The model serving a stream: (window it was retrained in, configuration); (-1, "base") at first.
ModelId = tuple[int, str]


@dataclass(frozen=True)
class WindowSettings:
    """The box and the scheduling knobs, shared by every window.

    Attributes:
        gpus: G, GPUs of the box.
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

    def problem(self, streams: list[StreamProblem], overhead_seconds: float = 0.0) -> Problem:
        """The window's problem; overheads (seconds) delay training and must fit in the window."""
        if not 0 <= overhead_seconds < self.window_seconds:
            raise EkyaError(
                f"overheads of {overhead_seconds:.1f} s (labeling + profiling) do not fit in the {self.window_seconds:.1f} s window; "
                "use a longer window, fewer configurations or a smaller profiling sample"
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


def select(names: list[str], count: int | None, what: str) -> list[str]:
    """The first ``count`` of ``names`` (all when None)."""
    if count is None:
        return list(names)
    if not 1 <= count <= len(names):
        raise EkyaError(f"{what}={count} but the dataset has {len(names)} {what} (valid: 1..{len(names)}, or null for all)")
    return list(names[:count])


def trace_window(
    trace: Trace,
    window: int,
    serving: dict[str, ModelId],
    stream: str,
    estimate_noise: np.random.Generator | None = None,
    noise_std: float = 0.0,
) -> tuple[StreamProblem, StreamOutcomes]:
    """One stream in one window of a trace: what the scheduler sees and what really happens.

    Args:
        trace: the profile trace.
        window: window index.
        serving: the model each stream serves at the window start.
        stream: the stream.
        estimate_noise: random generator for the estimate perturbation (None: exact profiles).
        noise_std: standard deviation of the Gaussian noise added to estimated accuracies, in
            accuracy points (0-100 scale).
    """
    model_window, model_config = serving[stream]
    serving_accuracy = trace.model_accuracy(stream, model_window, model_config, window)
    profile = trace.retrain_profile(stream, window)
    inference = trace.inference_table(stream)
    names = tuple(sorted(inference))
    demand = np.array([inference[n][0] for n in names])
    factor = np.array([inference[n][1] for n in names])
    estimated = profile.accuracy
    if estimate_noise is not None and noise_std > 0 and len(estimated):
        estimated = add_estimate_noise(estimated, noise_std, estimate_noise)
    believed = StreamProblem(
        name=stream,
        serving_accuracy=serving_accuracy,
        retrain_names=profile.names,
        retrain_gpu_seconds=profile.gpu_seconds,
        retrain_accuracy=estimated,
        inference_names=names,
        inference_demand=demand,
        inference_factor=factor,
    )
    truth = StreamOutcomes(
        serving_accuracy=serving_accuracy,
        retrain_gpu_seconds=dict(zip(profile.names, profile.gpu_seconds.tolist())),
        retrain_accuracy=dict(zip(profile.names, profile.accuracy.tolist())),
        inference_demand={n: inference[n][0] for n in names},
        inference_factor={n: inference[n][1] for n in names},
    )
    return believed, truth


def initial_models(streams: list[str]) -> dict[str, ModelId]:
    return {stream: (-1, BASE_CONFIG) for stream in streams}


class SimulatedRun:
    """A whole simulated run over a trace: settings, chosen streams/windows, and which model serves.

    Args:
        trace: the loaded trace.
        gpus, delta, min_accuracy: the box and knobs; None takes the trace's value, else 1 GPU,
            Δ = 0.1, aMIN = 0.
        streams: use the first N streams (None: all).
        windows: run the first N windows (None: all).
        estimate_noise_std: Gaussian noise (accuracy points) on the estimates the scheduler sees.
        seed: seeds the noise, per (window, stream), so results do not depend on task order.
        window_seconds: replay with windows of this length T instead of the trace's (the same
            profiles in a shorter or longer window: the window-length sensitivity study).
        scaling: training throughput s(r) at GPU share r (e.g. a measured ``ThroughputTable().throughput``).
    """

    def __init__(
        self,
        trace: Trace,
        gpus: float | None = None,
        delta: float | None = None,
        min_accuracy: float | None = None,
        streams: int | None = None,
        windows: int | None = None,
        estimate_noise_std: float = 0.0,
        seed: int = 0,
        window_seconds: float | None = None,
        scaling: ThroughputScaling = linear_scaling,
    ) -> None:
        self.trace = trace
        self.settings = WindowSettings(
            gpus=float(gpus if gpus is not None else trace.gpus or 1.0),
            delta=float(delta if delta is not None else trace.delta or 0.1),
            min_accuracy=float(min_accuracy if min_accuracy is not None else trace.min_accuracy or 0.0),
            window_seconds=float(window_seconds if window_seconds is not None else trace.window_seconds),
            scaling=scaling,
        )
        if estimate_noise_std < 0:
            raise EkyaError(f"estimate_noise_std must be >= 0 accuracy points, got {estimate_noise_std}")
        self.stream_names = select(trace.streams, streams, "streams")
        if trace.num_windows == 0:
            raise EkyaError(f"{trace.root / 'retrain.csv'}: no retraining rows (windows >= 0)")
        self.window_indices = [int(w) for w in select(list(range(trace.num_windows)), windows, "windows")]
        self.estimate_noise_std = float(estimate_noise_std)
        self.seed = int(seed)
        self.serving = initial_models(self.stream_names)

    def prepare(self) -> None:
        """Nothing to prepare: the trace holds every profile."""

    def profile(self, window: int, stream: str) -> StreamProfile:
        """What the scheduler sees of ``stream`` in ``window``, and what really happens (no overheads)."""
        generator = np.random.default_rng([self.seed, window, self.stream_names.index(stream)])
        believed, truth = trace_window(self.trace, window, self.serving, stream, generator, self.estimate_noise_std)
        return StreamProfile(believed, truth, {})

    def train_chosen(self, window: int, stream: str, config: str | None) -> None:
        """Nothing to train: the trace holds every outcome."""

    def problem(self, believed: list[StreamProblem], overhead_gpu_seconds: float = 0.0) -> Problem:
        return self.settings.problem(believed, overhead_seconds=overhead_gpu_seconds / self.settings.gpus)

    def commit(self, window: int, retrained: list[str | None]) -> None:
        """Models retrained in ``window`` serve from the next window on."""
        for stream, config in zip(self.stream_names, retrained):
            if config is not None:
                self.serving[stream] = (window, config)

    def resolve_retrain_config(self, name: str) -> str:
        """A configuration name, or Uniform's alias ``high``/``low`` resolved for this trace."""
        if name in RETRAIN_CONFIG_ALIASES and name in self.trace.uniform_configs:
            return self.trace.uniform_configs[name]
        profile = self.trace.holdout_profile()
        try:
            return resolve_retrain_config(name, profile.names, profile.gpu_seconds, profile.accuracy, self.trace.base_accuracy())
        except ValueError as error:
            raise EkyaError(str(error)) from None
