"""Entry point: run every retraining window as Prefect tasks and log it to MLflow.

    python -m flows.window_loop                                   # real learning on the built-in data
    python -m flows.window_loop executor=simulated executor.trace=DIR scheduler=thief gpus=3
    python -m flows.window_loop experiment=paper_example scheduler=uniform
    python -m flows.window_loop -m scheduler=thief,uniform gpus=1,2,4
    python -m flows.window_loop ... resume=true                  # continue the newest unfinished run of this config

Bad input is answered first: this module imports Hydra and the config checks
(:func:`flows.config.check_run`) only. The flow, :mod:`flows.window_flow`, brings Prefect, MLflow
and torch; it is imported once a config has passed. Its ``window_loop`` (the flow) and
``logged_run`` can be imported from here too. Every finished window is checkpointed under
``${paths.cache_dir}/resume/<run id>``, so that ``resume=true`` (or ``resume=<run id>``) reopens a
FAILED or KILLED run and plays on from its next window.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ekya.errors import EkyaError
from flows import interrupts
from flows.callbacks import swept_part, sweep_id
from flows.config import build_resume, check_overrides, check_run, run_params
from flows.console import set_log_level
from flows.errors import exit_on_bad_input, refuse_bad_overrides
from flows.prefect_server import start_temporary_server

#: Names of :mod:`flows.window_flow` that this module hands out (imported on first use, PEP 562).
_FLOW_NAMES = ("FinishedWindows", "git_sha", "logged_run", "prefect_map", "run_tags", "window_loop")


def __getattr__(name: str) -> Any:
    if name in _FLOW_NAMES:
        from flows import window_flow

        return getattr(window_flow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def finished_already(resumption: Any, point: str | None = None) -> dict[str, float]:
    """``resume=true`` when the newest run of the config FINISHED: one line, and that run's summary metrics."""
    print(f"skipped: {point + ': ' if point else ''}run {resumption.run_id} of this config FINISHED already (resume=true)", flush=True)
    return resumption.summary


def run_config(config: dict[str, Any], sweep_dir: str | None = None, point: str | None = None) -> dict[str, float]:
    """Validate ``config``, then run its flow with the executor's task runner and torch threads (``point``: the
    sweep's point, for the line of a point skipped by ``resume=true``)."""
    check_run(config)  # bad input fails before Prefect, MLflow or torch are imported
    resumption = build_resume(config)
    if resumption.finished:
        return finished_already(resumption, point)
    from flows.runners import build_task_runner
    from flows.window_flow import window_loop

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
        from ekya.tracking.mlflow_logging import finish_sweep, record_failed_run
        from flows.window_flow import run_tags

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
        from ekya.tracking.mlflow_logging import finish_sweep

        if not keep_going:
            finish_sweep(config["tracking"]["uri"], config["tracking"]["experiment"], sweep_dir, status="FAILED")
            raise
        if isinstance(error, EkyaError):
            print(f"error: {point}: {error}", file=sys.stderr, flush=True)
        else:
            traceback.print_exc()
        return float("nan")


@refuse_bad_overrides("config")
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
