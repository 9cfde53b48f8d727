import pytest
import torch

from ekya.errors import EkyaError
from ekya.models import checkpoints
from ekya.models.checkpoints import checkpoint_config, load_checkpoint, save_checkpoint
from ekya.models.factory import build_model


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model("shufflenet_v2_x0_5", hidden_size=16).eval()
    path = save_checkpoint(model, tmp_path / "sub" / "model.pt")
    loaded = load_checkpoint(path)
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(images), loaded(images))
    assert checkpoint_config(path) == {"name": "shufflenet_v2_x0_5", "num_classes": 6, "hidden_size": 16}
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["model.pt"]


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(build_model("shufflenet_v2_x0_5"), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EkyaError, match=r"model\.pt.*unreadable"):
        load_checkpoint(path)


def test_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(EkyaError, match=r"weights\.pt.*not an Ekya edge-model checkpoint"):
        load_checkpoint(path)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(EkyaError, match="notes.pt"):
        load_checkpoint(text)
    with pytest.raises(EkyaError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_mismatched_architecture(tmp_path):
    path = save_checkpoint(build_model("shufflenet_v2_x0_5", hidden_size=16), tmp_path / "model.pt")
    with pytest.raises(EkyaError, match="hidden_size is 16 but 32 is expected"):
        load_checkpoint(path, expected={"hidden_size": 32})
    with pytest.raises(EkyaError, match="name is 'shufflenet_v2_x0_5' but 'resnet18'"):
        load_checkpoint(path, expected={"name": "resnet18"})


def test_weights_that_do_not_fit_the_stored_architecture(tmp_path):
    path = tmp_path / "model.pt"
    payload = {
        "format": checkpoints.CHECKPOINT_FORMAT,
        "config": {"name": "resnet18", "num_classes": 6, "hidden_size": 64},
        "state_dict": build_model("shufflenet_v2_x0_5").state_dict(),
    }
    torch.save(payload, path)
    with pytest.raises(EkyaError, match=r"model\.pt: weights do not fit a resnet18"):
        load_checkpoint(path)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint(build_model("shufflenet_v2_x0_5", hidden_size=8), path)
    before = path.read_bytes()

    def crash(payload, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(build_model("shufflenet_v2_x0_5", hidden_size=16), path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert path.read_bytes() == before
