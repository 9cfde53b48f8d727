"""VideoSource on tiny MP4 clips (encoded with PyAV) with Ekya-style sample lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ekya.data.base import CLASSES
from ekya.data.video import VideoSource, main
from ekya.errors import EkyaError

from .fixtures import COLOURS, two_object_frames, write_sample_list, write_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two clips at 10 fps: cam1 (50 frames, mpeg4) and cam2 (35 frames, H.264), with sample lists."""
    root = tmp_path_factory.mktemp("video")
    frames1, frames2 = two_object_frames(50), two_object_frames(35)
    write_video(root / "cam1.mp4", frames1)
    write_video(root / "cam2.mp4", frames2, codec="libx264")
    write_sample_list(root / "cam1.csv", frames1)
    write_sample_list(root / "cam2.csv", frames2)
    return root


@pytest.fixture()
def one_clip(tmp_path):
    """A writable folder with one 30-frame clip and its sample list; returns (root, frames)."""
    frames = two_object_frames(30)
    write_video(tmp_path / "clip.mp4", frames)
    write_sample_list(tmp_path / "clip.csv", frames)
    return tmp_path, frames


def make(root, **options):
    return VideoSource(root, **{"window_seconds": 1.0, "min_box_pixels": 8, "holdout_first_windows": 0, **options})


def edit_sample_list(path, edit):
    table = pd.read_csv(path)
    edit(table)
    table.to_csv(path, index=False)


def test_one_stream_per_clip_with_windows_from_the_duration(clips):
    source = make(clips)
    assert source.streams == ["cam1", "cam2"]
    assert [source.num_windows(s) for s in source.streams] == [5, 3]  # 5.0 s and 3.5 s at 1 s windows


@pytest.mark.parametrize("stream", ["cam1", "cam2"])
def test_window_by_frame_time_with_crops_of_the_boxes(clips, stream):
    window = make(clips).window(stream, 2)
    assert window.frame_ids.tolist() == [i for i in range(20, 30) for _ in range(2)]
    np.testing.assert_allclose(window.timestamps, np.repeat(np.arange(20, 30) / 10, 2))
    # frame i holds CLASSES[i % 6] on the left and CLASSES[(i + 1) % 6] on the right (COCO ids in the CSV)
    assert window.labels.tolist() == [(i + j) % 6 for i in range(20, 30) for j in (0, 1)]
    centres = window.images[:, :, 8:24, 8:24].mean(axis=(2, 3))
    colours = np.array([COLOURS[CLASSES[label]] for label in window.labels], dtype=float)
    np.testing.assert_allclose(centres, colours, atol=25.0)  # lossy codec, 4:2:0 chroma


def test_other_coco_classes_are_filtered_and_unknown_ids_are_bad_rows(one_clip):
    root, _ = one_clip
    edit_sample_list(root / "clip.csv", lambda t: t.loc.__setitem__(([0, 1], "class"), [10, 99]))
    source = make(root)
    assert source.filtered == {"other_classes": 1}  # 10: traffic light
    assert source.skipped == {"rows": 1}
    assert source.window("clip", 0).frame_ids.tolist()[:2] == [1, 1]  # frame 0's two rows are gone
    with pytest.raises(EkyaError, match=r"clip.csv: line 3: class 99 is not a COCO id"):
        make(root, strict=True)


def test_bad_rows_are_skipped_and_counted_or_an_error_naming_the_line(one_clip):
    root, _ = one_clip

    def spoil(table):
        table.loc[0, "xmax"] = table.loc[0, "xmin"]  # zero area
        table.loc[1, ["xmin", "xmax"]] = [900, 990]  # outside the 128 px frame
        table.loc[2, "frame id"] = 31  # the clip has frames 1..30
        table["ymin"] = table["ymin"].astype(object)
        table.loc[3, "ymin"] = "abc"  # not a number

    edit_sample_list(root / "clip.csv", spoil)
    source = make(root)
    assert source.skipped == {"rows": 4}
    assert len(source.window("clip", 0)) == 20 - 4  # all four rows belong to frames 1 and 2
    with pytest.raises(EkyaError, match=r"clip.csv: line 2: box .* has zero or negative area"):
        make(root, strict=True)


def test_wrong_columns_are_an_error_naming_the_file(one_clip):
    root, _ = one_clip
    edit_sample_list(root / "clip.csv", lambda t: t.drop(columns=["frame id"], inplace=True))
    with pytest.raises(EkyaError, match=r"clip.csv: sample list needs columns 'frame id'.*found \['idx', 'class'"):
        make(root)


