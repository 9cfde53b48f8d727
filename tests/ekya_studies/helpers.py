"""A tiny trace, and a tiny sweep of it run as a reproduction runs a study (plain calls, no Prefect)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ekya.profiling.trace import write_trace
from ekya_studies.report import load_sweep
from ekya_studies.reproduce import run_study
from flows.window_loop import logged_run
from tests.flows.helpers import compose_config

POINTS = [("thief", 1), ("thief", 2), ("uniform", 1), ("uniform", 2)]


def tiny_trace(root) -> Path:
    """3 streams, 2 windows of 100 s, 3 retraining configurations (c2 is the most accurate and costly)."""
    streams = ["cam0", "cam1", "cam2"]
    retrain = []
    for s, stream in enumerate(streams):
        retrain.append({"stream": stream, "window": -1, "config": "base", "gpu_seconds": 0.0, "accuracy": 0.5 - 0.05 * s})
        for window in range(2):
            for k in range(3):
                retrain.append({"stream": stream, "window": window, "config": f"c{k}", "gpu_seconds": 30.0 + 40.0 * k,
                                "accuracy": 0.6 + 0.1 * k - 0.02 * s})
    inference = [{"stream": "*", "config": "i0", "demand_gpu": 0.1, "accuracy_factor": 0.8},
                 {"stream": "*", "config": "i1", "demand_gpu": 0.3, "accuracy_factor": 1.0}]
    return write_trace(root, 100.0, streams, retrain, inference, delta=0.1, uniform_configs={"high": "c2", "low": "c0"})


def tiny_gpus_sweep(tmp_path: Path, points=POINTS) -> tuple[str, dict[tuple[str, int], float]]:
    """A sweep of experiment gpus_sweep on :func:`tiny_trace` (scheduler x GPUs); returns the store and each point's accuracy."""
    trace = tiny_trace(tmp_path / "trace")
    configs = [compose_config(tmp_path, "experiment=gpus_sweep", f"executor.trace={trace}", "streams=null",
                              f"scheduler={s}", f"gpus={g}") for s, g in points]
    study = {"name": "gpus_sweep", "configs": configs, "points": [f"scheduler={s} gpus={g}" for s, g in points],
             "sweep_dir": str(tmp_path / "sweeps" / "gpus_sweep")}
    run_study(study, partial(logged_run, verbose=False, plots=False))
    uri = configs[0]["tracking"]["uri"]
    frame = load_sweep(uri, "gpus_sweep", all_sweeps=False).frame
    return uri, {(row.scheduler, int(row.gpus)): row.accuracy_mean for row in frame.itertuples()}
