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
from typing import Callable

import numpy as np
import torch
from torch.nn import functional
from tqdm.auto import tqdm

from ekya.data.base import Window
from ekya.errors import EkyaError
from ekya.models.factory import EdgeModel, freeze_all_but_last, images_to_tensor, set_training_mode, synchronize_device, with_new_head
from ekya.models.predict import EVAL_BATCH_SIZE
from ekya.training.config import RetrainConfig

#: A new head is initialised from torch's global generator (seeded under fork_rng); the lock
#: keeps concurrent retrainings in other threads from interleaving with it.
_GLOBAL_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class TrainResult:
    """A retrained model and what its training cost.

    Attributes:
        model: the retrained model (a new object, in eval mode).
        config: the retraining configuration used.
        compute_seconds: measured wall-clock seconds of training with the whole device
            (100% of one GPU, or the CPU), excluding validation; includes ``feature_seconds``.
        seconds_per_epoch: compute_seconds / epochs.
        epochs: epochs run.
        num_samples: crops in the training subsample.
        samples_processed: crops pushed through training in total (num_samples * epochs).
        optimizer_steps: number of SGD steps taken.
        train_accuracy: accuracy on the training subsample during the last epoch, in [0, 1].
        validation_accuracy: accuracy on the validation window at each validation point (empty if none given).
        feature_seconds: of ``compute_seconds``, the seconds spent once computing the frozen
            layers' output for the subsample (0 when every layer trains).
        validation_seconds: measured seconds spent validating (not in ``compute_seconds``);
            includes ``validation_feature_seconds``.
        validation_feature_seconds: of ``validation_seconds``, the seconds spent once computing
            the frozen layers' output for the validation crops (0 when every layer trains).
        validation_sample_epochs: training progress at each validation point, in epochs over
            the subsample (samples seen / num_samples; 1.0, 2.0, ... with one point per epoch).
        reused_passes: the frozen-layer passes taken from an earlier run (:class:`FrozenPasses`):
            ``"train"``, ``"validation"``, both or none.
        reused_seconds: of ``compute_seconds`` and ``validation_seconds``, the seconds of
            ``reused_passes``, measured by the run that computed them and not spent by this one.
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
    feature_seconds: float = 0.0
    validation_seconds: float = 0.0
    validation_sample_epochs: list[float] = field(default_factory=list)
    validation_feature_seconds: float = 0.0
    reused_passes: tuple[str, ...] = ()
    reused_seconds: float = 0.0


class FrozenPasses:
    """The frozen layers' output on one training set and one validation set, computed once per frozen depth.

    Runs that start from the same model on the same crops and freeze the same layers (the
    profiling runs of one stream in one window: every configuration trains on the same sample
    and validates on the same set) push the same crops through the same frozen weights. Passed
    to :func:`retrain`, the first run of a depth computes the pass and the others reuse it; a
    run reports the pass's seconds as its own (its costs stay those of a run alone) and, in
    ``reused_seconds``, what it did not spend.

    Args:
        model: the model every run starts from.
        train: the crops every run trains on, all of them (a run on a subsample computes its own pass).
        validation: the crops every run validates on, or None.
    """

    def __init__(self, model: EdgeModel, train: Window, validation: Window | None = None) -> None:
        self.model, self.train, self.validation = model, train, validation
        self._passes: dict[tuple[str, int], tuple[torch.Tensor, float]] = {}

    def check(self, model: EdgeModel, train: Window | list[Window], validation: Window | None) -> None:
        """Refuse a run on another model or other crops than these passes were made for."""
        if model is not self.model or train is not self.train or validation is not self.validation:
            raise ValueError("FrozenPasses serve runs from their own model, training crops and validation crops only")

    def features(self, part: str, frozen_steps: int, compute: Callable[[], torch.Tensor], device: str) -> tuple[torch.Tensor, float, bool]:
        """``(features, seconds, reused)`` of the ``part`` (``"train"`` or ``"validation"``) pass through ``frozen_steps``
        steps: the stored one, else ``compute()``, timed on ``device`` and stored."""
        reused = (part, frozen_steps) in self._passes
        if not reused:
            self._passes[(part, frozen_steps)] = _timed(compute, device)
        features, seconds = self._passes[(part, frozen_steps)]
        return features, seconds, reused


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


def subsample_size(num_crops: int, fraction: float) -> int:
    """How many of ``num_crops`` crops a ``fraction`` of them trains on (at least one)."""
    return max(1, int(round(fraction * num_crops)))


def subsample_indices(num_crops: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a uniform random ``fraction`` of ``num_crops`` crops (:func:`subsample_size` of them), seeded."""
    chosen = np.random.default_rng(seed).choice(num_crops, size=subsample_size(num_crops, fraction), replace=False)
    return np.sort(chosen)


