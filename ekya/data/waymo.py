"""Waymo Open Dataset v2 (Parquet) as camera streams of object crops, read with pyarrow (no TensorFlow).

Layout under ``root`` (https://waymo.com/open, registration and licence acceptance needed;
one file per segment and component, named by the segment's context name)::

    {split}/camera_image/{segment}.parquet   key.segment_context_name, key.frame_timestamp_micros,
                                             key.camera_name, [CameraImageComponent].image (JPEG bytes)
    {split}/camera_box/{segment}.parquet     the same keys, [CameraBoxComponent].box.center.x/.y,
                                             [CameraBoxComponent].box.size.x/.y (pixels), [CameraBoxComponent].type
    {split}/stats/{segment}.parquet          [StatsComponent].location (only for stream_by="location")

Camera names (``key.camera_name``, dataset.proto ``CameraName``): 1 FRONT, 2 FRONT_LEFT,
3 FRONT_RIGHT, 4 SIDE_LEFT, 5 SIDE_RIGHT. Box types (label.proto ``Label.Type``):
0 UNKNOWN, 1 VEHICLE -> car, 2 PEDESTRIAN -> person, 3 SIGN (dropped), 4 CYCLIST -> bicycle.
Waymo labels no truck/bus/motorcycle, so those classes never occur.

Streams: ``stream_by="segment"`` (default) gives one stream per segment and camera, named
``{segment}/{CAMERA}``; ``stream_by="location"`` concatenates, per location (the most
common ``[StatsComponent].location`` of a segment, e.g. ``location_sf``) and camera, all
its segments in order of their first timestamp, back to back (the gaps between
recordings are removed), named ``{location}/{CAMERA}`` -- the long streams Ekya used.
A frame's timestamp is its ``key.frame_timestamp_micros`` relative to its segment's first
frame (plus the length of the segments before it). A segment lasts from its first frame
to one frame period (the median gap) after its last; only complete windows are used (a
window short of less than half a frame period, as timestamp jitter makes them, is complete), so
a ~19.9 s segment gives 3 windows of 5 s or 1 window of 10 s.

Check a download::

    python -m ekya.data.waymo --root data/waymo --split training --check
"""

from __future__ import annotations

import argparse
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ekya.data.crops import (
    CroppedStreamSource,
    SkipLog,
    add_common_arguments,
    common_options,
    cli_main,
    concat_crops,
    crop_labelled_frame,
    decode_image,
    label_index,
)
from ekya.errors import EkyaError

CAMERA_NAMES: dict[str, int] = {"FRONT": 1, "FRONT_LEFT": 2, "FRONT_RIGHT": 3, "SIDE_LEFT": 4, "SIDE_RIGHT": 5}
#: Waymo label.proto Label.Type values.
BOX_TYPES: dict[int, str] = {0: "UNKNOWN", 1: "VEHICLE", 2: "PEDESTRIAN", 3: "SIGN", 4: "CYCLIST"}
#: Waymo box type -> class in CLASSES; other types are dropped (counted in ``filtered["other_types"]``).
DEFAULT_TYPE_MAP: dict[int, str] = {1: "car", 2: "person", 4: "bicycle"}

SEGMENT = "key.segment_context_name"
TIMESTAMP = "key.frame_timestamp_micros"
CAMERA = "key.camera_name"
IMAGE = "[CameraImageComponent].image"
BOX_COLUMNS = {
    "center_x": "[CameraBoxComponent].box.center.x",
    "center_y": "[CameraBoxComponent].box.center.y",
    "size_x": "[CameraBoxComponent].box.size.x",
    "size_y": "[CameraBoxComponent].box.size.y",
    "type": "[CameraBoxComponent].type",
}
LOCATION = "[StatsComponent].location"
#: Key of the file's row numbers in what :func:`_read_columns` returns (``row_numbers=True``).
ROW = "__row__"
DEFAULT_PERIOD_SECONDS = 0.1  # Waymo cameras run at 10 Hz; used for one-frame segments


@dataclass(frozen=True)
class SegmentPart:
    """One segment's frames of one camera, placed on a stream's timeline.

    Attributes:
        segment: segment context name; camera: camera id (1..5).
        timestamps_micros: sorted frame timestamps of this camera, microseconds.
        offset_seconds: where the segment's first frame sits on the stream, seconds.
        first_frame_id: stream position of the segment's first frame.
        duration_seconds: first frame to one frame period after the last, seconds.
    """

    segment: str
    camera: int
    timestamps_micros: np.ndarray
    offset_seconds: float
    first_frame_id: int
    duration_seconds: float


