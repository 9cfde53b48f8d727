"""Hydra callbacks: close a multirun's parent MLflow run when the sweep ends."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ekya.tracking.mlflow_logging import finish_sweep


class FinishSweepRun(Callback):
    """Marks the sweep's parent MLflow run FINISHED at the end of a multirun."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        finish_sweep(config.tracking.uri, config.tracking.experiment, str(config.hydra.sweep.dir))
