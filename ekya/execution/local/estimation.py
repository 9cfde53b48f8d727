"""What the scheduler believes of a local run's retraining configurations, window by window.

``micro`` estimates every kept configuration with the micro-profiler's short runs on a sample
of window k-1 (their GPU time is charged at the window start); ``oracle`` hands the scheduler
the measured outcome of fully retraining every configuration, at no charged cost, so that the
loss due to estimation can be measured directly. ``holdout_oracle`` is a perfect micro-profiler:
every configuration is fully retrained on window k-1 without the profiler's validation set and
measured on that set, at no charged cost; it knows all that can be known before window k, and
nothing of the drift into it (the oracle minus it is the part of the loss no estimate made on
window k-1 can recover). Pruning drops configurations far from the
cost-accuracy frontier between windows; optional Gaussian noise perturbs the estimates.

Two options serve the study of the micro-profiler's decisions (``flows.profiler_regret``):

- ``audit``: every kept configuration is also fully retrained, uncharged and unseen by the
  scheduler, so each window's record holds the estimate and the truth of every configuration, from
  the model the loop really serves (errors compound through the loop and show there);
- ``correction``: an :class:`~ekya.profiling.correction.AccuracyCorrection` learns, from what the
  served and retrained models really reached in earlier windows, an offset per stream and family
  that corrects the next estimates.

Every window's estimates, and what the chosen models then reached (:meth:`Estimation.observe`), are
kept as a JSON-able record (:meth:`Estimation.window_record`) that the window loop logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ekya.data.base import Window
from ekya.errors import EkyaError
from ekya.profiling.correction import SERVING_FAMILY, AccuracyCorrection, config_family
from ekya.profiling.micro_profiler import MicroProfiler, ProfileRun
from ekya.profiling.noise import add_estimate_noise
from ekya.profiling.pruning import prune_configs
from ekya.training.config import RetrainConfig

if TYPE_CHECKING:
    from ekya.models.factory import EdgeModel
    from ekya.profiling.costs import JobCosts
    from ekya.training.retrain import FrozenPasses

#: Where the scheduler's estimates come from: the micro-profiler, exact outcomes of full retraining on the
#: window itself, or on window k-1's held-out validation set.
PROFILER_MODES = ("micro", "oracle", "holdout_oracle")


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
        accuracy: estimated accuracy on the window of each one's model (fraction; corrected and noised).
        profile_gpu_seconds: GPU-seconds the estimation cost, charged at the window start.
        serving_accuracy: estimated accuracy on the window of the model serving at its start (corrected).
    """

    names: tuple[str, ...]
    gpu_seconds: np.ndarray
    accuracy: np.ndarray
    profile_gpu_seconds: float
    serving_accuracy: float


def profiling_run(serving: EdgeModel, sample: Window, validation: Window, config: RetrainConfig, epochs: int,
                  validations_per_epoch: int, seed: int, device: str, costs: JobCosts, passes: FrozenPasses | None = None) -> ProfileRun:
    """One micro-profiling run: ``config``'s probe (:meth:`RetrainConfig.probe`) trained from ``serving`` on ``sample``
    for ``epochs`` epochs, validated on ``validation``, its seconds from ``costs`` (less the frozen passes it took from
    ``passes``)."""
    from ekya.training.retrain import retrain

    result = retrain(serving, sample, config.probe(epochs), seed=seed, device=device, validation=validation,
                     validations_per_epoch=validations_per_epoch, frozen_passes=passes)
    feature_seconds, training_seconds, validation_seconds = costs.run_seconds(config, result, len(validation))
    return ProfileRun(result.validation_accuracy, training_seconds / result.epochs, result.num_samples, len(np.unique(sample.labels)),
                      feature_seconds=feature_seconds, validation_seconds=validation_seconds,
                      validation_sample_epochs=result.validation_sample_epochs,
                      reused_seconds=costs.reused_seconds(config, result, len(validation)))


