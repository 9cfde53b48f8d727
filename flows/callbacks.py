"""Hydra callbacks of a multirun: check every point before the first one runs; close the parent MLflow run at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from ekya.errors import EkyaError
from flows.errors import config_error_line

#: The keys the running multirun sweeps over (set when it starts; the basic launcher runs the
#: points in this process), so that a point's messages name only what varies.
SWEPT_KEYS: set[str] = set()


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


def sweep_points(config: DictConfig) -> tuple[list[list[str]], set[str]]:
    """Every point of a multirun as its override list, expanded as Hydra's basic sweeper does
    (``hydra.sweeper.params``, then the command line's overrides), and the keys that vary."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides([*params, *config.hydra.overrides.task])
    swept = {override.get_key_element() for override in overrides if override.is_sweep_override()}
    (points,) = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    return points, swept


def swept_part(overrides: list[str], swept: set[str] | None = None) -> str:
    """The overrides of a point that the sweep varies (all of them when none vary), space separated."""
    swept = SWEPT_KEYS if swept is None else swept
    varying = [override for override in overrides if override.split("=", 1)[0] in swept]
    return " ".join(varying or overrides)


def point_config(config: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """A point's config, composed by Hydra's config loader as its job will be, resolved, without ``hydra``."""
    point = GlobalHydra.instance().config_loader().load_sweep_config(config, list(overrides))
    with open_dict(point):
        del point["hydra"]
    return OmegaConf.to_container(point, resolve=True)


class CheckSweep(Callback):
    """Checks every point's config before a multirun starts: one ``error:`` line per bad point and exit 2,
    nothing run and nothing written. With ``sweep.continue_on_error=true`` nothing is refused up
    front: a failing point is recorded as a FAILED child and the others run.

    Args:
        check: dotted path of ``check(config, overrides)``, raising :class:`~ekya.errors.EkyaError` on bad input.
    """

    def __init__(self, check: str) -> None:
        self.check: Callable[[dict[str, Any], list[str]], Any] = get_method(check)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        points, swept = sweep_points(config)
        SWEPT_KEYS.clear()
        SWEPT_KEYS.update(swept)
        if config.get("sweep", {}).get("continue_on_error", False):
            return
        errors = []
        for overrides in points:
            try:
                self.check(point_config(config, overrides), overrides)
            except (EkyaError, HydraException, OmegaConfBaseException) as error:
                errors.append(f"error: {swept_part(overrides, swept)}: {config_error_line(error)}")
        if errors:
            print("\n".join(errors), file=sys.stderr)
            sys.exit(2)