def retrain(
    model: EdgeModel,
    train: Window | list[Window],
    config: RetrainConfig,
    seed: int,
    device: str = "cpu",
    validation: Window | None = None,
    progress: bool = False,
    validations_per_epoch: int = 1,
    update_batch_norm: bool = False,
    frozen_passes: FrozenPasses | None = None,
) -> TrainResult:
    """Retrain a copy of ``model`` on ``train`` with ``config``; ``model`` itself is untouched.

    Frozen layers run once: when ``config`` trains only the last layer groups, the output of
    the frozen ones is computed once per crop (:meth:`EdgeModel.frozen_features`) and every
    epoch trains on it, which gives the same model as a full forward pass per step (frozen
    batch norms stay in eval mode, there is no data augmentation) at a fraction of the cost.

    Args:
        model: the serving model (or a fresh one, to train from scratch with ``train_layers="all"``).
        train: the labeled window(s) to learn from.
        config: layers to train, head size, subsample fraction, epochs, batch size, learning rate.
        seed: seeds the subsample, the shuffling and a new head's initial weights.
        device: torch device to train on.
        validation: if given, its accuracy is measured ``validations_per_epoch`` times per epoch
            (not counted in ``compute_seconds``; timed in ``validation_seconds``).
        progress: show a tqdm progress bar over epochs.
        validations_per_epoch: validation points per epoch, evenly spread over its batches
            (at most one per batch), >= 1.
        update_batch_norm: let trained batch-norm layers update their statistics (training
            from scratch); fine-tuning keeps them fixed (see :func:`set_training_mode`).
        frozen_passes: the frozen layers' output shared with other runs from ``model`` on
            ``train`` (all of it) and ``validation`` (:class:`FrozenPasses`); None: computed here.
    """
    if isinstance(validations_per_epoch, bool) or not isinstance(validations_per_epoch, int) or validations_per_epoch < 1:
        raise EkyaError(f"validations_per_epoch must be an int >= 1, got {validations_per_epoch!r}")
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
    # Models without frozen-layer steps (the golden model) only ever train every layer.
    frozen_steps = 0 if config.train_layers == "all" else trained.frozen_step_count(config.train_layers)

    if frozen_passes is not None:
        frozen_passes.check(model, train, validation)
    reused_passes: list[str] = []
    reused_seconds = 0.0

    def frozen_pass(part: str, compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
        nonlocal reused_seconds
        # A subsample pushes other crops through the frozen layers than the shared pass did.
        if frozen_passes is None or not frozen_steps or (part == "train" and len(chosen) != len(labels)):
            return _timed(compute, device)
        features, seconds, reused = frozen_passes.features(part, frozen_steps, compute, device)
        if reused:
            reused_passes.append(part)
            reused_seconds += seconds
        return features, seconds

    features, feature_seconds = frozen_pass("train", lambda: _frozen_features(trained, inputs, frozen_steps))
    feature_seconds = feature_seconds if frozen_steps else 0.0
    compute_seconds = feature_seconds
    validation_features = None
    validation_seconds = validation_feature_seconds = 0.0
    if validation is not None and len(validation) > 0:
        validation_features, validation_seconds = frozen_pass(
            "validation", lambda: _frozen_features(trained, images_to_tensor(validation.images, device=device), frozen_steps))
        validation_targets = torch.from_numpy(validation.labels.astype(np.int64)).to(device)
        validation_feature_seconds = validation_seconds if frozen_steps else 0.0

    optimizer_steps = 0
    samples_seen = 0
    train_accuracy = 0.0
    validation_accuracy: list[float] = []
    validation_sample_epochs: list[float] = []
    batches_per_epoch = -(-len(targets) // config.batch_size)
    validate_after = set(np.linspace(0, batches_per_epoch, min(validations_per_epoch, batches_per_epoch) + 1)[1:].round().astype(int))
    for _ in tqdm(range(config.epochs), desc=f"retrain {config.name}", unit="epoch", disable=not progress):
        started = time.perf_counter()
        set_training_mode(trained, config.train_layers, update_batch_norm)
        order = torch.randperm(len(targets), generator=shuffler).to(device)
        correct = 0
        for batch_number, batch in enumerate(order.split(config.batch_size), start=1):
            logits = trained.forward_from(features[batch], frozen_steps) if frozen_steps else trained(features[batch])
            loss = functional.cross_entropy(logits, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            optimizer_steps += 1
            samples_seen += len(batch)
            correct += int((logits.argmax(dim=1) == targets[batch]).sum())
            if validation_features is not None and batch_number in validate_after:
                synchronize_device(device)
                compute_seconds += time.perf_counter() - started
                validation_started = time.perf_counter()
                validation_accuracy.append(_accuracy_from(trained, validation_features, validation_targets, frozen_steps))
                validation_sample_epochs.append(samples_seen / len(targets))
                set_training_mode(trained, config.train_layers, update_batch_norm)
                validation_seconds += time.perf_counter() - validation_started
                started = time.perf_counter()
        synchronize_device(device)
        compute_seconds += time.perf_counter() - started
        train_accuracy = correct / len(targets)

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
        feature_seconds=feature_seconds,
        validation_seconds=validation_seconds,
        validation_sample_epochs=validation_sample_epochs,
        validation_feature_seconds=validation_feature_seconds,
        reused_passes=tuple(reused_passes),
        reused_seconds=reused_seconds,
    )


def _timed(compute: Callable[[], torch.Tensor], device: str) -> tuple[torch.Tensor, float]:
    """``compute()`` and the seconds it took on ``device``."""
    started = time.perf_counter()
    result = compute()
    synchronize_device(device)
    return result, time.perf_counter() - started


def _frozen_features(model: EdgeModel, images: torch.Tensor, frozen_steps: int) -> torch.Tensor:
    """:meth:`EdgeModel.frozen_features` in batches of :data:`EVAL_BATCH_SIZE`, without gradients (the images themselves if none are frozen)."""
    if frozen_steps == 0:
        return images
    model.eval()
    with torch.no_grad():
        return torch.cat([model.frozen_features(images[start : start + EVAL_BATCH_SIZE], frozen_steps)
                          for start in range(0, len(images), EVAL_BATCH_SIZE)])


def _accuracy_from(model: EdgeModel, features: torch.Tensor, targets: torch.Tensor, frozen_steps: int) -> float:
    """Accuracy of ``model`` (in eval mode) on cached frozen-layer ``features``; 0 if empty."""
    if len(targets) == 0:
        return 0.0
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(targets), EVAL_BATCH_SIZE):
            batch = features[start : start + EVAL_BATCH_SIZE]
            logits = model.forward_from(batch, frozen_steps) if frozen_steps else model(batch)
            correct += int((logits.argmax(dim=1) == targets[start : start + EVAL_BATCH_SIZE]).sum())
    return correct / len(targets)
