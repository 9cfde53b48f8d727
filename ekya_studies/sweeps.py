"""The points of a study: the Hydra multiruns of ``conf/experiment/<study>.yaml``, expanded without Hydra.

A study is one or more sweeps of ``flows.window_loop`` into one MLflow experiment: the yaml's own
sweep (its ``hydra.sweeper.params``), then extra sweeps given as command-line overrides, e.g. the
Uniform variants of its header (``scheduler=uniform scheduler.retrain_config=high,low``). Each
sweep expands like Hydra's basic sweeper: the yaml's parameters first, then the overrides; an
override of a key the yaml sweeps replaces its values in place; the cartesian product varies the
last key fastest. :func:`plan_study` does this for every sweep of a study and drops repeated
points, so a reproduction (:mod:`ekya_studies.reproduce`) can run a whole study in one process (one
MLflow parent run).
:func:`trace_is_current` tells whether the trace the studies replay must be profiled again.

Values arrive already split (``{"gpus": ["1", "2"]}``): :mod:`ekya_studies.plan` parses override
strings with Hydra's own parser, so quoting and escapes mean what they mean on the command line.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ekya.data.cache import cache_key, write_text_atomically
from ekya.errors import EkyaError

#: One sweep: parameter key -> its values (a single value for a plain override), in override order.
SweepParams = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class StudyPoint:
    """One run of a study.

    Attributes:
        study: the study (``conf/experiment/<study>.yaml``).
        overrides: ``key=value`` overrides of this point, in sweep order (composed after
            ``experiment=<study>``).
    """

    study: str
    overrides: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join(self.overrides)


@dataclass(frozen=True)
class StudyPlan:
    """Every point of one study, in run order (its sweeps one after another)."""

    study: str
    points: tuple[StudyPoint, ...]


def merge_sweep(own: SweepParams, overrides: SweepParams) -> dict[str, list[str]]:
    """The parameters of a sweep run as ``-m experiment=<study> <overrides>``.

    Like Hydra's basic sweeper: the yaml's own parameters first, then the overrides; an override of
    a key already swept replaces its values and keeps its position.
    """
    merged: dict[str, list[str]] = {key: list(values) for key, values in own.items()}
    for key, values in overrides.items():
        merged[key] = list(values)
    for key, values in merged.items():
        if not values:
            raise EkyaError(f"sweep parameter {key!r} has no values")
    return merged


def expand_sweep(params: SweepParams) -> list[tuple[str, ...]]:
    """Every point of a sweep as ``key=value`` overrides; the last key varies fastest."""
    keys = list(params)
    return [tuple(f"{key}={value}" for key, value in zip(keys, values)) for values in itertools.product(*(params[k] for k in keys))]


def plan_study(study: str, own: SweepParams, extra_sweeps: Iterable[SweepParams] = (), changes: SweepParams | None = None) -> StudyPlan:
    """The points of ``study``: its own sweep, then each extra sweep; a repeated point runs once.

    Args:
        study: the study's name.
        own: the yaml's ``hydra.sweeper.params``, split into values.
        extra_sweeps: further sweeps, each as overrides on top of the own sweep (see :func:`merge_sweep`).
        changes: overrides of the own sweep itself (e.g. other values of a swept knob); the extra
            sweeps inherit them.
    """
    own = merge_sweep(own, changes or {})
    points: dict[tuple[str, ...], None] = {}
    for overrides in [{}, *extra_sweeps]:
        for point in expand_sweep(merge_sweep(own, overrides)):
            points.setdefault(point, None)
    return StudyPlan(study, tuple(StudyPoint(study, point) for point in points))


def check_studies(available: Iterable[str], chosen: Iterable[str], skipped: Iterable[str]) -> None:
    """Every available study is either chosen or skipped, and both name available studies only.

    Args:
        available: the studies that exist (``conf/experiment/*.yaml`` stems).
        chosen: the studies to run.
        skipped: the studies left out on purpose.

    Raises:
        EkyaError: an unknown name, or a study neither chosen nor skipped (so a new study is
            never silently left out of a reproduction).
    """
    available, chosen, skipped = sorted(set(available)), list(chosen), list(skipped)
    for name in [*chosen, *skipped]:
        if name not in available:
            raise EkyaError(f"unknown study {name!r}; valid (conf/experiment/*.yaml): {', '.join(available)}")
    both = sorted(set(chosen) & set(skipped))
    if both:
        raise EkyaError(f"studies both run and skipped: {', '.join(both)}")
    missing = [name for name in available if name not in chosen and name not in skipped]
    if missing:
        raise EkyaError(
            f"studies neither run nor skipped: {', '.join(missing)}; list each under `studies` (to run it) or `skip_studies`"
        )


#: File in a trace folder holding the key of the settings it was profiled with (see :func:`trace_is_current`).
TRACE_STAMP = "reproduce.json"
_TRACE_FILES = ("trace.yaml", "retrain.csv", "inference.csv")


def trace_is_current(folder: str | os.PathLike, settings: Mapping[str, Any]) -> bool:
    """Whether ``folder`` holds a complete trace profiled with exactly ``settings`` (JSON-able).

    True only when the trace files exist and :data:`TRACE_STAMP` records the key of ``settings``;
    a trace written by other settings, or by hand, is profiled again.
    """
    folder = Path(folder)
    stamp = folder / TRACE_STAMP
    if not stamp.is_file() or not all((folder / name).is_file() for name in _TRACE_FILES):
        return False
    try:
        return json.loads(stamp.read_text()).get("key") == cache_key(dict(settings))
    except (ValueError, AttributeError):
        return False


def stamp_trace(folder: str | os.PathLike, settings: Mapping[str, Any]) -> Path:
    """Record that the trace in ``folder`` was profiled with ``settings`` (atomically)."""
    payload = {"key": cache_key(dict(settings)), "settings": dict(settings)}
    return write_text_atomically(Path(folder) / TRACE_STAMP, json.dumps(payload, indent=2, sort_keys=True, default=str))
