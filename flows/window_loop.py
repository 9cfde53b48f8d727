"""Entry point: run every retraining window as Prefect tasks and log it to MLflow.

    python -m flows.window_loop                                   # real learning on the built-in data
    python -m flows.window_loop executor=simulated executor.trace=DIR scheduler=thief gpus=3
    python -m flows.window_loop experiment=paper_example scheduler=uniform
    python -m flows.window_loop -m scheduler=thief,uniform gpus=1,2,4

Per window: profile (per stream, in parallel) -> schedule -> retrain (per stream, in parallel)
-> execute (the window timeline with re-plans) -> evaluate; a line per window on stdout;
metrics, schedules and plots in MLflow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Union

import hydra
from omegaconf import DictConfig, OmegaConf
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from ekya.data.class_mix import plot_class_mix
from ekya.errors import EkyaError
from ekya.execution.local import LocalRun, ModelSettings, PruningSettings
from ekya.execution.runs import total_overheads
from ekya.execution.simulated import SimulatedRun, WindowSettings
from ekya.execution.timeline import StreamProfile, WindowOutcome, outcome_record, play_window, timed_schedule
from ekya.execution.trace import load_trace
from ekya.inference.config import load_inference_space
from ekya.inference.labelers import labeler_from_config
from ekya.models.factory import MODEL_NAMES
from ekya.profiling.micro_profiler import micro_profiler_from_config
from ekya.profiling.throughput import scaling_table
from ekya.scheduling import Decision, Problem, Scheduler, build_scheduler
from ekya.scheduling.problem import ThroughputScaling
from ekya.scheduling.uniform import RETRAIN_CONFIG_ALIASES
from ekya.tracking.metrics import window_metrics
from ekya.tracking.mlflow_logging import RunLogger, flatten
from ekya.tracking.plots import accuracy_figure, allocation_figure
from ekya.training.config import load_retrain_space
from flows.profile_offline import build_source

Run = Union[SimulatedRun, LocalRun]
EXECUTORS = ("local", "simulated")


@task(name="prepare", cache_policy=NO_CACHE)
def prepare(run: Run) -> None:
    run.prepare()


@task(name="profile-stream", cache_policy=NO_CACHE)
def profile_stream(run: Run, window: int, stream: str) -> StreamProfile:
    return run.profile(window, stream)


@task(name="schedule", cache_policy=NO_CACHE)
def schedule(problem: Problem, scheduler: Scheduler) -> tuple[Decision, float]:
    return timed_schedule(problem, scheduler)


@task(name="retrain-stream", cache_policy=NO_CACHE)
def retrain_stream(run: Run, window: int, stream: str, config: str | None) -> None:
    run.train_chosen(window, stream, config)


@task(name="execute", cache_policy=NO_CACHE)
def execute(problem: Problem, scheduler: Scheduler, profiles: list[StreamProfile], first: tuple[Decision, float]) -> WindowOutcome:
    return play_window(problem, scheduler, [p.outcomes for p in profiles], first_decision=first)


def _settings(config: dict[str, Any], window_seconds: float, scaling: ThroughputScaling) -> WindowSettings:
    """G, Δ and aMIN from the config (1 GPU, 0.1 and 0 when unset) for windows of ``window_seconds``."""

    def value(key: str, default: float) -> float:
        return float(config[key]) if config.get(key) is not None else default

    return WindowSettings(value("gpus", 1.0), value("delta", 0.1), value("min_accuracy", 0.0), window_seconds, scaling)


def _scaling(config: dict[str, Any], measured_path: str | Path | None = None) -> ThroughputScaling:
    """Training throughput s(r) that ``executor.scaling`` names (see ``ekya.profiling.throughput``)."""
    executor = config["executor"]
    table = scaling_table(executor.get("scaling", "linear"), Path(config["paths"]["cache_dir"]) / "models",
                          config["model"]["name"], str(executor.get("device", "cpu")), measured_path)
    return table.throughput


def build_run(config: dict[str, Any]) -> Run:
    """The run a config describes; validates it without training anything or touching MLflow."""
    executor = config["executor"]
    name = executor.get("name")
    if name == "simulated":
        trace = load_trace(executor["trace"])
        return SimulatedRun(
            trace,
            gpus=config.get("gpus"),
            delta=config.get("delta"),
            min_accuracy=config.get("min_accuracy"),
            streams=config.get("streams"),
            windows=config.get("windows"),
            estimate_noise_std=float(executor.get("estimate_noise_std", 0.0)),
            seed=int(config.get("seed", 0)),
            window_seconds=executor.get("window_seconds"),
            scaling=_scaling(config, trace.root / "throughput.csv"),
        )
    if name == "local":
        model = config["model"]
        if model["name"] not in MODEL_NAMES:
            raise EkyaError(f"unknown model {model['name']!r}; valid: {', '.join(MODEL_NAMES)}")
        source = build_source(config["dataset"])
        profiler = config["profiler"]
        micro = profiler["name"] == "micro"
        labeler, measure_against = labeler_from_config(config.get("labeler") or {"name": "ground_truth"})
        return LocalRun(
            source,
            ModelSettings(model["name"], int(model["hidden_size"]), int(model["base_epochs"]), int(model["base_batch_size"]), float(model["base_learning_rate"])),
            load_retrain_space(config["retrain_space"]["configs"]),
            load_inference_space(config["inference_space"]["configs"]),
            micro_profiler_from_config(profiler if micro else {}, int(config.get("seed", 0))),
            _settings(config, source.window_seconds, _scaling(config)),
            streams=config.get("streams"),
            windows=config.get("windows"),
            seed=int(config.get("seed", 0)),
            cache_dir=str(Path(config["paths"]["cache_dir"]) / "models"),
            device=str(executor.get("device", "cpu")),
            cost=str(executor.get("cost", "calibrated")),
            labeler=labeler,
            measure_against=measure_against,
            profiler_mode=str(profiler["name"]),
            pruning=PruningSettings(int(profiler["prune_every"]), float(profiler["prune_fraction"]), int(profiler["prune_floor"]))
            if micro and float(profiler["prune_fraction"]) > 0
            else None,
            estimate_noise_std=float(profiler.get("noise_std", 0.0)),
        )
    raise EkyaError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")


def build_policy(config: dict[str, Any], run: Run) -> Scheduler:
    """The scheduler, with Uniform's ``high``/``low`` aliases resolved for this run."""
    params = {k: v for k, v in config["scheduler"].items() if k != "name"}
    if "retrain_config" in params:
        params["retrain_config"] = run.resolve_retrain_config(str(params["retrain_config"]))
    return build_scheduler(config["scheduler"]["name"], **params)


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class Steps:
    """How the window loop's steps run: as Prefect tasks (inside the flow, streams in parallel) or as
    plain calls in this thread (many runs in one process without a flow run each, e.g. the studies
    of ``flows.reproduce``). Both run the same code and log the same MLflow run."""

    def __init__(self, as_tasks: bool = True) -> None:
        self.as_tasks = as_tasks

    def call(self, step: Any, *args: Any) -> Any:
        return step(*args) if self.as_tasks else step.fn(*args)

    def map(self, step: Any, arguments: list[tuple]) -> list[Any]:
        """``step`` over every argument tuple, results in order."""
        if self.as_tasks:
            return [future.result() for future in [step.submit(*args) for args in arguments]]
        return [step.fn(*args) for args in arguments]


