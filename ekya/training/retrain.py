"""Retrain one edge model with one retraining configuration and measure what it cost.

Training is plain SGD with momentum on cross-entropy, over a seeded uniform subsample of
the window's crops, shuffled each epoch by a seeded generator: on CPU, the same seed gives
the same weights. The global torch RNG is left as it was.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional
from tqdm.auto import tqdm

from ekya.data.base import Window
from ekya.errors import EkyaError
from ekya.models.factory import EdgeModel, freeze_all_but_last, images_to_tensor, set_training_mode, synchronize_device, with_new_head
from ekya.training.config import RetrainConfig

#: A new head is initialised from torch's global generator (seeded under fork_rng); the lock
#: keeps concurrent retrainings in other threads from interleaving with it.
_GLOBAL_RNG_LOCK = threading.Lock()

#: Crops per forward pass when evaluating (memory bound only, results do not depend on it).
EVAL_BATCH_SIZE = 256


@dataclass(frozen=True)
class TrainResult:
    """A retrained model and what its training cost.

    Attributes:
        model: the retrained model (a new object, in eval mode).
        config: the retraining configuration used.
        compute_seconds: measured wall-clock seconds of training with the whole device
            (100% of one GPU, or the CPU), excluding validation.
        seconds_per_epoch: compute_seconds / epochs.
        epochs: epochs run.
        num_samples: crops in the training subsample.
        samples_processed: crops pushed through training in total (num_samples * epochs).
        optimizer_steps: number of SGD steps taken.
        train_accuracy: accuracy on the training subsample during the last epoch, in [0, 1].
        validation_accuracy: accuracy on the validation window after each epoch (empty if none given).
    """

    model: EdgeModel
    config: RetrainConfig
    compute_seconds: float
    seconds_per_epoch: float
    epochs: int
    num_samples: int
    samples_processed: int
    optimizer_steps: int
    train_accuracy: float
    validation_accuracy: list[float] = field(default_factory=list)


def concatenate_windows(windows: Window | list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, H, W) uint8 and labels (N,) of one window or of several windows together."""
    if isinstance(windows, Window):
        windows = [windows]
    windows = [window for window in windows if len(window) > 0]
    if not windows:
        raise EkyaError("no labeled crops to train on: the training windows are empty")
    shapes = {window.images.shape[1:] for window in windows}
    if len(shapes) > 1:
        raise EkyaError(f"training windows have crops of different sizes {sorted(shapes)}; resize them to one size first")
    images = np.concatenate([window.images for window in windows])
    labels = np.concatenate([window.labels for window in windows]).astype(np.int64)
    return images, labels


def subsample_indices(num_crops: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a uniform random ``fraction`` of ``num_crops`` crops (at least one), seeded."""
    count = max(1, int(round(fraction * num_crops)))
    chosen = np.random.default_rng(seed).choice(num_crops, size=count, replace=False)
    return np.sort(chosen)


def retrain(
    model: EdgeModel,
    train: Window | list[Window],
    config: RetrainConfig,
    seed: int,
    device: str = "cpu",
    validation: Window | None = None,
    progress: bool = False,
) -> TrainResult:
    """Retrain a copy of ``model`` on ``train`` with ``config``; ``model`` itself is untouched.

    Args:
        model: the serving model (or a fresh one, to train from scratch with ``train_layers="all"``).
        train: the labeled window(s) to learn from.
        config: layers to train, head size, subsample fraction, epochs, batch size, learning rate.
        seed: seeds the subsample, the shuffling and a new head's initial weights.
        device: torch device to train on.
        validation: if given, its accuracy is measured after every epoch (not counted in the cost).
        progress: show a tqdm progress bar over epochs.
    """
    images, labels = concatenate_windows(train)
    if labels.min() < 0 or labels.max() >= model.num_classes:
        raise EkyaError(f"training labels must be in 0..{model.num_classes - 1}, got {labels.min()}..{labels.max()}")
    chosen = subsample_indices(len(labels), config.subsample, seed)
    inputs = images_to_tensor(images[chosen], device=device)
    targets = torch.from_numpy(labels[chosen]).to(device)

    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trained = copy.deepcopy(model) if config.hidden_size == model.hidden_size else with_new_head(model, config.hidden_size)
    trained = trained.to(device)
    parameters = freeze_all_but_last(trained, config.train_layers)
    optimizer = torch.optim.SGD(parameters, lr=config.learning_rate, momentum=0.9)
    shuffler = torch.Generator().manual_seed(seed)

    compute_seconds = 0.0
    optimizer_steps = 0
    train_accuracy = 0.0
    validation_accuracy: list[float] = []
    for _ in tqdm(range(config.epochs), desc=f"retrain {config.name}", unit="epoch", disable=not progress):
        started = time.perf_counter()
        set_training_mode(trained, config.train_layers)
        order = torch.randperm(len(targets), generator=shuffler).to(device)
        correct = 0
        for batch in order.split(config.batch_size):
            logits = trained(inputs[batch])
            loss = functional.cross_entropy(logits, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            optimizer_steps += 1
            correct += int((logits.argmax(dim=1) == targets[batch]).sum())
        synchronize_device(device)
        compute_seconds += time.perf_counter() - started
        train_accuracy = correct / len(targets)
        if validation is not None:
            validation_accuracy.append(evaluate(trained, validation, device=device))

    trained.eval()
    for parameter in trained.parameters():  # the returned model carries no freezing state
        parameter.requires_grad_(True)
    return TrainResult(
        model=trained,
        config=config,
        compute_seconds=compute_seconds,
        seconds_per_epoch=compute_seconds / config.epochs,
        epochs=config.epochs,
        num_samples=len(targets),
        samples_processed=len(targets) * config.epochs,
        optimizer_steps=optimizer_steps,
        train_accuracy=train_accuracy,
        validation_accuracy=validation_accuracy,
    )


def predict(model: EdgeModel, images: np.ndarray, resolution: int | None = None, device: str = "cpu") -> np.ndarray:
    """Predicted class (N,) int64 of uint8 crops (N, 3, H, W), optionally seen at ``resolution`` pixels."""
    model = model.to(device).eval()
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(images), EVAL_BATCH_SIZE):
            batch = images_to_tensor(images[start : start + EVAL_BATCH_SIZE], resolution=resolution, device=device)
            predictions.append(model(batch).argmax(dim=1).cpu().numpy())
    return np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)


def evaluate(model: EdgeModel, window: Window, resolution: int | None = None, device: str = "cpu") -> float:
    """Fraction of ``window``'s crops that ``model`` classifies correctly (every crop processed); 0 if empty."""
    if len(window) == 0:
        return 0.0
    return float(np.mean(predict(model, window.images, resolution=resolution, device=device) == window.labels))
