"""The one error handler of every flow's ``main``: bad input is one ``error:`` line on stderr and exit status 2."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

from ekya.errors import EkyaError

F = TypeVar("F", bound=Callable[..., Any])


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
