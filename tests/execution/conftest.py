"""Building local runs from their parts, as flows/config.py does from a config (for tests/execution and tests/execution/local)."""

import pytest

from ekya.data.base import select
from ekya.profiling.costs import JobCosts
from ekya.execution.local.estimation import Estimation
from ekya.execution.local.labeling import WindowLabeling
from ekya.execution.local.run import LocalRun
from ekya.scheduling.problem import WindowSettings


@pytest.fixture
def local_run():
    """A factory: a :class:`LocalRun` with 1 GPU, Δ = 0.1, calibrated costs and ground-truth labels unless told otherwise."""

    def make(source, model, retrain_configs, inference_configs, profiler, *, cache_dir, gpus=1.0, seed=0, mode="micro",
             cost="calibrated", noise_std=0.0, pruning=None, labeler=None, measure_against="ground_truth", streams=None,
             windows=None, device="cpu", label_frames=None, audit=False, correction=None, cache=None, jobs=None):
        settings = WindowSettings(gpus=gpus, delta=0.1, min_accuracy=0.0, window_seconds=source.window_seconds)
        stream_names = select(source.streams, streams, "streams")
        estimation = Estimation(mode, profiler, {c.name: c for c in retrain_configs}, stream_names, pruning, noise_std, seed, device,
                                audit, correction)
        return LocalRun(source, model, retrain_configs, inference_configs, settings, estimation, JobCosts(cost, device, model.name, progress=False),
                        WindowLabeling(labeler, measure_against, label_frames), stream_names, windows, seed, str(cache_dir), device, progress=False, jobs=jobs, cache=cache)

    return make
