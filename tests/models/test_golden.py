"""The golden model: architectures, crops of any size, checkpoint save and load errors."""

import pytest
import torch

from ekya.errors import EkyaError
from ekya.models import golden
from ekya.models.checkpoints import save_checkpoint
from ekya.models.factory import build_model
from ekya.models.golden import GOLDEN_MODEL_NAMES, GoldenModel, load_golden_checkpoint, save_golden_checkpoint


def test_edge_model_checkpoint_is_not_a_golden_one(tmp_path):
    edge = save_checkpoint(build_model("shufflenet_v2_x0_5"), tmp_path / "edge.pt")
    with pytest.raises(EkyaError, match=r"edge\.pt: not an Ekya golden-model checkpoint"):
        load_golden_checkpoint(edge)


def test_failed_save_leaves_no_file_behind(golden_trained, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(golden.torch, "save", fail)
    with pytest.raises(OSError, match="disk full"):
        save_golden_checkpoint(golden_trained.model, tmp_path / "golden.pt")
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
