"""CityscapesSource on tiny datasets written in the official leftImg8bit/gtFine layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ekya.data.base import CLASSES, require_holdout
from ekya.data.cityscapes import CityscapesSource, main
from ekya.errors import EkyaError

from .fixtures import COLOURS, Box, two_object_frames, write_cityscapes


@pytest.fixture()
def dataset(tmp_path):
    root = tmp_path / "cityscapes"
    paths = write_cityscapes(root, {"aachen": two_object_frames(7), "bonn": two_object_frames(4)})
    return root, paths


def make(root, **options):
    defaults = dict(frames_per_window=3, seconds_per_frame=2.0, min_box_pixels=8, holdout_first_windows=0)
    return CityscapesSource(root, **{**defaults, **options})


def crop_colours(window):
    """Mean RGB of the central 16x16 pixels of each crop, (N, 3)."""
    return window.images[:, :, 8:24, 8:24].mean(axis=(2, 3))


def test_streams_are_cities_and_only_complete_windows_count(dataset):
    source = make(dataset[0])
    assert source.streams == ["aachen", "bonn"]
    assert source.window_seconds == 6.0
    assert [source.num_windows(s) for s in source.streams] == [2, 1]  # 7 // 3 and 4 // 3


def test_window_holds_its_frames_in_sequence_order_with_crops_of_the_boxes(dataset):
    source = make(dataset[0], crop_resolution=32)
    window = source.window("aachen", 1)
    # frames 3, 4, 5 (sequence 1, frames 19..21); frame i has classes i % 6 and (i + 1) % 6
    assert window.frame_ids.tolist() == [3, 3, 4, 4, 5, 5]
    assert window.timestamps.tolist() == [6.0, 6.0, 8.0, 8.0, 10.0, 10.0]
    assert (window.start_seconds, window.end_seconds) == (6.0, 12.0)
    assert window.labels.tolist() == [3, 4, 4, 5, 5, 0]
    assert window.images.shape == (6, 3, 32, 32) and window.images.dtype == np.uint8
    expected = np.array([COLOURS[CLASSES[label]] for label in window.labels], dtype=float)
    np.testing.assert_allclose(crop_colours(window), expected, atol=1.0)


def test_crop_resolution_is_configurable(dataset):
    window = make(dataset[0], crop_resolution=12).window("bonn", 0)
    assert window.images.shape == (6, 3, 12, 12)


def test_label_map_maps_riders_and_ignores_other_labels(tmp_path):
    frames = [[Box("rider", 8, 8, 40, 40), Box("car", 64, 16, 112, 56)]] * 3
    write_cityscapes(tmp_path, {"ulm": frames})
    default = make(tmp_path).window("ulm", 0)
    assert default.labels.tolist() == [1, 1, 1]  # rider (and the road polygon) ignored, as in Ekya
    with_riders = make(tmp_path, label_map={"rider": "person", "car": "car"}).window("ulm", 0)
    assert with_riders.labels.tolist() == [0, 1, 0, 1, 0, 1]
    np.testing.assert_allclose(crop_colours(with_riders)[0], COLOURS["rider"], atol=1.0)


def test_unknown_class_in_label_map_is_an_error(dataset):
    with pytest.raises(EkyaError, match="unknown class 'van'"):
        make(dataset[0], label_map={"car": "van"})


def test_small_boxes_are_filtered_and_counted(tmp_path):
    frames = [[Box("car", 8, 8, 40, 40), Box("person", 60, 10, 64, 50)]] * 3  # person box is 4 px wide
    write_cityscapes(tmp_path, {"ulm": frames})
    source = make(tmp_path, min_box_pixels=8)
    assert source.window("ulm", 0).labels.tolist() == [1, 1, 1]
    assert source.filtered == {"small_boxes": 3}
    assert source.skipped == {}


def test_deleted_objects_are_ignored(dataset):
    root, paths = dataset
    annotation = root / "gtFine/train/bonn/bonn_000000_000019_gtFine_polygons.json"
    data = json.loads(annotation.read_text())
    data["objects"][1]["deleted"] = 1
    annotation.write_text(json.dumps(data))
    window = make(root).window("bonn", 0)
    assert window.frame_ids.tolist() == [0, 1, 1, 2, 2]


def test_cache_serves_crops_without_decoding_and_follows_file_changes(dataset, tmp_path, monkeypatch):
    root, paths = dataset
    cache = tmp_path / "cache"
    first = make(root, cache_dir=cache).window("bonn", 0)
    assert list(cache.glob("*.npz"))

    def refuse(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(CityscapesSource, "_decode_frame", refuse)
    again = make(root, cache_dir=cache).window("bonn", 0)
    for name in ("images", "labels", "frame_ids", "timestamps"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    monkeypatch.undo()

    # Rewrite frame 0 with swapped classes: the cache key changes with the content.
    write_cityscapes(tmp_path / "new", {"bonn": [[Box("bus", 8, 8, 40, 40), Box("truck", 64, 16, 112, 56)]]})
    paths["bonn"][0].write_bytes((tmp_path / "new/leftImg8bit/train/bonn/bonn_000000_000019_leftImg8bit.png").read_bytes())
    annotation = "gtFine/train/bonn/bonn_000000_000019_gtFine_polygons.json"
    (root / annotation).write_bytes((tmp_path / "new" / annotation).read_bytes())
    changed = make(root, cache_dir=cache).window("bonn", 0)
    assert changed.labels[:2].tolist() == [CLASSES.index("bus"), CLASSES.index("truck")]
    np.testing.assert_allclose(crop_colours(changed)[0], COLOURS["bus"], atol=1.0)


# ---------------------------------------------------------------------------- bad input


def test_missing_root_or_split_is_an_error_naming_it(tmp_path, dataset):
    with pytest.raises(EkyaError, match="nowhere"):
        make(tmp_path / "nowhere")
    with pytest.raises(EkyaError, match=r"split 'val' not found.*\['train'\]"):
        make(dataset[0], split="val")


def test_corrupt_png_is_skipped_and_counted_or_an_error_when_strict(dataset):
    root, paths = dataset
    paths["bonn"][1].write_bytes(b"not a png at all")
    source = make(root)
    window = source.window("bonn", 0)
    assert window.frame_ids.tolist() == [0, 0, 2, 2]
    assert source.skipped == {"frames": 1}
    source.window("bonn", 0)
    assert source.skipped == {"frames": 1}  # counted once per frame, however often it is loaded
    with pytest.raises(EkyaError, match="bonn_000000_000020_leftImg8bit.png"):
        make(root, strict=True).window("bonn", 0)


def test_corrupt_or_missing_polygons_file_is_skipped_or_an_error(dataset):
    root, _ = dataset
    broken = root / "gtFine/train/bonn/bonn_000000_000020_gtFine_polygons.json"
    broken.write_text("{ not json")
    missing = root / "gtFine/train/bonn/bonn_000000_000021_gtFine_polygons.json"
    missing.unlink()
    source = make(root)
    assert source.window("bonn", 0).frame_ids.tolist() == [0, 0]
    assert source.skipped == {"frames": 2}
    with pytest.raises(EkyaError, match="bonn_000000_000020_gtFine_polygons.json"):
        make(root, strict=True).window("bonn", 0)


def test_zero_area_and_outside_boxes_are_skipped_or_an_error(dataset):
    root, _ = dataset
    annotation = root / "gtFine/train/bonn/bonn_000000_000019_gtFine_polygons.json"
    data = json.loads(annotation.read_text())
    data["objects"][1]["polygon"] = [[10, 10], [30, 10]]  # a line: zero area
    data["objects"][2]["polygon"] = [[500, 500], [540, 500], [540, 540]]  # far outside 128x64
    annotation.write_text(json.dumps(data))
    source = make(root)
    assert source.window("bonn", 0).frame_ids.tolist() == [1, 1, 2, 2]
    assert source.skipped == {"boxes": 2}
    with pytest.raises(EkyaError, match=r"bonn_000000_000019_gtFine_polygons.json, object 1 \(person\).*zero"):
        make(root, strict=True).window("bonn", 0)


@pytest.mark.parametrize("polygon", [None, [], [[1, 2, 3]], [["a", 2], [3, 4]], [[1, float("nan")], [3, 4]]])
def test_malformed_polygon_is_a_bad_box_named_as_such(dataset, polygon):
    root, _ = dataset
    annotation = root / "gtFine/train/bonn/bonn_000000_000019_gtFine_polygons.json"
    data = json.loads(annotation.read_text())
    if polygon is None:
        del data["objects"][1]["polygon"]
    else:
        data["objects"][1]["polygon"] = polygon
    annotation.write_text(json.dumps(data))
    source = make(root)
    assert len(source.window("bonn", 0)) == 5 and source.skipped == {"boxes": 1}
    with pytest.raises(EkyaError, match=r"bonn_000000_000019_gtFine_polygons.json, object 1 \(person\): polygon .* is missing or "
                                        r"malformed \(need a list of \[x, y\] number pairs\)"):
        make(root, strict=True).window("bonn", 0)


def test_image_size_disagreeing_with_the_polygons_file_skips_the_frame(dataset):
    root, _ = dataset
    annotation = root / "gtFine/train/bonn/bonn_000000_000019_gtFine_polygons.json"
    data = json.loads(annotation.read_text())
    data["imgWidth"] = 2048
    annotation.write_text(json.dumps(data))
    source = make(root)
    assert source.window("bonn", 0).frame_ids.tolist() == [1, 1, 2, 2]
    assert source.skipped == {"frames": 1}


def test_window_without_objects_is_an_error_unless_allowed(tmp_path):
    write_cityscapes(tmp_path, {"ulm": [[]] * 3 + two_object_frames(3)})
    with pytest.raises(EkyaError, match=r"window 0 of stream 'ulm' has no objects.*ulm_000000_000019.*a longer frames_per_window"):
        make(tmp_path).window("ulm", 0)
    empty = make(tmp_path, allow_empty_windows=True).window("ulm", 0)
    assert len(empty) == 0 and empty.images.shape == (0, 3, 32, 32)


def test_stream_selection_and_holdout(dataset):
    source = make(dataset[0], holdout_streams=["bonn"])
    assert source.streams == ["aachen"]
    assert [w.stream for w in source.holdout()] == ["bonn"]
    with pytest.raises(EkyaError, match="unknown streams \\['paris'\\]"):
        make(dataset[0], stream_names=["paris"])
    with pytest.raises(EkyaError, match="has windows 0..0, asked for 1"):
        make(dataset[0]).window("bonn", 1)


def test_first_windows_of_each_stream_are_the_holdout_by_default(dataset):
    """Without hold-out streams, each stream's first window trains the base model and streaming starts after it."""
    plain = make(dataset[0], frames_per_window=2)
    source = make(dataset[0], frames_per_window=2, holdout_first_windows=None)
    assert source.holdout_first_windows == 1 and source.has_holdout and not plain.has_holdout
    assert [source.num_windows(s) for s in source.streams] == [2, 1]  # 7 // 2 - 1 and 4 // 2 - 1
    assert [(w.stream, w.index) for w in source.holdout()] == [("aachen", 0), ("bonn", 0)]
    np.testing.assert_array_equal(source.holdout()[0].images, plain.window("aachen", 0).images)
    shifted = source.window("aachen", 1)
    assert shifted.index == 1 and (shifted.start_seconds, shifted.end_seconds) == (8.0, 12.0)  # the file's window 2
    np.testing.assert_array_equal(shifted.images, plain.window("aachen", 2).images)
    np.testing.assert_array_equal(shifted.timestamps, plain.window("aachen", 2).timestamps)
    # Hold-out streams turn the default off; both can be combined.
    assert make(dataset[0], holdout_streams=["bonn"], holdout_first_windows=None).holdout_first_windows == 0
    both = make(dataset[0], frames_per_window=2, holdout_streams=["bonn"], holdout_first_windows=1)
    assert [(w.stream, w.index) for w in both.holdout()] == [("bonn", 0), ("bonn", 1), ("aachen", 0)]
    # The first windows come from the streams a run uses.
    source.limit_streams(1)
    assert source.streams == ["aachen"] and [w.stream for w in source.holdout()] == ["aachen"]
    with pytest.raises(EkyaError, match="streams=3 but the dataset has 1 streams"):
        source.limit_streams(3)
    with pytest.raises(EkyaError, match="holdout_first_windows must be a whole number >= 0 or null"):
        make(dataset[0], holdout_first_windows=-1)


