"""Ctrl-C and SIGTERM: stop at once with one line, the open MLflow runs marked KILLED.

The handler does not unwind the stack: Prefect would report the interrupted flow run to its
temporary server (which a Ctrl-C in a terminal has just stopped too) and retry for minutes.
Instead it marks the runs KILLED from a helper thread (at most :data:`MARK_SECONDS`), stops the
temporary server, prints ``interrupted: ...`` and leaves with ``os._exit`` (130 for SIGINT,
143 for SIGTERM). The window in progress is discarded: only finished windows are logged and
checkpointed. Inside :func:`deferred` (logging a finished window) the stop waits for the block's end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any, Iterator

#: Longest wait for MLflow while stopping; a run left RUNNING is marked KILLED by the next start (its pid is gone).
MARK_SECONDS = 3.0
#: The multirun under way: (tracking URI, experiment, sweep folder), so that an interrupt closes its parent too.
current_sweep: tuple[str, str, str] | None = None
_deferring = 0
_pending: int | None = None


def install() -> None:
    """Handle SIGINT and SIGTERM in this (the main) thread; call again inside a Prefect flow, which swaps SIGTERM's handler."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal that arrives inside the block stops the process when the block ends (e.g. logging a finished window)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if _deferring == 0 and _pending is not None:
            stop(_pending)


def _handler(signum: int, frame: Any) -> None:
    global _pending
    if _deferring:
        _pending = signum
        return
    stop(signum)


def stop(signum: int) -> None:
    """Mark the open runs (and the sweep's parent) KILLED, stop Prefect's temporary server, print one line, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    reason = f"interrupted by {signal.Signals(signum).name}"
    marked: list[str] = []
    worker = threading.Thread(target=_mark_killed, args=(reason, marked), daemon=True)
    worker.start()
    worker.join(MARK_SECONDS)
    _stop_prefect_server()
    if marked:
        print(f"interrupted: {' and '.join(marked)} marked KILLED", file=sys.stderr, flush=True)
    else:
        print("interrupted", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(128 + signum)


def _mark_killed(reason: str, marked: list[str]) -> None:
    tracking = sys.modules.get("ekya.tracking.mlflow_logging")
    if tracking is None:  # MLflow not even imported: no run is open
        return
    for run_id, logger in list(tracking.OPEN_RUNS.items()):
        tracking.mark_killed(logger.tracking_uri, run_id, reason)
        marked.append(f"run {run_id}")
    if current_sweep is not None:
        uri, experiment, sweep_dir = current_sweep
        tracking.finish_sweep(uri, experiment, sweep_dir, status="KILLED")
        marked.append(f"sweep {os.path.basename(sweep_dir)}")


def _stop_prefect_server() -> None:
    server = sys.modules.get("prefect.server.api.server")
    if server is None:
        return
    for instance in list(server.SubprocessASGIServer._instances.values()):
        process = instance.server_process
        if process is not None and process.poll() is None:
            process.terminate()
