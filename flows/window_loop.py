"""Entry point: run every retraining window as Prefect tasks and log it to MLflow.

    python -m flows.window_loop executor=simulated executor.trace=DIR scheduler=thief gpus=3
    python -m flows.window_loop experiment=paper_example scheduler=uniform
    python -m flows.window_loop -m scheduler=thief,uniform gpus=1,2,4

Per window: profile (per stream, in parallel) -> schedule -> execute (the window timeline
with re-plans) -> evaluate; a line per window on stdout; metrics, schedules and plots in MLflow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task

from ekya.errors import EkyaError
from ekya.execution.simulated import SimulatedRun
from ekya.execution.timeline import StreamOutcomes, WindowOutcome, outcome_record, play_window, timed_schedule
from ekya.execution.trace import load_trace
from ekya.scheduling import Decision, Problem, Scheduler, StreamProblem, build_scheduler
from ekya.tracking.metrics import window_metrics
from ekya.tracking.mlflow_logging import RunLogger, flatten
from ekya.tracking.plots import accuracy_figure, allocation_figure

EXECUTORS = ("simulated",)


@task(name="profile-stream")
def profile_stream(run: SimulatedRun, window: int, stream: str) -> tuple[StreamProblem, StreamOutcomes]:
    return run.profile(window, stream)


@task(name="schedule")
def schedule(problem: Problem, scheduler: Scheduler) -> tuple[Decision, float]:
    return timed_schedule(problem, scheduler)


@task(name="execute")
def execute(problem: Problem, scheduler: Scheduler, outcomes: list[StreamOutcomes], first: tuple[Decision, float]) -> WindowOutcome:
    return play_window(problem, scheduler, outcomes, first_decision=first)


@task(name="evaluate")
def evaluate(outcome: WindowOutcome, window: int, stream_names: list[str]) -> tuple[dict[str, float], dict]:
    record = outcome_record(outcome, stream_names)
    record["window"] = window
    return window_metrics(outcome, stream_names), record


def build_run(config: dict[str, Any]) -> tuple[SimulatedRun, Scheduler]:
    """The run and scheduler a config describes (validates everything before MLflow is touched)."""
    executor = config["executor"]
    if executor.get("name") not in EXECUTORS:
        raise EkyaError(f"unknown executor {executor.get('name')!r}; valid: {', '.join(EXECUTORS)}")
    trace = load_trace(executor["trace"])
    run = SimulatedRun(
        trace,
        gpus=config.get("gpus"),
        delta=config.get("delta"),
        min_accuracy=config.get("min_accuracy"),
        streams=config.get("streams"),
        windows=config.get("windows"),
        estimate_noise_std=float(executor.get("estimate_noise_std", 0.0)),
        seed=int(config.get("seed", 0)),
    )
    params = {k: v for k, v in config["scheduler"].items() if k != "name"}
    if "retrain_config" in params:
        params["retrain_config"] = run.resolve_retrain_config(str(params["retrain_config"]))
    return run, build_scheduler(config["scheduler"]["name"], **params)


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@flow(name="window-loop")
def window_loop(config: dict[str, Any], sweep_dir: str | None = None) -> dict[str, float]:
    """Run all windows of one configuration; returns the summary metrics."""
    run, scheduler = build_run(config)
    settings = run.settings
    print(
        f"{scheduler.name} on {len(run.stream_names)} streams x {len(run.window_indices)} windows of "
        f"{settings.window_seconds:g} s, {settings.gpus:g} GPUs, Δ={settings.delta:g}, aMIN={settings.min_accuracy:g}"
    )
    tags = {
        "dataset": str(config.get("dataset", {}).get("name", "trace")),
        "scheduler": scheduler.name,
        "executor": config["executor"]["name"],
        "git_sha": _git_sha(),
    }
    run_name = f"{scheduler.name} gpus={settings.gpus:g} streams={len(run.stream_names)}"
    records = []
    accuracies = []
    with RunLogger(config["tracking"]["uri"], config["tracking"]["experiment"], run_name, flatten(config), tags, sweep_dir) as logger:
        logger.log_params(
            {"resolved.gpus": settings.gpus, "resolved.delta": settings.delta, "resolved.min_accuracy": settings.min_accuracy}
        )
        for window in run.window_indices:
            parts = [f.result() for f in [profile_stream.submit(run, window, s) for s in run.stream_names]]
            problem = run.problem([believed for believed, _ in parts])
            outcomes = [truth for _, truth in parts]
            first = schedule(problem, scheduler)
            outcome = execute(problem, scheduler, outcomes, first)
            metrics, record = evaluate(outcome, window, run.stream_names)
            run.commit(window, outcome.retrained)
            logger.log_metrics(metrics, step=window)
            logger.log_json(f"windows/{window}/schedule.json", record)
            records.append(record)
            accuracies.append(outcome.mean_accuracy)
            print(
                f"window {window:3d}  accuracy {100 * outcome.mean_accuracy:6.2f}%  "
                f"(estimated {100 * outcome.estimated_mean_accuracy:6.2f}%)  "
                f"gpu-seconds train {outcome.gpu_seconds_train:8.1f} inference {outcome.gpu_seconds_inference:8.1f}  "
                f"decision {1000 * outcome.schedule_seconds:7.1f} ms ({outcome.decisions} calls)",
                flush=True,
            )
        summary = {"summary/accuracy_mean": sum(accuracies) / len(accuracies)}
        logger.log_metrics(summary)
        logger.log_figure("plots/allocation.png", allocation_figure(records, settings.window_seconds, settings.gpus))
        logger.log_figure("plots/accuracy.png", accuracy_figure(records, settings.window_seconds))
    print(f"mean accuracy over windows and streams: {100 * summary['summary/accuracy_mean']:.2f}%  (MLflow run {logger.run_id})")
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    config = OmegaConf.to_container(cfg, resolve=True)
    hydra_config = hydra.core.hydra_config.HydraConfig.get()
    sweep_dir = str(Path(hydra_config.sweep.dir).resolve()) if hydra_config.mode.name == "MULTIRUN" else None
    try:
        build_run(config)  # fail on bad input before Prefect or MLflow start
        return window_loop(config, sweep_dir)["summary/accuracy_mean"]
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
