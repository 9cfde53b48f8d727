"""Train a golden model (:class:`ekya.models.golden.GoldenModel`) from scratch on labeled crops.

The crops of the given windows are split at random (seeded) into a training and a validation
set (:func:`split_crops`); :func:`train_golden_model` trains every layer with the same SGD loop
as the edge models (:func:`ekya.training.retrain.retrain`) and reports the measured training
seconds with the whole device and the accuracies, in [0, 1]. ``python -m flows.train_golden``
runs it and saves the checkpoint (:func:`ekya.models.golden.save_golden_checkpoint`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ekya.data.base import CLASSES, StreamSource, Window
from ekya.errors import EkyaError
from ekya.models.golden import GoldenModel
from ekya.training.config import RetrainConfig
from ekya.training.retrain import concatenate_windows, retrain


@dataclasses.dataclass(frozen=True)
class GoldenTrainResult:
    """A trained golden model and how well it does.

    Attributes:
        model: the trained model, in eval mode.
        compute_seconds: measured training seconds with the whole device (100% of one GPU, or the CPU).
        num_train: crops trained on.
        num_validation: crops of the held-out validation split.
        train_accuracy: accuracy on the training crops during the last epoch, in [0, 1].
        validation_accuracy: accuracy on the validation split after each epoch, in [0, 1]
            (empty without a validation split).
    """

    model: GoldenModel
    compute_seconds: float
    num_train: int
    num_validation: int
    train_accuracy: float
    validation_accuracy: list[float]


def _crops_window(name: str, images: np.ndarray, labels: np.ndarray) -> Window:
    """A pseudo-window holding ``images`` and ``labels`` (no timing), to reuse window-based training code."""
    zeros = np.zeros(len(labels))
    return Window(name, 0, 0.0, 0.0, images, labels, zeros.astype(np.int64), zeros)


def split_crops(windows: list[Window], validation_fraction: float, seed: int) -> tuple[Window, Window | None]:
    """The crops of ``windows`` split uniformly at random (seeded) into a training and a validation set.

    Returns ``(train, validation)`` pseudo-windows; ``validation`` is None for a fraction of 0.
    At least one crop stays in the training set.
    """
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)) or not 0 <= validation_fraction < 1:
        raise EkyaError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    images, labels = concatenate_windows(windows)
    order = np.random.default_rng(seed).permutation(len(labels))
    num_validation = min(int(round(validation_fraction * len(labels))), len(labels) - 1)
    held_out, kept = np.sort(order[:num_validation]), np.sort(order[num_validation:])
    train = _crops_window("golden-train", images[kept], labels[kept])
    validation = _crops_window("golden-validation", images[held_out], labels[held_out]) if num_validation else None
    return train, validation


def golden_training_windows(source: StreamSource, holdout: bool, stream_windows: int | None) -> list[Window]:
    """The windows a golden model trains on: the hold-out windows (if ``holdout``) plus the first
    ``stream_windows`` windows of every stream (None: all)."""
    windows = list(source.holdout()) if holdout else []
    if holdout and not windows:
        raise EkyaError("the dataset has no hold-out windows; use holdout=false stream_windows=N")
    for stream in source.streams:
        count = source.num_windows(stream) if stream_windows is None else min(stream_windows, source.num_windows(stream))
        windows.extend(source.window(stream, index) for index in range(count))
    return windows


def check_golden_classes(windows: list[Window]) -> dict[str, int]:
    """Crops per class of a golden model's training ``windows`` (classes with crops only).

    Raises:
        EkyaError: fewer than two classes have crops (a classifier trained on one class labels
            every crop with it), naming the classes found and where more may come from.
    """
    counts = np.zeros(len(CLASSES), dtype=np.int64)
    for window in windows:
        counts += window.class_counts()
    found = {CLASSES[i]: int(n) for i, n in enumerate(counts) if n}
    if len(found) < 2:
        listed = ", ".join(f"{name} ({n} crops)" for name, n in found.items()) or "none"
        raise EkyaError(
            f"the golden model's training data holds {len(found)} class(es): {listed}; a classifier needs at least 2 of "
            f"{', '.join(CLASSES)}: add windows with other classes (stream_windows=N or null, holdout=true, "
            "dataset.holdout_streams=[...]) or train on another dataset"
        )
    return found


def train_golden_model(
    windows: list[Window],
    architecture: str = "resnet50",
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 0.05,
    validation_fraction: float = 0.2,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> GoldenTrainResult:
    """Train a golden model from scratch on the labeled crops of ``windows`` (SGD, momentum 0.9).

    Args:
        windows: labeled windows (e.g. the dataset's hold-out windows), crops of one size.
        architecture: one of :data:`ekya.models.golden.GOLDEN_MODEL_NAMES`.
        epochs: passes over the training crops, >= 1.
        batch_size: crops per optimizer step.
        learning_rate: SGD step size.
        validation_fraction: share of the crops held out to measure accuracy, in [0, 1).
        seed: seeds the initial weights, the split and the shuffling (same seed, same weights on CPU).
        device: torch device to train on.
        progress: show a tqdm progress bar over epochs.

    Raises:
        EkyaError: the crops hold fewer than two classes (:func:`check_golden_classes`).
    """
    check_golden_classes(windows)
    config = RetrainConfig(
        name="golden", train_layers="all", hidden_size=0, subsample=1.0, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate
    )
    train, validation = split_crops(windows, validation_fraction, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        initial = GoldenModel(architecture, num_classes=len(CLASSES))
    result = retrain(initial, train, config, seed=seed, device=device, validation=validation, progress=progress,  # type: ignore[arg-type]
                     update_batch_norm=True)
    return GoldenTrainResult(
        model=result.model,  # type: ignore[arg-type]
        compute_seconds=result.compute_seconds,
        num_train=len(train),
        num_validation=0 if validation is None else len(validation),
        train_accuracy=result.train_accuracy,
        validation_accuracy=list(result.validation_accuracy),
    )
