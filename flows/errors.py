"""The one error handler of every flow's ``main``: bad input is one ``error:`` line on stderr and exit status 2.

    @refuse_bad_overrides("config")  # `scheduler=nosuch`, `scheduler.nosuch=1`: checked before Hydra runs the flow
    @hydra.main(version_base="1.3", config_path="../conf", config_name="config")
    @exit_on_bad_input               # an EkyaError raised by main
    def main(cfg): ...
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from ekya.errors import EkyaError

F = TypeVar("F", bound=Callable[..., Any])
#: The Hydra configs of every flow: one folder per config group, one yaml per choice.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def exit_on_bad_input(main: F) -> F:
    """Wrap a flow's ``main``: an :class:`~ekya.errors.EkyaError` prints ``error: <message>`` and exits 2."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except EkyaError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def unknown_choices(overrides: Iterable[str], config_dir: Path = CONFIG_DIR) -> list[str]:
    """One message per ``group=choice`` override (sweeps included) whose ``conf/<group>/<choice>.yaml``
    does not exist, listing the group's valid names. Overrides Hydra cannot parse are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return []
    messages = []
    for override in parsed:
        group = override.key_or_group
        folder = config_dir / group
        if override.is_delete() or group.startswith("hydra/") or "." in group or not folder.is_dir():
            continue
        if override.is_sweep_override():
            if override.value_type not in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
                continue  # glob(...), ranges: left to Hydra
            choices: list[Any] = list(override.sweep_string_iterator())
        else:
            value = override.value()
            choices = value if isinstance(value, list) else [value]
        valid = sorted(path.stem for path in folder.glob("*.yaml"))
        for choice in choices:
            if choice is not None and str(choice) not in valid and not (folder / f"{choice}.yaml").is_file():
                messages.append(f"unknown {group} {str(choice)!r}; valid: {', '.join(valid)}")
    return messages


def one_line(error: BaseException) -> str:
    """An error's message on one line."""
    return " ".join(str(error).split())


def config_error_line(error: BaseException) -> str:
    """A Hydra or OmegaConf error composing a config, on one line; an unknown key is named with the valid ones."""
    from omegaconf import DictConfig
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause = error.__cause__ if error.__cause__ is not None else error
    parent = getattr(cause, "parent_node", None)
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and isinstance(parent, DictConfig) and getattr(cause, "full_key", None):
        valid = sorted(str(key) for key in parent.keys() if key != "hydra")
        return f"unknown key {cause.full_key!r}; valid: {', '.join(valid)}"
    return one_line(error)


def composition_errors(overrides: Iterable[str], config_name: str, multirun: bool = False,
                       config_dir: Path = CONFIG_DIR) -> list[str]:
    """The message, if any, of composing ``config_name`` with the command line's ``overrides`` as Hydra will
    (an unknown key, a sweep without ``-m``, an override it cannot parse). In a multirun the swept overrides are
    left out: every point is checked when the sweep starts (:class:`flows.callbacks.CheckSweep`)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    try:
        if multirun:
            overrides = [o.input_line for o in OverridesParser.create().parse_overrides(overrides) if not o.is_sweep_override()]
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as error:
        return [config_error_line(error)]
    return []


def refuse_bad_overrides(config_name: str) -> Callable[[F], F]:
    """Wrap a ``@hydra.main(config_name=config_name)`` function: an unknown config-group choice on the command
    line (one line per choice), or an override Hydra cannot compose into the config, is an ``error:`` line and
    exit status 2, before Hydra runs the flow."""

    def decorate(hydra_main: F) -> F:
        @functools.wraps(hydra_main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not args and not kwargs:  # from the command line
                from hydra._internal.utils import get_args_parser

                parsed, _ = get_args_parser().parse_known_args()
                messages = unknown_choices(parsed.overrides)
                if not messages and parsed.config_path is None and parsed.config_dir is None:
                    messages = composition_errors(parsed.overrides, parsed.config_name or config_name, parsed.multirun)
                if messages:
                    print("\n".join(f"error: {message}" for message in messages), file=sys.stderr)
                    sys.exit(2)
            return hydra_main(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
