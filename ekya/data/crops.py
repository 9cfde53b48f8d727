"""Shared machinery for the real-dataset loaders (Cityscapes, Waymo, MP4 + sample list).

Every real loader does the same things around its own file format: it checks labelled
boxes against the frame, crops and resizes them to ``crop_resolution`` pixels, counts
(or, when ``strict``, refuses) bad frames and boxes, caches decoded crops keyed by the
content of the source files, and cuts streams into windows. Those pieces live here:

- :func:`check_boxes` / :func:`crop_boxes`: box validation and crop + resize of one frame.
- :class:`SkipLog`: counts skipped bad input per kind (``{"frames": 2, "boxes": 5}``),
  or raises :class:`~ekya.errors.EkyaError` when strict.
- :class:`FileDigests`: content digests of source files, memoised by (size, mtime).
- :class:`CroppedStreamSource`: the :class:`~ekya.data.base.StreamSource` base class of
  the real loaders (stream selection, hold-out streams, empty-window policy, caching).
- :func:`run_check`: loads every window once (filling the cache) and prints a summary;
  the ``python -m ekya.data.<dataset> --check`` commands call it.

Box policy (the same for every dataset): a box is ``[x0, y0, x1, y1]`` in pixels of the
full frame. A box with non-finite coordinates or zero/negative area, or with less than
half of its area inside the frame, is *bad input* (skipped and counted under ``"boxes"``,
or an error when strict). A box partly outside the frame is clipped to it. A valid box
whose clipped width or height is below ``min_box_pixels`` is *filtered* on purpose
(counted in ``filtered["small_boxes"]``, never an error).
"""

from __future__ import annotations

import abc
import io
import logging
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from ekya.data.base import CLASSES, StreamSource, Window, check_camera_fps, select
from ekya.data.cache import ArrayCache, cache_key, file_digest
from ekya.errors import EkyaError

log = logging.getLogger(__name__)

#: Names of the arrays describing a set of crops (a window, a frame, a segment).
CROP_ARRAYS: tuple[str, ...] = ("images", "labels", "frame_ids", "timestamps")

#: Fraction of a box's area that must lie inside the frame for it to be clipped, not rejected.
MIN_INSIDE_FRACTION = 0.5


# ---------------------------------------------------------------------------- boxes and crops


@dataclass(frozen=True)
class BoxCheck:
    """Result of :func:`check_boxes` for K boxes.

    Attributes:
        boxes: float64 (K, 4) boxes clipped to the frame, pixels.
        problems: per box, ``""`` when valid, else why it is bad input.
        small: bool (K,), valid boxes whose clipped width or height is below the minimum.
    """

    boxes: np.ndarray
    problems: list[str]
    small: np.ndarray

    @property
    def keep(self) -> np.ndarray:
        """bool (K,): boxes to crop (valid and large enough)."""
        return np.array([p == "" for p in self.problems], dtype=bool) & ~self.small


