"""Inference configurations (the paper's lambda) and the inference space loaded from conf/."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping

from ekya.errors import EkyaError
from ekya.training.config import expand_grid


@dataclass(frozen=True)
class InferenceConfig:
    """How a stream's live inference runs.

    Attributes:
        name: identifier, unique in an inference space.
        sampling_rate: fraction of the stream's frames processed, in (0, 1].
        resolution: side of the square image, pixels, the model sees each crop at (the crop is
            downscaled to it and scaled back up); None = the crop's own resolution.
    """

    name: str
    sampling_rate: float
    resolution: int | None = None

    def __post_init__(self) -> None:
        where = f"inference config {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise EkyaError(f"inference config name must be a non-empty string, got {self.name!r}")
        rate = self.sampling_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise EkyaError(f"{where}: sampling_rate must be in (0, 1], got {rate!r}")
        resolution = self.resolution
        if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1):
            raise EkyaError(f"{where}: resolution must be an int >= 1 pixel or null, got {resolution!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


_FIELDS = tuple(field.name for field in fields(InferenceConfig))


def load_inference_space(entries: Iterable[Mapping[str, Any]]) -> list[InferenceConfig]:
    """The inference configurations of a space spec: explicit entries or cartesian grids, as for retraining.

    Example: ``[{"sampling_rate": [0.5, 1.0], "resolution": [16, 32]}]`` gives c00..c03.
    """
    specs = expand_grid(entries, "inference", _FIELDS)
    configs = []
    for spec in specs:
        if "sampling_rate" not in spec:
            raise EkyaError(f"inference config {spec['name']!r}: missing field sampling_rate")
        configs.append(InferenceConfig(**spec))
    if not configs:
        raise EkyaError("inference space is empty")
    return configs