@flow(name="window-loop")
def window_loop(config: dict[str, Any], sweep_dir: str | None = None) -> dict[str, float]:
    """Run all windows of one configuration; returns the summary metrics."""
    return run_windows(config, sweep_dir, Steps(as_tasks=True))


def run_windows(
    config: dict[str, Any], sweep_dir: str | None = None, steps: Steps | None = None, verbose: bool = True, plots: bool = True
) -> dict[str, float]:
    """Run all windows of one validated configuration and log one MLflow run; returns the summary metrics.

    Args:
        config: the resolved config (plain containers).
        sweep_dir: the sweep folder when the run is a point of a sweep (child of its parent run).
        steps: Prefect tasks (default, needs a running flow) or plain calls (``Steps(as_tasks=False)``).
        verbose: print a line per window and the summary line.
        plots: log the run's plots (allocation and accuracy over time, class mix); about 1 s per run.
    """
    steps = steps or Steps(as_tasks=True)
    run = build_run(config)
    settings = run.settings
    tags = {
        "dataset": str(config.get("dataset", {}).get("name", "trace")),
        "scheduler": config["scheduler"]["name"],
        "executor": config["executor"]["name"],
        "git_sha": _git_sha(),
    }
    run_name = f"{config['scheduler']['name']} gpus={settings.gpus:g} streams={len(run.stream_names)}"
    records, accuracies = [], []
    with RunLogger(config["tracking"]["uri"], config["tracking"]["experiment"], run_name, flatten(config), tags, sweep_dir) as logger:
        logger.log_params({
            "resolved.gpus": settings.gpus, "resolved.delta": settings.delta, "resolved.min_accuracy": settings.min_accuracy,
            "resolved.streams": len(run.stream_names), "resolved.window_seconds": settings.window_seconds,
        })
        steps.call(prepare, run)
        scheduler = build_policy(config, run)
        if verbose:
            print(
                f"{scheduler.name} on {len(run.stream_names)} streams x {len(run.window_indices)} windows of "
                f"{settings.window_seconds:g} s, {settings.gpus:g} GPUs, Δ={settings.delta:g}, aMIN={settings.min_accuracy:g}",
                flush=True,
            )
        for window in run.window_indices:
            profiles = steps.map(profile_stream, [(run, window, s) for s in run.stream_names])
            overheads = total_overheads(profiles)
            problem = run.problem([p.believed for p in profiles], sum(overheads.values()))
            first = steps.call(schedule, problem, scheduler)
            chosen = [(s, d.retrain_config if d.train_share > 0 else None) for s, d in zip(run.stream_names, first[0].streams)]
            steps.map(retrain_stream, [(run, window, s, c) for s, c in chosen if c is not None])
            outcome = steps.call(execute, problem, scheduler, profiles, first)
            record = outcome_record(outcome, run.stream_names)
            record["window"] = window
            run.commit(window, outcome.retrained)
            logger.log_metrics(window_metrics(outcome, run.stream_names, overheads), step=window)
            logger.log_json(f"windows/{window}/schedule.json", record)
            records.append(record)
            accuracies.append(outcome.mean_accuracy)
            if verbose:
                print(
                    f"window {window:3d}  accuracy {100 * outcome.mean_accuracy:6.2f}%  "
                    f"(estimated {100 * outcome.estimated_mean_accuracy:6.2f}%)  retrained {sum(r is not None for r in outcome.retrained)}/{len(run.stream_names)}  "
                    f"gpu-seconds train {outcome.gpu_seconds_train:7.1f} inference {outcome.gpu_seconds_inference:7.1f} "
                    f"overhead {sum(overheads.values()):6.1f}  decision {1000 * outcome.schedule_seconds:6.1f} ms",
                    flush=True,
                )
        summary = {"summary/accuracy_mean": sum(accuracies) / len(accuracies)}
        skipped = getattr(getattr(run, "source", None), "skipped", None) or {}
        summary.update({f"data/skipped_{kind}": float(count) for kind, count in skipped.items()})
        logger.log_metrics(summary)
        if plots:
            logger.log_figure("plots/allocation.png", allocation_figure(records, settings.window_seconds, settings.gpus))
            logger.log_figure("plots/accuracy.png", accuracy_figure(records, settings.window_seconds))
            if isinstance(run, LocalRun):
                logger.log_figure("plots/class_mix.png", plot_class_mix(run.source, run.stream_names))
    if verbose:
        print(f"mean accuracy over windows and streams: {100 * summary['summary/accuracy_mean']:.2f}%  (MLflow run {logger.run_id})")
    return summary


