"""What a flow prints: a line per window and the progress bars by default; Prefect's and MLflow's own lines at ``log_level=debug``."""

from __future__ import annotations

import logging

from ekya.errors import EkyaError

LOG_LEVELS = ("info", "debug")
#: Loggers whose INFO lines are hidden at ``log_level=info``: Prefect's flow- and task-run lines
#: ("Beginning flow run", "Task run ... Finished in state Completed()"), its temporary server's
#: start and stop, and MLflow's store set-up. Their warnings and errors always show.
CHATTY_LOGGERS = ("prefect", "prefect.flow_runs", "prefect.task_runs", "mlflow", "alembic")


def check_log_level(level: str) -> str:
    if level not in LOG_LEVELS:
        raise EkyaError(f"log_level={level!r}; valid: {', '.join(LOG_LEVELS)}")
    return level


class DropBadInput(logging.Filter):
    """Drops Prefect's report of a flow or task that raised an :class:`EkyaError`: the entry point prints
    that bad input as its one ``error:`` line, and the traceback would bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], EkyaError))


def set_log_level(level: str) -> None:
    """``info``: only warnings and errors of :data:`CHATTY_LOGGERS`; ``debug``: their INFO lines too.

    Prefect and MLflow configure their loggers when imported, so they are imported first.
    """
    import mlflow  # noqa: F401
    import prefect  # noqa: F401

    threshold = logging.WARNING if check_log_level(level) == "info" else logging.INFO
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(threshold)
        if not any(isinstance(f, DropBadInput) for f in logger.filters):
            logger.addFilter(DropBadInput())
