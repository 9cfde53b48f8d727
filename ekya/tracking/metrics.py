"""Per-window metrics, named as they appear in MLflow."""

from __future__ import annotations

from typing import Mapping

from ekya.execution.timeline import WindowOutcome


def window_metrics(outcome: WindowOutcome, stream_names: list[str], overhead_gpu_seconds: Mapping[str, float] | None = None) -> dict[str, float]:
    """MLflow metrics of one window.

    ``accuracy/*`` are measured (true) time-averaged accuracies over the window, fractions in
    [0, 1]; ``estimated_accuracy/*`` the scheduler's estimates; ``gpu_seconds/*`` GPU share x
    seconds; ``schedule_seconds`` the wall time of the window's first scheduler call and
    ``schedule_seconds_total`` of all its calls (re-plans included); ``placement/repairs`` (with
    ``executor.placement=per_gpu``) the jobs whose share was changed to fit one GPU each.
    """
    overheads = dict(overhead_gpu_seconds or {})
    metrics = {
        "accuracy/mean": outcome.mean_accuracy,
        "estimated_accuracy/mean": outcome.estimated_mean_accuracy,
        "gpu_seconds/train": outcome.gpu_seconds_train,
        "gpu_seconds/inference": outcome.gpu_seconds_inference,
        "gpu_seconds/overhead": float(sum(overheads.values())),
        "schedule_seconds": outcome.schedule_seconds,
        "schedule_seconds_total": outcome.schedule_seconds_total,
        "retrained_streams": float(sum(1 for r in outcome.retrained if r is not None)),
    }
    if outcome.placed:
        metrics["placement/repairs"] = float(outcome.placement_repairs)
    for kind, value in overheads.items():
        metrics[f"gpu_seconds/{kind}"] = float(value)
    for name, accuracy, estimate in zip(stream_names, outcome.accuracy, outcome.estimated_accuracy):
        metrics[f"accuracy/{name}"] = accuracy
        metrics[f"estimated_accuracy/{name}"] = estimate
    return metrics
