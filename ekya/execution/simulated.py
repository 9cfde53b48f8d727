"""The simulated executor: replays a profile trace window by window (no training).

Like the paper's trace-driven simulator: each window the scheduler sees the trace's
profiles (optionally perturbed, to study estimation error) and the timeline plays out with
the trace's true costs and accuracies.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ekya.errors import EkyaError
from ekya.data.base import select
from ekya.execution.model_cache import CachedModel, CacheSettings, ModelCache, cached_name
from ekya.execution.placement import PerGpuPlacement
from ekya.execution.timeline import KnownOutcomes, StreamProfile
from ekya.profiling.trace import BASE_CONFIG, Trace
from ekya.profiling.noise import add_estimate_noise
from ekya.scheduling.problem import StreamProblem, WindowSettings
from ekya.scheduling.uniform import RETRAIN_CONFIG_ALIASES, resolve_retrain_config

#: The model serving a stream: (window it was retrained in, configuration); (-1, "base") at first.
ModelId = tuple[int, str]


def trace_window(
    trace: Trace,
    window: int,
    serving: dict[str, ModelId],
    stream: str,
    estimate_noise: np.random.Generator | None = None,
    noise_std: float = 0.0,
) -> tuple[StreamProblem, KnownOutcomes]:
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
    truth = KnownOutcomes(
        serving_accuracy=serving_accuracy,
        retrain_gpu_seconds=dict(zip(profile.names, profile.gpu_seconds.tolist())),
        retrain_accuracy=dict(zip(profile.names, profile.accuracy.tolist())),
        inference_demand={n: inference[n][0] for n in names},
        inference_factor={n: inference[n][1] for n in names},
    )
    return believed, truth


def with_cached(trace: Trace, window: int, stream: str, believed: StreamProblem, truth: KnownOutcomes, candidates: list[CachedModel],
                estimate_noise: np.random.Generator | None = None, noise_std: float = 0.0) -> tuple[StreamProblem, KnownOutcomes]:
    """``believed`` and ``truth`` with the cached models ``candidates`` offered: each one's accuracy on ``window`` from the
    trace (the scheduler's estimate perturbed like the retraining ones)."""
    if not candidates:
        return believed, truth
    names = tuple(entry.name for entry in candidates)
    accuracy = np.array([trace.model_accuracy(stream, entry.window, entry.config, window) for entry in candidates])
    estimated = add_estimate_noise(accuracy, noise_std, estimate_noise) if estimate_noise is not None and noise_std > 0 else accuracy
    return (replace(believed, cached_names=names, cached_accuracy=estimated),
            replace(truth, cached_accuracy=dict(zip(names, accuracy.tolist()))))


def initial_models(streams: list[str]) -> dict[str, ModelId]:
    return {stream: (-1, BASE_CONFIG) for stream in streams}


class SimulatedRun:
    """A whole simulated run over a trace: settings, chosen streams/windows, and which model serves.

    Args:
        trace: the loaded trace.
        settings: G, Δ, aMIN, T and the throughput scaling (see :func:`trace_settings`).
        streams: use the first N streams (None: all).
        windows: run the first N windows (None: all).
        noise_std: Gaussian noise (accuracy points) on the estimates the scheduler sees.
        seed: seeds the noise, per (window, stream), so results do not depend on task order.
        placement: places each decision on physical GPUs (``executor.placement=per_gpu``); None: pooled shares.
        cache: the model cache (:mod:`ekya.execution.model_cache`; ``scope=stream`` only: a trace holds no accuracy of
            one stream's models on another's windows); None: no cache.
    """

    def __init__(
        self,
        trace: Trace,
        settings: WindowSettings,
        streams: int | None = None,
        windows: int | None = None,
        noise_std: float = 0.0,
        seed: int = 0,
        placement: PerGpuPlacement | None = None,
        cache: CacheSettings | None = None,
    ) -> None:
        if cache is not None and cache.enabled and cache.scope != "stream":
            raise EkyaError(f"cache.scope={cache.scope} needs executor=local: a trace holds no accuracy of one stream's models "
                            "on another stream's windows; valid here: cache.scope=stream")
        self.trace = trace
        self.placement = placement
        self.settings = settings
        if noise_std < 0:
            raise EkyaError(f"profiler.noise_std must be >= 0 accuracy points, got {noise_std}")
        self.stream_names = select(trace.streams, streams, "streams")
        if trace.num_windows == 0:
            raise EkyaError(f"{trace.root / 'retrain.csv'}: no retraining rows (windows >= 0)")
        self.window_indices = [int(w) for w in select(list(range(trace.num_windows)), windows, "windows")]
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.serving = initial_models(self.stream_names)
        #: Cached models by stream; a handle is the (window, configuration) the trace knows the model by.
        self.cache: ModelCache[ModelId] | None = ModelCache(cache, self.stream_names) if cache is not None and cache.enabled else None

    def prepare(self) -> None:
        """Nothing to prepare: the trace holds every profile."""

    def profile(self, window: int, stream: str) -> StreamProfile:
        """What the scheduler sees of ``stream`` in ``window``, and what really happens (no overheads)."""
        generator = np.random.default_rng([self.seed, window, self.stream_names.index(stream)])
        believed, truth = trace_window(self.trace, window, self.serving, stream, generator, self.noise_std)
        if self.cache is not None:
            serving = cached_name(stream, *self.serving[stream])
            cache_noise = np.random.default_rng([self.seed, window, self.stream_names.index(stream), 1])
            believed, truth = with_cached(self.trace, window, stream, believed, truth, self.cache.candidates(stream, exclude=serving),
                                          cache_noise, self.noise_std)
        return StreamProfile(believed, truth, {})

    def retrain(self, window: int, stream: str, config: str) -> None:
        """Nothing to train: the trace holds every outcome."""

    def commit(self, window: int, retrained: list[str | None], adopted: list[str | None] | None = None) -> None:
        """Models retrained in ``window`` (else the cached models switched to) serve from the next window on; retrained
        ones enter the cache."""
        for stream, config, name in zip(self.stream_names, retrained, adopted or [None] * len(retrained)):
            if config is not None:
                self.serving[stream] = (window, config)
                if self.cache is not None:
                    self.cache.add(stream, window, config, (window, config))
            elif name is not None and self.cache is not None:
                self.serving[stream] = self.cache.use(name)

    def save_state(self, folder: Path) -> None:
        """The model serving each stream (all that carries over: the noise is seeded per window and stream)."""
        (Path(folder) / "serving.json").write_text(json.dumps({stream: list(model) for stream, model in self.serving.items()}))
        if self.cache is not None:
            (Path(folder) / "cache.json").write_text(json.dumps(self.cache.state()))

    def load_state(self, folder: Path) -> None:
        """Serve the models :meth:`save_state` wrote."""
        path = Path(folder) / "serving.json"
        serving = json.loads(path.read_text())
        if sorted(serving) != sorted(self.stream_names):
            raise EkyaError(f"checkpoint {path}: streams {', '.join(sorted(serving))}, but this run has {', '.join(self.stream_names)}")
        self.serving = {stream: (int(serving[stream][0]), str(serving[stream][1])) for stream in self.stream_names}
        if self.cache is not None and (Path(folder) / "cache.json").is_file():
            state = json.loads((Path(folder) / "cache.json").read_text())
            self.cache.restore(state, {e["name"]: (int(e["window"]), str(e["config"])) for entries in state["entries"].values() for e in entries})

    def resolve_retrain_config(self, name: str) -> str:
        """A configuration name, or Uniform's alias ``high``/``low`` resolved for this trace."""
        if name in RETRAIN_CONFIG_ALIASES and name in self.trace.uniform_configs:
            return self.trace.uniform_configs[name]
        profile = self.trace.holdout_profile()
        try:
            return resolve_retrain_config(name, profile.names, profile.gpu_seconds, profile.accuracy, self.trace.base_accuracy())
        except ValueError as error:
            raise EkyaError(str(error)) from None
