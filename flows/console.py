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


def set_log_level(level: str) -> None:
    """``info``: only warnings and errors of :data:`CHATTY_LOGGERS`; ``debug``: their INFO lines too.

    Prefect and MLflow configure their loggers when imported, so they are imported first.
    """
    import mlflow  # noqa: F401
    import prefect  # noqa: F401

    threshold = logging.WARNING if check_log_level(level) == "info" else logging.INFO
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(threshold)
