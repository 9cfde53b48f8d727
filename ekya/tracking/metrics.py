"""Per-window metrics, named as they appear in MLflow."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ekya.execution.timeline import WindowOutcome


def window_metrics(outcome: WindowOutcome, stream_names: list[str], overhead_gpu_seconds: Mapping[str, float] | None = None) -> dict[str, float]:
    """MLflow metrics of one window.

    ``accuracy/*`` are measured (true) time-averaged accuracies over the window, fractions in
    [0, 1]; ``estimated_accuracy/*`` the scheduler's estimates; ``gpu_seconds/*`` GPU share x
    seconds; ``schedule_seconds`` the wall time of the window's first scheduler call and
    ``schedule_seconds_total`` of all its calls (re-plans included); ``placement/repairs`` (with
    ``executor.placement=per_gpu``) the jobs whose share was changed to fit one GPU each;
    ``cache/adopted_streams`` the streams that switched to a cached model at the window start.
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
        "cache/adopted_streams": float(sum(1 for a in outcome.adopted if a is not None)),
    }
    if outcome.placed:
        metrics["placement/repairs"] = float(outcome.placement_repairs)
    for kind, value in overheads.items():
        metrics[f"gpu_seconds/{kind}"] = float(value)
    for name, accuracy, estimate in zip(stream_names, outcome.accuracy, outcome.estimated_accuracy):
        metrics[f"accuracy/{name}"] = accuracy
        metrics[f"estimated_accuracy/{name}"] = estimate
    return metrics


def estimation_metrics(records: Mapping[str, Mapping]) -> dict[str, float]:
    """MLflow metrics of one window's estimation records (the local executor's, by stream), in accuracy points.

    ``estimation/serving_error_points``: mean over streams of the serving model's estimated minus reached
    accuracy; ``estimation/retrained_error_points``: the same for the retrained models that took over (absent
    when none did); ``estimation/audit_abs_error_median_points`` (``profiler.audit``): median absolute error of
    every configuration's estimate against fully retraining it.
    """
    serving = [r["serving_estimated_accuracy"] - r["serving_realized_accuracy"] for r in records.values()
               if "serving_realized_accuracy" in r]
    retrained = [r["estimated_accuracy"][r["configs"].index(r["retrained"])] - r["retrained_realized_accuracy"]
                 for r in records.values() if r.get("retrained") is not None and "retrained_realized_accuracy" in r]
    audited = [estimate - truth for r in records.values() if "true_accuracy" in r
               for estimate, truth in zip(r["estimated_accuracy"], r["true_accuracy"])]
    metrics = {}
    if serving:
        metrics["estimation/serving_error_points"] = 100 * float(np.mean(serving))
    if retrained:
        metrics["estimation/retrained_error_points"] = 100 * float(np.mean(retrained))
    if audited:
        metrics["estimation/audit_abs_error_median_points"] = 100 * float(np.median(np.abs(audited)))
    return metrics


def reuse_metrics(record: Mapping) -> dict[str, float]:
    """MLflow metrics of one window's record on drift and the model cache.

    ``drift/mean_points``: mean over streams whose drift is known of how far (accuracy points) the serving model's
    estimate fell since it began serving (:mod:`ekya.execution.drift`); ``cache/models`` the models cached after the
    window and ``cache/skipped_checkpoints`` those dropped because their checkpoint did not load (with ``cache.size > 0``).
    """
    drifts = [entry["drift_points"] for entry in record.get("streams", {}).values() if entry.get("drift_points") is not None]
    metrics = {"drift/mean_points": float(np.mean(drifts))} if drifts else {}
    cache = record.get("cache")
    if cache:
        metrics["cache/models"] = float(cache["models"])
        metrics["cache/skipped_checkpoints"] = float(cache["skipped_checkpoints"])
    return metrics


def reuse_note(outcome: WindowOutcome) -> str:
    """What a window's printed line says of cached models switched to ('' when none)."""
    adopted = sum(1 for a in outcome.adopted if a is not None)
    return f"cached {adopted}/{len(outcome.adopted)}  " if adopted else ""
