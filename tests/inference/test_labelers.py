"""Labelers: ground truth, golden model (label, checkpoint errors), registry, reference labels and agreement.

The trained golden model and its checkpoint are shared fixtures (tests/conftest.py).
"""

import numpy as np
import pytest
import torch

from ekya.errors import EkyaError
from ekya.inference.labelers import (
    LABELER_NAMES,
    GoldenModelLabeler,
    GroundTruthLabeler,
    LabelResult,
    build_labeler,
    label_agreement,
    reference_labels,
)
from ekya.models.predict import predict


def test_ground_truth_labeler_returns_the_labels_at_no_cost(golden_source):
    window = golden_source.window("cam0", 1)
    result = GroundTruthLabeler().label(window)
    np.testing.assert_array_equal(result.labels, window.labels)
    assert result.labels is not window.labels
    assert result.gpu_seconds == 0.0


def test_golden_labeler_round_trip(golden_trained, golden_checkpoint, golden_source):
    assert [path.name for path in golden_checkpoint.parent.iterdir()] == ["golden.pt"]  # no temporary file left
    window = golden_source.window("cam0", 1)
    labeler = GoldenModelLabeler(golden_checkpoint, architecture="resnet18")
    result = labeler.label(window)
    assert result.labels.shape == (60,) and result.labels.dtype == np.int64
    assert result.labels.min() >= 0 and result.labels.max() < 6
    assert result.gpu_seconds > 0
    np.testing.assert_array_equal(result.labels, predict(golden_trained.model, window.images))  # same weights after loading
    np.testing.assert_array_equal(GoldenModelLabeler(golden_checkpoint, batch_size=7).label(window).labels, result.labels)
    relabeled = result.apply(window)
    np.testing.assert_array_equal(relabeled.labels, result.labels)
    np.testing.assert_array_equal(relabeled.images, window.images)


def test_golden_labeler_on_an_empty_window_costs_nothing(golden_checkpoint, golden_source):
    window = golden_source.window("cam0", 0)
    empty = type(window)(window.stream, 0, 0.0, 1.0, window.images[:0], window.labels[:0], window.frame_ids[:0], window.timestamps[:0])
    result = GoldenModelLabeler(golden_checkpoint).label(empty)
    assert result.labels.shape == (0,) and result.gpu_seconds == 0.0


def test_corrupt_checkpoint_names_the_file(golden_checkpoint, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(golden_checkpoint.read_bytes()[:1000])
    with pytest.raises(EkyaError, match=r"broken\.pt.*unreadable"):
        GoldenModelLabeler(broken)
    with pytest.raises(EkyaError, match=r"missing\.pt: no such file.*flows\.train_golden"):
        GoldenModelLabeler(tmp_path / "missing.pt")
    assert [path.name for path in tmp_path.iterdir()] == ["broken.pt"]


def test_wrong_architecture_names_the_file(golden_checkpoint, tmp_path):
    with pytest.raises(EkyaError, match=r"golden\.pt: architecture mismatch, it holds a 'resnet18' but 'resnet50' is expected"):
        GoldenModelLabeler(golden_checkpoint, architecture="resnet50")
    payload = torch.load(golden_checkpoint, weights_only=True)
    payload["config"]["name"] = "resnet34"  # resnet18 weights under another architecture's name
    tampered = tmp_path / "tampered.pt"
    torch.save(payload, tampered)
    with pytest.raises(EkyaError, match=r"tampered\.pt: weights do not fit a resnet34"):
        GoldenModelLabeler(tampered)
    payload["config"]["name"] = "vgg16"
    torch.save(payload, tampered)
    with pytest.raises(EkyaError, match=r"tampered\.pt: unknown golden model 'vgg16'; valid golden models: resnet18, "):
        GoldenModelLabeler(tampered)
    assert [path.name for path in tmp_path.iterdir()] == ["tampered.pt"]


def test_build_labeler_registry(golden_checkpoint):
    assert LABELER_NAMES == ("ground_truth", "golden", "detector")
    assert isinstance(build_labeler("ground_truth"), GroundTruthLabeler)
    assert isinstance(build_labeler("golden", checkpoint=str(golden_checkpoint), batch_size=32), GoldenModelLabeler)
    with pytest.raises(EkyaError, match="unknown labeler 'human'; valid labelers: ground_truth, golden"):
        build_labeler("human")
    with pytest.raises(EkyaError, match=r"labeler 'golden': unknown parameters \['chekpoint'\]; valid parameters: checkpoint, device, batch_size, architecture"):
        build_labeler("golden", chekpoint=str(golden_checkpoint))
    with pytest.raises(EkyaError, match="labeler 'golden': missing a required argument: 'checkpoint'"):
        build_labeler("golden")
    with pytest.raises(EkyaError, match="batch_size must be an int >= 1, got 0"):
        build_labeler("golden", checkpoint=str(golden_checkpoint), batch_size=0)


def test_reference_labels_and_agreement(golden_source):
    window = golden_source.window("cam0", 0)
    golden = LabelResult(labels=(window.labels + 1) % 6, gpu_seconds=1.5)
    assert reference_labels(window, golden, "ground_truth") is window.labels
    assert reference_labels(window, golden, "golden") is golden.labels
    assert label_agreement(golden.labels, window.labels) == 0.0
    assert label_agreement(window.labels, window.labels) == 1.0
    assert label_agreement(np.array([0, 1, 2, 3]), np.array([0, 1, 0, 3])) == 0.75
    assert label_agreement(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)) == 0.0
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(2,\)"):
        label_agreement(np.zeros(3), np.zeros(2))
    with pytest.raises(EkyaError, match="unknown measure_against"):
        reference_labels(window, golden, "oracle")
    with pytest.raises(ValueError, match="has 60 crops but 2 labels"):
        LabelResult(labels=np.zeros(2, dtype=np.int64), gpu_seconds=0.0).apply(window)
