"""Cityscapes as camera streams: one stream per city, object crops from the gtFine polygons.

Official layout under ``root`` (https://www.cityscapes-dataset.com, registration needed)::

    leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_polygons.json

A polygons file is ``{"imgHeight": H, "imgWidth": W, "objects": [{"label": "car",
"polygon": [[x, y], ...]}, ...]}`` (objects may carry ``"deleted": 1``, which are ignored).
As in Ekya's ``CityscapesClassification``, each object whose label is in ``label_map``
becomes one crop of its polygon's bounding box; group labels (``cargroup``...) and every
other label are ignored. Frames of a city are ordered by (sequence, frame number); frame
at position ``i`` has timestamp ``i * seconds_per_frame``, and window ``k`` holds frames
``[k * frames_per_window, (k + 1) * frames_per_window)``, so
``window_seconds = frames_per_window * seconds_per_frame``. Frames after the last
complete window are not used.

Check a download (loads every window once, fills the cache, prints a summary)::

    python -m ekya.data.cityscapes --root data/cityscapes --split train --check
"""

from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ekya.data.base import CLASSES
from ekya.data.crops import (
    CroppedStreamSource,
    SkipLog,
    add_common_arguments,
    common_options,
    cli_main,
    crop_labelled_frame,
    decode_image,
    empty_crops,
    label_index,
)
from ekya.errors import EkyaError

#: Ekya's mapping of Cityscapes labels to classes ("rider" is not mapped; add ``rider: person`` to use it).
DEFAULT_LABEL_MAP: dict[str, str] = {name: name for name in CLASSES}

_IMAGE_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d+)_(?P<frame>\d+)_leftImg8bit\.png$")


@dataclass(frozen=True)
class CityscapesFrame:
    """One annotated frame: its image, its polygons file and its place in the city's order."""

    image: Path
    annotation: Path
    sequence: int
    frame: int


