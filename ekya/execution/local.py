"""The local executor: real continuous learning on this device (CPU or one GPU).

Per window k (k >= 1; window 0 is the first labeled data) and stream:

1. labeling: window k-1's crops get labels (ground truth for the built-in data);
2. micro-profiling: every retraining configuration is estimated from short runs on a sample
   of window k-1 (:class:`~ekya.profiling.micro_profiler.MicroProfiler`); its GPU time is
   charged at the window start;
3. scheduling: any scheduler, on the estimates;
4. retraining and inference for real: a chosen configuration is trained on window k-1 and its
   compute seconds measured; models are evaluated on window k's crops; the window timeline of
   DESIGN.md places the measured costs and accuracies (re-plans included).

Retrained models serve from the moment they finish and carry over to the next window.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from ekya.data.base import StreamSource, Window
from ekya.data.cache import cache_key, windows_digest, write_text_atomically
from ekya.errors import EkyaError
from ekya.execution.simulated import WindowSettings, select
from ekya.execution.timeline import StreamOutcomes, StreamProfile
from ekya.inference.config import InferenceConfig
from ekya.inference.labelers import GroundTruthLabeler, Labeler, check_measure_against
from ekya.inference.run import demand_gpu, run_inference
from ekya.models.factory import EdgeModel
from ekya.models.predict import evaluate
from ekya.profiling.micro_profiler import MicroProfiler, ProfileRun
from ekya.profiling.noise import add_estimate_noise
from ekya.profiling.pruning import prune_configs
from ekya.scheduling.problem import Problem, StreamProblem
from ekya.scheduling.uniform import RETRAIN_CONFIG_ALIASES, resolve_retrain_config
from ekya.training.base_model import base_model
from ekya.training.config import RetrainConfig
from ekya.training.retrain import TrainResult, retrain


#: How training GPU-seconds are obtained (see :class:`LocalRun`).
COST_MODES = ("calibrated", "measured")
#: Bump when the calibration file's content changes meaning (2: frozen-layer, training and validation rates;
#: 3: validation split into the one-off frozen-layer pass over the validation crops and a rate per point).
CALIBRATION_FORMAT = 3
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
class ModelSettings:
    """The edge model and its base-model training.

    Attributes:
        name: architecture (see ``ekya.models.factory.MODEL_NAMES``).
        hidden_size: neurons of the head's hidden layer.
        base_epochs, base_batch_size, base_learning_rate: base-model training on the hold-out cameras.
    """

    name: str = "resnet18"
    hidden_size: int = 64
    base_epochs: int = 5
    base_batch_size: int = 32
    base_learning_rate: float = 0.05


class _MeasuredRetraining:
    """Trains retraining configurations on demand (thread-safe, once each) and remembers results."""

    def __init__(self, train: Callable[[RetrainConfig], tuple[TrainResult, float, float]], configs: dict[str, RetrainConfig]) -> None:
        self._train = train
        self._configs = configs
        self._results: dict[str, tuple[TrainResult, float, float]] = {}
        self._lock = threading.Lock()

    def result(self, name: str) -> tuple[TrainResult, float, float]:
        """The training result of ``name``, its GPU-seconds and its model's accuracy on the evaluation window."""
        with self._lock:
            if name not in self._results:
                self._results[name] = self._train(self._configs[name])
            return self._results[name]

    def trained(self, name: str) -> TrainResult | None:
        found = self._results.get(name)
        return found[0] if found else None


