"""Run an edge model on a window's frames under an inference configuration; measure accuracy and cost.

Frames are taken in time order and a fraction ``sampling_rate`` of them is processed,
evenly spread and starting with the first. Every crop of a processed frame is classified at
the configuration's resolution. A crop of a skipped frame gets the class most often predicted
in the last processed frame before it (the stale result a real pipeline would still show).
Cost is the measured wall time of the model on the processed frames with the whole device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ekya.data.base import Window
from ekya.errors import EkyaError
from ekya.inference.config import InferenceConfig
from ekya.models.factory import EdgeModel, synchronize_device
from ekya.models.predict import predict


@dataclass(frozen=True)
class InferenceResult:
    """Accuracy and cost of one inference configuration on one window.

    Attributes:
        config: the inference configuration.
        accuracy: fraction of the window's crops whose reported class is right, in [0, 1].
        seconds_per_frame: measured seconds of model time per processed frame with the whole device.
        seconds_per_crop: measured seconds of model time per processed crop.
        processed_frames: frames the model ran on.
        total_frames: frames in the window.
        processed_crops: crops the model ran on.
    """

    config: InferenceConfig
    accuracy: float
    seconds_per_frame: float
    seconds_per_crop: float
    processed_frames: int
    total_frames: int
    processed_crops: int


def processed_frame_mask(num_frames: int, sampling_rate: float) -> np.ndarray:
    """Boolean (num_frames,): which frames (in time order) are processed; ceil(num_frames * rate) of them, first included."""
    positions = np.arange(num_frames)
    slots = np.floor(positions * sampling_rate + 1e-9)
    previous = np.floor((positions - 1) * sampling_rate + 1e-9)
    return slots != previous


def _frame_positions(window: Window) -> tuple[np.ndarray, int]:
    """Each crop's frame position in time order, and the number of frames."""
    frame_ids, first_crop, crop_frame = np.unique(window.frame_ids, return_index=True, return_inverse=True)
    time_order = np.lexsort((frame_ids, window.timestamps[first_crop]))
    rank = np.empty(len(frame_ids), dtype=np.int64)
    rank[time_order] = np.arange(len(frame_ids))
    return rank[crop_frame.ravel()], len(frame_ids)


def run_inference(model: EdgeModel, window: Window, config: InferenceConfig, device: str = "cpu") -> InferenceResult:
    """Accuracy and per-frame cost of ``model`` on ``window`` under ``config``."""
    if len(window) == 0:
        raise EkyaError(f"window {window.stream}/{window.index} has no crops to run inference on")
    crop_frame, num_frames = _frame_positions(window)
    processed = processed_frame_mask(num_frames, config.sampling_rate)
    crop_processed = processed[crop_frame]

    synchronize_device(device)
    started = time.perf_counter()
    predicted = predict(model, window.images[crop_processed], resolution=config.resolution, device=device)
    synchronize_device(device)
    model_seconds = time.perf_counter() - started

    reported = np.empty(len(window), dtype=np.int64)
    reported[crop_processed] = predicted
    num_classes = model.num_classes
    votes = np.zeros((num_frames, num_classes), dtype=np.int64)
    np.add.at(votes, (crop_frame[crop_processed], predicted), 1)
    frame_mode = votes.argmax(axis=1)  # ties go to the lower class index
    overall_mode = int(np.bincount(predicted, minlength=num_classes).argmax()) if len(predicted) else 0
    last_processed = np.maximum.accumulate(np.where(processed, np.arange(num_frames), -1))
    stale = np.where(last_processed >= 0, frame_mode[np.maximum(last_processed, 0)], overall_mode)
    reported[~crop_processed] = stale[crop_frame[~crop_processed]]

    processed_frames = int(processed.sum())
    processed_crops = int(crop_processed.sum())
    return InferenceResult(
        config=config,
        accuracy=float(np.mean(reported == window.labels)),
        seconds_per_frame=model_seconds / processed_frames,
        seconds_per_crop=model_seconds / max(processed_crops, 1),
        processed_frames=processed_frames,
        total_frames=num_frames,
        processed_crops=processed_crops,
    )


def measure_inference_space(model: EdgeModel, window: Window, configs: list[InferenceConfig], device: str = "cpu") -> list[InferenceResult]:
    """:func:`run_inference` for every configuration, in order."""
    return [run_inference(model, window, config, device=device) for config in configs]
