"""The console: Prefect's report of a bad input is dropped (the entry point prints it as one line); other errors stay."""

from __future__ import annotations

import logging
import sys

from ekya.errors import EkyaError
from flows.console import DropBadInput


def record_of(error: Exception) -> logging.LogRecord:
    try:
        raise error
    except Exception:
        return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "Encountered exception", None, sys.exc_info())


def test_bad_input_tracebacks_are_dropped_and_other_errors_kept():
    keep = DropBadInput()
    assert not keep.filter(record_of(EkyaError("overheads do not fit")))
    assert keep.filter(record_of(RuntimeError("a real bug")))
    assert keep.filter(logging.LogRecord("prefect", logging.INFO, __file__, 1, "Beginning flow run", None, None))
