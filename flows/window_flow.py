"""The window loop as a Prefect flow, logged as one MLflow run: what :mod:`flows.window_loop` runs once a config is checked.

The loop itself is :func:`ekya.execution.loop.run_windows`; here its steps (profile, schedule,
retrain, play) run as Prefect tasks, streams in parallel. This module imports Prefect, MLflow and
(through the executors' steps) torch, so the entry point imports it only after
:func:`flows.config.check_run` has passed.
"""

from __future__ import annotations

import subprocess
from typing import Any, Callable

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.execution.loop import MapSteps, WindowResult, run_windows, serial_map
from ekya.tracking.mlflow_logging import RunLogger
from ekya.tracking.window_log import WindowLog
from flows import interrupts
from flows.config import build_executor, build_resume, build_scheduler, checkpoints_of, run_params
from flows.runners import gpu_share


def prefect_map(step: Callable[..., Any], arguments: list[tuple], gpu_shares: list[float] | None = None) -> list[Any]:
    """``step`` over every argument tuple as Prefect tasks (run by the flow's task runner), results in order;
    on Ray each call asks for its ``gpu_shares`` entry as fractional GPUs."""
    as_task = task(step, name=step.__name__, cache_policy=NO_CACHE)
    futures = []
    for k, args in enumerate(arguments):
        with gpu_share(gpu_shares[k] if gpu_shares else None):
            futures.append(as_task.submit(*args))
    return [future.result() for future in futures]


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class FinishedWindows:
    """Logs each finished window whole: an interrupt that arrives while it is logged waits for the end."""

    def __init__(self, log: WindowLog) -> None:
        self.log = log

    def window_done(self, result: WindowResult) -> None:
        with interrupts.deferred():
            self.log.window_done(result)

    def windows_resumed(self, results: list[WindowResult]) -> None:
        with interrupts.deferred():
            self.log.windows_resumed(results)


def run_tags(config: dict[str, Any]) -> dict[str, str]:
    """Tags of a run: dataset, scheduler, executor and the code's git commit."""
    return {
        "dataset": str(config.get("dataset", {}).get("name", "trace")),
        "scheduler": config["scheduler"]["name"],
        "executor": config["executor"]["name"],
        "git_sha": git_sha(),
    }


def logged_run(config: dict[str, Any], sweep_dir: str | None = None, map_steps: MapSteps = serial_map,
               verbose: bool = True, plots: bool = True) -> dict[str, float]:
    """Run every window of one validated config and log one MLflow run; returns the summary metrics.

    Args:
        config: the resolved config (plain containers).
        sweep_dir: the sweep folder when the run is a point of a sweep (child of its parent run).
        map_steps: how the loop's steps run: plain calls (default) or Prefect tasks (:func:`prefect_map`, inside a flow).
        verbose: print a line per window and the summary line.
        plots: log the run's plots (allocation and accuracy over time, class mix); about 1 s per run.
    """
    from flows.window_loop import finished_already

    executor = build_executor(config)
    resumption = build_resume(config)
    if resumption.finished:
        return finished_already(resumption)
    tags = run_tags(config)
    run_name = f"{config['scheduler']['name']} gpus={executor.settings.gpus:g} streams={len(executor.stream_names)}"
    with RunLogger(config["tracking"]["uri"], config["tracking"]["experiment"], run_name, run_params(config), tags, sweep_dir,
                   resumption.run_id) as logger:
        checkpoints = checkpoints_of(config, logger.run_id)
        log = WindowLog(logger, executor, verbose)
        map_steps(executor.prepare, [()])
        scheduler = build_scheduler(config, executor)
        log.start(scheduler)
        run_windows(executor, scheduler, FinishedWindows(log), map_steps, checkpoints)
        summary = log.finish(getattr(getattr(executor, "source", None), "skipped", None), plots)
    checkpoints.clear()  # FINISHED: nothing left to resume
    return summary


@flow(name="window-loop")
def window_loop(config: dict[str, Any], sweep_dir: str | None = None) -> dict[str, float]:
    """Run all windows of one configuration; returns the summary metrics."""
    interrupts.install()  # again: Prefect's flow engine swaps SIGTERM's handler
    return logged_run(config, sweep_dir, prefect_map)