class WaymoSource(CroppedStreamSource):
    """Waymo Open Dataset v2 camera streams (per segment or per location) of object crops.

    Args:
        root: folder holding ``{split}/camera_image/`` and ``{split}/camera_box/``.
        split: ``training``, ``validation`` (``testing`` has no boxes).
        window_seconds: retraining window length T, seconds.
        cameras: camera names to use (FRONT, FRONT_LEFT, FRONT_RIGHT, SIDE_LEFT, SIDE_RIGHT).
        stream_by: ``segment`` (one stream per segment and camera) or ``location``.
        min_box_pixels: boxes narrower or shorter than this (pixels) are dropped.
        type_map: Waymo box type id -> class in CLASSES (default: vehicle, pedestrian, cyclist).
        crop_resolution, cache_dir, strict, allow_empty_windows, stream_names,
            holdout_streams, holdout_first_windows: see :class:`~ekya.data.crops.CroppedStreamSource`.
        name: dataset name used in messages.
    """

    kind = "waymo"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "training",
        window_seconds: float = 5.0,
        cameras: Sequence[str] = ("FRONT",),
        stream_by: str = "segment",
        min_box_pixels: float = 20.0,
        type_map: Mapping[int, str] | None = None,
        crop_resolution: int = 32,
        cache_dir: str | os.PathLike | None = None,
        strict: bool = False,
        allow_empty_windows: bool = False,
        stream_names: Sequence[str] | None = None,
        holdout_streams: Sequence[str] | None = None,
        holdout_first_windows: int | None = None,
        camera_fps: float | None = 10.0,
        name: str = "waymo",
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
        self.root = Path(root)
        self.split = split
        unknown = [c for c in cameras if c not in CAMERA_NAMES]
        if unknown or not cameras:
            raise EkyaError(f"{name}: unknown cameras {list(unknown)}; valid: {', '.join(CAMERA_NAMES)}")
        self.cameras = list(cameras)
        if stream_by not in ("segment", "location"):
            raise EkyaError(f"{name}: stream_by must be 'segment' or 'location', got {stream_by!r}")
        self.stream_by = stream_by
        if min_box_pixels < 0:
            raise EkyaError(f"min_box_pixels must be >= 0, got {min_box_pixels}")
        self.min_box_pixels = float(min_box_pixels)
        mapping = DEFAULT_TYPE_MAP if type_map is None else type_map
        bad_types = [t for t in mapping if int(t) not in BOX_TYPES]
        if bad_types:
            raise EkyaError(f"{name}: type_map has unknown Waymo box types {bad_types}; valid: {BOX_TYPES}")
        self.type_map = {int(t): label_index(c, f"{name} type_map[{t}]") for t, c in mapping.items()}
        self._parts: dict[str, list[SegmentPart]] = {}
        self._select_streams()

    # -- discovery

    def _where(self) -> str:
        return f"root {self.root}, split {self.split!r}, cameras {self.cameras}"

    def _component_file(self, component: str, segment: str) -> Path:
        return self.root / self.split / component / f"{segment}.parquet"

    def _discover_streams(self) -> list[str]:
        if not self.root.is_dir():
            raise EkyaError(f"{self.kind}: root folder {self.root} does not exist (see data/README.md)")
        split_dir = self.root / self.split
        if not split_dir.is_dir():
            splits = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise EkyaError(f"{self.kind}: split {self.split!r} not found in {self.root}; found: {splits}")
        image_dir = split_dir / "camera_image"
        if not image_dir.is_dir():
            raise EkyaError(f"{self.kind}: {image_dir} does not exist (Waymo v2 layout {{split}}/camera_image/*.parquet)")
        segments = sorted(p.stem for p in image_dir.glob("*.parquet"))
        if not segments:
            raise EkyaError(f"{self.kind}: no .parquet files in {image_dir}")
        camera_ids = [CAMERA_NAMES[c] for c in self.cameras]
        by_stream: dict[str, list[tuple[str, int, np.ndarray]]] = {}
        for segment in segments:
            box_file = self._component_file("camera_box", segment)
            if not box_file.is_file():
                raise EkyaError(f"{self.kind}: {box_file} is missing (every camera_image file needs its camera_box file)")
            _read_columns(box_file, [SEGMENT, TIMESTAMP, CAMERA, *BOX_COLUMNS.values()], rows=False)
            keys = _read_columns(self._component_file("camera_image", segment), [SEGMENT, TIMESTAMP, CAMERA, IMAGE],
                                 load=[TIMESTAMP, CAMERA])
            group = segment if self.stream_by == "segment" else self._location(segment)
            for camera_name, camera_id in zip(self.cameras, camera_ids):
                timestamps = np.unique(keys[TIMESTAMP][keys[CAMERA] == camera_id])
                if len(timestamps):
                    by_stream.setdefault(f"{group}/{camera_name}", []).append((segment, camera_id, timestamps))
        for stream, pieces in by_stream.items():
            self._parts[stream] = _place_on_timeline(sorted(pieces, key=lambda p: (int(p[2][0]), p[0])))
        return sorted(self._parts)

    def _location(self, segment: str) -> str:
        path = self._component_file("stats", segment)
        if not path.is_file():
            raise EkyaError(f"{self.kind}: {path} is missing; stream_by='location' needs the stats component of every segment")
        locations = [str(v) for v in _read_columns(path, [LOCATION])[LOCATION] if v is not None and str(v)]
        if not locations:
            raise EkyaError(f"{self.kind}: {path} has no {LOCATION} values")
        return Counter(locations).most_common(1)[0][0]

    # -- windows

    def _num_windows(self, stream: str) -> int:
        last = self._parts[stream][-1]
        duration = last.offset_seconds + last.duration_seconds
        # Timestamps jitter by a few milliseconds, so a segment of exactly 4 windows can measure a
        # hair short of them: a window short of less than half a frame period is complete.
        slack = 0.5 * _period_seconds(last.timestamps_micros)
        return int(math.floor((duration + slack) / self.window_seconds + 1e-9))

    def _overlapping(self, stream: str, index: int) -> list[SegmentPart]:
        start, end = index * self.window_seconds, (index + 1) * self.window_seconds
        parts = self._parts[stream]
        return [p for p in parts if p.offset_seconds < end and p.offset_seconds + p.duration_seconds > start]

    def _describe_window(self, stream: str, index: int) -> str:
        parts = self._overlapping(stream, index)
        files = ", ".join(str(self._component_file("camera_image", p.segment)) for p in parts)
        start = index * self.window_seconds
        return f"seconds [{start:g}, {start + self.window_seconds:g}) from {files}"

    def _load_window(self, stream: str, index: int) -> dict[str, np.ndarray]:
        start, end = index * self.window_seconds, (index + 1) * self.window_seconds
        parts = []
        for part in self._overlapping(stream, index):
            crops = self._segment_crops(part.segment, part.camera)
            times = np.round(crops["timestamps"] + part.offset_seconds, 6)  # whole microseconds
            inside = (times >= start) & (times < end)
            parts.append(
                {
                    "images": crops["images"][inside],
                    "labels": crops["labels"][inside],
                    "frame_ids": crops["frame_ids"][inside] + part.first_frame_id,
                    "timestamps": times[inside],
                }
            )
        return concat_crops(parts, self.crop_resolution)

    def _crop_params(self) -> dict:
        return {**super()._crop_params(), "min_box_pixels": self.min_box_pixels, "type_map": self.type_map}

    def _segment_crops(self, segment: str, camera: int) -> dict[str, np.ndarray]:
        """Crops of every frame of one segment and camera (frame ids and seconds from the segment's start)."""
        image_file = self._component_file("camera_image", segment)
        box_file = self._component_file("camera_box", segment)
        key = {"segment": segment, "camera": camera}
        if self.cache is not None:
            key.update(images=self.digests(image_file), boxes=self.digests(box_file))
        return self._cached(f"{segment}/{camera}", key, lambda: self._decode_segment(image_file, box_file, camera))

    def _decode_segment(self, image_file: Path, box_file: Path, camera: int) -> dict[str, np.ndarray]:
        images = _read_columns(image_file, [TIMESTAMP, IMAGE], camera=camera)
        order = np.argsort(images[TIMESTAMP], kind="stable")
        frame_times, first = np.unique(images[TIMESTAMP][order], return_index=True)
        encoded = [images[IMAGE][order[i]] for i in first]
        boxes = _WaymoBoxes(box_file, camera, frame_times, self.type_map)
        self.skip_log.check("boxes", boxes.problems)
        parts, skipped_frames, small, bad_boxes = [], 0, 0, len(boxes.problems)
        for frame_id, (timestamp, data) in enumerate(zip(frame_times, encoded)):
            where = f"{image_file}, camera {camera}, frame at {timestamp} us"
            try:
                frame = decode_image(bytes(data or b""), where)
            except EkyaError as error:
                self.skip_log.check("frames", [str(error)])
                skipped_frames += 1
                continue
            rows = boxes.rows_of_frame(frame_id)
            arrays, problems, frame_small = crop_labelled_frame(
                frame, boxes.corners[rows], boxes.labels[rows], frame_id=frame_id,
                timestamp=(int(timestamp) - int(frame_times[0])) / 1e6, resolution=self.crop_resolution,
                min_box_pixels=self.min_box_pixels, where=f"{box_file}, camera {camera}, frame at {timestamp} us",
                box_names=[f"box row {boxes.rows[i]}" for i in rows],
            )
            self.skip_log.check("boxes", problems)
            bad_boxes += len(problems)
            small += frame_small
            parts.append(arrays)
        counts = SkipLog.count_arrays(
            {"frames": skipped_frames, "boxes": bad_boxes}, {"small_boxes": small, "other_types": boxes.other_types}
        )
        return {**concat_crops(parts, self.crop_resolution), **counts}


