"""Hydra callbacks: close a multirun's parent MLflow run when the sweep ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def sweep_id(sweep_dir: Any) -> str:
    """The one name of a sweep, shared by its parent run, its children and this callback: the
    sweep folder as an absolute path (``hydra.sweep.dir`` may be relative to the working directory)."""
    return str(Path(str(sweep_dir)).resolve())


class FinishSweepRun(Callback):
    """Closes the sweep's parent MLflow run at the end of a multirun, with how many points finished and failed.

    The sweep folder is resolved once, when the multirun starts (the jobs see the same value:
    Hydra copies the master config's resolved ``${now:}`` into every job's config).
    """

    def __init__(self) -> None:
        self.sweep_dir: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweep_dir = sweep_id(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from ekya.tracking.mlflow_logging import finish_sweep

        finish_sweep(config.tracking.uri, config.tracking.experiment, self.sweep_dir or sweep_id(config.hydra.sweep.dir))