def test_no_holdout_names_the_keys_to_set(dataset):
    with pytest.raises(EkyaError, match=r"no hold-out windows to train the base model on: set dataset.holdout_first_windows=N"
                                        r".*dataset.holdout_streams=\[NAME, ...\].*streams: aachen, bonn"):
        require_holdout(make(dataset[0]))
    require_holdout(make(dataset[0], holdout_streams=["bonn"]))


def test_check_command_loads_every_window_and_reports(dataset, tmp_path, capsys):
    root, _ = dataset
    code = main(["--root", str(root), "--frames-per-window", "3", "--min-box-pixels", "8", "--holdout-streams", "bonn",
                 "--cache-dir", str(tmp_path / "cache"), "--check"])
    out = capsys.readouterr().out
    assert code == 0
    assert "base model trained on hold-out streams bonn;" in out
    assert "aachen" in out and "bonn" in out and "skipped: nothing" in out
    # Without hold-out streams each city's first window trains the base model; bonn (4 frames) has only that one.
    assert main(["--root", str(root), "--frames-per-window", "3", "--no-cache"]) == 2
    assert "'bonn' (1); set a shorter frames_per_window" in capsys.readouterr().err
    assert main(["--root", str(root), "--frames-per-window", "2", "--min-box-pixels", "8", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "and the first 1 window(s) of each stream" in out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith(("aachen", "bonn"))] == [
        ["aachen", "2", "1"], ["bonn", "1", "1"]]
    assert list((tmp_path / "cache").glob("*.npz"))
    assert main(["--root", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
