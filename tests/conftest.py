"""Session-wide test settings (Prefect's temporary server keeps its state in a temporary folder) and shared fixtures."""

import os
import tempfile

# Always a fresh folder: tests never share Prefect's database with the project's runs.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="ekya-prefect-")
# The same values as prefect.toml, which Prefect reads only from the working directory:
# set here too, so that tests started from another folder get them.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("MPLBACKEND", "Agg")


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _stop_prefect_server():
    """Stop Prefect's temporary server while pytest still owns stdout (it logs as it stops)."""
    yield
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        if server.running:
            server.stop()


from pathlib import Path  # noqa: E402

#: The paper's worked example (Table 1, Figure 4), shipped with the package.
PAPER_EXAMPLE = Path(__file__).resolve().parents[1] / "ekya" / "data" / "traces" / "paper_example"


@pytest.fixture
def paper_example_trace():
    from ekya.profiling.trace import load_trace

    return load_trace(PAPER_EXAMPLE)


@pytest.fixture
def simulated_run():
    """A factory: ``simulated_run(trace, gpus=None, delta=None, ..., noise_std=0, seed=0, cache=None)``; None takes the trace's value."""
    from ekya.execution.simulated import SimulatedRun
    from ekya.scheduling.problem import WindowSettings, linear_scaling

    def make(trace, gpus=None, delta=None, min_accuracy=None, window_seconds=None, scaling=linear_scaling,
             streams=None, windows=None, noise_std=0.0, seed=0, cache=None):
        settings = WindowSettings(
            gpus=float(gpus if gpus is not None else trace.gpus or 1.0),
            delta=float(delta if delta is not None else trace.delta or 0.1),
            min_accuracy=float(min_accuracy if min_accuracy is not None else trace.min_accuracy or 0.0),
            window_seconds=float(window_seconds if window_seconds is not None else trace.window_seconds),
            scaling=scaling,
        )
        return SimulatedRun(trace, settings, streams, windows, noise_std, seed, cache=cache)

    return make


def outcomes_of(executor, scheduler):
    """Every window of ``executor`` under ``scheduler`` through the one window loop; the played outcomes."""
    from ekya.execution.loop import run_windows

    return [result.outcome for result in run_windows(executor, scheduler)]


# ------------------------------------------------------------------ golden model (models, training, inference tests)


@pytest.fixture(scope="session")
def golden_source():
    """Tiny synthetic data: one stream of two 60-crop windows and one hold-out window of 60 crops."""
    from ekya.data.synthetic import SyntheticSource

    return SyntheticSource(num_streams=1, num_windows=2, crops_per_window=60, frames_per_window=12, holdout_streams=1, holdout_windows=1)


@pytest.fixture(scope="session")
def golden_trained(golden_source):
    """A tiny golden model (resnet18, one epoch on the 60 hold-out crops), trained on one torch thread."""
    import torch

    from ekya.training.golden import train_golden_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_golden_model(golden_source.holdout(), architecture="resnet18", epochs=1, batch_size=16, validation_fraction=0.25, seed=3)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def golden_checkpoint(golden_trained, tmp_path_factory):
    """The checkpoint file of :func:`golden_trained`, alone in its folder."""
    from ekya.models.golden import save_golden_checkpoint

    return save_golden_checkpoint(golden_trained.model, tmp_path_factory.mktemp("golden") / "sub" / "golden.pt")
