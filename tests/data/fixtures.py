"""Writers of tiny datasets in the real on-disk layouts (Cityscapes, Waymo v2 Parquet, MP4 + sample list).

Every frame is a dark background with each object drawn as a solid rectangle in its
class colour (:data:`COLOURS`) exactly where its box is, so a test can check that a crop
came from the right place by its colour.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

BACKGROUND = (30, 30, 30)

#: Solid RGB colour of each label's rectangle (dataset labels, not only CLASSES).
COLOURS: dict[str, tuple[int, int, int]] = {
    "person": (230, 20, 20),
    "car": (20, 230, 20),
    "truck": (20, 20, 230),
    "bus": (230, 230, 20),
    "bicycle": (230, 20, 230),
    "motorcycle": (20, 230, 230),
    "rider": (120, 60, 200),
    "sign": (200, 120, 60),
}


@dataclass(frozen=True)
class Box:
    """One labelled box ``[x0, y0, x1, y1]`` in pixels (x1, y1 exclusive)."""

    label: str
    x0: int
    y0: int
    x1: int
    y1: int


def draw_frame(width: int, height: int, boxes: Sequence[Box]) -> np.ndarray:
    """RGB uint8 (height, width, 3): background plus each box filled with its label's colour."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    for box in boxes:
        frame[max(box.y0, 0) : max(box.y1, 0), max(box.x0, 0) : max(box.x1, 0)] = COLOURS[box.label]
    return frame


def two_object_frames(count: int, labels: Sequence[str] | None = None) -> list[list[Box]]:
    """``count`` frames; frame i holds a ``labels[i % n]`` box on the left and a ``labels[(i + 1) % n]``
    box on the right (``labels`` default: the six CLASSES)."""
    from ekya.data.base import CLASSES

    labels = list(labels or CLASSES)
    frames = []
    for i in range(count):
        frames.append(
            [
                Box(labels[i % len(labels)], 8, 8, 40, 40),
                Box(labels[(i + 1) % len(labels)], 64, 16, 112, 56),
            ]
        )
    return frames


#: Labels a Waymo fixture can hold (Waymo has no truck, bus or motorcycle boxes).
WAYMO_LABELS = ("person", "car", "bicycle")


# ---------------------------------------------------------------------------- Cityscapes


def write_cityscapes(
    root: Path,
    cities: dict[str, list[list[Box]]],
    split: str = "train",
    width: int = 128,
    height: int = 64,
    frames_per_sequence: int = 3,
) -> dict[str, list[Path]]:
    """Write ``leftImg8bit`` PNGs and ``gtFine`` polygon JSONs; returns each city's PNG paths in stream order.

    Frame i of a city is ``{city}_{i // frames_per_sequence:06d}_{19 + i % frames_per_sequence:06d}``.
    Each box becomes a 4-point polygon; a ``road`` polygon over the bottom rows is added
    to every file (a label that must be ignored).
    """
    written: dict[str, list[Path]] = {}
    for city, frames in cities.items():
        image_dir = root / "leftImg8bit" / split / city
        label_dir = root / "gtFine" / split / city
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        written[city] = []
        for i, boxes in enumerate(frames):
            stem = f"{city}_{i // frames_per_sequence:06d}_{19 + i % frames_per_sequence:06d}"
            image_path = image_dir / f"{stem}_leftImg8bit.png"
            Image.fromarray(draw_frame(width, height, boxes)).save(image_path)
            objects = [{"label": "road", "polygon": [[0, height - 4], [width - 1, height - 4], [width - 1, height - 1]]}]
            for box in boxes:
                # Polygon vertices on the rectangle's corner pixels; its bounding box is the drawn area.
                corners = [[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]]
                objects.append({"label": box.label, "polygon": corners, "deleted": 0})
            annotation = {"imgHeight": height, "imgWidth": width, "objects": objects}
            (label_dir / f"{stem}_gtFine_polygons.json").write_text(json.dumps(annotation))
            written[city].append(image_path)
    return written


# ---------------------------------------------------------------------------- Waymo v2


#: Waymo v2 camera_name values (dataset.proto CameraName) and box types (label.proto Label.Type).
WAYMO_CAMERAS = {"FRONT": 1, "FRONT_LEFT": 2, "FRONT_RIGHT": 3, "SIDE_LEFT": 4, "SIDE_RIGHT": 5}
WAYMO_TYPES = {"car": 1, "person": 2, "sign": 3, "bicycle": 4}


