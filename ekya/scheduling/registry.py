"""Scheduler names to classes: the one place a name from ``conf/scheduler/`` becomes a policy."""

from __future__ import annotations

import inspect
from typing import Any

from ekya.errors import EkyaError
from ekya.scheduling.base import Scheduler
from ekya.scheduling.fair import FairScheduler
from ekya.scheduling.fixed_config import FixedConfigScheduler
from ekya.scheduling.fixed_res import FixedResScheduler
from ekya.scheduling.no_retrain import NoRetrainScheduler
from ekya.scheduling.optimal import OptimalScheduler
from ekya.scheduling.thief import ThiefScheduler
from ekya.scheduling.uniform import UniformScheduler

SCHEDULERS: dict[str, type[Scheduler]] = {
    cls.name: cls
    for cls in (
        ThiefScheduler,
        FairScheduler,
        UniformScheduler,
        NoRetrainScheduler,
        FixedResScheduler,
        FixedConfigScheduler,
        OptimalScheduler,
    )
}


def build_scheduler(name: str, **params: Any) -> Scheduler:
    """The scheduler called ``name`` built with ``params``.

    Raises:
        EkyaError: unknown name (lists the valid ones), unknown or missing parameters (lists the
            accepted ones), or a parameter value the policy rejects.
    """
    cls = SCHEDULERS.get(name)
    if cls is None:
        raise EkyaError(f"unknown scheduler {name!r}; valid: {', '.join(sorted(SCHEDULERS))}")
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in signature.parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise EkyaError(f"scheduler {name!r} has no parameter {', '.join(unknown)}; accepted: {', '.join(accepted) or 'none'}")
    try:
        signature.bind(None, **params)
    except TypeError as error:
        raise EkyaError(f"scheduler {name!r}: {error}; accepted parameters: {', '.join(accepted)}") from None
    try:
        return cls(**params)
    except ValueError as error:
        raise EkyaError(f"scheduler {name!r}: {error}") from None
