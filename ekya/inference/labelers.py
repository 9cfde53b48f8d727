"""Labelers: where the labels of a window's crops come from, and what labeling costs.

Retraining in window k learns from the labeled crops of window k-1 (see the design's window
timeline). The Ekya paper labels them with a *golden model*, a large and accurate classifier
(ResNeXt101) run on the edge GPU; its GPU time is charged at the start of the window. A
dataset's own annotations stand in for a human labeler at no GPU cost.

- :class:`GroundTruthLabeler`: the dataset's labels, cost 0.
- :class:`GoldenModelLabeler`: a golden-model checkpoint (:mod:`ekya.models.golden`, trained by
  :func:`ekya.training.golden.train_golden_model`) run on the crops; its cost is measured,
  in seconds with the whole device (GPU-seconds).
- :class:`DetectorLabeler`: the labels of the dataset's detection stage (``dataset.detector``),
  charged at the stage's measured seconds; :class:`GoldenCropClassifier` is the golden model
  that labels a MOG2 stage's boxes.

Running a model over a window's crops is inference, hence this module's place. Accuracy may be
measured against the ground truth or against the golden labels (:data:`MEASURE_AGAINST`,
:func:`reference_labels`, :func:`label_agreement`).

Only the golden model needs torch; it is imported when one is loaded, so that checking a run
with another labeler imports none.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ekya.data.base import Window
from ekya.errors import EkyaError

#: What accuracy can be measured against: the dataset's labels or the golden model's labels.
MEASURE_AGAINST: tuple[str, ...] = ("ground_truth", "golden")


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
        from ekya.models.golden import load_golden_checkpoint

        self.model = load_golden_checkpoint(self.checkpoint, architecture=architecture, device=device)

    def label(self, window: Window) -> LabelResult:
        """Golden labels of ``window``'s crops; the cost is the measured wall-clock time of inference."""
        import torch

        from ekya.models.factory import images_to_tensor, synchronize_device

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


class DetectorLabeler(Labeler):
    """The labels a dataset's detection stage gave its crops (``dataset.detector``), charged at what it took.

    A video dataset with ``detector: torchvision`` takes the detector's COCO labels, with
    ``detector: mog2`` a golden classifier's labels of the moving objects' crops; the window
    carries the measured seconds of that stage (:attr:`~ekya.data.base.Window.labeling_seconds`),
    which this labeler charges as labeling GPU-seconds, as the paper charges its golden model.
    """

    name = "detector"

    def label(self, window: Window) -> LabelResult:
        return LabelResult(labels=window.labels.astype(np.int64, copy=True), gpu_seconds=float(window.labeling_seconds))


class GoldenCropClassifier:
    """A golden-model checkpoint as the crop classifier of a MOG2 detection stage (``dataset.detection.classifier``).

    Args:
        checkpoint: golden-model checkpoint (``python -m flows.train_golden`` writes one).
        device: torch device to run it on.
        batch_size: crops per forward pass.
    """

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu", batch_size: int = 256) -> None:
        self._labeler = GoldenModelLabeler(checkpoint, device=device, batch_size=batch_size)
        from ekya.data.cache import file_digest

        self._digest = file_digest(self._labeler.checkpoint)

    def classify(self, images: np.ndarray) -> np.ndarray:
        count = len(images)
        window = Window("crops", 0, 0.0, 0.0, images, np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64), np.zeros(count))
        return self._labeler.label(window).labels

    def params(self) -> dict:
        return {"golden_checkpoint": self._digest}


_LABELERS: dict[str, type[Labeler]] = {cls.name: cls for cls in (GroundTruthLabeler, GoldenModelLabeler, DetectorLabeler)}

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
