"""Detection stages on raw video: MOG2 proposals labelled by a crop classifier, a torchvision detector from a local weights file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ekya.data.base import CLASSES
from ekya.data.detection import MOG2Detector, TorchvisionDetector, build_detector, torchvision_cache_file
from ekya.data.video import VideoSource
from ekya.errors import EkyaError
from ekya.inference.labelers import DetectorLabeler

from .fixtures import HEIGHT, WIDTH, moving_objects_video


class ColourClassifier:
    """Labels a crop person when it is mostly red, car otherwise (stands in for a golden model)."""

    def __init__(self):
        self.calls = 0

    def classify(self, images):
        self.calls += 1
        mean = images.astype(float).mean(axis=(2, 3))
        return np.where(mean[:, 0] > mean[:, 1], CLASSES.index("person"), CLASSES.index("car")).astype(np.int64)

    def params(self):
        return {"classifier": "colour"}


MOG2_OPTIONS = {"fps": 5.0, "history": 50, "warmup_frames": 8, "min_area_pixels": 150}


def test_mog2_boxes_the_moving_objects_and_a_classifier_labels_them(tmp_path, monkeypatch):
    moving_objects_video(tmp_path / "corner.avi")
    classifier = ColourClassifier()
    source = VideoSource(tmp_path, window_seconds=2.0, min_box_pixels=8, detector="mog2", detection=MOG2_OPTIONS,
                         crop_classifier=classifier, holdout_first_windows=0, cache_dir=tmp_path / "cache")
    assert source.streams == ["corner"] and source.num_windows("corner") == 2 and source.detects
    later = source.window("corner", 1)
    # Frames at 5 fps from 2 s on: 10 frames, each with the two moving objects.
    assert len(later) >= 16 and set(later.labels) == {CLASSES.index("person"), CLASSES.index("car")}
    assert later.labeling_seconds > 0 and later.images.shape[1:] == (3, 32, 32)
    person = later.images[later.labels == CLASSES.index("person")].astype(float).mean(axis=(0, 2, 3))
    assert person[0] > person[1] + 50 and person[0] > person[2] + 50  # crops of the red square (and some background)
    assert np.all(np.diff(np.unique(later.frame_ids)) == 2)  # every other frame of 10 fps
    assert DetectorLabeler().label(later).gpu_seconds == later.labeling_seconds

    def refuse(*args, **kwargs):
        raise AssertionError("detected again although cached")

    monkeypatch.setattr(VideoSource, "_detect_clip", refuse)
    again = VideoSource(tmp_path, window_seconds=2.0, min_box_pixels=8, detector="mog2", detection=MOG2_OPTIONS,
                        crop_classifier=ColourClassifier(), holdout_first_windows=0, cache_dir=tmp_path / "cache")
    cached = again.window("corner", 1)
    np.testing.assert_array_equal(cached.images, later.images)
    assert cached.labeling_seconds == later.labeling_seconds  # the measured cost comes back with the crops


@pytest.mark.parametrize("max_side_pixels", [None, 160])
def test_mog2_boxes_are_in_full_frame_pixels_on_shrunk_frames_too(max_side_pixels):
    background = np.random.default_rng(0).integers(40, 90, size=(240, 320, 3), dtype=np.uint8)
    detector = MOG2Detector(history=50, warmup_frames=5, min_area_pixels=150, padding=0.0, max_side_pixels=max_side_pixels)
    for _ in range(15):
        detector.observe(background)
    frame = background.copy()
    frame[100:140, 200:260] = (230, 20, 20)  # an object appears
    found = detector.detect(frame)
    assert len(found.boxes) == 1 and found.labels.tolist() == [-1]
    np.testing.assert_allclose(found.boxes[0], [200, 100, 260, 140], atol=3)


def test_mog2_needs_a_classifier_and_known_keys(tmp_path):
    moving_objects_video(tmp_path / "corner.mp4", frames=10)
    with pytest.raises(EkyaError, match=r"dataset.detector=mog2 finds boxes without labels.*set dataset.detection.classifier=PATH"):
        VideoSource(tmp_path, detector="mog2", detection={"fps": 2.0})
    with pytest.raises(EkyaError, match=r"dataset.detection: unknown key\(s\) treshold; valid: fps, device"):
        VideoSource(tmp_path, detector="mog2", detection={"treshold": 2.0}, crop_classifier=ColourClassifier())
    with pytest.raises(EkyaError, match=r"dataset.detection.fps must be > 0"):
        VideoSource(tmp_path, detector="mog2", detection={"fps": 0}, crop_classifier=ColourClassifier())
    with pytest.raises(EkyaError, match=r"dataset.detection.history must be a whole number >= 1"):
        MOG2Detector(history=0)


@pytest.fixture(scope="module")
def ssdlite_weights(tmp_path_factory):
    """A randomly initialised SSDlite320 MobileNetV3 saved with torch.save, whole and as a state dict."""
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91)
    torch.save(model, folder / "ssdlite-model.pt")
    torch.save(model.state_dict(), folder / "ssdlite-state.pth")
    return folder


@pytest.mark.slow
def test_torchvision_detector_loads_a_local_weights_file(ssdlite_weights):
    frame = np.random.default_rng(1).integers(0, 255, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    results = []
    for name in ("ssdlite-model.pt", "ssdlite-state.pth"):
        detector = TorchvisionDetector("ssdlite320_mobilenet_v3_large", ssdlite_weights / name, score_threshold=0.0)
        found = detector.detect(frame)
        assert found.boxes.shape[1] == 4 and len(found.boxes) == len(found.labels) == len(found.scores) > 0
        assert found.labels.min() >= 1 and found.labels.max() < 91
        results.append(found.boxes)
    np.testing.assert_allclose(results[0], results[1])  # the same weights either way
    assert build_detector("torchvision", {"model": "ssdlite320_mobilenet_v3_large", "weights": str(ssdlite_weights / "ssdlite-state.pth"),
                                          "fps": 2.0}).score_threshold == 0.5


def test_torchvision_detector_refuses_missing_or_wrong_weights(ssdlite_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = torchvision_cache_file("ssdlite320_mobilenet_v3_large")
    assert cached == tmp_path / "torch" / "hub" / "checkpoints" / "ssdlite320_mobilenet_v3_large_coco-a79551df.pth"
    with pytest.raises(EkyaError, match=r"dataset.detection.weights is null and torchvision's cache has no "
                                        r"ssdlite320_mobilenet_v3_large_coco-a79551df.pth .*nothing is downloaded"):
        TorchvisionDetector("ssdlite320_mobilenet_v3_large")
    cached.parent.mkdir(parents=True)
    cached.write_bytes((ssdlite_weights / "ssdlite-state.pth").read_bytes())
    assert TorchvisionDetector("ssdlite320_mobilenet_v3_large").weights_path == cached  # a user's cache is used
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EkyaError, match=r"dataset.detection.weights: .*junk.pt is not a torch weights file"):
        TorchvisionDetector("ssdlite320_mobilenet_v3_large", tmp_path / "junk.pt")
    with pytest.raises(EkyaError, match=r"ssdlite-state.pth does not fit fasterrcnn_mobilenet_v3_large_320_fpn"):
        TorchvisionDetector("fasterrcnn_mobilenet_v3_large_320_fpn", ssdlite_weights / "ssdlite-state.pth")
    with pytest.raises(EkyaError, match=r"dataset.detection.model: unknown detection model 'yolo'; valid: fasterrcnn_mobilenet_v3_large_fpn"):
        TorchvisionDetector("yolo")
    with pytest.raises(EkyaError, match=r"dataset.detection.weights: .*missing.pt does not exist"):
        TorchvisionDetector("ssdlite320_mobilenet_v3_large", tmp_path / "missing.pt")


@pytest.mark.slow
def test_video_with_a_torchvision_detector_has_its_labels(ssdlite_weights, tmp_path):
    moving_objects_video(tmp_path / "clip.mkv", frames=20)
    detection = {"fps": 2.0, "model": "ssdlite320_mobilenet_v3_large", "weights": str(ssdlite_weights / "ssdlite-state.pth"),
                 "score_threshold": 0.0}
    # A random model's labels are any COCO ids: map every id onto the classes.
    class_map = {coco: CLASSES[coco % len(CLASSES)] for coco in range(1, 91)}
    source = VideoSource(tmp_path, window_seconds=1.0, min_box_pixels=2, detector="torchvision", detection=detection,
                         class_map=class_map, allow_empty_windows=True)
    window = source.window("clip", 0)  # window 1 of the file: window 0 is the hold-out
    holdout = source.holdout()
    labels = np.concatenate([window.labels, holdout[0].labels])
    assert len(labels) > 0 and set(labels) <= set(range(len(CLASSES))) and window.labeling_seconds > 0
    assert set(np.unique(window.frame_ids)) <= {10, 15}  # 2 fps of 10 fps video, second 1..2
    assert len(holdout) == 1
    # With Ekya's six COCO ids (the default class_map) the random model's other labels are dropped and counted.
    source = VideoSource(tmp_path, window_seconds=1.0, min_box_pixels=2, detector="torchvision", detection=detection,
                         allow_empty_windows=True)
    assert len(source.window("clip", 0)) < len(window) and source.filtered["other_classes"] > 0