class _WaymoBoxes:
    """The boxes of one segment and camera, matched to its frames.

    Attributes:
        corners: float (K, 4) ``[x0, y0, x1, y1]`` pixels; labels: (K,) class indices (-1: unmapped).
        problems: a message per bad box row (no frame with its timestamp, unknown type).
        other_types: rows of known but unmapped types (e.g. SIGN).
    """

    def __init__(self, path: Path, camera: int, frame_times: np.ndarray, type_map: dict[int, int]) -> None:
        values = list(BOX_COLUMNS.values())
        table = _read_columns(path, [TIMESTAMP, *values], camera=camera, nullable=[TIMESTAMP, *values], row_numbers=True)
        rows = table[ROW]  # the file's row of each of this camera's boxes
        raw_times = table[TIMESTAMP]
        present = np.isfinite(np.stack([raw_times, *(table[column] for column in values)], axis=1))
        complete = present.all(axis=1)
        times = np.where(complete, raw_times, -1).astype(np.int64)
        frame = np.minimum(np.searchsorted(frame_times, times), max(len(frame_times) - 1, 0))
        matched = complete & ((frame_times[frame] == times) if len(frame_times) else np.zeros(len(times), dtype=bool))
        center_x, center_y = table[BOX_COLUMNS["center_x"]], table[BOX_COLUMNS["center_y"]]
        half_x, half_y = table[BOX_COLUMNS["size_x"]] / 2, table[BOX_COLUMNS["size_y"]] / 2
        self.corners = np.stack([center_x - half_x, center_y - half_y, center_x + half_x, center_y + half_y], axis=1)
        self.corners = self.corners.astype(np.float64).reshape(-1, 4)
        types = np.where(complete, table[BOX_COLUMNS["type"]], -1).astype(np.int64)
        known = np.isin(types, list(BOX_TYPES))
        self.labels = np.array([type_map.get(int(t), -1) for t in types], dtype=np.int64)
        where = f"{path}, camera {camera}"
        names = [TIMESTAMP, *values]
        self.problems = [f"{where}: box row {rows[i]} has no value (null or NaN) in "
                         f"{', '.join(n for n, ok in zip(names, present[i]) if not ok)}" for i in np.flatnonzero(~complete)]
        self.problems += [f"{where}: box row {rows[i]} has timestamp {times[i]} us but no image has it"
                          for i in np.flatnonzero(complete & ~matched)]
        self.problems += [f"{where}: box row {rows[i]} has unknown type {types[i]} (valid: {BOX_TYPES})"
                          for i in np.flatnonzero(matched & ~known)]
        self.rows = rows
        self.other_types = int((matched & known & (self.labels < 0)).sum())
        self._frame = np.where(matched & (self.labels >= 0), frame, -1)

    def rows_of_frame(self, frame_id: int) -> np.ndarray:
        """Rows of the mapped boxes of frame ``frame_id``."""
        return np.flatnonzero(self._frame == frame_id)


