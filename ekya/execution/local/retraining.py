"""Retraining jobs of one stream in one window, and what really happens to the stream there.

A :class:`Retraining` trains each configuration the window asks for at most once (thread-safe:
the window loop runs chosen jobs ahead of the timeline, streams in parallel) and keeps the
results until the window is committed. :class:`LocalOutcomes` is the stream's side of the
timeline: starting a job runs it (or takes its result), and inference factors are measured on
the window's frames when first needed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ekya.data.base import Window
from ekya.execution.timeline import RetrainedModel
from ekya.inference.config import InferenceConfig
from ekya.training.config import RetrainConfig

if TYPE_CHECKING:
    from ekya.models.factory import EdgeModel
    from ekya.training.retrain import TrainResult


@dataclass(frozen=True)
class RetrainingResult:
    """A finished retraining job: the trained model, its GPU-seconds and its model's accuracy on the evaluation window."""

    train: TrainResult
    gpu_seconds: float
    accuracy: float


class Retraining:
    """Runs one window's retraining jobs of one stream on demand, once each.

    Args:
        train: trains one configuration and measures it.
        configs: the retraining space by name.
    """

    def __init__(self, train: Callable[[RetrainConfig], RetrainingResult], configs: dict[str, RetrainConfig]) -> None:
        self._train = train
        self._configs = configs
        self._results: dict[str, RetrainingResult] = {}
        self._lock = threading.Lock()

    def run(self, name: str) -> RetrainingResult:
        """Train ``name`` unless it was trained already, and return its result."""
        with self._lock:
            if name not in self._results:
                self._results[name] = self._train(self._configs[name])
            return self._results[name]

    def record(self, name: str, result: RetrainingResult) -> None:
        """Keep the result of ``name`` trained elsewhere (a job process, ``executor.jobs=concurrent``)."""
        with self._lock:
            self._results[name] = result

    def result(self, name: str) -> RetrainingResult | None:
        """The result of ``name`` if it ran, else None (never trains)."""
        return self._results.get(name)

    def release(self) -> None:
        """Drop every result (their trained models), once the window is committed: what the window loop's task runner
        still holds of the window (its profiles) then no longer keeps the models alive."""
        with self._lock:
            self._results.clear()


class LocalOutcomes:
    """What really happens for one stream in a window of the local executor.

    Args:
        serving: the model serving at the window start.
        current: the window the stream's models are measured on.
        retraining: the window's retraining jobs.
        inference_configs: the inference space by name; ``reference`` names the full configuration.
        inference_table: measured GPU demand of each inference configuration.
        device: torch device inference runs on.
        cached_models: the cached models offered to the scheduler, by name.
    """

    def __init__(self, serving: EdgeModel, current: Window, retraining: Retraining, inference_configs: dict[str, InferenceConfig],
                 reference: str, inference_table: dict[str, tuple[float, float]], device: str,
                 cached_models: dict[str, EdgeModel] | None = None) -> None:
        self._serving = serving
        self._cached_models = dict(cached_models or {})
        self._cached_accuracy: dict[str, float] = {}
        self._reference = reference
        self._current = current
        self._retraining = retraining
        self._configs = inference_configs
        self._demand = {name: value[0] for name, value in inference_table.items()}
        self._device = device
        self._factors: dict[str, float] = {}
        from ekya.inference.run import run_inference

        self.serving_accuracy = run_inference(serving, current, inference_configs[reference], device).accuracy

    def retrain(self, config: str) -> RetrainedModel:
        result = self._retraining.run(config)
        return RetrainedModel(result.gpu_seconds, result.accuracy)

    def cached(self, name: str) -> float:
        if name not in self._cached_accuracy:
            from ekya.inference.run import run_inference

            model = self._cached_models[name]
            self._cached_accuracy[name] = run_inference(model, self._current, self._configs[self._reference], self._device).accuracy
        return self._cached_accuracy[name]

    def inference(self, config: str) -> tuple[float, float]:
        if config not in self._factors:
            from ekya.inference.run import run_inference

            accuracy = run_inference(self._serving, self._current, self._configs[config], self._device).accuracy
            self._factors[config] = float(np.clip(accuracy / self.serving_accuracy, 0.0, 1.0)) if self.serving_accuracy > 0 else 1.0
        return self._demand[config], self._factors[config]