def jpeg_bytes(frame: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_waymo_segment(
    root: Path,
    segment: str,
    frames: dict[str, list[list[Box]]],
    split: str = "training",
    start_micros: int = 1_500_000_000_000_000,
    period_micros: int = 100_000,
    width: int = 128,
    height: int = 64,
    location: str | None = "location_sf",
) -> dict[str, Path]:
    """Write one segment's ``camera_image``, ``camera_box`` (and ``stats``) Parquet files.

    Args:
        frames: camera name (``FRONT``...) -> boxes of each frame; labels ``car``,
            ``person``, ``bicycle``, ``sign`` are written as Waymo types 1, 2, 4, 3.
        location: ``[StatsComponent].location`` (None: no stats file).

    Returns:
        component name -> written file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    images: dict[str, list] = {k: [] for k in ("seg", "ts", "cam", "image")}
    boxes: dict[str, list] = {k: [] for k in ("seg", "ts", "cam", "id", "cx", "cy", "sx", "sy", "type")}
    timestamps = set()
    for camera, camera_frames in frames.items():
        for i, frame_boxes in enumerate(camera_frames):
            ts = start_micros + i * period_micros
            timestamps.add(ts)
            images["seg"].append(segment)
            images["ts"].append(ts)
            images["cam"].append(WAYMO_CAMERAS[camera])
            images["image"].append(jpeg_bytes(draw_frame(width, height, frame_boxes)))
            for j, box in enumerate(frame_boxes):
                boxes["seg"].append(segment)
                boxes["ts"].append(ts)
                boxes["cam"].append(WAYMO_CAMERAS[camera])
                boxes["id"].append(f"{camera}-{i}-{j}")
                boxes["cx"].append((box.x0 + box.x1) / 2)
                boxes["cy"].append((box.y0 + box.y1) / 2)
                boxes["sx"].append(float(box.x1 - box.x0))
                boxes["sy"].append(float(box.y1 - box.y0))
                boxes["type"].append(WAYMO_TYPES[box.label])
    out = {}
    image_table = pa.table(
        {
            "key.segment_context_name": pa.array(images["seg"], pa.string()),
            "key.frame_timestamp_micros": pa.array(images["ts"], pa.int64()),
            "key.camera_name": pa.array(images["cam"], pa.int8()),
            "[CameraImageComponent].image": pa.array(images["image"], pa.binary()),
            "[CameraImageComponent].velocity.linear_velocity.x": pa.array([0.0] * len(images["ts"]), pa.float32()),
        }
    )
    box_table = pa.table(
        {
            "key.segment_context_name": pa.array(boxes["seg"], pa.string()),
            "key.frame_timestamp_micros": pa.array(boxes["ts"], pa.int64()),
            "key.camera_name": pa.array(boxes["cam"], pa.int8()),
            "key.camera_object_id": pa.array(boxes["id"], pa.string()),
            "[CameraBoxComponent].box.center.x": pa.array(boxes["cx"], pa.float64()),
            "[CameraBoxComponent].box.center.y": pa.array(boxes["cy"], pa.float64()),
            "[CameraBoxComponent].box.size.x": pa.array(boxes["sx"], pa.float64()),
            "[CameraBoxComponent].box.size.y": pa.array(boxes["sy"], pa.float64()),
            "[CameraBoxComponent].type": pa.array(boxes["type"], pa.int8()),
            "[CameraBoxComponent].difficulty_level.detection": pa.array([1] * len(boxes["ts"]), pa.int8()),
        }
    )
    for component, table in (("camera_image", image_table), ("camera_box", box_table)):
        path = root / split / component / f"{segment}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        out[component] = path
    if location is not None:
        ordered = sorted(timestamps)
        stats = pa.table(
            {
                "key.segment_context_name": pa.array([segment] * len(ordered), pa.string()),
                "key.frame_timestamp_micros": pa.array(ordered, pa.int64()),
                "[StatsComponent].time_of_day": pa.array(["Day"] * len(ordered), pa.string()),
                "[StatsComponent].location": pa.array([location] * len(ordered), pa.string()),
                "[StatsComponent].weather": pa.array(["sunny"] * len(ordered), pa.string()),
            }
        )
        path = root / split / "stats" / f"{segment}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(stats, path)
        out["stats"] = path
    return out


# ---------------------------------------------------------------------------- MP4 + sample list

#: COCO ids of Ekya's detector sample lists (ekya/datasets/coco_classes.txt, 1-based).
COCO_IDS = {"person": 1, "bicycle": 2, "car": 3, "motorcycle": 4, "bus": 6, "truck": 8, "traffic light": 10}


def write_video(
    path: Path,
    frames: list[list[Box]],
    fps: int = 10,
    width: int = 128,
    height: int = 64,
    codec: str = "mpeg4",
) -> Path:
    """Encode ``frames`` (boxes drawn as solid rectangles) into an MP4 file with PyAV.

    The index (moov) is written first ("faststart"), so a truncated file still opens and
    decodes up to where it was cut.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps, 1))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {"crf": "10"}
        for boxes in frames:
            frame = av.VideoFrame.from_ndarray(draw_frame(width, height, boxes), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_sample_list(path: Path, frames: list[list[Box]], extra_rows: Sequence[dict] = ()) -> Path:
    """Write an Ekya sample list (``idx, frame id, class, xmin, ymin, xmax, ymax, score, timestamp, camera``).

    ``frame id`` is 1-based (frame i of ``frames`` is frame id i + 1) and ``class`` a COCO id,
    as in Ekya's ``Mp4VideoClassification``. ``extra_rows`` are appended as given.
    """
    import pandas as pd

    rows = []
    for i, boxes in enumerate(frames):
        for box in boxes:
            rows.append(
                {
                    "frame id": i + 1,
                    "class": COCO_IDS[box.label],
                    "xmin": box.x0,
                    "ymin": box.y0,
                    "xmax": box.x1,
                    "ymax": box.y1,
                    "score": 0.9,
                    "timestamp": i / 10,
                    "camera": path.stem,
                }
            )
    rows.extend(extra_rows)
    table = pd.DataFrame(rows)
    table.insert(0, "idx", range(len(table)))
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- raw video (detection)


#: Frame size and rate of :func:`moving_objects_video`.
WIDTH, HEIGHT, FPS = 160, 96, 10


def moving_objects_video(path, frames=40):
    """A fixed camera: a textured still background, a red square moving right and a green bar moving left."""
    import av

    background = np.random.default_rng(0).integers(40, 90, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(FPS, 1))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"qscale": "2"}
        for i in range(frames):
            frame = background.copy()
            x = 4 + 3 * i
            frame[10:40, x : x + 30] = (230, 20, 20)
            frame[55:90, WIDTH - 30 - 3 * i : WIDTH - 10 - 3 * i] = (20, 230, 20)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
