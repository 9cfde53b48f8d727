"""WaymoSource on tiny Waymo Open Dataset v2 Parquet segments (real column names, JPEG bytes)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ekya.data.base import CLASSES
from ekya.data.waymo import WaymoSource, main
from ekya.errors import EkyaError

from .fixtures import COLOURS, WAYMO_LABELS, Box, two_object_frames, write_waymo_segment

SECOND = 1_000_000  # microseconds


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "waymo"
    front = two_object_frames(25, WAYMO_LABELS)
    front[3] = front[3] + [Box("sign", 90, 2, 110, 12)]
    files = {
        "seg_a": write_waymo_segment(root, "seg_a", {"FRONT": front, "SIDE_LEFT": two_object_frames(12, WAYMO_LABELS)},
                                     start_micros=1_600_000_000 * SECOND),
        "seg_b": write_waymo_segment(root, "seg_b", {"FRONT": two_object_frames(15, WAYMO_LABELS)},
                                     start_micros=1_500_000_000 * SECOND),
        "seg_c": write_waymo_segment(root, "seg_c", {"FRONT": two_object_frames(10, WAYMO_LABELS)},
                                     start_micros=1_700_000_000 * SECOND, location="location_phx"),
    }
    return root, files


def make(root, **options):
    return WaymoSource(root, **{"window_seconds": 1.0, "min_box_pixels": 8, "holdout_first_windows": 0, **options})


def rewrite(path, column, row, value):
    """Replace one cell of a Parquet file."""
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[row] = value
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, table.schema.field(column).type))
    pq.write_table(table, path)


def test_one_stream_per_segment_and_camera(dataset):
    root, _ = dataset
    assert make(root).streams == ["seg_a/FRONT", "seg_b/FRONT", "seg_c/FRONT"]
    source = make(root, cameras=["FRONT", "SIDE_LEFT"])
    assert source.streams == ["seg_a/FRONT", "seg_a/SIDE_LEFT", "seg_b/FRONT", "seg_c/FRONT"]
    # 25 frames at 10 Hz last 2.5 s -> 2 complete 1 s windows; 12 frames -> 1; 15 -> 1; 10 -> 1
    assert [source.num_windows(s) for s in source.streams] == [2, 1, 1, 1]


def test_window_by_frame_timestamp_with_crops_of_the_boxes(dataset):
    root, _ = dataset
    window = make(root).window("seg_a/FRONT", 1)
    assert window.frame_ids.tolist() == [i for i in range(10, 20) for _ in range(2)]
    np.testing.assert_allclose(window.timestamps, np.repeat(np.arange(10, 20) / 10, 2))
    # frame i: WAYMO_LABELS[i % 3] left and WAYMO_LABELS[(i + 1) % 3] right
    expected = [CLASSES.index(WAYMO_LABELS[(i + j) % 3]) for i in range(10, 20) for j in (0, 1)]
    assert window.labels.tolist() == expected
    centres = window.images[:, :, 8:24, 8:24].mean(axis=(2, 3))
    colours = np.array([COLOURS[CLASSES[label]] for label in window.labels], dtype=float)
    np.testing.assert_allclose(centres, colours, atol=8.0)  # JPEG


def test_box_types_map_vehicle_pedestrian_cyclist_and_drop_signs(dataset):
    root, _ = dataset
    source = make(root)
    labels = np.concatenate([source.window("seg_a/FRONT", k).labels for k in range(2)])
    assert set(labels.tolist()) == {CLASSES.index("car"), CLASSES.index("person"), CLASSES.index("bicycle")}
    assert source.filtered == {"other_types": 1}
    assert len(labels) == 40  # 20 frames x 2 boxes; the sign on frame 3 is not a crop


def test_location_streams_concatenate_segments_in_time_order(dataset):
    root, _ = dataset
    source = make(root, stream_by="location")
    assert source.streams == ["location_phx/FRONT", "location_sf/FRONT"]
    # location_sf: seg_b (earlier, 1.5 s) then seg_a (2.5 s) -> 4 windows
    assert source.num_windows("location_sf/FRONT") == 4
    window = source.window("location_sf/FRONT", 1)
    assert window.frame_ids.tolist() == [i for i in range(10, 20) for _ in range(2)]
    np.testing.assert_allclose(window.timestamps, np.repeat(np.arange(10, 20) / 10, 2))
    # seg_b's frames 10..14 then seg_a's frames 0..4 (seg_a frame 0: person left, car right)
    assert window.labels[10:12].tolist() == [CLASSES.index("person"), CLASSES.index("car")]


def test_location_streams_need_the_stats_component(dataset):
    root, files = dataset
    files["seg_c"]["stats"].unlink()
    with pytest.raises(EkyaError, match=r"stats/seg_c.parquet is missing"):
        make(root, stream_by="location")


def test_cache_serves_crops_without_decoding(dataset, tmp_path, monkeypatch):
    root, _ = dataset
    first = make(root, cache_dir=tmp_path / "cache").window("seg_b/FRONT", 0)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(WaymoSource, "_decode_segment", refuse)
    again = make(root, cache_dir=tmp_path / "cache").window("seg_b/FRONT", 0)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)


# ---------------------------------------------------------------------------- bad input


def test_missing_root_split_or_component_is_an_error(dataset, tmp_path):
    root, files = dataset
    with pytest.raises(EkyaError, match="nowhere"):
        make(tmp_path / "nowhere")
    with pytest.raises(EkyaError, match=r"split 'validation' not found.*training"):
        make(root, split="validation")
    files["seg_b"]["camera_box"].unlink()
    with pytest.raises(EkyaError, match=r"camera_box/seg_b.parquet is missing"):
        make(root)


def test_corrupt_parquet_or_missing_column_is_an_error_naming_the_file(dataset):
    root, files = dataset
    files["seg_b"]["camera_image"].write_bytes(b"PAR1 garbage")
    with pytest.raises(EkyaError, match=r"camera_image/seg_b.parquet: not a readable Parquet file"):
        make(root)
    table = pq.read_table(files["seg_a"]["camera_box"]).drop_columns(["[CameraBoxComponent].type"])
    pq.write_table(table, files["seg_a"]["camera_box"])
    files["seg_b"]["camera_image"].unlink()
    files["seg_b"]["camera_box"].unlink()
    with pytest.raises(EkyaError, match=r"seg_a.parquet: missing Waymo v2 columns \['\[CameraBoxComponent\].type'\]"):
        make(root)


def test_corrupt_jpeg_is_skipped_and_counted_or_an_error_when_strict(dataset):
    root, files = dataset
    rewrite(files["seg_b"]["camera_image"], "[CameraImageComponent].image", 2, b"\xff\xd8 not a jpeg")
    source = make(root)
    window = source.window("seg_b/FRONT", 0)
    assert 2 not in window.frame_ids.tolist() and len(window) == 18
    assert source.skipped == {"frames": 1}
    with pytest.raises(EkyaError, match=r"camera_image/seg_b.parquet, camera 1, frame at 1500000000200000 us"):
        make(root, strict=True).window("seg_b/FRONT", 0)


def test_bad_boxes_are_skipped_and_counted_or_an_error_when_strict(dataset):
    root, files = dataset
    box_file = files["seg_b"]["camera_box"]
    rewrite(box_file, "[CameraBoxComponent].box.center.x", 0, 5000.0)  # far outside the 128 px frame
    rewrite(box_file, "[CameraBoxComponent].box.size.y", 1, 0.0)  # zero area
    rewrite(box_file, "[CameraBoxComponent].type", 2, 9)  # not a Waymo type
    rewrite(box_file, "key.frame_timestamp_micros", 3, 123)  # no image at that time
    source = make(root)
    window = source.window("seg_b/FRONT", 0)
    assert len(window) == 20 - 4  # frames 0..9, two boxes each; rows 0..3 are frames 0 and 1
    assert source.skipped == {"boxes": 4}
    with pytest.raises(EkyaError, match=r"camera_box/seg_b.parquet, camera 1: box row 3 has timestamp 123"):
        make(root, strict=True).window("seg_b/FRONT", 0)
    rewrite(box_file, "key.frame_timestamp_micros", 3, 1_500_000_000 * SECOND + 100_000)
    rewrite(box_file, "[CameraBoxComponent].type", 2, 2)
    with pytest.raises(EkyaError, match=r"box row 0: box .* lies mostly outside the 128x64 frame"):
        make(root, strict=True).window("seg_b/FRONT", 0)


def test_window_without_objects_is_an_error_unless_allowed(tmp_path):
    write_waymo_segment(tmp_path, "quiet", {"FRONT": [[]] * 10 + two_object_frames(10, WAYMO_LABELS)})
    with pytest.raises(EkyaError, match=r"window 0 of stream 'quiet/FRONT' has no objects.*quiet.parquet"):
        make(tmp_path).window("quiet/FRONT", 0)
    assert len(make(tmp_path, allow_empty_windows=True).window("quiet/FRONT", 0)) == 0


def test_unknown_camera_or_grouping_is_an_error(dataset):
    root, _ = dataset
    with pytest.raises(EkyaError, match="unknown cameras \\['REAR'\\]"):
        make(root, cameras=["REAR"])
    with pytest.raises(EkyaError, match="stream_by"):
        make(root, stream_by="city")


def test_check_command_loads_every_window_and_reports(dataset, tmp_path, capsys):
    root, _ = dataset
    # seg_b and seg_c last 1.5 and 1 s: one window each, which the default (each stream's first window held out) takes.
    assert main(["--root", str(root), "--window-seconds", "1", "--min-box-pixels", "8", "--no-cache"]) == 2
    assert "'seg_b/FRONT' (1), 'seg_c/FRONT' (1); set a shorter window_seconds" in capsys.readouterr().err
    code = main(["--root", str(root), "--window-seconds", "1", "--min-box-pixels", "8", "--holdout-streams", "seg_c/FRONT",
                 "--cache-dir", str(tmp_path / "cache"), "--check"])
    out = capsys.readouterr().out
    assert code == 0
    assert "base model trained on hold-out streams seg_c/FRONT;" in out
    assert "seg_a/FRONT" in out and "filtered: {'other_types': 1}" in out


def test_null_or_nan_box_values_are_bad_rows_named_by_file_row(dataset):
    root, files = dataset
    box_file = files["seg_a"]["camera_box"]  # rows 0..50 are FRONT's, 51.. SIDE_LEFT's
    rewrite(box_file, "[CameraBoxComponent].box.center.x", 52, None)
    rewrite(box_file, "[CameraBoxComponent].box.size.x", 55, float("nan"))
    rewrite(box_file, "[CameraBoxComponent].type", 57, None)
    source = make(root, cameras=["SIDE_LEFT"])
    window = source.window("seg_a/SIDE_LEFT", 0)
    assert len(window) == 20 - 3 and source.skipped == {"boxes": 3}
    assert len(make(root).window("seg_a/FRONT", 0)) == 20  # the other camera's rows are untouched
    with pytest.raises(EkyaError, match=r"camera_box/seg_a.parquet, camera 4: box row 52 has no value \(null or NaN\) in "
                                        r"\[CameraBoxComponent\].box.center.x \(strict=true"):
        make(root, cameras=["SIDE_LEFT"], strict=True).window("seg_a/SIDE_LEFT", 0)


def test_timestamp_jitter_keeps_a_window_that_divides_the_segment(tmp_path):
    # 20 frames 99.99 ms apart: 1.9998 s, two 1 s windows all but 0.2 ms.
    write_waymo_segment(tmp_path, "seg", {"FRONT": two_object_frames(20, WAYMO_LABELS)}, period_micros=99_990)
    assert make(tmp_path).num_windows("seg/FRONT") == 2
    write_waymo_segment(tmp_path, "seg", {"FRONT": two_object_frames(19, WAYMO_LABELS)})  # 1.9 s: one whole window
    assert make(tmp_path).num_windows("seg/FRONT") == 1
