"""Labelers: where the labels of a window's crops come from, and what labeling costs.

Retraining in window k learns from the labeled crops of window k-1 (see the design's window
timeline). The Ekya paper labels them with a *golden model*, a large and accurate classifier
(ResNeXt101) run on the edge GPU; its GPU time is charged at the start of the window. A
dataset's own annotations stand in for a human labeler at no GPU cost.

- :class:`GroundTruthLabeler`: the dataset's labels, cost 0.
- :class:`GoldenModelLabeler`: a golden-model checkpoint (:func:`train_golden_model`,
  :func:`save_golden_checkpoint`) run on the crops; its cost is measured.

Golden models are torchvision ResNet-family classifiers (random initial weights, nothing
downloaded) adapted to small crops like the edge models: a 3x3 stride-2 stem instead of the
7x7 one. They are larger than any edge model (``resnet50`` by default; ``resnet18`` is only
there for fast tests). Accuracy may be measured against the ground truth or against the golden
labels (:data:`MEASURE_AGAINST`, :func:`reference_labels`, :func:`label_agreement`).
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torchvision
from torch import nn

from ekya.data.base import CLASSES, Window
from ekya.errors import EkyaError
from ekya.models.checkpoints import write_checkpoint
from ekya.models.factory import images_to_tensor, synchronize_device
from ekya.training.config import RetrainConfig
from ekya.training.retrain import concatenate_windows, retrain

#: Tag stored in every golden-model checkpoint, so that other ``.pt`` files are recognised.
GOLDEN_CHECKPOINT_FORMAT = "ekya-golden-model/1"

#: What accuracy can be measured against: the dataset's labels or the golden model's labels.
MEASURE_AGAINST: tuple[str, ...] = ("ground_truth", "golden")

#: Per-channel mean and standard deviation of RGB images in [0, 1] (ImageNet statistics, as the edge models).
_CHANNEL_MEAN = (0.485, 0.456, 0.406)
_CHANNEL_STD = (0.229, 0.224, 0.225)

_ARCHITECTURES: dict[str, Callable[..., torchvision.models.ResNet]] = {
    "resnet18": torchvision.models.resnet18,  # as small as the edge model: for tests only
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
    "resnet101": torchvision.models.resnet101,
    "resnext50_32x4d": torchvision.models.resnext50_32x4d,
    "resnext101_32x8d": torchvision.models.resnext101_32x8d,  # the paper's golden model
    "wide_resnet50_2": torchvision.models.wide_resnet50_2,
}

#: Architectures accepted by :class:`GoldenModel`.
GOLDEN_MODEL_NAMES: tuple[str, ...] = tuple(_ARCHITECTURES)


# --------------------------------------------------------------------------- golden model


class GoldenModel(nn.Module):
    """A torchvision ResNet-family classifier for small crops, taking float RGB images in [0, 1].

    It has the attributes :func:`ekya.training.retrain.retrain` relies on (``num_classes``,
    ``hidden_size`` = 0, :meth:`layer_groups`), so it is trained with the same code as the
    edge models.

    Args:
        name: one of :data:`GOLDEN_MODEL_NAMES`.
        num_classes: number of output classes.
    """

    def __init__(self, name: str = "resnet50", num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        if name not in _ARCHITECTURES:
            raise EkyaError(f"unknown golden model {name!r}; valid golden models: {', '.join(GOLDEN_MODEL_NAMES)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise EkyaError(f"num_classes must be an int >= 1, got {num_classes!r}")
        self.name = name
        self.num_classes = num_classes
        self.hidden_size = 0  # the classifier is a single linear layer
        network = _ARCHITECTURES[name](weights=None, num_classes=num_classes)
        # A 3x3 stride-2 stem (as the edge models): a 7x7 kernel is coarse for 32-pixel crops.
        network.conv1 = nn.Conv2d(3, network.conv1.out_channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.network = network
        self.register_buffer("channel_mean", torch.tensor(_CHANNEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("channel_std", torch.tensor(_CHANNEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (N, num_classes) of float images in [0, 1] of shape (N, 3, H, W)."""
        return self.network((images - self.channel_mean) / self.channel_std)

    def config(self) -> dict[str, object]:
        """What rebuilds this architecture: ``GoldenModel(**model.config())``."""
        return {"name": self.name, "num_classes": self.num_classes}

    def layer_groups(self) -> list[list[nn.Module]]:
        """The trainable units, from the classifier backwards (training the golden model uses them all)."""
        net = self.network
        return [[net.fc], [net.layer4], [net.layer3], [net.layer2], [net.layer1], [net.conv1, net.bn1]]


