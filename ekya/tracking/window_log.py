"""What a run of the window loop tells MLflow and the console: a line and metrics per window, a summary and plots at the end."""

from __future__ import annotations

from typing import Any, Mapping

from ekya.data.class_mix import plot_class_mix
from ekya.execution.loop import WindowExecutor, WindowResult
from ekya.scheduling.base import Scheduler
from ekya.tracking.metrics import estimation_metrics, reuse_metrics, reuse_note, window_metrics
from ekya.tracking.mlflow_logging import RunLogger
from ekya.tracking.plots import accuracy_figure, allocation_figure


def resolved_params(executor: WindowExecutor) -> dict[str, float]:
    """The G, Δ, aMIN, stream count and T a run really used (``resolved.*`` params)."""
    settings = executor.settings
    return {
        "resolved.gpus": settings.gpus, "resolved.delta": settings.delta, "resolved.min_accuracy": settings.min_accuracy,
        "resolved.streams": len(executor.stream_names), "resolved.window_seconds": settings.window_seconds,
    }


class WindowLog:
    """Logs each window of a run to MLflow and, when ``verbose``, prints a line per window.

    Args:
        logger: the run's MLflow logger.
        executor: the run.
        verbose: print the header, a line per window and the summary.
    """

    def __init__(self, logger: RunLogger, executor: WindowExecutor, verbose: bool = True) -> None:
        self.logger = logger
        self.executor = executor
        self.verbose = verbose
        self.records: list[dict[str, Any]] = []
        self.accuracies: list[float] = []

    def start(self, scheduler: Scheduler) -> None:
        """Log the resolved settings and print what runs."""
        self.logger.log_params(resolved_params(self.executor))
        if self.verbose:
            settings, executor = self.executor.settings, self.executor
            print(
                f"{scheduler.name} on {len(executor.stream_names)} streams x {len(executor.window_indices)} windows of "
                f"{settings.window_seconds:g} s, {settings.gpus:g} GPUs, Δ={settings.delta:g}, aMIN={settings.min_accuracy:g}",
                flush=True,
            )

    def window_done(self, result: WindowResult) -> None:
        self._log_metrics(result)
        self._log_record(result)
        self._keep(result)
        if self.verbose:
            outcome, overheads = result.outcome, result.overheads
            print(
                f"window {result.window:3d}  accuracy {100 * outcome.mean_accuracy:6.2f}%  "
                f"(estimated {100 * outcome.estimated_mean_accuracy:6.2f}%)  retrained {sum(r is not None for r in outcome.retrained)}/{len(self.executor.stream_names)}  "
                f"{reuse_note(outcome)}"
                f"gpu-seconds train {outcome.gpu_seconds_train:7.1f} inference {outcome.gpu_seconds_inference:7.1f} "
                f"overhead {sum(overheads.values()):6.1f}  decision {1000 * outcome.schedule_seconds:6.1f} ms",
                flush=True,
            )

    def windows_resumed(self, results: list[WindowResult]) -> None:
        """The windows a resumed run finished before: kept for the summary and plots, not logged again;
        a window checkpointed but not yet logged (its process died in between) is logged now."""
        metrics, records = self.logger.logged_steps("accuracy/mean"), self.logger.logged_artifacts("windows")
        for result in results:
            if result.window not in metrics:
                self._log_metrics(result)
            if f"windows/{result.window}" not in records:
                self._log_record(result)
            self._keep(result)
        if self.verbose:
            print(f"resuming run {self.logger.run_id} after window {results[-1].window} "
                  f"({len(results)} finished window(s) restored from its checkpoint)", flush=True)

    def _log_metrics(self, result: WindowResult) -> None:
        metrics = window_metrics(result.outcome, self.executor.stream_names, result.overheads)
        metrics.update(estimation_metrics(result.record.get("estimation") or {}))
        metrics.update(reuse_metrics(result.record))
        self.logger.log_metrics(metrics, step=result.window)

    def _log_record(self, result: WindowResult) -> None:
        self.logger.log_json(f"windows/{result.window}/schedule.json", result.record)

    def _keep(self, result: WindowResult) -> None:
        self.records.append(result.record)
        self.accuracies.append(result.outcome.mean_accuracy)

    def finish(self, skipped: Mapping[str, int] | None = None, plots: bool = True) -> dict[str, float]:
        """Log the summary (and the plots); returns the summary metrics.

        Args:
            skipped: counts of input rows the dataset skipped, by kind (``data/skipped_<kind>``).
            plots: log allocation and accuracy over time, and the class mix of real-data runs (~1 s).
        """
        summary = {"summary/accuracy_mean": sum(self.accuracies) / len(self.accuracies)}
        summary.update({f"data/skipped_{kind}": float(count) for kind, count in (skipped or {}).items()})
        self.logger.log_metrics(summary)
        if plots:
            settings = self.executor.settings
            self.logger.log_figure("plots/allocation.png", allocation_figure(self.records, settings.window_seconds, settings.gpus))
            self.logger.log_figure("plots/accuracy.png", accuracy_figure(self.records, settings.window_seconds))
            source = getattr(self.executor, "source", None)
            if source is not None:
                self.logger.log_figure("plots/class_mix.png", plot_class_mix(source, self.executor.stream_names))
        if self.verbose:
            print(f"mean accuracy over windows and streams: {100 * summary['summary/accuracy_mean']:.2f}%  (MLflow run {self.logger.run_id})")
        return summary