class Estimation:
    """Estimates the retraining configurations of every stream, window after window.

    Args:
        mode: ``micro``, ``oracle`` or ``holdout_oracle`` (see the module docstring).
        profiler: the micro-profiler (in the oracle modes it only splits the validation set off).
        retrain_configs: the retraining space by name.
        stream_names: the run's streams (each keeps its own pruned set).
        pruning: pruning between windows (None: never prune).
        noise_std: Gaussian noise (accuracy points) added to the estimated accuracies.
        seed: seeds the noise.
        device: torch device the profiling runs train on.
        audit: also retrain every kept configuration fully (``micro`` mode), to record the truth beside
            each estimate; the scheduler still sees the estimates only, and nothing is charged.
        correction: corrects ``micro`` estimates online from what earlier windows really reached (None: no correction).
    """

    def __init__(self, mode: str, profiler: MicroProfiler, retrain_configs: dict[str, RetrainConfig], stream_names: list[str],
                 pruning: PruningSettings | None = None, noise_std: float = 0.0, seed: int = 0, device: str = "cpu",
                 audit: bool = False, correction: AccuracyCorrection | None = None) -> None:
        if mode not in PROFILER_MODES:
            raise EkyaError(f"unknown profiler {mode!r}; valid: {', '.join(PROFILER_MODES)}")
        if not noise_std >= 0:
            raise EkyaError(f"profiler.noise_std must be >= 0 accuracy points, got {noise_std}")
        if not isinstance(audit, bool):
            raise EkyaError(f"profiler.audit must be true or false, got {audit!r}")
        if mode != "micro" and correction is not None:
            raise EkyaError(f"profiler={mode}'s estimates are exact: it takes no profiler.correction")
        self.mode = mode
        self.profiler = profiler
        self.retrain_configs = retrain_configs
        self.stream_names = stream_names
        self.pruning = pruning
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.device = device
        self.audit = audit
        self.correction = correction
        self.kept_configs = {stream: list(retrain_configs) for stream in stream_names}
        self._records: dict[tuple[int, str], dict] = {}

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
        holdout_outcome: Callable[[str], tuple[float, float]],
        costs: JobCosts,
        run_seed: Callable[[str], int],
        serving_accuracy: float,
    ) -> Estimates:
        """The stream's estimates for this window (corrected, noise added); prunes its kept configurations afterwards.

        Args:
            stream: the stream.
            window: the window index (seeds the noise).
            window_position: the window's position in the run (pruning's clock).
            serving: the model serving at the window start (profiling runs start from it).
            labeled: window k-1 as labeled; ``validation`` and ``sample`` are the profiler's split of it.
            full_outcome: GPU-seconds and accuracy of fully retraining a configuration (``oracle`` mode; trains it).
            holdout_outcome: the same, trained on ``labeled`` without ``validation`` and measured on ``validation``
                (``holdout_oracle`` mode; trains it).
            costs: GPU-seconds of a training run (:meth:`JobCosts.run_seconds`) and of the frozen-layer passes it reused
                (:meth:`JobCosts.reused_seconds`): the profiling runs of a frozen depth share one pass (:class:`FrozenPasses`).
            run_seed: the seed a configuration's runs train with.
            serving_accuracy: the serving model's accuracy as estimated (on ``validation``; in ``oracle`` mode on the window itself).
        """
        kept = self.kept_configs[stream]
        truth = [full_outcome(name) for name in kept] if self.mode == "oracle" or self.audit else None
        if self.mode != "micro":
            exact = truth if self.mode == "oracle" else [holdout_outcome(name) for name in kept]
            costs = np.array([cost for cost, _ in exact])
            accuracies = np.array([accuracy for _, accuracy in exact])
            profile_seconds = 0.0
        else:
            from ekya.training.retrain import FrozenPasses

            passes = FrozenPasses(serving, sample, validation)

            def train_fn(config: RetrainConfig, sample_fraction: float, epochs: int, validations_per_epoch: int) -> ProfileRun:
                return profiling_run(serving, sample, validation, config, epochs, validations_per_epoch, run_seed(config.name),
                                     self.device, costs, passes)

            estimates = self.profiler.profile([self.retrain_configs[name] for name in kept], train_fn, len(labeled),
                                              profile_key=RetrainConfig.profile_key)
            costs = np.array([e.gpu_seconds for e in estimates])
            accuracies = np.array([e.accuracy for e in estimates])
            profile_seconds = float(sum(e.profiling_gpu_seconds for e in estimates))
        profiled, profiled_serving = accuracies, float(serving_accuracy)
        if self.correction is not None:
            accuracies = self.correction.correct(stream, [config_family(self.retrain_configs[n].train_layers) for n in kept], accuracies)
            serving_accuracy = float(self.correction.correct(stream, [SERVING_FAMILY], [serving_accuracy])[0])
        if self.pruning is not None:
            p = self.pruning
            self.kept_configs[stream] = prune_configs(kept, costs, accuracies, window_position, p.every_windows, p.fraction, p.floor)
        if self.noise_std > 0:
            noise = np.random.default_rng([self.seed, self.stream_names.index(stream), window, 1])
            accuracies = add_estimate_noise(accuracies, self.noise_std, noise)
        record = {
            "configs": list(kept), "estimated_accuracy": accuracies.tolist(), "profiled_accuracy": profiled.tolist(),
            "estimated_gpu_seconds": costs.tolist(), "serving_estimated_accuracy": float(serving_accuracy),
            "serving_profiled_accuracy": profiled_serving, "profile_gpu_seconds": profile_seconds,
        }
        if truth is not None:
            record["true_gpu_seconds"] = [cost for cost, _ in truth]
            record["true_accuracy"] = [accuracy for _, accuracy in truth]
        self._records[(window, stream)] = record
        return Estimates(tuple(kept), costs, accuracies, profile_seconds, float(serving_accuracy))

    def observe(self, window: int, stream: str, serving_accuracy: float, retrained: str | None, retrained_accuracy: float | None) -> None:
        """What ``stream`` really reached in ``window`` (labeled at the next window's start): the serving model's
        accuracy and, if a retrained model took over, its configuration's. Recorded, and learnt by the correction
        (residuals against the estimates as profiled, before correction and noise)."""
        record = self._records[(window, stream)]
        record["serving_realized_accuracy"] = float(serving_accuracy)
        record["retrained"] = retrained
        if retrained is not None and retrained_accuracy is not None:
            record["retrained_realized_accuracy"] = float(retrained_accuracy)
        if self.correction is None:
            return
        self.correction.observe(stream, SERVING_FAMILY, record["serving_profiled_accuracy"], serving_accuracy)
        if retrained is not None and retrained_accuracy is not None:
            profiled = record["profiled_accuracy"][record["configs"].index(retrained)]
            self.correction.observe(stream, config_family(self.retrain_configs[retrained].train_layers), profiled, retrained_accuracy)

    def window_record(self, window: int) -> dict[str, dict]:
        """Every stream's estimation record of ``window`` (estimates, truths where known, what was reached); released."""
        return {stream: self._records.pop((window, stream)) for stream in self.stream_names if (window, stream) in self._records}

    def state(self) -> dict:
        """What carries over to the next window: the configurations pruning kept and the correction (JSON-able)."""
        return {"kept_configs": self.kept_configs, "correction": self.correction.state() if self.correction is not None else None}

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state`'s output."""
        self.kept_configs = {stream: list(state["kept_configs"][stream]) for stream in self.stream_names}
        if self.correction is not None and state.get("correction") is not None:
            self.correction.restore(state["correction"])
