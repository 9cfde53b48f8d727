"""Entry point: run every retraining window as Prefect tasks and log it to MLflow.

    python -m flows.window_loop                                   # real learning on the built-in data
    python -m flows.window_loop executor=simulated executor.trace=DIR scheduler=thief gpus=3
    python -m flows.window_loop experiment=paper_example scheduler=uniform
    python -m flows.window_loop -m scheduler=thief,uniform gpus=1,2,4
    python -m flows.window_loop ... resume=true                  # continue the newest unfinished run of this config

The window loop itself is :func:`ekya.execution.loop.run_windows`; here its steps (profile,
schedule, retrain, play) run as Prefect tasks, streams in parallel. Every finished window is
checkpointed under ``${paths.cache_dir}/resume/<run id>``, so that ``resume=true`` (or
``resume=<run id>``) reopens a FAILED or KILLED run and plays on from its next window.
"""

from __future__ import annotations

import subprocess
import sys
import traceback
from typing import Any, Callable

import hydra
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ekya.execution.loop import MapSteps, WindowResult, run_windows, serial_map
from ekya.errors import EkyaError
from ekya.tracking.mlflow_logging import RunLogger, finish_sweep, record_failed_run
from ekya.tracking.resume import Resumption
from ekya.tracking.window_log import WindowLog
from flows import interrupts
from flows.callbacks import swept_part, sweep_id
from flows.config import build_executor, build_resume, build_scheduler, check_overrides, check_run, checkpoints_of, run_params
from flows.console import set_log_level
from flows.prefect_server import start_temporary_server
from flows.errors import exit_on_bad_input, refuse_unknown_choices
from flows.runners import build_task_runner, gpu_share


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


def finished_already(resumption: Resumption, point: str | None = None) -> dict[str, float]:
    """``resume=true`` when the newest run of the config FINISHED: one line, and that run's summary metrics."""
    print(f"skipped: {point + ': ' if point else ''}run {resumption.run_id} of this config FINISHED already (resume=true)", flush=True)
    return resumption.summary


@flow(name="window-loop")
def window_loop(config: dict[str, Any], sweep_dir: str | None = None) -> dict[str, float]:
    """Run all windows of one configuration; returns the summary metrics."""
    interrupts.install()  # again: Prefect's flow engine swaps SIGTERM's handler
    return logged_run(config, sweep_dir, prefect_map)


def run_config(config: dict[str, Any], sweep_dir: str | None = None, point: str | None = None) -> dict[str, float]:
    """Validate ``config``, then run its flow with the executor's task runner and torch threads (``point``: the
    sweep's point, for the line of a point skipped by ``resume=true``)."""
    check_run(config)  # bad input fails before Prefect or MLflow start
    resumption = build_resume(config)
    if resumption.finished:
        return finished_already(resumption, point)
    set_log_level(config["log_level"])
    if "torch_threads" in config["executor"]:
        import torch

        torch.set_num_threads(int(config["executor"]["torch_threads"]))
    start_temporary_server()
    runner = build_task_runner(config)  # threads, or Ray (started or joined here; refused in one line if it does not answer)
    return window_loop.with_options(task_runner=runner)(config, sweep_dir)


def run_point(config: dict[str, Any], overrides: list[str], sweep_dir: str) -> float:
    """One point of a multirun. A point that fails ends the sweep, its parent run closed FAILED;
    with ``sweep.continue_on_error`` it is recorded (a FAILED child, one ``error:`` line) and the sweep goes on."""
    keep_going = bool(config["sweep"]["continue_on_error"])
    interrupts.current_sweep = (config["tracking"]["uri"], config["tracking"]["experiment"], sweep_dir)
    point = swept_part(overrides)
    try:
        check_run(config, overrides)
    except EkyaError as error:
        if not keep_going:
            finish_sweep(config["tracking"]["uri"], config["tracking"]["experiment"], sweep_dir, status="FAILED")
            raise
        record_failed_run(config["tracking"]["uri"], config["tracking"]["experiment"], f"{config['scheduler']['name']} {point}",
                          run_params(config), str(error), run_tags(config), sweep_dir)
        print(f"error: {point}: {error}", file=sys.stderr, flush=True)
        return float("nan")
    try:
        return run_config(config, sweep_dir, point)["summary/accuracy_mean"]
    except Exception as error:  # the point's run is FAILED already (RunLogger)
        if not keep_going:
            finish_sweep(config["tracking"]["uri"], config["tracking"]["experiment"], sweep_dir, status="FAILED")
            raise
        if isinstance(error, EkyaError):
            print(f"error: {point}: {error}", file=sys.stderr, flush=True)
        else:
            traceback.print_exc()
        return float("nan")


@refuse_unknown_choices
@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@exit_on_bad_input
def main(cfg: DictConfig) -> float:
    interrupts.install()
    config = OmegaConf.to_container(cfg, resolve=True)
    hydra_config = hydra.core.hydra_config.HydraConfig.get()
    overrides = list(hydra_config.overrides.task)
    if hydra_config.mode.name == "MULTIRUN":
        return run_point(config, overrides, sweep_id(hydra_config.sweep.dir))
    check_overrides(config, overrides)
    return run_config(config)["summary/accuracy_mean"]


if __name__ == "__main__":
    main()
