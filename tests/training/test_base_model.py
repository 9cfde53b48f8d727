"""The cached base model: trained once then loaded, retrained for other data, settings or a corrupt entry."""

import pytest
import torch

from ekya.errors import EkyaError
from ekya.training import base_model as base_model_module
from ekya.training.base_model import base_model
from tests.helpers import random_window


SETTINGS = dict(model_name="shufflenet_v2_x0_5", hidden_size=8, epochs=1, seed=0)


def _outputs(model):
    with torch.no_grad():
        return model(torch.linspace(0, 1, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16))


def test_trained_once_then_loaded_from_cache(tmp_path, monkeypatch):
    windows = [random_window(0), random_window(1)]
    first = base_model(windows, cache_dir=tmp_path, **SETTINGS)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("base-shufflenet_v2_x0_5-")

    def no_training(*args, **kwargs):
        raise AssertionError("the cached base model should have been loaded")

    monkeypatch.setattr(base_model_module, "retrain", no_training)
    again = base_model(windows, cache_dir=tmp_path, **SETTINGS)
    assert torch.equal(_outputs(first), _outputs(again))
    assert not again.training


def test_other_data_or_settings_train_another_model(tmp_path):
    base_model([random_window(0)], cache_dir=tmp_path, **SETTINGS)
    base_model([random_window(1)], cache_dir=tmp_path, **SETTINGS)
    base_model([random_window(0)], cache_dir=tmp_path, **{**SETTINGS, "seed": 1})
    assert len(list(tmp_path.iterdir())) == 3


def test_same_settings_give_the_same_model_without_cache(tmp_path):
    first = base_model([random_window(0)], cache_dir=tmp_path / "a", **SETTINGS)
    second = base_model([random_window(0)], cache_dir=tmp_path / "b", **SETTINGS)
    assert torch.equal(_outputs(first), _outputs(second))


def test_corrupt_cache_entry_is_retrained(tmp_path):
    trained = base_model([random_window(0)], cache_dir=tmp_path, **SETTINGS)
    (entry,) = tmp_path.iterdir()
    entry.write_bytes(b"garbage")
    again = base_model([random_window(0)], cache_dir=tmp_path, **SETTINGS)
    assert torch.equal(_outputs(trained), _outputs(again))
    assert [p.name for p in tmp_path.iterdir()] == [entry.name] and entry.stat().st_size > 1000


def test_no_holdout_windows_is_an_error(tmp_path):
    with pytest.raises(EkyaError, match="no hold-out windows"):
        base_model([], cache_dir=tmp_path, **SETTINGS)
