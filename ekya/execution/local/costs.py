"""What a local run's jobs cost: training GPU-seconds (calibrated or measured) and the inference table.

``calibrated`` (the default) makes costs a function of the work: seconds per sample of each
configuration family (layers trained, head, batch size) are measured once per model, family and
device, and cached with the inference table, so the same config and seed give the same
decisions. ``measured`` charges each run its own wall-clock compute seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ekya.data.base import Window
from ekya.data.cache import cache_key, write_text_atomically
from ekya.errors import EkyaError
from ekya.inference.config import InferenceConfig
from ekya.inference.run import demand_gpu, run_inference
from ekya.models.factory import EdgeModel
from ekya.training.config import RetrainConfig
from ekya.training.retrain import TrainResult, retrain

#: How training GPU-seconds are obtained.
COST_MODES = ("calibrated", "measured")
#: Bump when the calibration file's content changes meaning (2: frozen-layer, training and validation rates;
#: 3: validation split into the one-off frozen-layer pass over the validation crops and a rate per point).
CALIBRATION_FORMAT = 3

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


def measure_inference_space(model: EdgeModel, window: Window, configs: dict[str, InferenceConfig], reference: str, device: str) -> InferenceTable:
    """Each inference configuration's GPU demand to keep up with ``window``'s frame rate, and its accuracy relative to ``reference``."""
    frames = len(np.unique(window.frame_ids))
    frames_per_second = frames / (window.end_seconds - window.start_seconds)
    results = {name: run_inference(model, window, config, device) for name, config in configs.items()}
    reference_accuracy = results[reference].accuracy
    return {
        name: (demand_gpu(result, frames_per_second),
               float(np.clip(result.accuracy / reference_accuracy, 0.0, 1.0)) if reference_accuracy > 0 else 1.0)
        for name, result in results.items()
    }


class JobCosts:
    """GPU-seconds of training runs and the inference table of a local run.

    Args:
        mode: ``calibrated`` or ``measured`` (see the module docstring).
        device: torch device the jobs run on.
        progress: a progress bar while calibrating.
    """

    def __init__(self, mode: str, device: str, progress: bool = True) -> None:
        if mode not in COST_MODES:
            raise EkyaError(f"unknown cost mode {mode!r}; valid: {', '.join(COST_MODES)}")
        self.mode = mode
        self.device = device
        self.progress = progress
        self.seconds_per_sample: dict[str, dict[str, float]] = {}  # family -> feature, train, validation seconds per sample
        self.inference_table: InferenceTable = {}

    def prepare(self, base: EdgeModel, holdout: list[Window], retrain_configs: dict[str, RetrainConfig],
                inference_configs: dict[str, InferenceConfig], reference: str, key_fields: dict, seed: int, cache_dir: str) -> None:
        """Calibrate (or load the cached calibration of) training costs and measure the inference table on the hold-out windows.

        Args:
            key_fields: what else the calibration depends on (data digest, model settings), for its cache key.
        """
        if self.mode == "measured":
            self.inference_table = measure_inference_space(base, holdout[-1], inference_configs, reference, self.device)
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
                "inference": measure_inference_space(base, holdout[-1], inference_configs, reference, self.device),
            }
            write_text_atomically(path, json.dumps(calibration))
        self.seconds_per_sample = calibration["seconds_per_sample"]
        self.inference_table = {name: tuple(value) for name, value in calibration["inference"].items()}

    def _calibrate_training(self, base: EdgeModel, window: Window, retrain_configs: dict[str, RetrainConfig], seed: int) -> dict[str, dict[str, float]]:
        """Seconds per sample and epoch of each configuration family (layers trained, head, batch size)."""
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
        """What :meth:`prepare` found (calibration and inference table), JSON-able: a resumed run costs its jobs as before."""
        return {"seconds_per_sample": self.seconds_per_sample, "inference_table": self.inference_table}

    def restore(self, state: dict) -> None:
        """Cost jobs with what :meth:`state` returned."""
        self.seconds_per_sample = {name: dict(rates) for name, rates in state["seconds_per_sample"].items()}
        self.inference_table = {name: tuple(value) for name, value in state["inference_table"].items()}

    def run_seconds(self, config: RetrainConfig, result: TrainResult, validation_size: int = 0) -> tuple[float, float, float]:
        """GPU-seconds at 100% of the device of a training run: the one-off frozen-layer pass, the
        training epochs, and validating on ``validation_size`` crops."""
        if self.mode == "measured":
            return result.feature_seconds, result.compute_seconds - result.feature_seconds, result.validation_seconds
        rates = self.seconds_per_sample[family(config)]
        points = len(result.validation_accuracy)
        validation_seconds = (rates["validation_feature"] + rates["validation"] * points) * validation_size if points else 0.0
        return rates["feature"] * result.num_samples, rates["train"] * result.samples_processed, validation_seconds

    def training_seconds(self, config: RetrainConfig, result: TrainResult) -> float:
        """GPU-seconds at 100% of the device of a training run, validation excluded."""
        feature_seconds, training_seconds, _ = self.run_seconds(config, result)
        return feature_seconds + training_seconds