def run_config(config: dict[str, Any], sweep_dir: str | None = None) -> dict[str, float]:
    """Validate ``config``, then run its flow with the executor's task runner and torch threads."""
    # Fail on bad input before Prefect or MLflow start (Uniform's aliases need the base model, later).
    run = build_run(config)
    params = {k: v for k, v in config["scheduler"].items() if k != "name"}
    name = params.get("retrain_config")
    if name is not None and (isinstance(run, SimulatedRun) or name not in RETRAIN_CONFIG_ALIASES):
        params["retrain_config"] = run.resolve_retrain_config(str(name))
    build_scheduler(config["scheduler"]["name"], **params)
    executor = config["executor"]
    if "torch_threads" in executor:
        import torch

        torch.set_num_threads(int(executor["torch_threads"]))
    runner = ThreadPoolTaskRunner(max_workers=int(executor.get("workers", 4)))
    return window_loop.with_options(task_runner=runner)(config, sweep_dir)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    config = OmegaConf.to_container(cfg, resolve=True)
    hydra_config = hydra.core.hydra_config.HydraConfig.get()
    sweep_dir = str(Path(hydra_config.sweep.dir).resolve()) if hydra_config.mode.name == "MULTIRUN" else None
    try:
        return run_config(config, sweep_dir)["summary/accuracy_mean"]
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