class CityscapesSource(CroppedStreamSource):
    """Cityscapes cities as streams of object crops (after Ekya's Cityscapes setup).

    Args:
        root: folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``train``, ``val`` or ``test`` (a folder under both).
        frames_per_window: frames in one retraining window.
        seconds_per_frame: time between consecutive frames of a city, seconds.
        min_box_pixels: boxes narrower or shorter than this (pixels) are dropped.
        label_map: Cityscapes label -> class in CLASSES (default: Ekya's six labels).
        crop_resolution, cache_dir, strict, allow_empty_windows, stream_names,
            holdout_streams, holdout_first_windows: see :class:`~ekya.data.crops.CroppedStreamSource`
            (stream names are city names, e.g. ``aachen``).
        name: dataset name used in messages.
    """

    kind = "cityscapes"
    window_key = "frames_per_window"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        frames_per_window: int = 20,
        seconds_per_frame: float = 10.0,
        min_box_pixels: float = 50.0,
        label_map: Mapping[str, str] | None = None,
        crop_resolution: int = 32,
        cache_dir: str | os.PathLike | None = None,
        strict: bool = False,
        allow_empty_windows: bool = False,
        stream_names: Sequence[str] | None = None,
        holdout_streams: Sequence[str] | None = None,
        holdout_first_windows: int | None = None,
        camera_fps: float | None = 17.0,
        name: str = "cityscapes",
    ) -> None:
        if int(frames_per_window) != frames_per_window or frames_per_window < 1:
            raise EkyaError(f"frames_per_window must be a whole number >= 1, got {frames_per_window}")
        if not seconds_per_frame > 0:
            raise EkyaError(f"seconds_per_frame must be > 0 seconds, got {seconds_per_frame}")
        if min_box_pixels < 0:
            raise EkyaError(f"min_box_pixels must be >= 0, got {min_box_pixels}")
        super().__init__(
            window_seconds=frames_per_window * seconds_per_frame,
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
        self.frames_per_window = int(frames_per_window)
        self.seconds_per_frame = float(seconds_per_frame)
        self.min_box_pixels = float(min_box_pixels)
        mapping = dict(DEFAULT_LABEL_MAP if label_map is None else label_map)
        self.label_map = {label: label_index(cls, f"{name} label_map[{label!r}]") for label, cls in mapping.items()}
        self._frames: dict[str, list[CityscapesFrame]] = {}
        self._select_streams()

    # -- discovery

    def _where(self) -> str:
        return f"root {self.root}, split {self.split!r}"

    def _split_dir(self, top: str) -> Path:
        if not self.root.is_dir():
            raise EkyaError(f"{self.kind}: root folder {self.root} does not exist (see data/README.md)")
        folder = self.root / top
        if not folder.is_dir():
            raise EkyaError(f"{self.kind}: {folder} does not exist; expected the official layout {top}/{{split}}/{{city}}/")
        split_dir = folder / self.split
        if not split_dir.is_dir():
            splits = sorted(p.name for p in folder.iterdir() if p.is_dir())
            raise EkyaError(f"{self.kind}: split {self.split!r} not found in {folder}; found splits: {splits}")
        return split_dir

    def _discover_streams(self) -> list[str]:
        images_dir = self._split_dir("leftImg8bit")
        labels_dir = self._split_dir("gtFine")
        for city_dir in sorted(p for p in images_dir.iterdir() if p.is_dir()):
            frames = self._city_frames(city_dir, labels_dir / city_dir.name)
            if frames:
                self._frames[city_dir.name] = frames
        return sorted(self._frames)

    def _city_frames(self, city_dir: Path, labels_dir: Path) -> list[CityscapesFrame]:
        frames = []
        for image in sorted(city_dir.glob("*.png")):
            match = _IMAGE_NAME.match(image.name)
            if match is None:
                problem = f"{image}: not a Cityscapes image name {{city}}_{{seq}}_{{frame}}_leftImg8bit.png"
                self.skip_log.check("frames", [problem])
                self.skip_log.record(str(image), "frames", 1)
                continue
            stem = image.name[: -len("_leftImg8bit.png")]
            frames.append(
                CityscapesFrame(
                    image=image,
                    annotation=labels_dir / f"{stem}_gtFine_polygons.json",
                    sequence=int(match["seq"]),
                    frame=int(match["frame"]),
                )
            )
        frames.sort(key=lambda f: (f.sequence, f.frame))
        return frames

    # -- windows

    def _num_windows(self, stream: str) -> int:
        return len(self._frames[stream]) // self.frames_per_window

    def _window_frames(self, stream: str, index: int) -> list[tuple[int, CityscapesFrame]]:
        start = index * self.frames_per_window
        positions = range(start, start + self.frames_per_window)
        return [(position, self._frames[stream][position]) for position in positions]

    def _describe_window(self, stream: str, index: int) -> str:
        frames = self._window_frames(stream, index)
        return f"frames {frames[0][1].image.name} .. {frames[-1][1].image.name} in {frames[0][1].image.parent}"

    def _load_window(self, stream: str, index: int) -> dict[str, np.ndarray]:
        parts = []
        for position, frame in self._window_frames(stream, index):
            arrays = dict(self._frame_crops(frame))
            arrays["frame_ids"] = np.full(len(arrays["labels"]), position, dtype=np.int64)
            arrays["timestamps"] = np.full(len(arrays["labels"]), position * self.seconds_per_frame)
            parts.append(arrays)
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def _crop_params(self) -> dict:
        return {**super()._crop_params(), "min_box_pixels": self.min_box_pixels, "label_map": self.label_map}

    def _frame_crops(self, frame: CityscapesFrame) -> dict[str, np.ndarray]:
        unit = str(frame.image)
        if not frame.annotation.is_file():
            self.skip_log.check("frames", [f"{frame.annotation}: polygons file missing for {frame.image.name}"])
            self.skip_log.record(unit, "frames", 1)
            return empty_crops(self.crop_resolution)
        key = {"image": self.digests(frame.image), "annotation": self.digests(frame.annotation)} if self.cache else {}
        return self._cached(unit, key, lambda: self._decode_frame(frame))

    def _decode_frame(self, frame: CityscapesFrame) -> dict[str, np.ndarray]:
        try:
            boxes, labels, names, expected, malformed = self._read_polygons(frame.annotation)
            image = decode_image(frame.image, str(frame.image))
            if expected is not None and expected != (image.shape[1], image.shape[0]):
                raise EkyaError(
                    f"{frame.image}: image is {image.shape[1]}x{image.shape[0]} but {frame.annotation.name} "
                    f"says imgWidth x imgHeight = {expected[0]}x{expected[1]}"
                )
        except EkyaError as error:
            self.skip_log.check("frames", [str(error)])
            return {**empty_crops(self.crop_resolution), **SkipLog.count_arrays({"frames": 1}, {})}
        arrays, problems, small = crop_labelled_frame(
            image, boxes, labels, frame_id=0, timestamp=0.0, resolution=self.crop_resolution,
            min_box_pixels=self.min_box_pixels, where=str(frame.annotation), box_names=names,
        )
        problems = malformed + problems
        self.skip_log.check("boxes", problems)
        return {**arrays, **SkipLog.count_arrays({"boxes": len(problems)}, {"small_boxes": small})}

    @staticmethod
    def _load_json(path: Path) -> dict:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise EkyaError(f"{path}: not a readable polygons JSON file ({error})") from error
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            raise EkyaError(f"{path}: expected a JSON object with an 'objects' list (Cityscapes gtFine polygons)")
        return data

    def _read_polygons(self, path: Path) -> tuple[np.ndarray, np.ndarray, list[str], tuple[int, int] | None, list[str]]:
        """Bounding boxes (K, 4), class indices (K,) and names of the mapped objects of one file,
        the (width, height) it states (None when absent), and a message per mapped object
        whose polygon is missing or malformed (bad boxes, skipped)."""
        data = self._load_json(path)
        size = None
        if "imgWidth" in data and "imgHeight" in data:
            try:
                size = (int(data["imgWidth"]), int(data["imgHeight"]))
            except (TypeError, ValueError) as error:
                raise EkyaError(f"{path}: imgWidth/imgHeight must be whole numbers ({error})") from error
        boxes, labels, names, malformed = [], [], [], []
        for number, obj in enumerate(data["objects"]):
            label = obj.get("label") if isinstance(obj, dict) else None
            if label not in self.label_map or obj.get("deleted", 0):
                continue
            name = f"object {number} ({label})"
            polygon = obj.get("polygon")
            try:
                points = np.asarray(polygon, dtype=np.float64)
                well_formed = points.ndim == 2 and points.shape[1] == 2 and len(points) > 0 and np.isfinite(points).all()
            except (TypeError, ValueError):
                well_formed = False
            if not well_formed:
                shown = repr(polygon) if len(repr(polygon)) <= 60 else repr(polygon)[:57] + "..."
                malformed.append(f"{path}, {name}: polygon {shown} is missing or malformed (need a list of [x, y] number pairs)")
                continue
            boxes.append([*points.min(axis=0), *points.max(axis=0)])
            labels.append(self.label_map[label])
            names.append(name)
        return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(labels, dtype=np.int64), names, size,
                malformed)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ekya.data.cityscapes --root data/cityscapes [--check]``."""
    parser = argparse.ArgumentParser(prog="python -m ekya.data.cityscapes", description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--split", default="train", help="train, val or test")
    parser.add_argument("--frames-per-window", type=int, default=20, help="frames per retraining window")
    parser.add_argument("--seconds-per-frame", type=float, default=10.0, help="seconds between frames")
    parser.add_argument("--min-box-pixels", type=float, default=50.0, help="smallest box side kept, pixels")
    args = parser.parse_args(argv)
    return cli_main(
        lambda: CityscapesSource(
            root=args.root, split=args.split, frames_per_window=args.frames_per_window,
            seconds_per_frame=args.seconds_per_frame, min_box_pixels=args.min_box_pixels,
            **common_options(args, "cityscapes"),
        ),
        check=args.check,
    )


if __name__ == "__main__":
    raise SystemExit(main())
