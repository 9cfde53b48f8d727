"""Which Prefect task runner runs the window loop's steps: threads (default) or a Ray cluster.

``executor.task_runner=ray`` runs the steps as Ray tasks through prefect-ray's ``RayTaskRunner``.
``executor.ray_address`` joins a running cluster (``host:port`` of a head started with
``ray start --head``, ``ray://host:10001``, or ``auto``); null starts a local one with
``executor.workers`` CPUs (and the GPUs Ray finds), shut down when the process ends. Every point of
a Hydra sweep in one process uses the same cluster. A retraining step asks Ray for its job's GPU
share as fractional ``num_gpus`` (at most 1: each job on one GPU) when the cluster has GPUs.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from prefect.task_runners import ThreadPoolTaskRunner

from ekya.errors import EkyaError

TASK_RUNNERS = ("threads", "ray")
#: Seconds to wait for a Ray address to answer before refusing it.
CONNECT_TIMEOUT_SECONDS = 5.0
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def check_task_runner(executor: Mapping[str, Any]) -> None:
    """``executor.task_runner`` and ``executor.ray_address``, checked before Prefect or MLflow start (one line each)."""
    name = executor["task_runner"]
    if name not in TASK_RUNNERS:
        raise EkyaError(f"executor.task_runner={name!r}; valid: {', '.join(TASK_RUNNERS)}")
    address = executor["ray_address"]
    if name == "threads":
        if address is not None:
            raise EkyaError(f"executor.ray_address={address} needs executor.task_runner=ray")
        return
    if executor["name"] != "simulated":
        raise EkyaError(
            f"executor.task_runner=ray runs executor=simulated's steps (sweeps, studies); executor={executor['name']} keeps "
            "its models in this process: use executor.task_runner=threads"
        )
    if address is not None and str(address) != "auto":
        _check_answers(str(address))


def _check_answers(address: str) -> None:
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EkyaError(f"executor.ray_address={address!r}; valid: host:port of a Ray head, ray://host:port, auto, or null (a local cluster)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as error:
        raise EkyaError(
            f"executor.ray_address={address}: no Ray cluster answers there ({error.strerror or error}); valid: the address of a "
            "running Ray head (`ray start --head` prints it), auto, or null for a local cluster"
        ) from None


def start_ray(executor: Mapping[str, Any]) -> None:
    """Connect to the cluster ``executor.ray_address`` names, or start a local one (once per process; stopped at exit)."""
    import ray

    if ray.is_initialized():
        return
    address = executor["ray_address"]
    options: dict[str, Any] = {"namespace": "ekya", "include_dashboard": False, "log_to_driver": False}
    if address is None:
        # Local workers import this checkout's code, not whatever is installed elsewhere.
        path = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        options.update(num_cpus=int(executor["workers"]), runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EkyaError(f"executor.ray_address={address}: Ray did not start or connect ({str(error).splitlines()[0]})") from None
    atexit.register(ray.shutdown)


def build_task_runner(config: Mapping[str, Any]) -> Any:
    """The task runner ``executor.task_runner`` names (Ray started or joined first)."""
    executor = config["executor"]
    check_task_runner(executor)
    if executor["task_runner"] == "threads":
        return ThreadPoolTaskRunner(max_workers=int(executor["workers"]))
    from prefect_ray import RayTaskRunner

    start_ray(executor)
    return RayTaskRunner(address=executor["ray_address"])


@contextlib.contextmanager
def gpu_share(share: float | None) -> Iterator[None]:
    """Inside, a task submitted to Ray asks for ``share`` of one GPU (``num_gpus``), when Ray runs and has GPUs."""
    ray = sys.modules.get("ray")
    if not share or share <= 0 or ray is None or not ray.is_initialized() or ray.cluster_resources().get("GPU", 0) <= 0:
        yield
        return
    from prefect_ray.context import remote_options

    with remote_options(num_gpus=min(float(share), 1.0)):
        yield