def test_x0_y0_x1_y1_columns_and_normalized_boxes(one_clip):
    root, frames = one_clip

    def normalise(table):
        for old, new, size in (("xmin", "x0", 128), ("ymin", "y0", 64), ("xmax", "x1", 128), ("ymax", "y1", 64)):
            table[new] = table.pop(old) / size

    edit_sample_list(root / "clip.csv", normalise)
    window = make(root, box_units="normalized").window("clip", 1)
    centres = window.images[:, :, 8:24, 8:24].mean(axis=(2, 3))
    np.testing.assert_allclose(centres, [COLOURS[CLASSES[label]] for label in window.labels], atol=25.0)
    # read as pixels, the fractions make boxes below 8 px: all filtered, so the window is empty
    with pytest.raises(EkyaError, match="has no objects"):
        make(root, box_units="pixels").window("clip", 1)


def test_missing_sample_list_and_detector_option_are_errors(one_clip):
    root, _ = one_clip
    with pytest.raises(EkyaError, match="unknown detector 'yolo'; valid: mog2, torchvision, or null"):
        make(root, detector="yolo")
    (root / "clip.csv").rename(root / "other.csv")
    with pytest.raises(EkyaError, match=r"sample list .*clip.csv for clip.mp4 is missing.*or set dataset.detector=mog2 or torchvision"):
        make(root)


def test_sample_lists_can_live_elsewhere(one_clip, tmp_path_factory):
    root, _ = one_clip
    elsewhere = tmp_path_factory.mktemp("lists")
    (root / "clip.csv").rename(elsewhere / "clip_10fps.csv")
    source = make(root, sample_list_dir=elsewhere, sample_list_pattern="{name}_10fps.csv")
    assert len(source.window("clip", 0)) == 20


def test_corrupt_mp4_is_an_error_naming_the_file(one_clip):
    root, _ = one_clip
    (root / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    with pytest.raises(EkyaError, match=r"clip.mp4: not a readable video"):
        make(root)


def test_truncated_mp4_counts_undecodable_frames_or_fails_when_strict(one_clip):
    root, _ = one_clip
    data = (root / "clip.mp4").read_bytes()
    (root / "clip.mp4").write_bytes(data[: len(data) * 6 // 10])
    source = make(root)
    first = source.window("clip", 0)
    assert len(first) == 20 and source.skipped == {}
    with pytest.raises(EkyaError, match="no objects"):
        source.window("clip", 2)  # past the cut: nothing decodes
    assert source.skipped == {"frames": 10}
    with pytest.raises(EkyaError, match=r"clip.mp4: frame id 21 \(sample list line 42\) could not be decoded"):
        make(root, strict=True).window("clip", 2)


def test_cache_fills_every_window_in_one_pass(clips, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = make(clips, cache_dir=cache).window("cam2", 1)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(VideoSource, "_decode_clip", refuse)
    source = make(clips, cache_dir=cache)
    again = source.window("cam2", 1)
    np.testing.assert_array_equal(first.images, again.images)
    assert len(source.window("cam2", 2)) == 20  # filled by the same decoding pass


def test_missing_root_or_no_clips_is_an_error(tmp_path):
    with pytest.raises(EkyaError, match="nowhere"):
        make(tmp_path / "nowhere")
    with pytest.raises(EkyaError, match=r"no video files \(.mp4 .m4v .mov .avi .mkv"):
        make(tmp_path)


def test_check_command_loads_every_window_and_reports(clips, tmp_path, capsys):
    code = main(["--root", str(clips), "--window-seconds", "1", "--min-box-pixels", "8", "--name", "urban_traffic",
                 "--cache-dir", str(tmp_path / "cache"), "--check"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("urban_traffic: 2 streams") and "cam2" in out


@pytest.mark.parametrize("suffix", [".avi", ".mkv", ".mov", ".MP4"])
def test_any_container_ffmpeg_decodes_with_its_own_frame_rate(tmp_path, suffix):
    frames = two_object_frames(20)
    write_video(tmp_path / f"street corner{suffix}", frames, fps=5)
    write_sample_list(tmp_path / "street corner.csv", frames)
    source = make(tmp_path, window_seconds=2.0)
    assert source.streams == ["street corner"]
    assert source.num_windows("street corner") == 2  # 20 frames at 5 fps = 4 s
    window = source.window("street corner", 1)
    assert len(window) == 20 and window.timestamps.min() == 2.0 and window.timestamps.max() == pytest.approx(3.8)


def test_two_files_of_one_name_are_an_error(tmp_path):
    frames = two_object_frames(10)
    write_video(tmp_path / "cam.mp4", frames)
    write_video(tmp_path / "cam.avi", frames)
    write_sample_list(tmp_path / "cam.csv", frames)
    with pytest.raises(EkyaError, match="cam.avi, cam.mp4 in .* would be streams of one name"):
        make(tmp_path)
