"""What the scheduler believes of a local run's retraining configurations, window by window.

``micro`` estimates every kept configuration with the micro-profiler's short runs on a sample
of window k-1 (their GPU time is charged at the window start); ``oracle`` hands the scheduler
the measured outcome of fully retraining every configuration, at no charged cost, so that the
loss due to estimation can be measured directly. Pruning drops configurations far from the
cost-accuracy frontier between windows; optional Gaussian noise perturbs the estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ekya.data.base import Window
from ekya.errors import EkyaError
from ekya.profiling.micro_profiler import MicroProfiler, ProfileRun
from ekya.profiling.noise import add_estimate_noise
from ekya.profiling.pruning import prune_configs
from ekya.training.config import RetrainConfig

if TYPE_CHECKING:
    from ekya.models.factory import EdgeModel
    from ekya.training.retrain import TrainResult

#: Where the scheduler's estimates come from: the micro-profiler, or exact outcomes of full retraining.
PROFILER_MODES = ("micro", "oracle")


@dataclass(frozen=True)
class PruningSettings:
    """The micro-profiler's pruning: every ``every_windows`` windows drop ``fraction`` of the
    configurations farthest from the cost-accuracy Pareto frontier, keeping at least ``floor``."""

    every_windows: int = 2
    fraction: float = 0.25
    floor: int = 4


@dataclass(frozen=True)
class Estimates:
    """One stream's believed retraining options in one window.

    Attributes:
        names: the configurations offered to the scheduler.
        gpu_seconds: estimated cost of each, GPU-seconds at 100% of one GPU.
        accuracy: estimated accuracy on the window of each one's model.
        profile_gpu_seconds: GPU-seconds the estimation cost, charged at the window start.
    """

    names: tuple[str, ...]
    gpu_seconds: np.ndarray
    accuracy: np.ndarray
    profile_gpu_seconds: float


class Estimation:
    """Estimates the retraining configurations of every stream, window after window.

    Args:
        mode: ``micro`` or ``oracle`` (see the module docstring).
        profiler: the micro-profiler (in ``oracle`` mode it only splits the validation set off).
        retrain_configs: the retraining space by name.
        stream_names: the run's streams (each keeps its own pruned set).
        pruning: pruning between windows (None: never prune).
        noise_std: Gaussian noise (accuracy points) added to the estimated accuracies.
        seed: seeds the noise.
        device: torch device the profiling runs train on.
    """

    def __init__(self, mode: str, profiler: MicroProfiler, retrain_configs: dict[str, RetrainConfig], stream_names: list[str],
                 pruning: PruningSettings | None = None, noise_std: float = 0.0, seed: int = 0, device: str = "cpu") -> None:
        if mode not in PROFILER_MODES:
            raise EkyaError(f"unknown profiler {mode!r}; valid: {', '.join(PROFILER_MODES)}")
        if not noise_std >= 0:
            raise EkyaError(f"profiler.noise_std must be >= 0 accuracy points, got {noise_std}")
        self.mode = mode
        self.profiler = profiler
        self.retrain_configs = retrain_configs
        self.stream_names = stream_names
        self.pruning = pruning
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.device = device
        self.kept_configs = {stream: list(retrain_configs) for stream in stream_names}

    def estimate(
        self,
        stream: str,
        window: int,
        window_position: int,
        serving: EdgeModel,
        labeled: Window,
        validation: Window,
        sample: Window,
        full_outcome: Callable[[str], tuple[float, float]],
        run_seconds: Callable[[RetrainConfig, TrainResult, int], tuple[float, float, float]],
        run_seed: Callable[[str], int],
    ) -> Estimates:
        """The stream's estimates for this window (noise added); prunes its kept configurations afterwards.

        Args:
            stream: the stream.
            window: the window index (seeds the noise).
            window_position: the window's position in the run (pruning's clock).
            serving: the model serving at the window start (profiling runs start from it).
            labeled: window k-1 as labeled; ``validation`` and ``sample`` are the profiler's split of it.
            full_outcome: GPU-seconds and accuracy of fully retraining a configuration (``oracle`` mode; trains it).
            run_seconds: GPU-seconds of a training run (frozen-layer pass, epochs, validation on N crops).
            run_seed: the seed a configuration's runs train with.
        """
        kept = self.kept_configs[stream]
        if self.mode == "oracle":
            outcomes = [full_outcome(name) for name in kept]
            costs = np.array([cost for cost, _ in outcomes])
            accuracies = np.array([accuracy for _, accuracy in outcomes])
            profile_seconds = 0.0
        else:
            from ekya.training.retrain import retrain

            def train_fn(config: RetrainConfig, sample_fraction: float, epochs: int, validations_per_epoch: int) -> ProfileRun:
                probe = RetrainConfig(config.name, config.train_layers, config.hidden_size, 1.0, epochs, config.batch_size, config.learning_rate)
                result = retrain(serving, sample, probe, seed=run_seed(config.name), device=self.device,
                                 validation=validation, validations_per_epoch=validations_per_epoch)
                feature_seconds, training_seconds, validation_seconds = run_seconds(config, result, len(validation))
                return ProfileRun(result.validation_accuracy, training_seconds / result.epochs, result.num_samples,
                                  len(np.unique(sample.labels)), feature_seconds=feature_seconds,
                                  validation_seconds=validation_seconds, validation_sample_epochs=result.validation_sample_epochs)

            estimates = self.profiler.profile(
                [self.retrain_configs[name] for name in kept], train_fn, len(labeled),
                profile_key=lambda c: (c.train_layers, c.hidden_size, c.batch_size, c.learning_rate),
            )
            costs = np.array([e.gpu_seconds for e in estimates])
            accuracies = np.array([e.accuracy for e in estimates])
            profile_seconds = float(sum(e.profiling_gpu_seconds for e in estimates))
        if self.pruning is not None:
            p = self.pruning
            self.kept_configs[stream] = prune_configs(kept, costs, accuracies, window_position, p.every_windows, p.fraction, p.floor)
        if self.noise_std > 0:
            noise = np.random.default_rng([self.seed, self.stream_names.index(stream), window, 1])
            accuracies = add_estimate_noise(accuracies, self.noise_std, noise)
        return Estimates(tuple(kept), costs, accuracies, profile_seconds)
