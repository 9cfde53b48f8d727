"""Measure how training throughput scales with the share of the device, once per model and device.

The window timeline runs a retraining job of ``C`` GPU-seconds at share ``r`` in ``C / s(r)``
seconds (:class:`~ekya.profiling.cost_model.ThroughputTable`). ``s`` is rarely linear: a job
with half a device often runs at more than half speed (the paper measures sub-linear scaling
on GPUs). This module measures ``s`` for an edge model on a device and stores it, so later
runs read the table instead of measuring again.

Share of a CPU device: ``threads / cores`` (torch intra-op threads), measured for every
thread count from 1 to the machine's cores. A GPU share needs CUDA MPS
(``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE``): ``python -m ekya.execution.gpu.measure`` measures a GPU's
table and stores it at :func:`gpu_table_path`, where ``executor.scaling=measured`` reads it
(a table measured elsewhere can also be given as ``executor.scaling=PATH``).

Measured throughput can drop when a busy machine is oversubscribed; the table keeps
``s`` non-decreasing (a job never runs slower with more of the device than with less, since
it could leave the extra share idle), so such a drop is flattened to the best smaller share.

Reading a stored table (what checking a run does) imports no torch; measuring one does.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ekya.errors import EkyaError
from ekya.models.names import MODEL_NAMES
from ekya.profiling.cost_model import ThroughputTable

#: Values of the ``scaling`` option besides a CSV path.
SCALING_CHOICES = ("linear", "measured")


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def measure_training_throughput(
    model_name: str, threads: int, batch_size: int = 32, steps: int = 4, resolution: int = 32, seed: int = 0
) -> float:
    """Training samples per second of ``model_name`` (every layer trained) with ``threads`` torch threads on the CPU.

    One warm-up step, then ``steps`` timed SGD steps on random crops; torch's thread count is
    restored afterwards.
    """
    if model_name not in MODEL_NAMES:
        raise EkyaError(f"unknown model {model_name!r}; valid models: {', '.join(MODEL_NAMES)}")
    import torch
    from torch.nn import functional

    from ekya.models.factory import build_model, images_to_tensor

    previous_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(model_name).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        rng = np.random.default_rng(seed)
        images = images_to_tensor(rng.integers(0, 256, (batch_size, 3, resolution, resolution), dtype=np.uint8))
        labels = torch.from_numpy(rng.integers(0, model.num_classes, batch_size))
        seconds = 0.0
        for step in range(steps + 1):
            started = time.perf_counter()
            loss = functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step > 0:  # the first step warms up allocators and kernels
                seconds += time.perf_counter() - started
        return batch_size * steps / seconds
    finally:
        torch.set_num_threads(previous_threads)


def measure_cpu_throughput_table(model_name: str, cores: int | None = None, progress: bool = False, **options) -> ThroughputTable:
    """:class:`ThroughputTable` of ``model_name`` on this CPU: share ``t / cores`` for ``t = 1..cores`` threads.

    ``options`` go to :func:`measure_training_throughput` (batch_size, steps, resolution, seed).
    """
    cores = cores or cpu_cores()
    thread_counts = range(1, cores + 1)
    rates = [measure_training_throughput(model_name, threads, **options)
             for threads in tqdm(thread_counts, desc=f"throughput of {model_name}", unit="share", disable=not progress)]
    shares = [threads / cores for threads in thread_counts]
    return ThroughputTable.normalised(shares, np.maximum.accumulate(rates))


def gpu_table_path(cache_dir: str | os.PathLike, model_name: str, gpu_name: str, mode: str = "train") -> Path:
    """Where the MPS throughput table of ``model_name`` on the GPU called ``gpu_name`` is kept (``mode``: train or inference)."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-") or "gpu"
    return Path(cache_dir) / f"throughput-{model_name}-{slug}{'' if mode == 'train' else '-' + mode}-mps.csv"


def stored_throughput_table(cache_dir: str | os.PathLike, model_name: str, device: str = "cpu", progress: bool = False) -> ThroughputTable:
    """The throughput table of ``model_name`` on ``device``, measured once and kept as CSV under ``cache_dir``
    (a GPU's: measured under MPS by ``python -m ekya.execution.gpu.measure``)."""
    if str(device).split(":")[0] != "cpu":
        import torch

        name = torch.cuda.get_device_name(torch.device(device)) if torch.cuda.is_available() else "gpu"
        path = gpu_table_path(cache_dir, model_name, name)
        if not path.is_file():
            raise EkyaError(
                f"executor.scaling=measured: no MPS throughput table of {model_name} on {name} at {path}; measure it with "
                f"`python -m ekya.execution.gpu.measure --model {model_name} --cache-dir {cache_dir}` (needs CUDA MPS), pass a "
                f"CSV (gpu_share,relative_throughput) as executor.scaling=PATH, or use executor.scaling=linear"
            )
        return ThroughputTable.load_csv(path)
    cores = cpu_cores()
    path = Path(cache_dir) / f"throughput-{model_name}-cpu{cores}.csv"
    if not path.exists():
        table = measure_cpu_throughput_table(model_name, cores, progress=progress)
        table.save_csv(path)
    return ThroughputTable.load_csv(path)


def scaling_table(option: str, cache_dir: str | os.PathLike, model_name: str, device: str = "cpu",
                  measured_path: str | os.PathLike | None = None, progress: bool = False) -> ThroughputTable:
    """The table an executor's ``scaling`` option names.

    ``linear``; ``measured``: the table at ``measured_path`` when given (a trace's
    ``throughput.csv``), else the one stored for the model and device (see
    :func:`stored_throughput_table`); or the path of a CSV file.
    """
    option = str(option)
    if option == "linear":
        return ThroughputTable.linear()
    if option == "measured":
        if measured_path is None:
            return stored_throughput_table(cache_dir, model_name, device, progress)
        if not Path(measured_path).is_file():
            raise EkyaError(
                f"executor.scaling=measured: {measured_path} does not exist (flows.profile_offline writes it with the trace); "
                f"use executor.scaling=linear or the path of a .csv throughput table"
            )
        return ThroughputTable.load_csv(measured_path)
    if not option.endswith(".csv"):
        raise EkyaError(f"executor.scaling={option!r}; valid: {', '.join(SCALING_CHOICES)} or the path of a .csv throughput table")
    return ThroughputTable.load_csv(option)