def _period_seconds(timestamps_micros: np.ndarray) -> float:
    """Median gap between frames, seconds (10 Hz when there is a single frame)."""
    if len(timestamps_micros) < 2:
        return DEFAULT_PERIOD_SECONDS
    return float(np.median(np.diff(timestamps_micros.astype(np.int64)))) / 1e6


def _place_on_timeline(pieces: list[tuple[str, int, np.ndarray]]) -> list[SegmentPart]:
    """Put (segment, camera, timestamps) pieces back to back on one stream timeline."""
    parts, offset, first_frame = [], 0.0, 0
    for segment, camera, timestamps in pieces:
        duration = (int(timestamps[-1]) - int(timestamps[0])) / 1e6 + _period_seconds(timestamps)
        parts.append(SegmentPart(segment, camera, timestamps, offset, first_frame, duration))
        offset += duration
        first_frame += len(timestamps)
    return parts


def _read_columns(
    path: Path,
    columns: list[str],
    camera: int | None = None,
    load: list[str] | None = None,
    rows: bool = True,
    nullable: Sequence[str] = (),
    row_numbers: bool = False,
) -> dict[str, np.ndarray]:
    """Check that ``path`` is a Parquet file with ``columns``; read ``load`` (default: all of them).

    Args:
        camera: keep only rows of this ``key.camera_name``.
        rows: False to check the schema only (returns {}).
        nullable: numeric columns whose missing values (null, NaN) are read as NaN (float64),
            for the caller to skip row by row; a missing value elsewhere is an error.
        row_numbers: also return the file's row number of every row read, under :data:`ROW`
            (the camera is then selected after reading, not by a Parquet filter).

    Raises:
        EkyaError: naming the file (and the first rows) when it is unreadable, lacks a column or
            misses values in a column that is not ``nullable``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise EkyaError(f"{path}: not a readable Parquet file ({error})") from error
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise EkyaError(f"{path}: missing Waymo v2 columns {missing}; found {schema.names}")
    if not rows:
        return {}
    wanted = list(load if load is not None else columns)
    filters = None
    if camera is not None and not row_numbers:
        filters = [(CAMERA, "=", camera)]
    read = wanted + ([CAMERA] if row_numbers and camera is not None and CAMERA not in wanted else [])
    try:
        table = pq.read_table(path, columns=read, filters=filters)
    except (pa.ArrowException, OSError) as error:
        raise EkyaError(f"{path}: not a readable Parquet file ({error})") from error
    keep = None
    if row_numbers:
        numbers = np.arange(table.num_rows)
        if camera is not None:
            cameras = table.column(CAMERA).to_numpy(zero_copy_only=False).astype(np.float64)
            keep = cameras == camera
            numbers = numbers[keep]
    out = {}
    for name in wanted:
        column = table.column(name)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type) or pa.types.is_string(column.type):
            values = np.array(column.to_pylist(), dtype=object)
        else:
            values = column.to_numpy(zero_copy_only=False)
            as_float = np.array([np.nan if v is None else v for v in values], dtype=np.float64) if values.dtype == object \
                else values.astype(np.float64, copy=False)
            missing = np.isnan(as_float)
            if missing.any() and name not in nullable:
                where = np.flatnonzero(missing)
                rows_named = (f"row(s) {', '.join(map(str, where[:5]))}{' ...' if len(where) > 5 else ''}" if filters is None
                              else f"{len(where)} row(s) of camera {camera}")
                raise EkyaError(f"{path}: column {name} has missing values (null or NaN) in {rows_named}")
            values = as_float if name in nullable else values
        out[name] = values[keep] if keep is not None else values
    if row_numbers:
        out[ROW] = numbers
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ekya.data.waymo --root data/waymo [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m ekya.data.waymo", description=__doc__.split("\n")[0])
    add_common_arguments(parser, default_window_seconds=5.0)
    parser.add_argument("--split", default="training", help="training or validation")
    parser.add_argument("--cameras", nargs="+", default=["FRONT"], help=f"cameras: {' '.join(CAMERA_NAMES)}")
    parser.add_argument("--stream-by", default="segment", choices=["segment", "location"], help="stream grouping")
    parser.add_argument("--min-box-pixels", type=float, default=20.0, help="smallest box side kept, pixels")
    args = parser.parse_args(argv)
    return cli_main(
        lambda: WaymoSource(
            root=args.root, split=args.split, window_seconds=args.window_seconds, cameras=args.cameras,
            stream_by=args.stream_by, min_box_pixels=args.min_box_pixels, **common_options(args, "waymo"),
        ),
        check=args.check,
    )


if __name__ == "__main__":
    raise SystemExit(main())
