"""What jobs cost: training GPU-seconds and each inference configuration's GPU demand, for local runs and traces.

Modes (``executor.cost``, and ``cost`` of ``flows.profile_offline``):

- ``reference`` (the default): costs are a function of the work through the reference table that
  ships with the project (:mod:`ekya.profiling.reference_costs`): samples, epochs, layers trained
  and resolution. The same config and seed give the same costs, decisions and trace on every machine.
- a ``.csv`` path: the same, through a table measured elsewhere (``python -m ekya.profiling.reference_costs``).
- ``calibrated``: this machine's seconds per sample of each configuration family (layers trained,
  head, batch size), measured once per model, family and device, and cached.
- ``measured``: each job's own wall-clock compute seconds.

An inference configuration's demand (share of one GPU to keep up in real time) is the stream
load's frames per second x the sampling rate x objects per frame x the seconds per crop of the
model at the configuration's resolution (:class:`ekya.data.base.StreamLoad`); its accuracy factor
is measured with the base model on the hold-out windows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
from tqdm.auto import tqdm

from ekya.data.base import StreamLoad, Window
from ekya.data.cache import cache_key, write_text_atomically
from ekya.errors import EkyaError
from ekya.inference.config import InferenceConfig
from ekya.profiling.reference_costs import ReferenceCosts
from ekya.training.config import RetrainConfig

if TYPE_CHECKING:  # torch is imported where models run, so that checking a config does not load it
    from ekya.models.factory import EdgeModel
    from ekya.training.retrain import TrainResult

#: How training GPU-seconds are obtained (besides the path of a reference table, a .csv file).
COST_MODES = ("reference", "calibrated", "measured")
#: Bump when the calibration file's content changes meaning (2: frozen-layer, training and validation rates;
#: 3: validation split into the one-off frozen-layer pass over the validation crops and a rate per point;
#: 4: inference as seconds per crop and accuracy factor, pooled over the hold-out windows).
CALIBRATION_FORMAT = 4

#: Inference configuration name -> (GPU share needed to keep up in real time, accuracy relative to the reference configuration).
InferenceTable = dict[str, tuple[float, float]]


def family(config: RetrainConfig) -> str:
    """Configurations that cost the same per sample: same layers trained, head and batch size."""
    return f"layers={config.train_layers},hidden={config.hidden_size},batch={config.batch_size}"


def reference_inference(configs: dict[str, InferenceConfig], source_resolution: int | None) -> str:
    """The full inference configuration: every frame at full resolution (else the first one)."""
    for name, config in configs.items():
        if config.sampling_rate == 1.0 and config.resolution in (None, source_resolution):
            return name
    return next(iter(configs))


def check_cost_mode(mode: str, key: str = "executor.cost") -> str:
    """``mode`` if it is a cost mode or the path of a .csv table, else one line naming the valid ones."""
    mode = str(mode)
    if mode not in COST_MODES and not mode.endswith(".csv"):
        raise EkyaError(f"{key}={mode!r}; valid: {', '.join(COST_MODES)} or the path of a .csv reference cost table")
    return mode


def pooled_inference_profile(model: EdgeModel, windows: list[Window], configs: dict[str, InferenceConfig],
                             reference: InferenceConfig, device: str) -> dict[str, tuple[float, float]]:
    """Each inference configuration's measured seconds per processed crop and its accuracy relative to ``reference``,
    pooled over ``windows`` (crop-weighted accuracy; :func:`ekya.inference.run.measure_inference_space` per window)."""
    from ekya.inference.run import measure_inference_space, run_inference

    windows = [window for window in windows if len(window) > 0]
    if not windows:
        raise EkyaError("the hold-out windows have no crops to measure inference on")
    run_inference(model, windows[0], reference, device)  # warm-up, not timed
    names, measured = [*configs, ""], [*configs.values(), reference]
    per_window = [measure_inference_space(model, window, measured, device) for window in windows]  # [window][config]
    crops = np.array([len(window) for window in windows], dtype=float)
    pooled = {}
    for k, name in enumerate(names):
        results = [row[k] for row in per_window]
        seconds = sum(r.seconds_per_crop * r.processed_crops for r in results) / max(sum(r.processed_crops for r in results), 1)
        pooled[name] = (max(seconds, 1e-9), float(np.dot([r.accuracy for r in results], crops) / crops.sum()))
    full = pooled.pop("")[1]
    return {name: (seconds, float(np.clip(accuracy / full, 0.0, 1.0)) if full > 0 else 1.0)
            for name, (seconds, accuracy) in pooled.items()}


def inference_demand(load: StreamLoad, sampling_rate: float, seconds_per_crop: float) -> float:
    """Share of one GPU that keeps up with ``load`` in real time: frames/s x sampling rate x objects/frame x seconds/crop."""
    return load.frames_per_second * sampling_rate * load.objects_per_frame * seconds_per_crop


class JobCosts:
    """GPU-seconds of training runs and the inference demand of each stream, for a local run or a trace.

    Args:
        mode: ``reference``, ``calibrated``, ``measured`` or the path of a .csv reference table (see the module docstring).
        device: torch device the jobs run on.
        model_name: the edge model (its rows of the reference table).
        progress: a progress bar while calibrating.
        key: the setting that chose ``mode``, named in messages.
    """

    def __init__(self, mode: str, device: str, model_name: str = "resnet18", progress: bool = True, key: str = "executor.cost") -> None:
        self.mode = check_cost_mode(mode, key)
        self.device = device
        self.model_name = model_name
        self.progress = progress
        self.table: ReferenceCosts | None = None
        if self.mode == "reference":
            self.table = ReferenceCosts.shipped(device, key)
        elif self.mode.endswith(".csv"):
            self.table = ReferenceCosts.load(self.mode)
        self.seconds_per_sample: dict[str, dict[str, float]] = {}  # family -> feature, train, validation seconds per sample
        #: Inference configuration name -> (seconds per processed crop, accuracy relative to the reference configuration).
        self.inference_profile: dict[str, tuple[float, float]] = {}

    def key(self) -> dict:
        """What the costs depend on besides the work, for cache keys of what is computed from them (a trace's cells)."""
        if self.table is None:
            return {"mode": self.mode, "device": str(self.device)}
        return {"mode": "table", "table": cache_key(self.table.rows)}

    def check(self, retrain_configs: Iterable[RetrainConfig], inference_configs: Iterable[InferenceConfig], resolution: int | None) -> None:
        """Every configuration's costs are in the table at the crops' ``resolution`` (else one line naming the resolution
        and the valid ones); nothing to check without a table or before the resolution is known (None)."""
        if self.table is None or resolution is None:
            return
        for config in retrain_configs:
            self.table.training_rates(self.model_name, resolution, config.train_layers, "crop resolution")
        for config in inference_configs:
            self.table.inference_seconds(self.model_name, config.resolution or resolution, f"inference config {config.name}: resolution")

    def prepare(self, base: EdgeModel, holdout: list[Window], retrain_configs: dict[str, RetrainConfig],
                inference_configs: dict[str, InferenceConfig], reference: InferenceConfig, key_fields: dict, seed: int,
                cache_dir: str) -> None:
        """Take the costs from the table (or calibrate them, or load the cached calibration) and measure the inference
        configurations' accuracy factors on the hold-out windows.

        Args:
            reference: the full inference configuration accuracy factors are relative to.
            key_fields: what else the calibration depends on (data digest, model settings), for its cache key.
        """
        resolution = int(holdout[0].images.shape[-1])
        self.check(retrain_configs.values(), inference_configs.values(), resolution)
        if self.mode != "calibrated":
            measured = pooled_inference_profile(base, holdout, inference_configs, reference, self.device)
            if self.table is None:
                self.inference_profile = measured
                return
            self.use_table_rates(retrain_configs.values(), resolution)
            self.inference_profile = {
                name: (self.table.inference_seconds(self.model_name, config.resolution or resolution), measured[name][1])
                for name, config in inference_configs.items()
            }
            return
        key = cache_key({
            "format": CALIBRATION_FORMAT, **key_fields, "seed": seed, "device": self.device,
            "families": sorted({family(c) for c in retrain_configs.values()}),
            "inference": {name: vars(config) for name, config in inference_configs.items()},
        })
        path = Path(cache_dir) / f"calibration-{key}.json"
        if path.exists():
            calibration = json.loads(path.read_text())
        else:
            calibration = {
                "seconds_per_sample": self._calibrate_training(base, holdout[0], retrain_configs, seed),
                "inference": pooled_inference_profile(base, holdout, inference_configs, reference, self.device),
            }
            write_text_atomically(path, json.dumps(calibration))
        self.seconds_per_sample = calibration["seconds_per_sample"]
        self.inference_profile = {name: tuple(value) for name, value in calibration["inference"].items()}

    def use_table_rates(self, retrain_configs: Iterable[RetrainConfig], resolution: int) -> None:
        """Take the training rates of ``retrain_configs`` at crops of ``resolution`` pixels from the table (its modes only)."""
        if self.table is None:
            raise EkyaError(f"cost mode {self.mode!r} has no table to take training rates from")
        self.seconds_per_sample = {family(c): self._table_rates(c, resolution) for c in retrain_configs}

    def _table_rates(self, config: RetrainConfig, resolution: int) -> dict[str, float]:
        rates = self.table.training_rates(self.model_name, resolution, config.train_layers)
        return {"feature": rates.frozen, "train": rates.train, "validation_feature": rates.frozen, "validation": rates.validation}

    def inference_table(self, load: StreamLoad, configs: dict[str, InferenceConfig],
                        factors: dict[str, float] | None = None) -> InferenceTable:
        """Each inference configuration's (GPU demand under ``load``, accuracy factor); ``factors`` replace the
        hold-out's (e.g. a stream's own, measured on its windows)."""
        return {name: (inference_demand(load, configs[name].sampling_rate, seconds), factor if factors is None else factors[name])
                for name, (seconds, factor) in self.inference_profile.items()}

    def _calibrate_training(self, base: EdgeModel, window: Window, retrain_configs: dict[str, RetrainConfig], seed: int) -> dict[str, dict[str, float]]:
        """Seconds per sample and epoch of each configuration family (layers trained, head, batch size)."""
        from ekya.training.retrain import retrain

        families: dict[str, RetrainConfig] = {}
        for config in retrain_configs.values():
            families.setdefault(family(config), config)
        rates = {}
        validation = window.subset(np.arange(min(len(window), 64)))
        for name, config in tqdm(families.items(), desc="calibrating training cost", disable=not self.progress):
            probe = RetrainConfig(config.name, config.train_layers, config.hidden_size, 1.0, 2, config.batch_size, config.learning_rate)
            result = retrain(base, window, probe, seed=seed, device=self.device, validation=validation)
            points = len(result.validation_accuracy)
            rates[name] = {
                "feature": result.feature_seconds / result.num_samples,
                "train": (result.compute_seconds - result.feature_seconds) / result.samples_processed,
                "validation_feature": result.validation_feature_seconds / len(validation),
                "validation": (result.validation_seconds - result.validation_feature_seconds) / (len(validation) * points),
            }
        return rates

    def state(self) -> dict:
        """What :meth:`prepare` found (training rates, inference seconds per crop and accuracy factors), JSON-able:
        a resumed run costs its jobs as before."""
        return {"seconds_per_sample": self.seconds_per_sample, "inference_profile": self.inference_profile}

    def restore(self, state: dict) -> None:
        """Cost jobs with what :meth:`state` returned."""
        self.seconds_per_sample = {name: dict(rates) for name, rates in state["seconds_per_sample"].items()}
        self.inference_profile = {name: tuple(value) for name, value in state["inference_profile"].items()}

    def run_seconds(self, config: RetrainConfig, result: TrainResult, validation_size: int = 0) -> tuple[float, float, float]:
        """GPU-seconds at 100% of the device of a training run: the one-off frozen-layer pass, the
        training epochs, and validating on ``validation_size`` crops (0 with no validation points)."""
        if self.mode == "measured":
            return result.feature_seconds, result.compute_seconds - result.feature_seconds, result.validation_seconds
        rates = self.seconds_per_sample[family(config)]
        points = len(result.validation_accuracy)
        validation_seconds = (rates["validation_feature"] + rates["validation"] * points) * validation_size if points else 0.0
        return rates["feature"] * result.num_samples, rates["train"] * result.samples_processed, validation_seconds

    def reused_seconds(self, config: RetrainConfig, result: TrainResult, validation_size: int = 0) -> float:
        """Of :meth:`run_seconds`, the GPU-seconds of the frozen-layer passes the run reused from an earlier one
        (``result.reused_passes``): its training crops' pass, its ``validation_size`` validation crops' pass."""
        if self.mode == "measured":
            return result.reused_seconds
        rates = self.seconds_per_sample[family(config)]
        return (rates["feature"] * result.num_samples * ("train" in result.reused_passes)
                + rates["validation_feature"] * validation_size * ("validation" in result.reused_passes))

    def evaluation_seconds(self, inference_config: str, crops: int) -> float:
        """GPU-seconds at 100% of the device of running a model over ``crops`` crops under ``inference_config``."""
        return self.inference_profile[inference_config][0] * crops

    def training_seconds(self, config: RetrainConfig, result: TrainResult) -> float:
        """GPU-seconds at 100% of the device of a training run, validation excluded."""
        feature_seconds, training_seconds, _ = self.run_seconds(config, result)
        return feature_seconds + training_seconds