def save_golden_checkpoint(model: GoldenModel, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights and architecture to ``path`` atomically (temp file + rename).

    A failed write leaves neither a temporary file nor a partial checkpoint behind.
    """
    return write_checkpoint(model, path, GOLDEN_CHECKPOINT_FORMAT)


def load_golden_checkpoint(path: str | os.PathLike, architecture: str | None = None, device: str = "cpu") -> GoldenModel:
    """The golden model stored at ``path``, in eval mode on ``device``.

    Args:
        path: checkpoint written by :func:`save_golden_checkpoint`.
        architecture: if given, the architecture the caller expects; a checkpoint of another one is an error.
        device: where the model goes.

    Raises:
        EkyaError: naming the file, if it is missing, unreadable, not a golden-model checkpoint,
            of another architecture than ``architecture``, or holds weights that do not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise EkyaError(f"golden checkpoint {path}: no such file (train one with `python -m flows.train_golden`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        first_line = str(error).splitlines()[0][:200] if str(error) else ""
        raise EkyaError(f"golden checkpoint {path}: unreadable ({type(error).__name__}: {first_line})") from error
    if not isinstance(payload, dict) or payload.get("format") != GOLDEN_CHECKPOINT_FORMAT:
        raise EkyaError(f"golden checkpoint {path}: not an Ekya golden-model checkpoint (expected format {GOLDEN_CHECKPOINT_FORMAT!r})")
    config = payload.get("config")
    if not isinstance(config, dict) or set(config) != {"name", "num_classes"} or not isinstance(payload.get("state_dict"), dict):
        raise EkyaError(f"golden checkpoint {path}: needs a config with name and num_classes and a state_dict, got config {config!r}")
    if architecture is not None and config["name"] != architecture:
        raise EkyaError(f"golden checkpoint {path}: architecture mismatch, it holds a {config['name']!r} but {architecture!r} is expected")
    if config["num_classes"] != len(CLASSES):
        raise EkyaError(f"golden checkpoint {path}: predicts {config['num_classes']} classes but the datasets have {len(CLASSES)}")
    try:
        golden = GoldenModel(str(config["name"]), num_classes=int(config["num_classes"]))
    except EkyaError as error:
        raise EkyaError(f"golden checkpoint {path}: {error}") from error
    try:
        golden.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0][:300] if str(error) else ""
        raise EkyaError(f"golden checkpoint {path}: weights do not fit a {config['name']} ({first_line})") from error
    return golden.to(device).eval()


# --------------------------------------------------------------------------- training


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
        architecture: one of :data:`GOLDEN_MODEL_NAMES`.
        epochs: passes over the training crops, >= 1.
        batch_size: crops per optimizer step.
        learning_rate: SGD step size.
        validation_fraction: share of the crops held out to measure accuracy, in [0, 1).
        seed: seeds the initial weights, the split and the shuffling (same seed, same weights on CPU).
        device: torch device to train on.
        progress: show a tqdm progress bar over epochs.
    """
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


# --------------------------------------------------------------------------- labelers


@dataclasses.dataclass(frozen=True)
class LabelResult:
    """The labels a labeler gave to a window's crops and what it cost.

    Attributes:
        labels: int64 array (N,), index into :data:`ekya.data.base.CLASSES`.
        gpu_seconds: measured compute seconds of labeling with the whole device
            (100% of one GPU, or the CPU); 0 for labels that cost no GPU time.
    """

    labels: np.ndarray
    gpu_seconds: float

    def apply(self, window: Window) -> Window:
        """A copy of ``window`` carrying these labels (what retraining then learns from)."""
        if len(self.labels) != len(window):
            raise ValueError(f"window {window.stream}/{window.index} has {len(window)} crops but {len(self.labels)} labels were given")
        return dataclasses.replace(window, labels=self.labels)


class Labeler(abc.ABC):
    """Gives a label to every crop of a window and reports the GPU time it took."""

    #: Registry name (see :func:`build_labeler`).
    name: str = ""

    @abc.abstractmethod
    def label(self, window: Window) -> LabelResult:
        """Labels (N,) of ``window``'s crops and the measured labeling cost, GPU-seconds."""


class GroundTruthLabeler(Labeler):
    """The dataset's own labels (a human labeler), at no GPU cost."""

    name = "ground_truth"

    def label(self, window: Window) -> LabelResult:
        return LabelResult(labels=window.labels.astype(np.int64, copy=True), gpu_seconds=0.0)


class GoldenModelLabeler(Labeler):
    """Labels crops with a golden model, the Ekya paper's labeler (NSDI'22, §5).

    Args:
        checkpoint: golden-model checkpoint file (``python -m flows.train_golden`` writes one).
        device: torch device to run it on.
        batch_size: crops per forward pass (memory bound only; labels do not depend on it).
        architecture: if given, the architecture the checkpoint must hold (e.g. "resnet50").

    Raises:
        EkyaError: naming the file, if the checkpoint is missing, corrupt or of another architecture.
    """

    name = "golden"

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu", batch_size: int = 256, architecture: str | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise EkyaError(f"golden labeler: batch_size must be an int >= 1, got {batch_size!r}")
        self.checkpoint = Path(checkpoint)
        self.device = device
        self.batch_size = batch_size
        self.model = load_golden_checkpoint(self.checkpoint, architecture=architecture, device=device)

    def label(self, window: Window) -> LabelResult:
        """Golden labels of ``window``'s crops; the cost is the measured wall-clock time of inference."""
        started = time.perf_counter()
        predictions = []
        with torch.inference_mode():
            for start in range(0, len(window), self.batch_size):
                batch = images_to_tensor(window.images[start : start + self.batch_size], device=self.device)
                predictions.append(self.model(batch).argmax(dim=1).cpu().numpy())
        synchronize_device(self.device)
        seconds = time.perf_counter() - started
        labels = np.concatenate(predictions).astype(np.int64) if predictions else np.zeros(0, dtype=np.int64)
        return LabelResult(labels=labels, gpu_seconds=seconds if len(window) else 0.0)


_LABELERS: dict[str, type[Labeler]] = {cls.name: cls for cls in (GroundTruthLabeler, GoldenModelLabeler)}

#: Names accepted by :func:`build_labeler`.
LABELER_NAMES: tuple[str, ...] = tuple(_LABELERS)


def build_labeler(name: str, **params: Any) -> Labeler:
    """The labeler called ``name`` built with ``params`` (e.g. ``build_labeler("golden", checkpoint=PATH)``).

    Raises:
        EkyaError: for an unknown name (the message lists valid ones) or parameters the labeler does not take.
    """
    if name not in _LABELERS:
        raise EkyaError(f"unknown labeler {name!r}; valid labelers: {', '.join(LABELER_NAMES)}")
    cls = _LABELERS[name]
    signature = inspect.signature(cls)
    valid = f"valid parameters: {', '.join(signature.parameters) or 'none'}"
    unknown = sorted(set(params) - set(signature.parameters))
    if unknown:
        raise EkyaError(f"labeler {name!r}: unknown parameters {unknown}; {valid}")
    try:
        signature.bind(**params)
    except TypeError as error:
        raise EkyaError(f"labeler {name!r}: {error}; {valid}") from error
    return cls(**params)


def labeler_from_config(config: Mapping[str, Any]) -> tuple[Labeler, str]:
    """The labeler of a ``conf/labeler/*.yaml`` mapping and what accuracy is measured against.

    ``name`` picks the labeler, ``measure_against`` (default "ground_truth") is returned as is,
    every other key is a parameter of the labeler.
    """
    params = dict(config)
    if "name" not in params:
        raise EkyaError(f"labeler config needs a name, one of {', '.join(LABELER_NAMES)}; got keys {sorted(params)}")
    name = str(params.pop("name"))
    measure_against = str(params.pop("measure_against", "ground_truth"))
    check_measure_against(measure_against)
    return build_labeler(name, **params), measure_against


def check_measure_against(measure_against: str) -> str:
    """``measure_against`` if it is one of :data:`MEASURE_AGAINST`, else an EkyaError listing them."""
    if measure_against not in MEASURE_AGAINST:
        raise EkyaError(f"unknown measure_against {measure_against!r}; valid: {', '.join(MEASURE_AGAINST)}")
    return measure_against


def reference_labels(window: Window, labeled: LabelResult, measure_against: str) -> np.ndarray:
    """The labels accuracy is measured against: the window's own (``ground_truth``) or ``labeled``'s (``golden``)."""
    check_measure_against(measure_against)
    return window.labels if measure_against == "ground_truth" else labeled.labels


def label_agreement(golden_labels: np.ndarray, true_labels: np.ndarray) -> float:
    """Fraction of crops whose two labels agree, in [0, 1] (0 for no crops).

    With a model's predictions as ``golden_labels`` this is its accuracy against ``true_labels``.
    """
    golden_labels, true_labels = np.asarray(golden_labels), np.asarray(true_labels)
    if golden_labels.shape != true_labels.shape or golden_labels.ndim != 1:
        raise ValueError(f"label arrays must be 1-D of one length, got shapes {golden_labels.shape} and {true_labels.shape}")
    if len(true_labels) == 0:
        return 0.0
    return float(np.mean(golden_labels == true_labels))