def check_boxes(boxes: np.ndarray, width: int, height: int, min_box_pixels: float = 0.0) -> BoxCheck:
    """Validate and clip boxes ``[x0, y0, x1, y1]`` (pixels) against a ``width`` x ``height`` frame.

    See the module docstring for the policy (bad, clipped, small).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    finite = np.isfinite(boxes).all(axis=1)
    safe = np.where(finite[:, None], boxes, 0.0)
    area = (safe[:, 2] - safe[:, 0]) * (safe[:, 3] - safe[:, 1])
    positive = finite & (safe[:, 2] > safe[:, 0]) & (safe[:, 3] > safe[:, 1])
    clipped = np.stack(
        [
            np.clip(safe[:, 0], 0, width),
            np.clip(safe[:, 1], 0, height),
            np.clip(safe[:, 2], 0, width),
            np.clip(safe[:, 3], 0, height),
        ],
        axis=1,
    )
    clipped_w = np.maximum(clipped[:, 2] - clipped[:, 0], 0.0)
    clipped_h = np.maximum(clipped[:, 3] - clipped[:, 1], 0.0)
    inside = clipped_w * clipped_h >= MIN_INSIDE_FRACTION * np.where(positive, area, np.inf)
    problems = []
    for ok_finite, ok_area, ok_inside, box in zip(finite, positive, inside, boxes):
        if not ok_finite:
            problems.append(f"non-finite box {box.tolist()}")
        elif not ok_area:
            problems.append(f"box {box.tolist()} has zero or negative area (need x0 < x1 and y0 < y1)")
        elif not ok_inside:
            problems.append(f"box {box.tolist()} lies mostly outside the {width}x{height} frame")
        else:
            problems.append("")
    valid = np.array([p == "" for p in problems], dtype=bool)
    small = valid & ((clipped_w < min_box_pixels) | (clipped_h < min_box_pixels))
    return BoxCheck(boxes=clipped, problems=problems, small=small)


def crop_boxes(frame: np.ndarray, boxes: np.ndarray, resolution: int) -> np.ndarray:
    """Crop ``boxes`` (K, 4) ``[x0, y0, x1, y1]`` pixels out of an RGB ``frame`` (H, W, 3) uint8.

    Each crop is resized (bilinear, antialiased) to ``resolution`` x ``resolution``.
    Returns uint8 (K, 3, resolution, resolution).
    """
    out = np.empty((len(boxes), 3, resolution, resolution), dtype=np.uint8)
    if len(boxes) == 0:
        return out
    image = Image.fromarray(frame)
    for i, box in enumerate(np.asarray(boxes, dtype=np.float64)):
        crop = image.resize((resolution, resolution), Image.Resampling.BILINEAR, box=tuple(box.tolist()))
        out[i] = np.asarray(crop).transpose(2, 0, 1)
    return out


def crop_labelled_frame(
    frame: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    *,
    frame_id: int,
    timestamp: float,
    resolution: int,
    min_box_pixels: float,
    where: str,
    box_names: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], list[str], int]:
    """Check, clip and crop the labelled boxes of one RGB frame (H, W, 3).

    Args:
        boxes: (K, 4) ``[x0, y0, x1, y1]`` pixels; labels: (K,) indices into CLASSES.
        frame_id, timestamp: stored with every crop (timestamp in seconds).
        where: the file (and frame) for messages; box_names: a name per box (e.g. a row).

    Returns:
        crop arrays of the kept boxes, a message per bad box, the number of small boxes.
    """
    height, width = frame.shape[:2]
    check = check_boxes(boxes, width, height, min_box_pixels)
    names = box_names if box_names is not None else [f"box {i}" for i in range(len(check.problems))]
    problems = [f"{where}, {name}: {problem}" for name, problem in zip(names, check.problems) if problem]
    keep = check.keep
    count = int(keep.sum())
    arrays = {
        "images": crop_boxes(frame, check.boxes[keep], resolution),
        "labels": np.asarray(labels, dtype=np.int64).reshape(-1)[keep],
        "frame_ids": np.full(count, frame_id, dtype=np.int64),
        "timestamps": np.full(count, timestamp, dtype=np.float64),
    }
    return arrays, problems, int(check.small.sum())


def decode_image(data: bytes | str | os.PathLike, what: str) -> np.ndarray:
    """Decode an encoded image (PNG/JPEG bytes or a path) to RGB uint8 (H, W, 3).

    Raises:
        EkyaError: naming ``what`` when the data is not a readable image.
    """
    try:
        source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        with Image.open(source) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise EkyaError(f"{what}: not a readable image ({error})") from error


def empty_crops(resolution: int) -> dict[str, np.ndarray]:
    """Crop arrays with zero crops."""
    return {
        "images": np.empty((0, 3, resolution, resolution), dtype=np.uint8),
        "labels": np.empty(0, dtype=np.int64),
        "frame_ids": np.empty(0, dtype=np.int64),
        "timestamps": np.empty(0, dtype=np.float64),
    }


def concat_crops(parts: Sequence[dict[str, np.ndarray]], resolution: int) -> dict[str, np.ndarray]:
    """Concatenate crop arrays (``images``, ``labels``, ``frame_ids``, ``timestamps``)."""
    if not parts:
        return empty_crops(resolution)
    return {name: np.concatenate([part[name] for part in parts]) for name in CROP_ARRAYS}


def label_index(class_name: str, where: str) -> int:
    """Index of ``class_name`` in :data:`CLASSES`, or an EkyaError naming ``where``."""
    if class_name not in CLASSES:
        raise EkyaError(f"{where}: unknown class {class_name!r}; valid classes: {', '.join(CLASSES)}")
    return CLASSES.index(class_name)


# ---------------------------------------------------------------------------- skips


class SkipLog:
    """Counts bad input that a loader skipped (or refuses it when ``strict``) and input filtered on purpose.

    Counts are kept per unit (a frame, a segment, a clip window) so that loading the same
    unit twice, or reading it back from the cache, does not count it twice. While a unit
    is decoded its counts are stored next to its crops (:meth:`count_arrays`) and
    restored on a cache hit (:meth:`restore`).

    Args:
        strict: raise :class:`EkyaError` instead of skipping bad input.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._skipped: dict[tuple[str, str], int] = {}
        self._filtered: dict[tuple[str, str], int] = {}

    def check(self, kind: str, problems: Sequence[str]) -> None:
        """Refuse (strict) or warn about bad ``problems`` of ``kind`` (``"frames"``, ``"boxes"``, ``"rows"``).

        Each problem is a message naming the file (and row, box). The caller stores
        ``len(problems)`` with :meth:`count_arrays`.

        Raises:
            EkyaError: the first problem, when strict.
        """
        if not problems:
            return
        if self.strict:
            raise EkyaError(f"{problems[0]} (strict=true; set strict=false to skip and count bad {kind})")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        log.warning("skipping %s%s", problems[0], more)

    @staticmethod
    def count_arrays(skipped: dict[str, int], filtered: dict[str, int]) -> dict[str, np.ndarray]:
        """Counts as 0-d arrays to store with a unit's crops."""
        arrays = {f"skipped__{kind}": np.array(int(n)) for kind, n in skipped.items() if n}
        arrays.update({f"filtered__{kind}": np.array(int(n)) for kind, n in filtered.items() if n})
        return arrays

    def restore(self, unit: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Record the counts stored in ``arrays`` for ``unit``; return the crop arrays alone."""
        for name, value in arrays.items():
            prefix, _, kind = name.partition("__")
            if prefix == "skipped":
                self._skipped[(kind, unit)] = int(value)
            elif prefix == "filtered":
                self._filtered[(kind, unit)] = int(value)
        return {name: arrays[name] for name in (*CROP_ARRAYS, "labeling_seconds") if name in arrays}

    def record(self, unit: str, kind: str, count: int, skipped: bool = True) -> None:
        """Record ``count`` skipped (or filtered) items of ``kind`` in ``unit`` directly."""
        if count:
            (self._skipped if skipped else self._filtered)[(kind, unit)] = int(count)

    @staticmethod
    def _totals(counts: dict[tuple[str, str], int]) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (kind, _), count in counts.items():
            totals[kind] += count
        return dict(sorted(totals.items()))

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped bad input per kind, e.g. ``{"frames": 2, "boxes": 5}``."""
        return self._totals(self._skipped)

    @property
    def filtered(self) -> dict[str, int]:
        """Input dropped on purpose per kind, e.g. ``{"small_boxes": 40}``."""
        return self._totals(self._filtered)


# ---------------------------------------------------------------------------- file digests


class FileDigests:
    """SHA-256 digests of source files, for cache keys that change when a file does.

    Hashing a large video or Parquet file on every start is slow, so each digest is
    memoised (in memory and, when a cache is given, on disk) under the file's resolved
    path, size and modification time: a file rewritten in place with the same size and
    the same nanosecond mtime would go unnoticed.

    Args:
        cache: where to memoise digests across processes (None: memory only).
    """

    def __init__(self, cache: ArrayCache | None) -> None:
        self._cache = cache
        self._memory: dict[str, str] = {}

    def __call__(self, path: str | os.PathLike) -> str:
        resolved = Path(path).resolve()
        stat = resolved.stat()
        key = cache_key({"file_digest": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        if key in self._memory:
            return self._memory[key]
        stored = self._cache.load(key) if self._cache is not None else None
        if stored is not None and "digest" in stored:
            digest = str(stored["digest"].item())
        else:
            digest = file_digest(resolved)
            if self._cache is not None:
                self._cache.save(key, {"digest": np.array(digest)})
        self._memory[key] = digest
        return digest


# ---------------------------------------------------------------------------- the base source


class CroppedStreamSource(StreamSource):
    """Base of the real-dataset loaders: streams of labelled object crops cut from frames.

    A subclass discovers its streams (:meth:`_discover_streams`), says how many complete
    windows each has (:meth:`_num_windows`) and loads one window's crops
    (:meth:`_load_window`); this class handles stream selection, hold-out streams,
    argument checks, the empty-window policy and skip counting.

    Args:
        window_seconds: retraining window length T, seconds.
        crop_resolution: side of the square crops, pixels.
        cache_dir: folder of the decoded-crop cache (None: no cache, decode every time).
        strict: make skipped bad input (frames, boxes, sample-list rows) an error.
        allow_empty_windows: return a window with no crops instead of raising.
        stream_names: streams to use, in this order (None: every stream found, sorted).
        holdout_streams: streams kept out of :attr:`streams` and served by :meth:`holdout`
            (e.g. to train the base model).
        holdout_first_windows: the first N windows of every streamed stream are hold-out
            data too (served by :meth:`holdout`, not by :meth:`window`: the stream's window 0
            is the file's window N). None: 1 when ``holdout_streams`` is empty, else 0, so
            a dataset without hold-out cameras trains its base model on each stream's first window.
        camera_fps: the cameras' frame rate, Hz, that inference runs at (None: the rate of the
            frames the windows hold); see :class:`ekya.data.base.StreamLoad`.
    """

    #: Dataset kind used in cache keys and messages, e.g. "cityscapes".
    kind: str = "dataset"
    #: The config key that sets the window length (named in messages).
    window_key: str = "window_seconds"

    def __init__(
        self,
        window_seconds: float,
        crop_resolution: int = 32,
        cache_dir: str | os.PathLike | None = None,
        strict: bool = False,
        allow_empty_windows: bool = False,
        stream_names: Sequence[str] | None = None,
        holdout_streams: Sequence[str] | None = None,
        holdout_first_windows: int | None = None,
        camera_fps: float | None = None,
    ) -> None:
        if not window_seconds > 0:
            raise EkyaError(f"window_seconds must be > 0 seconds, got {window_seconds}")
        if holdout_first_windows is not None and (
                isinstance(holdout_first_windows, bool) or int(holdout_first_windows) != holdout_first_windows
                or holdout_first_windows < 0):
            raise EkyaError(f"holdout_first_windows must be a whole number >= 0 or null (1 without holdout_streams), "
                            f"got {holdout_first_windows!r}")
        super().__init__(window_seconds, check_camera_fps(camera_fps, f"{self.kind}: camera_fps"))
        if int(crop_resolution) != crop_resolution or crop_resolution < 1:
            raise EkyaError(f"crop_resolution must be a positive whole number of pixels, got {crop_resolution}")
        self.crop_resolution = int(crop_resolution)
        self.cache = ArrayCache(cache_dir) if cache_dir is not None else None
        self.digests = FileDigests(self.cache)
        self.strict = bool(strict)
        self.allow_empty_windows = bool(allow_empty_windows)
        self.skip_log = SkipLog(self.strict)
        self._requested_streams = list(stream_names) if stream_names is not None else None
        self._holdout_names = list(holdout_streams or [])
        if holdout_first_windows is None:
            holdout_first_windows = 0 if self._holdout_names else 1
        self.holdout_first_windows = int(holdout_first_windows)
        self._streams: list[str] = []

    # -- subclass hooks

    @abc.abstractmethod
    def _discover_streams(self) -> list[str]:
        """Every stream name found on disk."""

    @abc.abstractmethod
    def _num_windows(self, stream: str) -> int:
        """Number of complete windows of a known ``stream``."""

    @abc.abstractmethod
    def _load_window(self, stream: str, index: int) -> dict[str, np.ndarray]:
        """Crop arrays (:data:`CROP_ARRAYS`) of window ``index`` of ``stream``."""

    @abc.abstractmethod
    def _describe_window(self, stream: str, index: int) -> str:
        """The files (and time range) a window comes from, for error messages."""

    # -- shared behaviour

    def _select_streams(self) -> None:
        """Apply ``stream_names`` / ``holdout_streams`` to the discovered streams (call at the end of __init__)."""
        found = self._discover_streams()
        if not found:
            raise EkyaError(f"{self.kind}: no streams found ({self._where()})")
        known = set(found)
        options = (("stream_names", self._requested_streams or []), ("holdout_streams", self._holdout_names))
        for option, names in options:
            unknown = [name for name in names if name not in known]
            if unknown:
                raise EkyaError(
                    f"{self.kind}: {option} names unknown streams {unknown}; found: {', '.join(sorted(found))}"
                )
        chosen = self._requested_streams if self._requested_streams is not None else sorted(found)
        self._streams = [name for name in chosen if name not in set(self._holdout_names)]
        if not self._streams:
            raise EkyaError(f"{self.kind}: every stream is a hold-out stream; nothing left to stream "
                            f"(holdout_streams={self._holdout_names}; found: {', '.join(sorted(found))})")
        short = {name: self._num_windows(name) for name in self._streams}
        short = {name: count for name, count in short.items() if count <= self.holdout_first_windows}
        if short:
            listed = ", ".join(f"{name!r} ({count})" for name, count in short.items())
            raise EkyaError(
                f"{self.kind}: holdout_first_windows={self.holdout_first_windows} leaves no window to stream in "
                f"{len(short)} stream(s) with that many complete {self.window_seconds:g} s windows or fewer: {listed}; "
                f"set a shorter {self.window_key}, holdout_first_windows=0 with holdout_streams, or leave them out with stream_names"
            )

    def limit_streams(self, count: int | None) -> None:
        """Stream only the first ``count`` streams (None: all); hold-out first windows then come from those alone."""
        self._streams = select(self._streams, count, "streams")

    @property
    def has_holdout(self) -> bool:
        """Whether :meth:`holdout` serves any window (hold-out streams or first windows)."""
        return bool(self._holdout_names) or self.holdout_first_windows > 0

    def more_windows_hint(self) -> str:
        hint = f"set a shorter dataset.{self.window_key}"
        return hint + (f" or a smaller dataset.holdout_first_windows (now {self.holdout_first_windows}, with holdout_streams)"
                       if self.holdout_first_windows else "")

    def holdout_hint(self) -> str:
        return (f"set dataset.holdout_first_windows=N (the first N windows of each stream train the base model) "
                f"or dataset.holdout_streams=[NAME, ...] (whole streams kept out; streams: {', '.join(self._streams)})")

    def _where(self) -> str:
        """Where the data was looked for (for messages); subclasses override."""
        return ""

    @property
    def streams(self) -> list[str]:
        return list(self._streams)

    @property
    def holdout_streams(self) -> list[str]:
        """Streams served by :meth:`holdout`."""
        return list(self._holdout_names)

    @property
    def skipped(self) -> dict[str, int]:
        """Bad input skipped so far, per kind (log as ``data/skipped_<kind>``)."""
        return self.skip_log.skipped

    @property
    def filtered(self) -> dict[str, int]:
        """Input dropped on purpose so far (boxes below ``min_box_pixels``, other classes), per kind."""
        return self.skip_log.filtered

    def _check_stream(self, stream: str) -> None:
        if stream not in self._streams and stream not in self._holdout_names:
            raise EkyaError(f"{self.kind}: unknown stream {stream!r}; streams: {', '.join(self._streams)}")

    def _offset(self, stream: str) -> int:
        """File windows of ``stream`` before its window 0 (its hold-out first windows)."""
        return 0 if stream in self._holdout_names else self.holdout_first_windows

    def num_windows(self, stream: str) -> int:
        self._check_stream(stream)
        return self._num_windows(stream) - self._offset(stream)

    def window(self, stream: str, index: int) -> Window:
        count = self.num_windows(stream)
        if not 0 <= index < count:
            raise EkyaError(f"{self.kind}: stream {stream!r} has windows 0..{count - 1}, asked for {index}")
        return self._file_window(stream, index + self._offset(stream), index)

    def _file_window(self, stream: str, position: int, index: int) -> Window:
        """Window ``position`` of ``stream``'s files, numbered ``index``."""
        arrays = self._load_window(stream, position)
        if len(arrays["labels"]) == 0 and not self.allow_empty_windows:
            raise EkyaError(
                f"{self.kind}: window {index} of stream {stream!r} has no objects ({self._describe_window(stream, position)}); "
                f"use a longer {self.window_key}, a smaller min_box_pixels, or allow_empty_windows=true"
            )
        return Window(
            stream=stream,
            index=index,
            start_seconds=position * self.window_seconds,
            end_seconds=(position + 1) * self.window_seconds,
            images=arrays["images"],
            labels=arrays["labels"].astype(np.int64),
            frame_ids=arrays["frame_ids"].astype(np.int64),
            timestamps=arrays["timestamps"].astype(np.float64),
            labeling_seconds=float(arrays.get("labeling_seconds", 0.0)),
        )

    def holdout(self) -> list[Window]:
        """Every window of the hold-out streams, then the first ``holdout_first_windows`` of each streamed stream."""
        whole = [self._file_window(stream, k, k) for stream in self._holdout_names for k in range(self._num_windows(stream))]
        first = [self._file_window(stream, k, k) for stream in self._streams for k in range(self.holdout_first_windows)]
        return whole + first

    def holdout_windows_of(self, stream: str) -> int:
        """How many windows of ``stream`` :meth:`holdout` serves."""
        self._check_stream(stream)
        return self._num_windows(stream) if stream in self._holdout_names else self.holdout_first_windows

    def _cached(
        self, unit: str, key_params: dict, create: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """The crop arrays of ``unit``: ``create()`` through the cache when there is one.

        ``key_params`` must hold everything the result depends on (file digests, options);
        :meth:`_crop_params` is added here. Skip/filter counts stored with the arrays
        are recorded in :attr:`skip_log`.
        """
        if self.cache is None:
            arrays = create()
        else:
            key = cache_key({"kind": self.kind, **self._crop_params(), **key_params})
            arrays = self.cache.get_or_create(key, create)
        return self.skip_log.restore(unit, arrays)

    def _crop_params(self) -> dict:
        """The options every cached crop depends on; subclasses add theirs."""
        return {"crop_resolution": self.crop_resolution, "strict": self.strict}


# ---------------------------------------------------------------------------- the --check command


def run_check(source: CroppedStreamSource, load: bool = True, out: Callable[[str], None] = print) -> int:
    """Print a summary of ``source``; with ``load``, load every window once (filling the cache).

    Per stream: the windows it streams, the hold-out windows it gives the base model (a
    hold-out stream's every window, or a streamed stream's first ``holdout_first_windows``),
    and, with ``load``, crops per class over both. Returns the exit code: 0 when every window
    loaded, 1 otherwise (each failure printed).
    """
    failures = 0
    names = source.streams + source.holdout_streams
    holdout = (f"hold-out streams {', '.join(source.holdout_streams)}" if source.holdout_streams else "no hold-out streams")
    if source.holdout_first_windows:
        holdout += f", and the first {source.holdout_first_windows} window(s) of each stream"
    out(f"{source.kind}: {len(source.streams)} streams; base model trained on {holdout}; "
        f"window {source.window_seconds:g} s, crops {source.crop_resolution} px")
    header = f"{'stream':40s} {'windows':>7s} {'hold-out':>8s}"
    if load:
        header += f" {'crops':>7s}  " + " ".join(f"{c:>10s}" for c in CLASSES)
    out(header)
    for stream in names:
        held = source.holdout_windows_of(stream)
        count = 0 if stream in source.holdout_streams else source.num_windows(stream)
        row = f"{stream:40s} {count:7d} {held:8d}"
        if not load:
            out(row)
            continue
        classes = np.zeros(len(CLASSES), dtype=np.int64)
        crops = 0
        for position in range(held + count):
            try:
                window = source._file_window(stream, position, position if position < held else position - held)
            except EkyaError as error:
                failures += 1
                out(f"  error: {error}")
                continue
            crops += len(window)
            classes += window.class_counts()
        out(f"{row} {crops:7d}  " + " ".join(f"{c:10d}" for c in classes))
    out(f"skipped: {source.skipped or 'nothing'}; filtered: {source.filtered or 'nothing'}")
    if failures:
        out(f"{failures} window(s) failed")
    return 1 if failures else 0


def cli_main(build: Callable[[], CroppedStreamSource], check: bool) -> int:
    """Build a source and run :func:`run_check`, printing an EkyaError without a traceback."""
    try:
        source = build()
        return run_check(source, load=check)
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def add_common_arguments(parser, default_window_seconds: float | None = None) -> None:
    """Options shared by the ``python -m ekya.data.<dataset>`` commands."""
    parser.add_argument("--root", required=True, help="dataset folder")
    if default_window_seconds is not None:
        parser.add_argument("--window-seconds", type=float, default=default_window_seconds, help="window length, seconds")
    parser.add_argument("--crop-resolution", type=int, default=32, help="crop side, pixels")
    parser.add_argument("--cache-dir", default=None,
                        help="decoded-crop cache folder (default: .cache/crops/<name>, where Hydra runs look)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    parser.add_argument("--strict", action="store_true", help="fail on bad frames/boxes instead of skipping them")
    parser.add_argument("--holdout-streams", nargs="*", default=[], metavar="STREAM",
                        help="streams kept out to train the base model (holdout_streams)")
    parser.add_argument("--holdout-first-windows", type=int, default=None, metavar="N",
                        help="the first N windows of each stream train the base model (default: 1 without --holdout-streams, else 0)")
    parser.add_argument("--stream-names", nargs="*", default=None, metavar="STREAM", help="streams to use, in order (default: all)")
    parser.add_argument("--check", action="store_true", help="load every window once (fills the cache) and summarise")


def common_options(args, name: str) -> dict:
    """Constructor arguments of :class:`CroppedStreamSource` that the common arguments give."""
    return {
        "crop_resolution": args.crop_resolution, "cache_dir": cache_dir_argument(args, name), "strict": args.strict,
        "holdout_streams": args.holdout_streams, "holdout_first_windows": args.holdout_first_windows,
        "stream_names": args.stream_names,
    }


def cache_dir_argument(args, name: str) -> str | None:
    """The cache folder the common arguments ask for (default: the one conf/dataset/<name>.yaml uses)."""
    if args.no_cache:
        return None
    return args.cache_dir or str(Path(".cache") / "crops" / name)
