"""The stream/window objects every dataset yields, so executors and schedulers never see formats.

A dataset is a :class:`StreamSource`: a set of named camera streams, each cut into
retraining windows of ``window_seconds`` seconds. Window ``k`` of a stream holds the
object crops of the frames with timestamps in ``[k*T, (k+1)*T)``, each crop with a label
(index into :data:`CLASSES`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ekya.errors import EkyaError

#: The six object classes of the paper's Cityscapes setup; labels index this tuple.
CLASSES: tuple[str, ...] = ("person", "car", "truck", "bus", "bicycle", "motorcycle")


@dataclass(frozen=True)
class Window:
    """The object crops of one stream in one retraining window.

    Attributes:
        stream: name of the camera stream.
        index: window number k (0-based).
        start_seconds: window start, seconds since the stream's start: kT, plus T per hold-out
            window before it when a real dataset holds out each stream's first windows.
        end_seconds: window end, ``start_seconds`` + T.
        images: uint8 array (N, 3, H, W), RGB object crops.
        labels: int64 array (N,), index into :data:`CLASSES`.
        frame_ids: int64 array (N,), the frame each crop comes from (several crops may share one).
        timestamps: float64 array (N,), seconds since the stream's start of each crop's frame.
        labeling_seconds: GPU-seconds (100% of one GPU) a detection stage spent finding and
            labeling the window's crops (0 for annotated data); ``labeler=detector`` charges it.
    """

    stream: str
    index: int
    start_seconds: float
    end_seconds: float
    images: np.ndarray
    labels: np.ndarray
    frame_ids: np.ndarray
    timestamps: np.ndarray
    labeling_seconds: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.images.ndim != 4 or self.images.shape[0] != n or self.images.shape[1] != 3:
            raise ValueError(f"window {self.stream}/{self.index}: images must be (N, 3, H, W) with N={n}, got {self.images.shape}")
        if len(self.frame_ids) != n or len(self.timestamps) != n:
            raise ValueError(f"window {self.stream}/{self.index}: frame_ids and timestamps must have {n} entries")

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        """Number of crops of each class, shape (len(CLASSES),)."""
        return np.bincount(self.labels, minlength=len(CLASSES))

    def subset(self, indices: np.ndarray) -> Window:
        """The same window holding only the crops at ``indices``."""
        return Window(self.stream, self.index, self.start_seconds, self.end_seconds, self.images[indices],
                      self.labels[indices], self.frame_ids[indices], self.timestamps[indices], self.labeling_seconds)


class StreamSource(abc.ABC):
    """A dataset seen as camera streams cut into retraining windows.

    Args:
        window_seconds: retraining window length T, seconds.
    """

    def __init__(self, window_seconds: float) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        self.window_seconds = float(window_seconds)

    @property
    @abc.abstractmethod
    def streams(self) -> list[str]:
        """Names of the streams used for continuous learning, in a fixed order."""

    @abc.abstractmethod
    def num_windows(self, stream: str) -> int:
        """Number of complete retraining windows of ``stream``."""

    @abc.abstractmethod
    def window(self, stream: str, index: int) -> Window:
        """Window ``index`` of ``stream``."""

    def holdout(self) -> list[Window]:
        """Windows of hold-out cameras used to train the base model (default: none)."""
        return []

    @property
    def has_holdout(self) -> bool:
        """Whether :meth:`holdout` serves any window (subclasses answer without loading them)."""
        return bool(self.holdout())

    def holdout_hint(self) -> str:
        """How to give the dataset hold-out windows (the config keys to set), for messages."""
        return "the dataset must provide hold-out windows"

    def more_windows_hint(self) -> str:
        """How to get more windows per stream (the config keys to set), for messages."""
        return "set a shorter dataset.window_seconds"

    def limit_streams(self, count: int | None) -> None:
        """Use only the first ``count`` streams (None: all); a source whose hold-out depends on its streams narrows it too."""
        select(self.streams, count, "streams")


def require_holdout(source: StreamSource) -> None:
    """Raise an :class:`EkyaError` naming the keys to set when ``source`` has no hold-out windows for the base model."""
    if not source.has_holdout:
        raise EkyaError(f"the dataset has no hold-out windows to train the base model on: {source.holdout_hint()}")


def select(names: Sequence[Any], count: int | None, what: str) -> list[Any]:
    """The first ``count`` of a dataset's ``names`` (streams or windows; all when None)."""
    if count is None:
        return list(names)
    if not 1 <= count <= len(names):
        raise EkyaError(f"{what}={count} but the dataset has {len(names)} {what} (valid: 1..{len(names)}, or null for all)")
    return list(names[:count])
