"""The throughput curve under CUDA MPS: training and inference samples per second of a model at GPU
shares 0.1 .. 1.0, each share measured in a process of its own (MPS fixes a client's
``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` when it initialises CUDA).

The training table is written where ``executor.scaling=measured`` reads a GPU's table
(:func:`ekya.profiling.throughput.gpu_table_path`) and in the format of
:meth:`~ekya.profiling.cost_model.ThroughputTable.save_csv` (a trace's ``throughput.csv``);
the inference table beside it (``...-inference-mps.csv``). Runs only on a GPU::

    python -m ekya.execution.gpu.measure --model resnet18 --cache-dir .cache/models
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ekya.errors import EkyaError
from ekya.execution.gpu.jobs import Workers
from ekya.execution.gpu.mps import ISOLATIONS, MpsDaemon

#: The shares measured by default.
SHARES = tuple(round(0.1 * k, 1) for k in range(1, 11))
MODES = ("train", "inference")


@dataclass(frozen=True)
class MeasuredCurve:
    """Samples per second of one model in one mode at each share, and its table (relative to share 1.0)."""

    mode: str
    shares: tuple[float, ...]
    samples_per_second: tuple[float, ...]

    @property
    def relative(self) -> tuple[float, ...]:
        """Relative throughput at each share, 1.0 at the full GPU, kept non-decreasing (a job never runs slower with more
        of the GPU: it could leave the rest idle)."""
        monotone = np.maximum.accumulate(np.asarray(self.samples_per_second, dtype=float))
        return tuple((monotone / np.interp(1.0, self.shares, monotone)).tolist())

    def csv_text(self) -> str:
        """The table as a trace's ``throughput.csv`` (``ThroughputTable.save_csv``'s format; no scipy needed to write it)."""
        return "gpu_share,relative_throughput\n" + "".join(f"{s!r},{r!r}\n" for s, r in zip(self.shares, self.relative))

    @property
    def table(self):
        """The :class:`~ekya.profiling.cost_model.ThroughputTable` of :attr:`relative`."""
        from ekya.profiling.cost_model import ThroughputTable

        return ThroughputTable(list(self.shares), list(self.relative))


def measure_spec(model: str, mode: str, batch_size: int, resolution: int, seconds: float, warmup_steps: int = 5,
                 hidden_size: int = 64, device: str = "cuda") -> dict:
    """The worker spec of one measurement."""
    if mode not in MODES:
        raise EkyaError(f"mode {mode!r}; valid: {', '.join(MODES)}")
    return {"kind": "measure", "device": device, "mode": mode, "model": model, "hidden_size": hidden_size,
            "batch_size": batch_size, "resolution": resolution, "seconds": seconds, "warmup_steps": warmup_steps}


def measure_curve(model: str, mode: str, workers: Workers, shares: tuple[float, ...] = SHARES, batch_size: int = 64,
                  resolution: int = 64, seconds: float = 4.0, gpu: int = 0, device: str = "cuda") -> MeasuredCurve:
    """Samples per second of ``model`` (``mode``: train or inference) at each share, one process per share, one at a time."""
    rates = []
    for share in shares:
        worker = workers.start((0, f"measure-{mode}"), measure_spec(model, mode, batch_size, resolution, seconds, device=device),
                               gpu, float(share))
        code = worker.process.wait()
        status = workers.stop(worker.key)
        if code != 0 or status.get("state") != "done":
            raise EkyaError(f"measuring {model} ({mode}) at share {share:g} failed: {status.get('error', f'exit status {code}')}")
        rates.append(float(status["samples_per_second"]))
    return MeasuredCurve(mode, tuple(float(s) for s in shares), tuple(rates))


def measure_tables(model: str, cache_dir: str | Path, gpu_name: str, isolation: str = "mps", **options) -> dict[str, MeasuredCurve]:
    """Both curves of ``model`` on this machine's GPU 0, the MPS daemon started and stopped here; the tables written
    under ``cache_dir`` (training: the path ``executor.scaling=measured`` reads)."""
    from ekya.profiling.throughput import gpu_table_path

    if isolation not in ISOLATIONS:
        raise EkyaError(f"isolation={isolation!r}; valid: {', '.join(ISOLATIONS)}")
    with tempfile.TemporaryDirectory(prefix="ekya-measure-") as folder:
        daemon = MpsDaemon(Path(folder) / "mps") if isolation == "mps" else None
        if daemon is not None:
            daemon.start()
        try:
            workers = Workers(Path(folder) / "jobs", daemon)
            curves = {mode: measure_curve(model, mode, workers, **options) for mode in MODES}
        finally:
            if daemon is not None:
                daemon.stop()
    train_path = gpu_table_path(cache_dir, model, gpu_name)
    curves["train"].table.save_csv(train_path)
    curves["inference"].table.save_csv(gpu_table_path(cache_dir, model, gpu_name, mode="inference"))
    return curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure training and inference throughput under CUDA MPS at shares 0.1..1.0")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--cache-dir", default=".cache/models")
    parser.add_argument("--isolation", default="mps", choices=ISOLATIONS)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per share (after a warm-up)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--json", help="also write the raw samples per second here")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("error: measuring the MPS throughput table needs CUDA (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    from ekya.profiling.throughput import gpu_table_path

    name = torch.cuda.get_device_name(0)
    try:
        curves = measure_tables(args.model, args.cache_dir, name, args.isolation, seconds=args.seconds,
                                batch_size=args.batch_size, resolution=args.resolution)
    except EkyaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for mode, curve in curves.items():
        print(f"{mode}: " + "  ".join(f"{s:g}:{r:.0f}/s" for s, r in zip(curve.shares, curve.samples_per_second)))
    print(f"wrote {gpu_table_path(args.cache_dir, args.model, name)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": name, "model": args.model, "isolation": args.isolation,
                                               **{mode: dict(zip(map(str, c.shares), c.samples_per_second)) for mode, c in curves.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