class _LazyMapping(Mapping):
    """A read-only mapping whose values are computed on first access."""

    def __init__(self, keys: list[str], value: Callable[[str], float]) -> None:
        self._keys = keys
        self._value = value

    def __getitem__(self, key: str) -> float:
        if key not in self._keys:
            raise KeyError(key)
        return self._value(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class LocalRun:
    """Real retraining and inference for every stream and window of a dataset.

    Args:
        source: the dataset.
        model: edge model settings.
        retrain_configs: the retraining space Γ.
        inference_configs: the inference space; the first one with sampling rate 1 and no
            resolution reduction is the reference ("full") configuration.
        profiler: the micro-profiler.
        settings: G, Δ, aMIN; ``window_seconds`` must equal the source's.
        streams: use the first N streams (None: all).
        windows: run the first N windows that have a previous window to learn from (None: all).
        seed: seeds training (per stream, window and configuration).
        cache_dir: base-model checkpoints, the hold-out profile and the cost calibration.
        device: torch device.
        progress: progress bars for base-model training.
        profiler_mode: ``micro`` (estimate with ``profiler``) or ``oracle`` (hand the scheduler the
            measured outcome of fully retraining every configuration, at no charged cost: the
            loss due to estimation is then measured directly).
        pruning: pruning of the retraining space between windows (None: never prune).
        estimate_noise_std: Gaussian noise (accuracy points) added to the estimated accuracies.
        labeler: labels window k-1's crops for retraining (default: the dataset's labels); its
            GPU-seconds are charged at the window start.
        measure_against: ``ground_truth`` or ``golden``: the labels inference accuracy is measured against.
        cost: ``calibrated`` (default): training GPU-seconds = samples x epochs x seconds per
            sample, measured once per model, configuration family and device and cached, and the
            inference table likewise, so the same config and seed give the same decisions;
            ``measured``: each run's own wall-clock compute seconds.
    """

    def __init__(
        self,
        source: StreamSource,
        model: ModelSettings,
        retrain_configs: list[RetrainConfig],
        inference_configs: list[InferenceConfig],
        profiler: MicroProfiler,
        settings: WindowSettings,
        streams: int | None = None,
        windows: int | None = None,
        seed: int = 0,
        cache_dir: str = ".cache/models",
        device: str = "cpu",
        progress: bool = True,
        labeler: Labeler | None = None,
        measure_against: str = "ground_truth",
        cost: str = "calibrated",
        profiler_mode: str = "micro",
        pruning: PruningSettings | None = None,
        estimate_noise_std: float = 0.0,
    ) -> None:
        if cost not in COST_MODES:
            raise EkyaError(f"unknown cost mode {cost!r}; valid: {', '.join(COST_MODES)}")
        if profiler_mode not in PROFILER_MODES:
            raise EkyaError(f"unknown profiler {profiler_mode!r}; valid: {', '.join(PROFILER_MODES)}")
        if not estimate_noise_std >= 0:
            raise EkyaError(f"estimate noise must be >= 0 accuracy points, got {estimate_noise_std}")
        if not retrain_configs:
            raise EkyaError("the retraining space is empty: give at least one retraining configuration")
        if not inference_configs:
            raise EkyaError("the inference space is empty: give at least one inference configuration")
        if abs(settings.window_seconds - source.window_seconds) > 1e-9:
            raise EkyaError(f"window_seconds {settings.window_seconds} differs from the dataset's {source.window_seconds}")
        self.source = source
        self.model = model
        self.retrain_configs = {config.name: config for config in retrain_configs}
        self.inference_configs = {config.name: config for config in inference_configs}
        self.profiler = profiler
        self.settings = settings
        self.seed = int(seed)
        self.cache_dir = cache_dir
        self.device = device
        self.progress = progress
        self.cost = cost
        self.profiler_mode = profiler_mode
        self.pruning = pruning
        self.estimate_noise_std = float(estimate_noise_std)
        self.labeler = labeler if labeler is not None else GroundTruthLabeler()
        self.measure_against = check_measure_against(measure_against)
        self.seconds_per_sample: dict[str, dict[str, float]] = {}  # family -> feature, train, validation seconds per sample
        self.stream_names = select(source.streams, streams, "streams")
        available = min(source.num_windows(stream) for stream in self.stream_names)
        if available < 2:
            raise EkyaError(f"the dataset has {available} window(s) per stream; continuous learning needs at least 2")
        self.window_indices = [int(k) for k in select(list(range(1, available)), windows, "windows")]
        self.serving: dict[str, EdgeModel] = {}
        self.inference_table: dict[str, tuple[float, float]] = {}
        self._measured: dict[tuple[int, str], _MeasuredRetraining] = {}
        self.kept_configs = {stream: list(self.retrain_configs) for stream in self.stream_names}

    # -- once per run -------------------------------------------------------------------
    def prepare(self) -> None:
        """Train (or load) the base model and measure the inference space on the hold-out cameras."""
        holdout = self.source.holdout()
        if not holdout:
            raise EkyaError("the dataset has no hold-out windows to train the base model on")
        base = base_model(
            holdout,
            self.model.name,
            self.model.hidden_size,
            self.model.base_epochs,
            self.seed,
            self.cache_dir,
            batch_size=self.model.base_batch_size,
            learning_rate=self.model.base_learning_rate,
            device=self.device,
            progress=self.progress,
        )
        self.serving = {stream: base for stream in self.stream_names}
        if self.cost == "measured":
            self.inference_table = self._measure_inference_space(base, holdout[-1])
            return
        key = cache_key({
            "format": CALIBRATION_FORMAT,
            "data": windows_digest(holdout), "model": vars(self.model), "seed": self.seed, "device": self.device,
            "families": sorted({_family(c) for c in self.retrain_configs.values()}),
            "inference": {name: vars(config) for name, config in self.inference_configs.items()},
        })
        path = Path(self.cache_dir) / f"calibration-{key}.json"
        if path.exists():
            calibration = json.loads(path.read_text())
        else:
            calibration = {
                "seconds_per_sample": self._calibrate_training(base, holdout[0]),
                "inference": self._measure_inference_space(base, holdout[-1]),
            }
            write_text_atomically(path, json.dumps(calibration))
        self.seconds_per_sample = calibration["seconds_per_sample"]
        self.inference_table = {name: tuple(value) for name, value in calibration["inference"].items()}

    def _calibrate_training(self, base: EdgeModel, window: Window) -> dict[str, float]:
        """Seconds per sample and epoch of each configuration family (layers trained, head, batch size)."""
        families: dict[str, RetrainConfig] = {}
        for config in self.retrain_configs.values():
            families.setdefault(_family(config), config)
        rates = {}
        validation = window.subset(np.arange(min(len(window), 64)))
        for family, config in tqdm(families.items(), desc="calibrating training cost", disable=not self.progress):
            probe = RetrainConfig(config.name, config.train_layers, config.hidden_size, 1.0, 2, config.batch_size, config.learning_rate)
            result = retrain(base, window, probe, seed=self.seed, device=self.device, validation=validation)
            points = len(result.validation_accuracy)
            rates[family] = {
                "feature": result.feature_seconds / result.num_samples,
                "train": (result.compute_seconds - result.feature_seconds) / result.samples_processed,
                "validation_feature": result.validation_feature_seconds / len(validation),
                "validation": (result.validation_seconds - result.validation_feature_seconds) / (len(validation) * points),
            }
        return rates

    def _run_seconds(self, config: RetrainConfig, result: TrainResult, validation_size: int = 0) -> tuple[float, float, float]:
        """GPU-seconds at 100% of the device of a training run (calibrated or measured): the
        one-off frozen-layer pass, the training epochs, and validating on ``validation_size`` crops."""
        if self.cost == "measured":
            return result.feature_seconds, result.compute_seconds - result.feature_seconds, result.validation_seconds
        rates = self.seconds_per_sample[_family(config)]
        points = len(result.validation_accuracy)
        validation_seconds = (rates["validation_feature"] + rates["validation"] * points) * validation_size if points else 0.0
        return rates["feature"] * result.num_samples, rates["train"] * result.samples_processed, validation_seconds

    def _training_seconds(self, config: RetrainConfig, result: TrainResult) -> float:
        """GPU-seconds at 100% of the device of a training run, validation excluded (calibrated or measured)."""
        feature_seconds, training_seconds, _ = self._run_seconds(config, result)
        return feature_seconds + training_seconds

    def _measure_inference_space(self, model: EdgeModel, window: Window) -> dict[str, tuple[float, float]]:
        """name -> (GPU demand to keep up in real time, accuracy relative to the reference configuration)."""
        frames = len(np.unique(window.frame_ids))
        frames_per_second = frames / (window.end_seconds - window.start_seconds)
        results = {name: run_inference(model, window, config, self.device) for name, config in self.inference_configs.items()}
        reference = results[self.reference_inference].accuracy
        return {
            name: (demand_gpu(result, frames_per_second), float(np.clip(result.accuracy / reference, 0.0, 1.0)) if reference > 0 else 1.0)
            for name, result in results.items()
        }

    @property
    def reference_inference(self) -> str:
        """The full inference configuration: every frame at full resolution (else the first one)."""
        for name, config in self.inference_configs.items():
            if config.sampling_rate == 1.0 and config.resolution in (None, self.source_resolution):
                return name
        return next(iter(self.inference_configs))

    @property
    def source_resolution(self) -> int | None:
        return getattr(self.source, "resolution", None)

    # -- per window and stream ------------------------------------------------------------
    def _seed(self, window: int, stream: str, config: str) -> int:
        names = list(self.retrain_configs)
        index = names.index(config) if config in names else len(names)
        return int(np.random.SeedSequence([self.seed, self.stream_names.index(stream), window, index]).generate_state(1)[0])

    def profile(self, window: int, stream: str) -> StreamProfile:
        """Label window k-1, micro-profile every configuration on it, and set up the measurements of window k."""
        if not self.serving:
            raise RuntimeError("call prepare() before profile()")
        previous = self.source.window(stream, window - 1)
        labeling = self.labeler.label(previous)
        labeled = labeling.apply(previous)
        current = self.source.window(stream, window)
        if self.measure_against == "golden":
            current = self.labeler.label(current).apply(current)
        serving = self.serving[stream]
        validation_indices, sample_indices = self.profiler.split(labeled.labels, window, self.stream_names.index(stream))
        validation, sample = labeled.subset(validation_indices), labeled.subset(sample_indices)

        outcomes = self._outcomes(window, stream, labeled, current)
        kept = self.kept_configs[stream]
        if self.profiler_mode == "oracle":
            costs = np.array([outcomes.retrain_gpu_seconds[name] for name in kept])
            accuracies = np.array([outcomes.retrain_accuracy[name] for name in kept])
            profile_seconds = 0.0
        else:

            def train_fn(config: RetrainConfig, sample_fraction: float, epochs: int, validations_per_epoch: int) -> ProfileRun:
                probe = RetrainConfig(config.name, config.train_layers, config.hidden_size, 1.0, epochs, config.batch_size, config.learning_rate)
                result = retrain(serving, sample, probe, seed=self._seed(window, stream, config.name), device=self.device,
                                 validation=validation, validations_per_epoch=validations_per_epoch)
                feature_seconds, training_seconds, validation_seconds = self._run_seconds(config, result, len(validation))
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
            position = self.window_indices.index(window) if window in self.window_indices else 0
            p = self.pruning
            self.kept_configs[stream] = prune_configs(kept, costs, accuracies, position, p.every_windows, p.fraction, p.floor)
        if self.estimate_noise_std > 0:
            noise = np.random.default_rng([self.seed, self.stream_names.index(stream), window, 1])
            accuracies = add_estimate_noise(accuracies, self.estimate_noise_std, noise)
        believed_serving = evaluate(serving, validation, device=self.device)
        names = tuple(sorted(self.inference_table))
        believed = StreamProblem(
            name=stream,
            serving_accuracy=believed_serving,
            retrain_names=tuple(kept),
            retrain_gpu_seconds=costs,
            retrain_accuracy=accuracies,
            inference_names=names,
            inference_demand=np.array([self.inference_table[n][0] for n in names]),
            inference_factor=np.array([self.inference_table[n][1] for n in names]),
        )
        return StreamProfile(believed, outcomes, {"labeling": labeling.gpu_seconds, "profile": profile_seconds})

    def _outcomes(self, window: int, stream: str, labeled: Window, current: Window) -> StreamOutcomes:
        serving = self.serving[stream]

        def train(config: RetrainConfig) -> tuple[TrainResult, float, float]:
            result = retrain(serving, labeled, config, seed=self._seed(window, stream, config.name), device=self.device)
            return result, self._training_seconds(config, result), evaluate(result.model, current, device=self.device)

        measured = _MeasuredRetraining(train, self.retrain_configs)
        self._measured[(window, stream)] = measured
        serving_full = run_inference(serving, current, self.inference_configs[self.reference_inference], self.device).accuracy
        factors: dict[str, float] = {}

        def factor(name: str) -> float:
            if name not in factors:
                accuracy = run_inference(serving, current, self.inference_configs[name], self.device).accuracy
                factors[name] = float(np.clip(accuracy / serving_full, 0.0, 1.0)) if serving_full > 0 else 1.0
            return factors[name]

        names = list(self.retrain_configs)
        return StreamOutcomes(
            serving_accuracy=serving_full,
            retrain_gpu_seconds=_LazyMapping(names, lambda n: measured.result(n)[1]),
            retrain_accuracy=_LazyMapping(names, lambda n: measured.result(n)[2]),
            inference_demand={n: self.inference_table[n][0] for n in self.inference_table},
            inference_factor=_LazyMapping(sorted(self.inference_table), factor),
        )

    def train_chosen(self, window: int, stream: str, config: str | None) -> None:
        """Run the chosen retraining now (lets streams train in parallel before the timeline is played)."""
        if config is not None:
            self._measured[(window, stream)].result(config)

    def resolve_retrain_config(self, name: str) -> str:
        """A configuration name, or Uniform's alias ``high``/``low`` picked from a hold-out profile.

        The hold-out profile (every configuration trained from the base model on the first
        hold-out window and evaluated on the last) is computed once and cached as JSON.
        """
        if name not in RETRAIN_CONFIG_ALIASES:
            if name not in self.retrain_configs:
                raise EkyaError(f"unknown retraining configuration {name!r}; valid: {', '.join(RETRAIN_CONFIG_ALIASES + tuple(self.retrain_configs))}")
            return name
        profile = self._holdout_profile()
        names = list(profile["configs"])
        return resolve_retrain_config(
            name, names, [profile["configs"][n][0] for n in names], [profile["configs"][n][1] for n in names], profile["base_accuracy"]
        )

    def _holdout_profile(self) -> dict:
        holdout = self.source.holdout()
        if len(holdout) < 2:
            raise EkyaError("picking Uniform's high/low configurations needs at least 2 hold-out windows; name a configuration instead")
        key = cache_key({
            "data": windows_digest(holdout), "model": vars(self.model), "seed": self.seed,
            "configs": {name: vars(config) for name, config in self.retrain_configs.items()},
        })
        path = Path(self.cache_dir) / f"holdout-profile-{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        base = self.serving[self.stream_names[0]] if self.serving else None
        if base is None:
            raise RuntimeError("call prepare() before resolving Uniform's configurations")
        train, evaluation = holdout[0], holdout[-1]
        configs = {}
        for name, config in tqdm(self.retrain_configs.items(), desc="hold-out profile for Uniform", disable=not self.progress):
            result = retrain(base, train, config, seed=self.seed, device=self.device)
            configs[name] = (self._training_seconds(config, result), evaluate(result.model, evaluation, device=self.device))
        profile = {"base_accuracy": evaluate(base, evaluation, device=self.device), "configs": configs}
        write_text_atomically(path, json.dumps(profile))
        return profile

    def problem(self, believed: list[StreamProblem], overhead_gpu_seconds: float) -> Problem:
        """The window's problem; overheads run on the whole box before training starts."""
        return self.settings.problem(believed, overhead_seconds=overhead_gpu_seconds / self.settings.gpus)

    def commit(self, window: int, retrained: list[str | None]) -> None:
        """Models retrained in ``window`` serve from now on; the window's training results are released."""
        for stream, config in zip(self.stream_names, retrained):
            measured = self._measured.pop((window, stream), None)
            if config is not None and measured is not None:
                result = measured.trained(config)
                if result is not None:
                    self.serving[stream] = result.model
        for key in [key for key in self._measured if key[0] == window]:
            del self._measured[key]


def _family(config: RetrainConfig) -> str:
    """Configurations that cost the same per sample: same layers trained, head and batch size."""
    return f"layers={config.train_layers},hidden={config.hidden_size},batch={config.batch_size}"
