"""Prefect's temporary server dies with the run that started it, even after ``kill -9``.

Prefect starts its temporary API server (``uvicorn ... prefect.server.api.server``) as a child
process on first use and stops it at exit, but a run killed with SIGKILL left it behind,
re-parented to init (about 200 MB each). :func:`start_temporary_server` starts it from the main
thread with Linux's ``PR_SET_PDEATHSIG``: the kernel sends it SIGTERM when this process dies,
however it dies. Where that is not available (not Linux), Prefect's own start is used. The
server's own output goes to ``temporary-server.log`` in Prefect's home (``.prefect/``), not to
the run's console: when a run is interrupted, the server's shutdown may print a traceback of the
request it was serving, which would bury the run's one ``interrupted:`` line.

Measured on the 2-core machine under load: starting the temporary server takes 31 s the first
time (it creates its database in .prefect/) and 11 s afterwards; a server kept running and
reused would answer in 0.1 to 0.2 s, but would stay up between runs (another process to stop,
and to share between concurrent runs), so each run keeps its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn``: the child gets SIGTERM when ``parent`` dies (None where prctl is missing)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _SubprocessDyingWithParent(types.ModuleType):
    """``subprocess`` as Prefect's server module sees it: ``Popen`` children die with this process, and write
    their output to ``log`` (an open file)."""

    def __init__(self, preexec: Callable[[], None], log: Any) -> None:
        super().__init__("subprocess")
        self._preexec = preexec
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen:  # noqa: N802 (subprocess's name)
        kwargs.setdefault("preexec_fn", self._preexec)
        kwargs.setdefault("stdout", self._log)
        kwargs.setdefault("stderr", self._log)
        return subprocess.Popen(*args, **kwargs)


def start_temporary_server() -> None:
    """Start Prefect's temporary server now, from the main thread, tied to this process's life.

    Nothing happens when ``PREFECT_API_URL`` names a server, when the temporary server is off
    or already running, or off the main thread (the death signal follows the starting thread).
    """
    import threading

    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    if threading.current_thread() is not threading.main_thread():
        return
    from prefect.server.api import server

    instance = server.SubprocessASGIServer()
    if instance.running:
        return
    preexec = _die_with(os.getpid())
    if preexec is not None and not isinstance(server.subprocess, _SubprocessDyingWithParent):
        home = Path(PREFECT_HOME.value())
        home.mkdir(parents=True, exist_ok=True)
        server.subprocess = _SubprocessDyingWithParent(preexec, open(home / "temporary-server.log", "a+"))
    instance.start()
