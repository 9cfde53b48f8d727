"""Retraining configurations (the paper's gamma), the retraining space (Gamma) loaded from conf/, and the
edge model's settings: plain values, importable without torch (config checks build them)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Mapping

from ekya.errors import EkyaError


@dataclass(frozen=True)
class ModelSettings:
    """The edge model and its base-model training (:func:`ekya.training.base_model.base_model`).

    Attributes:
        name: architecture (see :data:`ekya.models.names.MODEL_NAMES`).
        hidden_size: neurons of the head's hidden layer.
        base_epochs, base_batch_size, base_learning_rate: base-model training on the hold-out cameras.
    """

    name: str
    hidden_size: int
    base_epochs: int
    base_batch_size: int
    base_learning_rate: float


@dataclass(frozen=True)
class RetrainConfig:
    """How to retrain one edge model on a window's labeled crops.

    Attributes:
        name: identifier, unique in a retraining space.
        train_layers: number of layer groups trained, counted from the head backwards
            (1 = head only), or "all".
        hidden_size: neurons of the head's hidden layer (0 = a single linear layer); a size
            other than the model's replaces the head with a fresh one.
        subsample: fraction of the window's crops used, in (0, 1].
        epochs: passes over the subsample, >= 1.
        batch_size: crops per optimizer step, >= 1.
        learning_rate: SGD step size, > 0.
    """

    name: str
    train_layers: int | str
    hidden_size: int
    subsample: float
    epochs: int
    batch_size: int = 32
    learning_rate: float = 0.01

    def __post_init__(self) -> None:
        where = f"retrain config {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise EkyaError(f"retrain config name must be a non-empty string, got {self.name!r}")
        if self.train_layers != "all" and not (_is_int(self.train_layers) and self.train_layers >= 1):
            raise EkyaError(f"{where}: train_layers must be an int >= 1 or 'all', got {self.train_layers!r}")
        if not (_is_int(self.hidden_size) and self.hidden_size >= 0):
            raise EkyaError(f"{where}: hidden_size must be an int >= 0, got {self.hidden_size!r}")
        if not (_is_number(self.subsample) and 0 < self.subsample <= 1):
            raise EkyaError(f"{where}: subsample must be in (0, 1], got {self.subsample!r}")
        if not (_is_int(self.epochs) and self.epochs >= 1):
            raise EkyaError(f"{where}: epochs must be an int >= 1, got {self.epochs!r}")
        if not (_is_int(self.batch_size) and self.batch_size >= 1):
            raise EkyaError(f"{where}: batch_size must be an int >= 1, got {self.batch_size!r}")
        if not (_is_number(self.learning_rate) and self.learning_rate > 0):
            raise EkyaError(f"{where}: learning_rate must be > 0, got {self.learning_rate!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (for logging and cache keys)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def profile_key(self) -> tuple:
        """Configurations with equal keys share one micro-profiling run: all but the data share and epochs,
        which profiling does not use."""
        return (self.train_layers, self.hidden_size, self.batch_size, self.learning_rate)

    def probe(self, epochs: int) -> "RetrainConfig":
        """The micro-profiling run standing for this configuration: every crop of the sample, for ``epochs`` epochs."""
        return replace(self, subsample=1.0, epochs=epochs)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_FIELDS = tuple(field.name for field in fields(RetrainConfig))


def expand_grid(entries: Iterable[Mapping[str, Any]], kind: str, field_names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Expand a space spec into one dict per configuration, each with a unique "name".

    Each entry is a mapping of field -> value; a list value is a grid axis, so an entry with
    lists stands for the cartesian product of its axes (first key varies slowest). An entry
    without lists may carry a ``name``; unnamed configurations are called ``c00``, ``c01``, ...
    by position in the expanded space.
    """
    expanded: list[dict[str, Any]] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise EkyaError(f"{kind} space entry {position} must be a mapping of field -> value(s), got {entry!r}")
        unknown = sorted(set(entry) - set(field_names))
        if unknown:
            raise EkyaError(f"{kind} space entry {position}: unknown fields {unknown}; valid fields: {', '.join(field_names)}")
        axes = {key: list(value) if isinstance(value, (list, tuple)) else [value] for key, value in entry.items()}
        if "name" in entry and any(len(values) > 1 for values in axes.values()):
            raise EkyaError(f"{kind} space entry {position}: a grid entry (with lists) cannot carry a name")
        for combination in itertools.product(*axes.values()):
            expanded.append(dict(zip(axes, combination)))
    width = max(2, len(str(max(len(expanded) - 1, 0))))
    for index, spec in enumerate(expanded):
        spec.setdefault("name", f"c{index:0{width}d}")
    names = [spec["name"] for spec in expanded]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise EkyaError(f"{kind} space: duplicate configuration names {duplicates}")
    return expanded


def load_retrain_space(entries: Iterable[Mapping[str, Any]]) -> list[RetrainConfig]:
    """The retraining configurations of a space spec (see :func:`expand_grid`), e.g. from conf/retrain_space/.

    Example: ``[{"train_layers": [1, "all"], "hidden_size": 64, "subsample": [0.5, 1.0], "epochs": 2}]``
    gives four configurations c00..c03.
    """
    specs = expand_grid(entries, "retrain", _FIELDS)
    configs = []
    for spec in specs:
        missing = [name for name in ("train_layers", "hidden_size", "subsample", "epochs") if name not in spec]
        if missing:
            raise EkyaError(f"retrain config {spec['name']!r}: missing fields {missing}")
        configs.append(RetrainConfig(**spec))
    if not configs:
        raise EkyaError("retrain space is empty")
    return configs
