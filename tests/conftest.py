"""Session-wide test settings (Prefect's temporary server keeps its state in a temporary folder) and shared fixtures."""

import os
import tempfile

# Always a fresh folder: tests never share Prefect's database with the project's runs.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="ekya-prefect-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The first start of the temporary server creates its database, which can exceed the 20 s default.
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
