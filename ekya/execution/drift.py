"""The drift detector the window loop runs for every stream (whatever the scheduler).

A stream's *reference* is the estimated accuracy its serving model had when it started serving: a
retrained model's estimate from the window it was trained in, a cached model's estimate from the
window it was switched to; a model that was neither (the base model, never fit to the stream's own
data) has none. Its *drift* in window k is the reference minus the serving model's estimated
accuracy at window k's start (:attr:`~ekya.scheduling.problem.StreamProblem.serving_accuracy`), in
accuracy points: how far the data has moved away from what the model was fit to; unknown (None)
without a reference, so a stream is always free to retrain until it has been retrained once. Both
live in each window's record (``streams.<name>.drift_points``, ``drift_reference``), so a resumed
run picks them up from its checkpoint's last window.

:class:`~ekya.scheduling.drift.RetrainOnDrift` (``drift.enabled``) lets only drifted streams retrain.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ekya.scheduling.problem import Problem, StreamProblem

if TYPE_CHECKING:
    from ekya.execution.loop import WindowResult
    from ekya.execution.timeline import WindowOutcome


def drift_references(previous: WindowResult | None, streams: list[str]) -> dict[str, float | None]:
    """Each stream's reference accuracy (fraction) from the previous window's record; None without one."""
    records = previous.record.get("streams", {}) if previous is not None else {}
    return {stream: records.get(stream, {}).get("drift_reference") for stream in streams}


def with_drift(stream: StreamProblem, reference: float | None) -> StreamProblem:
    """``stream`` with its drift (accuracy points) against ``reference``; None when there is no reference."""
    drift = None if reference is None else 100.0 * (float(reference) - stream.serving_accuracy)
    return replace(stream, drift_points=drift)


def next_reference(stream: StreamProblem, retrained: str | None, adopted: str | None, reference: float | None) -> float | None:
    """The reference for the next window: the estimate of the model that serves then (see the module docstring)."""
    if retrained is not None:
        return float(stream.retrain_accuracy[stream.retrain_names.index(retrained)])
    if adopted is not None:
        return float(stream.cached_accuracy[stream.cached_names.index(adopted)])
    return reference


def record_drift(record: dict[str, Any], problem: Problem, outcome: WindowOutcome, references: dict[str, float | None]) -> None:
    """Write each stream's drift this window and its reference for the next into the window's ``record``."""
    for s, stream in enumerate(problem.streams):
        entry = record["streams"][stream.name]
        entry["drift_points"] = stream.drift_points
        entry["drift_reference"] = next_reference(stream, outcome.retrained[s], outcome.adopted[s], references[stream.name])
