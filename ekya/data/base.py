"""The stream/window objects every dataset yields, so executors and schedulers never see formats.

A dataset is a :class:`StreamSource`: a set of named camera streams, each cut into
retraining windows of ``window_seconds`` seconds. Window ``k`` of a stream holds the
object crops of the frames with timestamps in ``[k*T, (k+1)*T)``, each crop with a label
(index into :data:`CLASSES`).
"""

from __future__ import annotations

import abc
import math
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

    def num_frames(self) -> int:
        """Distinct frames the window's crops come from."""
        return len(np.unique(self.frame_ids))

    def sample_frames(self, count: int | None, key: str = "labeler.label_frames") -> Window:
        """The crops of ``count`` of the window's frames, evenly spread in time (the first included); all when None.

        Raises:
            EkyaError: ``count`` is not a whole number in 1 .. the window's frames (``key`` names the setting).
        """
        if count is None:
            return self
        frames = self.num_frames()
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= max(frames, 1):
            raise EkyaError(f"{key}={count!r}: window {self.stream}/{self.index} has {frames} frames; "
                            f"valid: a whole number in 1..{frames}, or null for every frame")
        frame_ids, first_crop = np.unique(self.frame_ids, return_index=True)
        in_time_order = frame_ids[np.lexsort((frame_ids, self.timestamps[first_crop]))]
        chosen = in_time_order[np.floor(np.arange(count) * frames / count).astype(np.int64)]
        return self.subset(np.flatnonzero(np.isin(self.frame_ids, chosen)))

    def subset(self, indices: np.ndarray) -> Window:
        """The same window holding only the crops at ``indices``."""
        return Window(self.stream, self.index, self.start_seconds, self.end_seconds, self.images[indices],
                      self.labels[indices], self.frame_ids[indices], self.timestamps[indices], self.labeling_seconds)


@dataclass(frozen=True)
class StreamLoad:
    """How much a camera asks of its inference: frames per second and objects (crops) per frame.

    An inference configuration's GPU demand is ``frames_per_second * sampling_rate *
    objects_per_frame * seconds_per_crop`` (see :mod:`ekya.profiling.costs`).

    Attributes:
        frames_per_second: the camera's frame rate, Hz (> 0).
        objects_per_frame: mean object crops per frame (>= 0).
    """

    frames_per_second: float
    objects_per_frame: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.frames_per_second) and self.frames_per_second > 0):
            raise EkyaError(f"camera_fps must be a frame rate > 0 Hz, got {self.frames_per_second!r}")
        if not (math.isfinite(self.objects_per_frame) and self.objects_per_frame >= 0):
            raise EkyaError(f"objects per frame must be >= 0, got {self.objects_per_frame!r}")

    @property
    def crops_per_second(self) -> float:
        """Object crops the camera yields per second at full frame rate."""
        return self.frames_per_second * self.objects_per_frame


def check_camera_fps(value: Any, where: str = "camera_fps") -> float | None:
    """``value`` as a frame rate in Hz (> 0), or None (the rate of the frames the data holds); else an :class:`EkyaError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise EkyaError(f"{where}={value!r}: a camera frame rate must be a number > 0 Hz (or null: the data's own frames)")
    return float(value)


class StreamSource(abc.ABC):
    """A dataset seen as camera streams cut into retraining windows.

    Args:
        window_seconds: retraining window length T, seconds.
        camera_fps: the cameras' frame rate, Hz; None: the rate of the frames the windows hold
            (distinct frames per window / T). A dataset may hold (and label) only some of a
            camera's frames; inference runs on all of them at this rate.
    """

    def __init__(self, window_seconds: float, camera_fps: float | None = None) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        self.window_seconds = float(window_seconds)
        self.camera_fps = check_camera_fps(camera_fps)
        #: Side of the square crops, pixels, when every crop has the same (None: unknown until loaded).
        self.crop_resolution: int | None = None
        #: Frames each window holds, when the dataset says (None: unknown until loaded).
        self.frames_per_window: int | None = None
        #: Crops each window holds, when the dataset fixes it (None: unknown until loaded).
        self.crops_per_window: int | None = None

    def frame_rate(self, stream: str) -> float | None:
        """The camera frame rate of ``stream``, Hz; None: the rate of the frames its windows hold."""
        return self.camera_fps

    def load(self, windows: Sequence[Window]) -> StreamLoad:
        """The :class:`StreamLoad` of a stream, read from its ``windows``: objects per frame over all their
        frames, at :attr:`camera_fps` (or, when None, at the windows' own frame rate)."""
        frames = sum(window.num_frames() for window in windows)
        crops = sum(len(window) for window in windows)
        if frames == 0:
            raise EkyaError(f"stream {windows[0].stream if windows else '?'}: its windows have no frames to read the camera load from")
        fps = self.frame_rate(windows[0].stream)
        if fps is None:
            fps = frames / (len(windows) * self.window_seconds)
        return StreamLoad(fps, crops / frames)

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
