"""CUDA MPS: the control daemon the platform starts and stops, and each client process's environment.

Under MPS (Multi-Process Service) the kernels of several processes run on one GPU at once, and
``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` caps the share of the GPU's streaming multiprocessors a
client may use: a job with GPU share r runs with ``round(100 r)`` percent. ``executor.isolation``:

- ``mps``: the platform starts ``nvidia-cuda-mps-control -d`` with its own pipe and log folders
  (so it never touches a daemon someone else runs), sets each client's percentage, and sends
  ``quit`` at the end, also on errors and at interpreter exit;
- ``none`` (the fallback where MPS cannot run): jobs share the device without limits
  (time-sliced by the driver); each still gets its GPU in ``CUDA_VISIBLE_DEVICES``.

Nothing here needs CUDA: the commands and environments are built, and the daemon is started
only by :meth:`MpsDaemon.start`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping

from ekya.errors import EkyaError

MPS_CONTROL = "nvidia-cuda-mps-control"
ISOLATIONS = ("mps", "none")
#: Seconds to wait for the control daemon to answer.
CONTROL_TIMEOUT_SECONDS = 20.0


def thread_percentage(share: float) -> int:
    """``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` of a job with GPU ``share`` of one GPU: 100 x share, in 1..100."""
    if not 0 < share <= 1 + 1e-9:
        raise EkyaError(f"a job's share of its GPU must be in (0, 1], got {share!r}")
    return int(min(100, max(1, round(100 * share))))


class MpsDaemon:
    """One MPS control daemon for the GPUs this process sees, with its pipe and log folders under ``root``.

    The daemon inherits this process's ``CUDA_VISIBLE_DEVICES``; MPS then shows its clients those
    devices renumbered from 0, so a client names its GPU by index in that list.

    Args:
        root: folder for ``pipe/`` and ``log/`` (default: a fresh temporary folder).
        control: the control program (``nvidia-cuda-mps-control``).
    """

    def __init__(self, root: str | os.PathLike | None = None, control: str = MPS_CONTROL) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="ekya-mps-"))
        self.pipe_dir = self.root / "pipe"
        self.log_dir = self.root / "log"
        self.control = control
        self.running = False

    def environment(self) -> dict[str, str]:
        """Variables the daemon and every client of it need (pipe and log folders)."""
        return {"CUDA_MPS_PIPE_DIRECTORY": str(self.pipe_dir), "CUDA_MPS_LOG_DIRECTORY": str(self.log_dir)}

    def start_command(self) -> list[str]:
        """The command line that starts the control daemon (in the background: ``-d``)."""
        return [self.control, "-d"]

    def daemon_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(self.environment())
        return env

    def _send(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.control], input=command + "\n", capture_output=True, text=True,
                              env=self.daemon_environment(), timeout=CONTROL_TIMEOUT_SECONDS)

    def start(self) -> MpsDaemon:
        """Start the daemon, or one line naming ``executor.isolation=mps`` and the fallback.

        Raises:
            EkyaError: the control program is missing, fails, or its daemon does not answer.
        """
        fallback = "valid: executor.isolation=none (jobs share the GPU without limits)"
        if shutil.which(self.control) is None:
            raise EkyaError(f"executor.isolation=mps: {self.control} is not on PATH (it comes with the NVIDIA driver); {fallback}")
        self.pipe_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            started = subprocess.run(self.start_command(), capture_output=True, text=True, env=self.daemon_environment(),
                                     timeout=CONTROL_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EkyaError(f"executor.isolation=mps: {self.control} -d did not start ({error}); {fallback}") from None
        if started.returncode != 0:
            reason = (started.stderr or started.stdout).strip().splitlines()[:1] or [f"exit status {started.returncode}"]
            raise EkyaError(f"executor.isolation=mps: {self.control} -d failed ({reason[0]}); {fallback}")
        self.running = True
        atexit.register(self.stop)
        try:
            answer = self._send("get_server_list")
        except (OSError, subprocess.TimeoutExpired) as error:
            self.stop()
            raise EkyaError(f"executor.isolation=mps: the MPS daemon does not answer ({error}); {fallback}") from None
        if answer.returncode != 0:
            self.stop()
            raise EkyaError(f"executor.isolation=mps: the MPS daemon does not answer (exit status {answer.returncode}); {fallback}")
        return self

    def stop(self) -> None:
        """Ask the daemon to quit (its servers end with it); safe to call twice."""
        if not self.running:
            return
        self.running = False
        try:
            self._send("quit")
        except (OSError, subprocess.TimeoutExpired):
            pass
        atexit.unregister(self.stop)

    def __enter__(self) -> MpsDaemon:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def client_environment(gpu: int, share: float, daemon: MpsDaemon | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a job's process: its GPU, and under MPS its daemon and thread percentage.

    Args:
        gpu: the job's GPU, as an index into the devices this process sees (the job sees it as ``cuda:0``).
        share: its share of that GPU, in (0, 1].
        daemon: the MPS daemon (None: ``executor.isolation=none``, no limit).
        base: the environment to start from (default: this process's).
    """
    env = dict(os.environ if base is None else base)
    for key in ("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
        env.pop(key, None)
    visible = [entry.strip() for entry in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    if daemon is None and visible:
        if not 0 <= gpu < len(visible):
            raise EkyaError(f"GPU {gpu}: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} has {len(visible)} device(s)")
        env["CUDA_VISIBLE_DEVICES"] = visible[gpu]  # without MPS: the device itself
    else:
        env["CUDA_VISIBLE_DEVICES"] = str(int(gpu))  # under MPS: the daemon's renumbering (or no list: the index itself)
    if daemon is not None:
        env.update(daemon.environment())
        env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(thread_percentage(share))
    return env


def check_isolation(isolation: str) -> str:
    """``executor.isolation``, or one line with the valid values."""
    if isolation not in ISOLATIONS:
        raise EkyaError(f"executor.isolation={isolation!r}; valid: {', '.join(ISOLATIONS)}")
    return isolation
