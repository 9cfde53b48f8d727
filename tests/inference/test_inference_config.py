from pathlib import Path

import pytest
import yaml

from ekya.errors import EkyaError
from ekya.inference.config import InferenceConfig, load_inference_space


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sampling_rate": 0}, r"'x': sampling_rate must be in \(0, 1\], got 0"),
        ({"sampling_rate": 1.2}, "sampling_rate"),
        ({"sampling_rate": True}, "sampling_rate"),
        ({"resolution": 0}, "'x': resolution must be an int >= 1 pixel or null, got 0"),
        ({"resolution": 16.5}, "resolution"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_values_are_named(changes, message):
    with pytest.raises(EkyaError, match=message):
        InferenceConfig(**{"name": "x", "sampling_rate": 0.5, "resolution": 16, **changes})


def test_space_grid_and_explicit_entries():
    space = load_inference_space([
        {"sampling_rate": [1.0, 0.5], "resolution": [32, 16]},
        {"name": "native", "sampling_rate": 1.0},
    ])
    assert [(c.name, c.sampling_rate, c.resolution) for c in space] == [
        ("c00", 1.0, 32), ("c01", 1.0, 16), ("c02", 0.5, 32), ("c03", 0.5, 16), ("native", 1.0, None)]
    with pytest.raises(EkyaError, match=r"unknown fields \['fps'\]"):
        load_inference_space([{"sampling_rate": 1.0, "fps": 30}])
    with pytest.raises(EkyaError, match="missing field sampling_rate"):
        load_inference_space([{"resolution": 16}])


def test_default_space_loads():
    spec = yaml.safe_load((Path(__file__).parents[2] / "conf" / "inference_space" / "default.yaml").read_text())
    space = load_inference_space(spec["configs"])
    assert 6 <= len(space) <= 8
    assert len({c.sampling_rate for c in space}) >= 2 and len({c.resolution for c in space}) >= 2
