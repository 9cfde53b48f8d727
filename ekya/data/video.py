"""Video files with Ekya-style sample lists as camera streams of object crops (decoded with PyAV).

One stream per clip ``{root}/{name}.{ext}``, named ``{name}``: any file FFmpeg decodes whose
suffix is in :data:`VIDEO_SUFFIXES` (MP4, AVI, MKV, MOV, WebM, MPEG, ...); the frame rate and
duration are read from the file. Its labelled boxes come from a
sample list ``{sample_list_dir}/{name}.csv`` (``sample_list_pattern``) in the format of
Ekya's ``Mp4VideoClassification`` (one row per object)::

    idx,frame id,class,xmin,ymin,xmax,ymax,score,timestamp,camera

Required columns: ``frame id`` (1-based: the first decoded frame is 1, as in frames
extracted with ``ffmpeg -i clip.mp4 %06d.jpg``), ``class`` (a COCO category id as in
Ekya's ``coco_classes.txt``: 1 person, 2 bicycle, 3 car, 4 motorcycle, 6 bus, 8 truck)
and the box ``xmin, ymin, xmax, ymax`` (``x0, y0, x1, y1`` are accepted too) in pixels,
or as fractions of the frame with ``box_units="normalized"``. Other columns (``idx``,
``score``, ``timestamp``, ``camera``) are ignored. A row whose class is another COCO
category (0..90, e.g. 10 traffic light) is dropped on purpose (``filtered["other_classes"]``);
a row that is not numeric, names a class id outside 0..90, a frame the clip does not have
or a bad box (see :mod:`ekya.data.crops`) is bad input (``skipped["rows"]``, or an error
when strict).

Time comes from the decoded frames' presentation timestamps (pts): a frame's timestamp is
its pts minus the stream's start, and its index is that time times the average frame rate
(rounded), so a frame that fails to decode does not shift the others. Window ``k`` holds the
frames with timestamps in ``[k T, (k + 1) T)``; only complete windows of the clip's
duration are used. A sample-list frame that cannot be decoded is counted in
``skipped["frames"]``.

Urban traffic / urban building (Ekya's own long videos) and a user's own recordings use
this loader (``conf/dataset/urban_traffic.yaml``, ``urban_building.yaml``, ``video.yaml``).
Generating sample lists with a detector is not implemented: bring sample lists.

Check a folder of clips::

    python -m ekya.data.video --root data/video --check
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ekya.data.crops import (
    CroppedStreamSource,
    SkipLog,
    add_common_arguments,
    common_options,
    check_boxes,
    cli_main,
    concat_crops,
    crop_boxes,
    label_index,
)
from ekya.data.cache import cache_key
from ekya.data.detection import CropClassifier, Detector, build_detector
from ekya.errors import EkyaError

log = logging.getLogger(__name__)

#: COCO category id (Ekya's coco_classes.txt / TF detection API) -> class in CLASSES.
DEFAULT_CLASS_MAP: dict[int, str] = {1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 6: "bus", 8: "truck"}
#: Largest COCO category id (the 91-id numbering; the 80-class numbering stays below it).
MAX_COCO_ID = 90
#: Frames per second of video the detection stage runs on, unless ``detection.fps`` says otherwise.
DEFAULT_DETECTION_FPS = 2.0
#: Keys of ``dataset.detection`` (``fps`` and the classifier's are the source's and flows/config.py's; the rest the detector's).
DETECTION_KEYS: tuple[str, ...] = ("fps", "device", "model", "weights", "score_threshold", "classifier", "classifier_device",
                                   "history", "var_threshold", "min_area_pixels", "kernel_pixels", "padding", "warmup_frames",
                                   "max_side_pixels")
#: Suffixes of the files taken as clips (any container FFmpeg decodes; the codec is found in the file).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
BOX_COLUMN_SETS = (("xmin", "ymin", "xmax", "ymax"), ("x0", "y0", "x1", "y1"))


@dataclass(frozen=True)
class Clip:
    """One video clip and its validated sample list.

    Attributes:
        path, sample_list: the files (``sample_list`` None: boxes come from the detection stage).
        fps: average frame rate, frames per second; duration_seconds: clip length, seconds.
        width, height: frame size, pixels.
        frame_index: (K,) 0-based frame index of each kept sample (frame id - 1), ascending.
        boxes: (K, 4) clipped ``[x0, y0, x1, y1]`` pixels; labels: (K,) class indices.
        lines: (K,) sample-list line number of each sample (header is line 1).
    """

    path: Path
    sample_list: Path | None
    fps: float
    duration_seconds: float
    width: int
    height: int
    frame_index: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    lines: np.ndarray


class VideoSource(CroppedStreamSource):
    """Video clips + Ekya sample lists as streams of object crops.

    Args:
        root: folder of video clips (one stream each; suffixes :data:`VIDEO_SUFFIXES`).
        window_seconds: retraining window length T, seconds.
        sample_list_dir: folder of the sample lists (default: ``root``).
        sample_list_pattern: sample-list file name, ``{name}`` is the clip's file name without its suffix.
        class_map: COCO category id -> class in CLASSES (default: Ekya's six).
        box_units: ``pixels`` or ``normalized`` (fractions of the frame width/height).
        min_box_pixels: boxes narrower or shorter than this (pixels) are dropped.
        detector: None (boxes and labels from sample lists), or ``mog2`` / ``torchvision``: a
            detection stage (:mod:`ekya.data.detection`) finds the boxes in the frames, and
            sample lists are not read.
        detection: the detection stage's options (``conf/dataset/video.yaml``, ``detection:``):
            ``fps`` (frames per second of video it runs on) and the detector's own keys.
        crop_classifier: labels the crops of unlabeled boxes (``mog2``): a golden model,
            built by ``flows/config.py`` from ``detection.classifier``.
        crop_resolution, cache_dir, strict, allow_empty_windows, stream_names,
            holdout_streams, holdout_first_windows: see :class:`~ekya.data.crops.CroppedStreamSource`.
        name: dataset name used in messages (``urban_traffic``, ``urban_building``, ``video``).
    """

    kind = "video"

    def __init__(
        self,
        root: str | os.PathLike,
        window_seconds: float = 10.0,
        sample_list_dir: str | os.PathLike | None = None,
        sample_list_pattern: str = "{name}.csv",
        class_map: Mapping[int, str] | None = None,
        box_units: str = "pixels",
        min_box_pixels: float = 20.0,
        detector: str | None = None,
        detection: Mapping[str, Any] | None = None,
        crop_classifier: CropClassifier | None = None,
        crop_resolution: int = 32,
        cache_dir: str | os.PathLike | None = None,
        strict: bool = False,
        allow_empty_windows: bool = False,
        stream_names: Sequence[str] | None = None,
        holdout_streams: Sequence[str] | None = None,
        holdout_first_windows: int | None = None,
        camera_fps: float | None = None,
        name: str = "video",
    ) -> None:
        super().__init__(
            window_seconds=window_seconds,
            crop_resolution=crop_resolution,
            cache_dir=cache_dir,
            strict=strict,
            allow_empty_windows=allow_empty_windows,
            stream_names=stream_names,
            holdout_streams=holdout_streams,
            holdout_first_windows=holdout_first_windows,
            camera_fps=camera_fps,
        )
        self.kind = name
        self.detector_name = detector
        self.detection = dict(detection or {})
        self.detector: Detector | None = None
        self.crop_classifier = crop_classifier
        if detector is not None:
            self._set_up_detection(detector, crop_classifier)
        if box_units not in ("pixels", "normalized"):
            raise EkyaError(f"{name}: box_units must be 'pixels' or 'normalized', got {box_units!r}")
        if min_box_pixels < 0:
            raise EkyaError(f"min_box_pixels must be >= 0, got {min_box_pixels}")
        if "{name}" not in sample_list_pattern:
            raise EkyaError(f"{name}: sample_list_pattern must contain {{name}}, got {sample_list_pattern!r}")
        self.root = Path(root)
        self.sample_list_dir = Path(sample_list_dir) if sample_list_dir is not None else self.root
        self.sample_list_pattern = sample_list_pattern
        self.box_units = box_units
        self.min_box_pixels = float(min_box_pixels)
        mapping = DEFAULT_CLASS_MAP if class_map is None else class_map
        bad = [c for c in mapping if not 0 <= int(c) <= MAX_COCO_ID]
        if bad:
            raise EkyaError(f"{name}: class_map keys {bad} are not COCO ids 0..{MAX_COCO_ID}")
        self.class_map = {int(c): label_index(cls, f"{name} class_map[{c}]") for c, cls in mapping.items()}
        self._clips: dict[str, Clip] = {}
        self._detected: dict[str, dict[int, dict[str, np.ndarray]]] = {}
        self._select_streams()

    def _set_up_detection(self, detector: str, crop_classifier: CropClassifier | None) -> None:
        unknown = sorted(set(self.detection) - set(DETECTION_KEYS))
        if unknown:
            raise EkyaError(f"{self.kind}: dataset.detection: unknown key(s) {', '.join(unknown)}; valid: {', '.join(DETECTION_KEYS)}")
        fps = self.detection.get("fps", DEFAULT_DETECTION_FPS)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            raise EkyaError(f"{self.kind}: dataset.detection.fps must be > 0 frames per second, got {fps!r}")
        self.detection_fps = float(fps)
        self.detector = build_detector(detector, self.detection)
        if not self.detector.labels_boxes and crop_classifier is None:
            raise EkyaError(
                f"{self.kind}: dataset.detector={detector} finds boxes without labels, which a golden classifier labels: "
                "set dataset.detection.classifier=PATH to a golden checkpoint (python -m flows.train_golden writes one), "
                "or use dataset.detector=torchvision"
            )

    @property
    def detects(self) -> bool:
        """Whether boxes and labels come from a detection stage (``labeler=detector`` charges its time)."""
        return self.detector is not None

    # -- discovery

    def _where(self) -> str:
        return f"root {self.root}"

    def frame_rate(self, stream: str) -> float | None:
        """``camera_fps`` when set, else the frame rate of the stream's video file."""
        if self.camera_fps is not None:
            return self.camera_fps
        return self._clips[stream].fps if stream in self._clips else None

    def _discover_streams(self) -> list[str]:
        if not self.root.is_dir():
            raise EkyaError(f"{self.kind}: root folder {self.root} does not exist (see data/README.md)")
        paths = sorted(p for p in self.root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                       and not p.name.startswith("."))
        if not paths:
            raise EkyaError(f"{self.kind}: no video files ({' '.join(VIDEO_SUFFIXES)}) in {self.root}")
        stems = Counter(p.stem for p in paths)
        twice = sorted(p.name for p in paths if stems[p.stem] > 1)
        if twice:
            raise EkyaError(f"{self.kind}: {', '.join(twice)} in {self.root} would be streams of one name; "
                            "keep one file per name (a stream is named after its file)")
        for path in paths:
            if self.detector is not None:
                self._clips[path.stem] = self._detected_clip(path)
                continue
            sample_list = self.sample_list_dir / self.sample_list_pattern.format(name=path.stem)
            if not sample_list.is_file():
                raise EkyaError(
                    f"{self.kind}: sample list {sample_list} for {path.name} is missing; every clip needs one "
                    "(columns: frame id, class, xmin, ymin, xmax, ymax), or set dataset.detector=mog2 or torchvision "
                    "to find the boxes in the video"
                )
            self._clips[path.stem] = self._read_clip(path, sample_list)
        return sorted(self._clips)

    def _detected_clip(self, path: Path) -> Clip:
        """A clip whose boxes the detection stage finds (no sample list)."""
        fps, duration, width, height = _probe(path)
        return Clip(path=path, sample_list=None, fps=fps, duration_seconds=duration, width=width, height=height,
                    frame_index=np.zeros(0, dtype=np.int64), boxes=np.zeros((0, 4)), labels=np.zeros(0, dtype=np.int64),
                    lines=np.zeros(0, dtype=np.int64))

    def _read_clip(self, path: Path, sample_list: Path) -> Clip:
        fps, duration, width, height = _probe(path)
        frame_ids, classes, boxes, lines = self._read_sample_list(sample_list, width, height)
        total_frames = int(round(duration * fps))
        numeric = np.isfinite(frame_ids) & np.isfinite(classes)
        safe_ids = np.where(numeric, frame_ids, 0)
        safe_classes = np.where(numeric, classes, -1)
        whole = numeric & (safe_ids == np.round(safe_ids)) & (safe_classes == np.round(safe_classes))
        in_clip = whole & (safe_ids >= 1) & (safe_ids <= total_frames)
        coco = whole & (safe_classes >= 0) & (safe_classes <= MAX_COCO_ID)
        check = check_boxes(boxes, width, height, self.min_box_pixels)
        row_problems = []
        for i, line in enumerate(lines):
            if not whole[i]:
                problem = f"frame id and class must be whole numbers, got {frame_ids[i]}, {classes[i]}"
            elif not in_clip[i]:
                problem = f"frame id {int(frame_ids[i])} is outside {path.name} (frames 1..{total_frames})"
            elif not coco[i]:
                problem = f"class {int(classes[i])} is not a COCO id 0..{MAX_COCO_ID}"
            else:
                problem = check.problems[i]
            row_problems.append(f"{sample_list}: line {line}: {problem}" if problem else "")
        problems = [p for p in row_problems if p]
        self.skip_log.check("rows", problems)
        self.skip_log.record(str(sample_list), "rows", len(problems))
        good = np.array([not p for p in row_problems], dtype=bool)
        mapped = good & np.isin(safe_classes, list(self.class_map))
        self.skip_log.record(str(sample_list), "other_classes", int((good & ~mapped).sum()), skipped=False)
        self.skip_log.record(str(sample_list), "small_boxes", int((mapped & check.small).sum()), skipped=False)
        keep = np.flatnonzero(mapped & ~check.small)
        keep = keep[np.argsort(safe_ids[keep], kind="stable")]  # by frame, for searchsorted
        return Clip(
            path=path,
            sample_list=sample_list,
            fps=fps,
            duration_seconds=duration,
            width=width,
            height=height,
            frame_index=safe_ids[keep].astype(np.int64) - 1,
            boxes=check.boxes[keep],
            labels=np.array([self.class_map[int(c)] for c in safe_classes[keep]], dtype=np.int64),
            lines=lines[keep],
        )

    def _read_sample_list(self, path: Path, width: int, height: int) -> tuple[np.ndarray, ...]:
        """Frame ids, class ids, boxes (pixels, unchecked) and line numbers of every row (NaN: not a number)."""
        import pandas as pd

        try:
            table = pd.read_csv(path, skipinitialspace=True)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise EkyaError(f"{path}: not a readable CSV sample list ({error})") from error
        table.columns = [str(c).strip() for c in table.columns]
        box_columns = next((cols for cols in BOX_COLUMN_SETS if set(cols) <= set(table.columns)), None)
        missing = [c for c in ("frame id", "class") if c not in table.columns]
        if box_columns is None or missing:
            raise EkyaError(
                f"{path}: sample list needs columns 'frame id', 'class' and xmin, ymin, xmax, ymax (or x0, y0, x1, y1); "
                f"found {list(table.columns)}"
            )

        def numbers(column: str) -> np.ndarray:
            return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)

        boxes = np.stack([numbers(c) for c in box_columns], axis=1).reshape(-1, 4)
        if self.box_units == "normalized":
            boxes = boxes * np.array([width, height, width, height], dtype=np.float64)
        lines = np.arange(len(table), dtype=np.int64) + 2
        return numbers("frame id"), numbers("class"), boxes, lines

    # -- windows

    def _num_windows(self, stream: str) -> int:
        return int(math.floor(self._clips[stream].duration_seconds / self.window_seconds + 1e-9))

    def _describe_window(self, stream: str, index: int) -> str:
        start = index * self.window_seconds
        clip = self._clips[stream]
        boxes = f"samples from {clip.sample_list}" if clip.sample_list is not None else f"boxes from detector {self.detector_name}"
        return f"{clip.path} seconds [{start:g}, {start + self.window_seconds:g}), {boxes}"

    def _window_key(self, clip: Clip, index: int) -> str:
        return cache_key(
            {
                "kind": self.kind,
                **self._crop_params(),
                "video": self.digests(clip.path),
                **({"sample_list": self.digests(clip.sample_list)} if clip.sample_list is not None else self._detection_params()),
                "window_seconds": self.window_seconds,
                "window": index,
            }
        )

    def _detection_params(self) -> dict:
        """What detected boxes and labels depend on (detector, its weights, the classifier, the frames it runs on)."""
        assert self.detector is not None
        return {"detection": self.detector.params(), "detection_fps": self.detection_fps,
                "classifier": self.crop_classifier.params() if self.crop_classifier is not None and not self.detector.labels_boxes
                else None}

    def _crop_params(self) -> dict:
        return {
            **super()._crop_params(),
            "min_box_pixels": self.min_box_pixels,
            "class_map": self.class_map,
            "box_units": self.box_units,
        }

    def _load_window(self, stream: str, index: int) -> dict[str, np.ndarray]:
        clip = self._clips[stream]
        unit = f"{clip.path}#window{index}"
        if self.cache is not None:
            found = self.cache.load(self._window_key(clip, index))
            if found is not None:
                return self.skip_log.restore(unit, found)
        if self.detector is not None:  # a background model needs every frame from the start: detect the whole clip
            windows = self._detected.get(clip.path.stem) or self._detect_clip(clip)
            if self.cache is None:
                self._detected = {clip.path.stem: windows}  # the last clip's windows, for its next window
        else:
            windows = self._decode_clip(clip, last_window=None if self.cache is not None else index)
        if self.cache is not None:
            for k, arrays in windows.items():
                self.cache.save(self._window_key(clip, k), arrays)
        for k, arrays in windows.items():
            self.skip_log.restore(f"{clip.path}#window{k}", arrays)
        return self.skip_log.restore(unit, windows[index])

    def _decode_clip(self, clip: Clip, last_window: int | None) -> dict[int, dict[str, np.ndarray]]:
        """Decode ``clip`` once from the start and crop its samples, window by window.

        Args:
            last_window: stop after this window (None: every complete window).

        Returns:
            window index -> crop arrays plus skip counts.
        """
        count = self._num_windows(clip.path.stem)
        stop = count - 1 if last_window is None else last_window
        first_wanted = 0 if last_window is None else self._window_frames(clip, last_window)[0]
        frames_wanted = np.unique(clip.frame_index[_rows_between(clip, first_wanted, np.iinfo(np.int64).max)])
        crops_by_frame: dict[int, dict[str, np.ndarray]] = {}
        with _indexed_frames(clip) as frames:
            for index, frame in frames:
                if index / clip.fps >= (stop + 1) * self.window_seconds:
                    break
                if index in crops_by_frame or not _contains(frames_wanted, index):
                    continue
                crops_by_frame[index] = self._crop_frame(clip, index, frame.to_ndarray(format="rgb24"))
        windows = range(count) if last_window is None else [last_window]
        return {k: self._assemble_window(clip, k, crops_by_frame) for k in windows}

    def _detect_clip(self, clip: Clip) -> dict[int, dict[str, np.ndarray]]:
        """Run the detection stage over ``clip`` once from the start; crops, labels and seconds of every window.

        Frames are sampled at ``detection.fps`` (the first frame of each 1/fps slot); a detector
        with a background model also sees every other frame. The seconds the detector (and the
        crop classifier) took in a window are stored with it as ``labeling_seconds``.
        """
        assert self.detector is not None
        detector = self.detector
        count = self._num_windows(clip.path.stem)
        parts: dict[int, list[dict[str, np.ndarray]]] = {k: [] for k in range(count)}
        seconds = np.zeros(count)
        small = np.zeros(count, dtype=np.int64)
        other = np.zeros(count, dtype=np.int64)
        slot = -1
        detector.start_clip()
        self._warm_up(clip)
        with _indexed_frames(clip) as frames:
            for index, frame in frames:
                window = int(math.floor(index / clip.fps / self.window_seconds + 1e-9))
                if window >= count:
                    break
                rgb = frame.to_ndarray(format="rgb24")
                frame_slot = int(math.floor(index / clip.fps * self.detection_fps + 1e-9))
                started = time.perf_counter()
                if frame_slot == slot:
                    if detector.observes_every_frame:
                        detector.observe(rgb)
                        seconds[window] += time.perf_counter() - started
                    continue
                slot = frame_slot
                found = detector.detect(rgb)
                check = check_boxes(found.boxes, clip.width, clip.height, self.min_box_pixels)
                keep = check.keep
                if detector.labels_boxes:
                    mapped = np.isin(found.labels, list(self.class_map))
                    other[window] += int((keep & ~mapped).sum())
                    keep &= mapped
                small[window] += int(check.small.sum())
                images = crop_boxes(rgb, check.boxes[keep], self.crop_resolution)
                if detector.labels_boxes:
                    labels = np.array([self.class_map[int(c)] for c in found.labels[keep]], dtype=np.int64)
                elif len(images):
                    labels = np.asarray(self.crop_classifier.classify(images), dtype=np.int64)
                else:
                    labels = np.zeros(0, dtype=np.int64)
                seconds[window] += time.perf_counter() - started
                parts[window].append({
                    "images": images, "labels": labels, "frame_ids": np.full(len(labels), index, dtype=np.int64),
                    "timestamps": np.full(len(labels), index / clip.fps, dtype=np.float64),
                })
        filtered = {"small_boxes": small, "other_classes": other}
        return {k: {**concat_crops(parts[k], self.crop_resolution),
                    **SkipLog.count_arrays({}, {kind: int(values[k]) for kind, values in filtered.items()}),
                    "labeling_seconds": np.array(float(seconds[k]))}
                for k in range(count)}

    def _warm_up(self, clip: Clip) -> None:
        """One untimed call of the detector and the classifier, so that the seconds charged are steady-state
        ones (a model's first call also pays for thread pools and lazy initialisation)."""
        assert self.detector is not None
        if self.detector.labels_boxes:
            self.detector.detect(np.zeros((clip.height, clip.width, 3), dtype=np.uint8))
        if self.crop_classifier is not None and not self.detector.labels_boxes:
            self.crop_classifier.classify(np.zeros((1, 3, self.crop_resolution, self.crop_resolution), dtype=np.uint8))

    def _crop_frame(self, clip: Clip, index: int, frame: np.ndarray) -> dict[str, np.ndarray]:
        rows = _rows_between(clip, index, index + 1)
        if frame.shape[0] != clip.height or frame.shape[1] != clip.width:
            self.skip_log.check("frames", [f"{clip.path}: frame {index + 1} is {frame.shape[1]}x{frame.shape[0]}, "
                                           f"not {clip.width}x{clip.height}"])
            return {"skipped_frame": np.array(1)}
        return {
            "images": crop_boxes(frame, clip.boxes[rows], self.crop_resolution),
            "labels": clip.labels[rows],
            "frame_ids": np.full(len(rows), index, dtype=np.int64),
            "timestamps": np.full(len(rows), index / clip.fps, dtype=np.float64),
        }

    def _window_frames(self, clip: Clip, index: int) -> tuple[int, int]:
        """First and one-past-last frame index of window ``index`` (frames with index / fps in [kT, (k+1)T))."""
        first = int(math.ceil(index * self.window_seconds * clip.fps - 1e-6))
        end = int(math.ceil((index + 1) * self.window_seconds * clip.fps - 1e-6))
        return first, end

    def _assemble_window(
        self, clip: Clip, index: int, crops_by_frame: dict[int, dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Crop arrays of window ``index`` from the decoded frames; sample frames never decoded are counted."""
        first, end = self._window_frames(clip, index)
        wanted = np.unique(clip.frame_index[_rows_between(clip, first, end)])
        parts, missing = [], []
        for frame_index in wanted:
            crops = crops_by_frame.get(int(frame_index))
            if crops is None or "skipped_frame" in crops:
                line = clip.lines[np.flatnonzero(clip.frame_index == frame_index)[0]]
                missing.append(f"{clip.path}: frame id {frame_index + 1} (sample list line {line}) could not be decoded")
            else:
                parts.append(crops)
        self.skip_log.check("frames", missing)
        arrays = concat_crops(parts, self.crop_resolution)
        return {**arrays, **SkipLog.count_arrays({"frames": len(missing)}, {})}


def _rows_between(clip: Clip, first: int, end: int) -> np.ndarray:
    """Rows of ``clip``'s samples with frame index in ``[first, end)``."""
    start, stop = np.searchsorted(clip.frame_index, [first, end], side="left")
    return np.arange(start, stop)


def _contains(sorted_values: np.ndarray, value: int) -> bool:
    position = np.searchsorted(sorted_values, value)
    return bool(position < len(sorted_values) and sorted_values[position] == value)


@contextlib.contextmanager
def _indexed_frames(clip: Clip) -> Iterator[Iterator[tuple[int, Any]]]:
    """Open ``clip`` and give its decoded frames with their index (seconds since its first frame x
    its frame rate); an FFmpeg error while reading is one line naming the file."""
    import av

    try:
        with av.open(str(clip.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield _frame_indices(container, stream, clip.fps)
    except av.FFmpegError as error:
        raise EkyaError(f"{clip.path}: not a readable video ({error})") from error


def _frame_indices(container, stream, fps: float) -> Iterator[tuple[int, Any]]:
    """(frame index, frame) of every decoded frame that has a timestamp, counted from the stream's start."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else None
    for frame in _decode_frames(container, stream):
        if frame.pts is None:
            continue
        seconds = float(frame.pts * stream.time_base)
        start = seconds if start is None else start
        yield int(round((seconds - start) * fps)), frame


def _decode_frames(container, stream):
    """Decoded frames of ``stream``; a packet that fails to decode is passed over (its frames go
    missing) and a read error ends the clip early (a truncated file)."""
    import av

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as error:
            log.warning("%s: stopped reading at an unreadable packet (%s)", container.name, error)
            return
        try:
            frames = packet.decode()
        except (av.FFmpegError, ValueError):
            continue
        yield from frames


def _probe(path: Path) -> tuple[float, float, int, int]:
    """Average frame rate (frames/s), duration (s), width and height (pixels) of a video clip, read from the file."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise EkyaError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if not rate or rate <= 0:
                raise EkyaError(f"{path}: has no frame rate")
            fps = float(rate)
            if stream.duration is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.frames:
                duration = stream.frames / fps
            else:
                raise EkyaError(f"{path}: has no duration or frame count")
            return fps, duration, int(stream.codec_context.width), int(stream.codec_context.height)
    except av.FFmpegError as error:
        raise EkyaError(f"{path}: not a readable video ({error})") from error


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ekya.data.video --root data/video [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m ekya.data.video", description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_window_seconds=10.0)
    parser.add_argument("--sample-list-dir", default=None, help="folder of the sample lists (default: --root)")
    parser.add_argument("--sample-list-pattern", default="{name}.csv", help="sample list name; {name} = clip name")
    parser.add_argument("--box-units", default="pixels", choices=["pixels", "normalized"], help="sample-list box units")
    parser.add_argument("--min-box-pixels", type=float, default=20.0, help="smallest box side kept, pixels")
    parser.add_argument("--name", default="video", help="dataset name in messages")
    parser.add_argument("--detector", default=None, choices=["torchvision", "mog2"],
                        help="find boxes in the video instead of reading sample lists (mog2: use python -m flows.check_dataset)")
    parser.add_argument("--detection-fps", type=float, default=DEFAULT_DETECTION_FPS, help="frames per second the detector runs on")
    parser.add_argument("--detection-model", default="fasterrcnn_mobilenet_v3_large_fpn", help="torchvision detection model")
    parser.add_argument("--detection-weights", default=None, help="local weights file of the detection model (default: torchvision's cache)")
    parser.add_argument("--score-threshold", type=float, default=0.5, help="smallest detection score kept")
    parser.add_argument("--detection-device", default="cpu", help="torch device of the detector")
    args = parser.parse_args(argv)

    def build() -> VideoSource:
        detection = None
        if args.detector == "mog2":
            raise EkyaError("--detector mog2 labels its boxes with a golden classifier, which this command cannot load; check with "
                            f"python -m flows.check_dataset dataset={args.name} dataset.root={args.root} dataset.detector=mog2 "
                            "dataset.detection.classifier=PATH")
        if args.detector == "torchvision":
            detection = {"fps": args.detection_fps, "model": args.detection_model, "weights": args.detection_weights,
                         "score_threshold": args.score_threshold, "device": args.detection_device}
        return VideoSource(
            root=args.root, window_seconds=args.window_seconds, sample_list_dir=args.sample_list_dir,
            sample_list_pattern=args.sample_list_pattern, box_units=args.box_units, min_box_pixels=args.min_box_pixels,
            detector=args.detector, detection=detection, name=args.name, **common_options(args, args.name),
        )

    return cli_main(build, check=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
