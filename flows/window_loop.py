"""Entry point: run every retraining window as Prefect tasks and log it to MLflow.

    python -m flows.window_loop                                   # real learning on the built-in data
    python -m flows.window_loop executor=simulated executor.trace=DIR scheduler=thief gpus=3
    python -m flows.window_loop experiment=paper_example scheduler=uniform
    python -m flows.window_loop -m scheduler=thief,uniform gpus=1,2,4

Bad input is answered first: this module imports Hydra and the config checks
(:func:`flows.config.check_run`) only. The flow, :mod:`flows.window_flow`, brings Prefect, MLflow
and torch; it is imported once a config has passed. Its ``window_loop`` (the flow) and
``logged_run`` can be imported from here too.
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
from flows.config import check_overrides, check_run
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


def run_config(config: dict[str, Any], sweep_dir: str | None = None) -> dict[str, float]:
    """Validate ``config``, then run its flow with the executor's task runner and torch threads."""
    check_run(config)  # bad input fails before Prefect, MLflow or torch are imported
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
        from ekya.tracking.mlflow_logging import finish_sweep, flatten, record_failed_run
        from flows.window_flow import run_tags

        if not keep_going:
            finish_sweep(config["tracking"]["uri"], config["tracking"]["experiment"], sweep_dir, status="FAILED")
            raise
        record_failed_run(config["tracking"]["uri"], config["tracking"]["experiment"], f"{config['scheduler']['name']} {point}",
                          flatten(config), str(error), run_tags(config), sweep_dir)
        print(f"error: {point}: {error}", file=sys.stderr, flush=True)
        return float("nan")
    try:
        return run_config(config, sweep_dir)["summary/accuracy_mean"]
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
