"""Labeling in a local run: window k-1's crops get labels to retrain on, and window k the labels accuracy is measured against."""

from __future__ import annotations

from dataclasses import dataclass

from ekya.data.base import Window
from ekya.inference.labelers import GroundTruthLabeler, Labeler, check_measure_against


@dataclass(frozen=True)
class LabeledWindows:
    """One stream's data at the start of window k.

    Attributes:
        training: window k-1 with the labeler's labels (what retraining and profiling learn from).
        evaluation: window k, labeled as accuracy is measured (ground truth or golden labels).
        gpu_seconds: GPU-seconds the labeler spent on window k-1, charged at the window start.
    """

    training: Window
    evaluation: Window
    gpu_seconds: float


class WindowLabeling:
    """Labels each stream's windows with a labeler.

    Args:
        labeler: labels window k-1's crops for retraining (default: the dataset's own labels).
        measure_against: ``ground_truth`` or ``golden``: the labels inference accuracy is measured against.
        label_frames: the labeling budget: frames of window k-1 labeled for retraining, evenly spread
            (:meth:`ekya.data.base.Window.sample_frames`); their crops are the pool retraining and its cost
            follow. None: every frame.
    """

    def __init__(self, labeler: Labeler | None = None, measure_against: str = "ground_truth", label_frames: int | None = None) -> None:
        self.labeler = labeler if labeler is not None else GroundTruthLabeler()
        self.measure_against = check_measure_against(measure_against)
        self.label_frames = label_frames

    def label(self, previous: Window, current: Window) -> LabeledWindows:
        """Label the budget's frames of ``previous`` (window k-1) for training and, when measuring against golden
        labels, ``current`` too."""
        previous = previous.sample_frames(self.label_frames)
        labeling = self.labeler.label(previous)
        if self.measure_against == "golden":
            current = self.labeler.label(current).apply(current)
        return LabeledWindows(labeling.apply(previous), current, labeling.gpu_seconds)
