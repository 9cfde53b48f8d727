"""Labelers: ground truth, golden model (train, save, load, label), checkpoint errors, registry."""

import numpy as np
import pytest
import torch

from ekya.data import labelers
from ekya.data.labelers import (
    GOLDEN_MODEL_NAMES,
    LABELER_NAMES,
    GoldenModel,
    GoldenModelLabeler,
    GroundTruthLabeler,
    LabelResult,
    build_labeler,
    label_agreement,
    labeler_from_config,
    load_golden_checkpoint,
    reference_labels,
    save_golden_checkpoint,
    split_crops,
    train_golden_model,
)
from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError
from ekya.models.checkpoints import save_checkpoint
from ekya.models.factory import build_model
from ekya.training.retrain import predict


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: on a small shared machine two competing threads are slower (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def source():
    return SyntheticSource(num_streams=1, num_windows=2, crops_per_window=60, frames_per_window=12, holdout_streams=1, holdout_windows=1)


@pytest.fixture(scope="module")
def trained(source):
    """A tiny golden model (resnet18, one epoch on the 60 hold-out crops)."""
    torch.set_num_threads(1)
    return train_golden_model(source.holdout(), architecture="resnet18", epochs=1, batch_size=16, validation_fraction=0.25, seed=3)


@pytest.fixture(scope="module")
def checkpoint(trained, tmp_path_factory):
    return save_golden_checkpoint(trained.model, tmp_path_factory.mktemp("golden") / "sub" / "golden.pt")


def test_ground_truth_labeler_returns_the_labels_at_no_cost(source):
    window = source.window("cam0", 1)
    result = GroundTruthLabeler().label(window)
    np.testing.assert_array_equal(result.labels, window.labels)
    assert result.labels is not window.labels
    assert result.gpu_seconds == 0.0


def test_training_splits_the_crops_and_reports_per_epoch_accuracy(trained):
    assert (trained.num_train, trained.num_validation) == (45, 15)
    assert len(trained.validation_accuracy) == 1
    assert 0.0 <= trained.validation_accuracy[0] <= 1.0 and 0.0 <= trained.train_accuracy <= 1.0
    assert trained.compute_seconds > 0
    assert not trained.model.training


def test_training_is_deterministic_for_a_seed(source, trained):
    again = train_golden_model(source.holdout(), architecture="resnet18", epochs=1, batch_size=16, validation_fraction=0.25, seed=3)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key


def test_golden_labeler_round_trip(trained, checkpoint, source):
    assert [path.name for path in checkpoint.parent.iterdir()] == ["golden.pt"]  # no temporary file left
    window = source.window("cam0", 1)
    labeler = GoldenModelLabeler(checkpoint, architecture="resnet18")
    result = labeler.label(window)
    assert result.labels.shape == (60,) and result.labels.dtype == np.int64
    assert result.labels.min() >= 0 and result.labels.max() < 6
    assert result.gpu_seconds > 0
    np.testing.assert_array_equal(result.labels, predict(trained.model, window.images))  # same weights after loading
    np.testing.assert_array_equal(GoldenModelLabeler(checkpoint, batch_size=7).label(window).labels, result.labels)
    relabeled = result.apply(window)
    np.testing.assert_array_equal(relabeled.labels, result.labels)
    np.testing.assert_array_equal(relabeled.images, window.images)


def test_golden_labeler_on_an_empty_window_costs_nothing(checkpoint, source):
    window = source.window("cam0", 0)
    empty = type(window)(window.stream, 0, 0.0, 1.0, window.images[:0], window.labels[:0], window.frame_ids[:0], window.timestamps[:0])
    result = GoldenModelLabeler(checkpoint).label(empty)
    assert result.labels.shape == (0,) and result.gpu_seconds == 0.0


def test_corrupt_checkpoint_names_the_file(checkpoint, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(EkyaError, match=r"broken\.pt.*unreadable"):
        GoldenModelLabeler(broken)
    with pytest.raises(EkyaError, match=r"missing\.pt: no such file.*flows\.train_golden"):
        GoldenModelLabeler(tmp_path / "missing.pt")
    assert [path.name for path in tmp_path.iterdir()] == ["broken.pt"]


def test_edge_model_checkpoint_is_not_a_golden_one(tmp_path):
    edge = save_checkpoint(build_model("shufflenet_v2_x0_5"), tmp_path / "edge.pt")
    with pytest.raises(EkyaError, match=r"edge\.pt: not an Ekya golden-model checkpoint"):
        load_golden_checkpoint(edge)


def test_wrong_architecture_names_the_file(checkpoint, tmp_path):
    with pytest.raises(EkyaError, match=r"golden\.pt: architecture mismatch, it holds a 'resnet18' but 'resnet50' is expected"):
        GoldenModelLabeler(checkpoint, architecture="resnet50")
    payload = torch.load(checkpoint, weights_only=True)
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


def test_failed_save_leaves_no_file_behind(trained, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(labelers.torch, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_golden_checkpoint(trained.model, tmp_path / "golden.pt")
    assert list(tmp_path.iterdir()) == []


def test_unknown_golden_architecture_lists_valid_ones():
    with pytest.raises(EkyaError, match="unknown golden model 'vgg16'; valid golden models: " + ", ".join(GOLDEN_MODEL_NAMES)):
        GoldenModel("vgg16")
    assert "resnet50" in GOLDEN_MODEL_NAMES and "resnext101_32x8d" in GOLDEN_MODEL_NAMES


def test_golden_model_reads_crops_of_any_size():
    model = GoldenModel("resnet18").eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 6)
        assert model(torch.rand(1, 3, 20, 24)).shape == (1, 6)


def test_build_labeler_registry(checkpoint):
    assert LABELER_NAMES == ("ground_truth", "golden")
    assert isinstance(build_labeler("ground_truth"), GroundTruthLabeler)
    assert isinstance(build_labeler("golden", checkpoint=str(checkpoint), batch_size=32), GoldenModelLabeler)
    with pytest.raises(EkyaError, match="unknown labeler 'human'; valid labelers: ground_truth, golden"):
        build_labeler("human")
    with pytest.raises(EkyaError, match=r"labeler 'golden': unknown parameters \['chekpoint'\]; valid parameters: checkpoint, device, batch_size, architecture"):
        build_labeler("golden", chekpoint=str(checkpoint))
    with pytest.raises(EkyaError, match="labeler 'golden': missing a required argument: 'checkpoint'"):
        build_labeler("golden")
    with pytest.raises(EkyaError, match="batch_size must be an int >= 1, got 0"):
        build_labeler("golden", checkpoint=str(checkpoint), batch_size=0)


def test_labeler_from_config_separates_measure_against(checkpoint):
    labeler, measure_against = labeler_from_config({"name": "golden", "checkpoint": str(checkpoint), "architecture": "resnet18", "measure_against": "golden"})
    assert isinstance(labeler, GoldenModelLabeler) and measure_against == "golden"
    assert labeler_from_config({"name": "ground_truth"})[1] == "ground_truth"
    with pytest.raises(EkyaError, match="unknown measure_against 'human'; valid: ground_truth, golden"):
        labeler_from_config({"name": "ground_truth", "measure_against": "human"})
    with pytest.raises(EkyaError, match="labeler config needs a name"):
        labeler_from_config({"checkpoint": str(checkpoint)})


def test_reference_labels_and_agreement(source):
    window = source.window("cam0", 0)
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


def test_split_crops_is_seeded_and_disjoint(source):
    windows = [source.window("cam0", 0), source.window("cam0", 1)]
    train, validation = split_crops(windows, 0.25, seed=5)
    assert (len(train), len(validation)) == (90, 30)
    again, _ = split_crops(windows, 0.25, seed=5)
    np.testing.assert_array_equal(train.images, again.images)
    all_images = np.concatenate([w.images for w in windows]).reshape(120, -1)
    rows = {row.tobytes() for row in all_images}
    assert {r.tobytes() for r in train.images.reshape(90, -1)} | {r.tobytes() for r in validation.images.reshape(30, -1)} == rows
    assert split_crops(windows, 0.0, seed=5)[1] is None
    with pytest.raises(EkyaError, match=r"validation_fraction must be in \[0, 1\), got 1.0"):
        split_crops(windows, 1.0, seed=5)
